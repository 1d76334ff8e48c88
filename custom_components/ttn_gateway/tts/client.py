"""Asynchronous client for the parts of the TTS v3 HTTP API this project uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
import json
import logging
import time
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from .applications import Application, EndDeviceInfo, EndDeviceListing
from .clusters import (
    APPLICATION_SERVER_FIELD,
    application_server,
    device_application_servers,
)
from .downlink import Downlink, downlink_request_json
from .errors import (
    TTSAuthenticationError,
    TTSConnectionError,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
    TTSStorageNotEnabledError,
    TTSStreamIdleError,
)
from .events import StreamError, StreamEvent, parse_stream_message
from .gateways import (
    ConnectionState,
    Gateway,
    GatewayConnection,
    GatewayConnectionStats,
)
from .mqtt import MqttConnectionInfo
from .primitives import format_timestamp
from .rights import AuthInfo
from .servers import TTSServer
from .storage import (
    STORED_BODY_MAX_BYTES,
    STORED_LINE_MAX_BYTES,
    STORED_READ_TIMEOUT_SECONDS,
    STORED_TYPE,
    STORED_UPLINKS_MAX,
    StoredStreamError,
    StoredUplinks,
    parse_stored_line,
)
from .uplink import Uplink, UplinkError

_LOGGER = logging.getLogger(__name__)

API_PREFIX: Final = "/api/v3"
GATEWAY_FIELD_MASK: Final = (
    "name",
    "description",
    "version_ids",
    "gateway_server_address",
    "frequency_plan_ids",
    "antennas",
    "status_public",
    "location_public",
)
LIST_PAGE_SIZE: Final = 1000
# Far more than any account has; stops a server that never ends its pages.
LIST_MAX_PAGES: Final = 100
# The most end devices an application's list is read for.
END_DEVICE_LIST_MAX: Final = 10_000
# Reads of the whole list when its total changes between pages (pages shifted).
LIST_ATTEMPTS: Final = 3
BATCH_SIZE: Final = 100
# Per-gateway requests in flight when a batch must be split up.
FALLBACK_CONCURRENCY: Final = 4
# A gateway that answered 403 is asked again only after this many seconds.
FORBIDDEN_RECHECK_SECONDS: Final = 3600.0
DEFAULT_RETRY_SECONDS: Final = 60.0
DEFAULT_TIMEOUT_SECONDS: Final = 20.0
# TTS sends no heartbeat on the events stream: a stream silent for this long
# is presumed dead (a proxy may have dropped it) and is reopened.
STREAM_IDLE_TIMEOUT_SECONDS: Final = 300.0
# Longest stream message accepted; uplink events are a few kilobytes.
STREAM_MAX_MESSAGE_BYTES: Final = 1 << 20
# Largest answer body read: a list page of 1,000 gateways is about 1 MiB.
MAX_BODY_BYTES: Final = 16 << 20
_READ_CHUNK_BYTES: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class _ErrorBody:
    namespace: str = ""
    name: str = ""
    missing_rights: tuple[str, ...] = ()

    @classmethod
    def parse(cls, body: bytes) -> _ErrorBody:
        try:
            data = json.loads(body)
            details = data["details"][0]
            attributes = details.get("attributes") or {}
            missing = attributes.get("missing") or ()
            if isinstance(missing, str):
                missing = (missing,)
            return cls(
                namespace=str(details.get("namespace", "")),
                name=str(details.get("name", "")),
                missing_rights=tuple(str(right) for right in missing),
            )
        except (ValueError, LookupError, TypeError, AttributeError):
            return cls()

    @property
    def label(self) -> str:
        return f"{self.namespace}:{self.name}" if self.name else "no error details"


@dataclass(slots=True)
class _EndDevicePages:
    """One read of every page of a device list."""

    devices: dict[str, EndDeviceInfo] = field(default_factory=dict)
    unreadable: int = 0
    moved: bool = False
    cut: bool = False


def _total_count(headers: Mapping[str, str]) -> int | None:
    """``X-Total-Count``, or None when it is missing or not a count."""
    try:
        total = int(headers.get("X-Total-Count", ""))
    except ValueError:
        return None
    return total if total >= 0 else None


class TTSClient:
    """Talks to one TTS deployment with one API key.

    The session is injected and never closed here. The client remembers a
    rate-limit deadline (no request is sent before it) and the gateways whose
    stats the key may not read (they are asked again only once an hour).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server: TTSServer,
        api_key: str,
        *,
        request_timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._session = session
        self.server = server
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
        }
        self._timeout = request_timeout
        # Looked up at call time, so a patched time.monotonic is honoured.
        self._clock = clock or (lambda: time.monotonic())
        self._retry_at = 0.0
        self._forbidden: dict[str, float] = {}
        self.request_count = 0
        # False when the last gateway list may lack gateways: an unreadable
        # item, or pages that kept shifting while they were read.
        self.listing_complete = True
        # The last list's items with what they parsed to: an item TTS sends
        # unchanged is not parsed again (the list rarely changes).
        self._listed: dict[str, tuple[Any, Gateway]] = {}

    @property
    def forbidden_gateways(self) -> frozenset[str]:
        """Gateways whose stats the key may not read."""
        return frozenset(self._forbidden)

    async def _request(
        self,
        method: str,
        base_url: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        payload: Any = None,
    ) -> tuple[Any, Mapping[str, str]]:
        """Send one request; return the decoded JSON body and the headers."""
        if (wait := self._retry_at - self._clock()) > 0:
            raise TTSRateLimitError(
                f"Rate limited by TTS; next request allowed in {wait:.0f} s", wait
            )
        url = f"{base_url}{API_PREFIX}{path}"
        self.request_count += 1
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.request(
                    method, url, params=params, json=payload, headers=self._headers
                ) as response:
                    body = await self._read_body(response, method, path)
                    status = response.status
                    headers = response.headers
        except TimeoutError as err:
            raise TTSConnectionError(
                f"Timeout after {self._timeout:.0f} s waiting for {method} {path}"
                f" on {self.server.host}"
            ) from err
        except aiohttp.ClientError as err:
            raise TTSConnectionError(
                f"Cannot reach {self.server.host} for {method} {path}:"
                f" {type(err).__name__}"
            ) from err
        except TTSError:
            raise  # already says what went wrong (an oversized answer)
        except Exception as err:
            raise _unexpected(self.server.host, method, path, err) from err

        if status >= HTTPStatus.BAD_REQUEST:
            self._raise_for_status(status, body, headers, method, path)
        try:
            data = json.loads(body) if body else {}
        except ValueError as err:
            raise TTSConnectionError(
                f"Malformed JSON from {self.server.host} for {method} {path}"
            ) from err
        if not isinstance(data, dict):
            raise TTSConnectionError(
                f"Unexpected JSON from {self.server.host} for {method} {path}"
            )
        return data, headers

    async def _read_body(
        self, response: aiohttp.ClientResponse, method: str, path: str
    ) -> bytes:
        """Read an answer's body, refusing one larger than MAX_BODY_BYTES."""
        too_large = TTSConnectionError(
            f"The answer of {self.server.host} to {method} {path} is larger than"
            f" {MAX_BODY_BYTES >> 20} MiB"
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdecimal() and int(declared) > MAX_BODY_BYTES:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        content = response.content
        while chunk := await content.read(_READ_CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _raise_for_status(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        method: str,
        path: str,
        *,
        remember_retry: bool = True,
    ) -> None:
        # Messages are built here, not copied from TTS: a rate-limit message
        # from TTS names the key's id.
        error = _ErrorBody.parse(body)
        where = f"{method} {path}"
        if status == HTTPStatus.UNAUTHORIZED or (
            status == HTTPStatus.BAD_REQUEST and error.namespace == "pkg/auth"
        ):
            raise TTSAuthenticationError(
                f"TTS rejected the API key ({error.label}) for {where}"
            )
        if status == HTTPStatus.FORBIDDEN:
            raise TTSPermissionError(
                f"The API key lacks rights for {where} ({error.label})",
                error.missing_rights,
            )
        if status == HTTPStatus.NOT_FOUND:
            raise TTSNotFoundError(f"Not found: {where} ({error.label})")
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            retry = _retry_seconds(headers)
            if remember_retry:
                self._retry_at = self._clock() + retry
            raise TTSRateLimitError(
                f"Rate limited by TTS for {where}; retrying in {retry:.0f} s", retry
            )
        raise TTSConnectionError(f"TTS answered HTTP {status} for {where}")

    async def get_auth_info(self) -> AuthInfo:
        """Return who owns the API key and its rights."""
        data, _ = await self._request(
            "GET", self.server.identity_server_url, "/auth_info"
        )
        return AuthInfo.from_json(data)

    async def get_application(self, application_id: str) -> Application:
        """Return an application's name and description."""
        data, _ = await self._request(
            "GET",
            self.server.identity_server_url,
            f"/applications/{quote(application_id, safe='')}",
            params={"field_mask": "name,description"},
        )
        return Application.from_json(data, application_id)

    async def get_mqtt_connection_info(self, application_id: str) -> MqttConnectionInfo:
        """Where the Application Server's MQTT server is, and the username.

        Asked of the client's server's Application Server, which answers
        with its own public addresses whatever cluster the application's
        devices use: a client for the application's cluster asks there.
        """
        data, _ = await self._request(
            "GET",
            self.server.url,
            f"/as/applications/{quote(application_id, safe='')}/mqtt-connection-info",
        )
        return MqttConnectionInfo.from_json(data)

    async def get_application_server(self, application_id: str) -> str | None:
        """The Application Server host the application names for its devices."""
        data, _ = await self._request(
            "GET",
            self.server.identity_server_url,
            f"/applications/{quote(application_id, safe='')}",
            params={"field_mask": APPLICATION_SERVER_FIELD},
        )
        return application_server(data)

    async def list_device_application_servers(self, application_id: str) -> list[str]:
        """The Application Server host of each device on the list's first page."""
        data, _ = await self._request(
            "GET",
            self.server.identity_server_url,
            f"/applications/{quote(application_id, safe='')}/devices",
            params={
                "field_mask": APPLICATION_SERVER_FIELD,
                "limit": str(LIST_PAGE_SIZE),
            },
        )
        return device_application_servers(data)

    async def list_end_devices(self, application_id: str) -> EndDeviceListing:
        """List an application's end devices (names and models), page by page.

        Pages are ordered by device ID. When the total changes between pages,
        or a page repeats a device of an earlier one (a device added in front
        pushed it over the boundary), devices may have moved past a boundary
        unseen, so the list is read again. Without ``X-Total-Count`` pages are
        read until a short one. The listing is incomplete when an item was
        unreadable, the pages kept moving, or END_DEVICE_LIST_MAX was reached.
        """
        path = f"/applications/{quote(application_id, safe='')}/devices"
        seen: dict[str, EndDeviceInfo] = {}
        for _ in range(LIST_ATTEMPTS):
            read = await self._read_end_device_pages(path, application_id)
            seen.update(read.devices)
            if not read.moved:
                if read.unreadable:
                    _LOGGER.debug("Skipped %d unreadable end devices", read.unreadable)
                return EndDeviceListing(
                    list(read.devices.values()),
                    complete=not read.unreadable and not read.cut,
                )
            _LOGGER.debug("The device list changed while it was read; reading again")
        return EndDeviceListing(list(seen.values()), complete=False)

    async def _read_end_device_pages(
        self, path: str, application_id: str
    ) -> _EndDevicePages:
        """Read every page of the list once."""
        pages = _EndDevicePages()
        totals: set[int] = set()
        count = 0
        for page in range(1, END_DEVICE_LIST_MAX // LIST_PAGE_SIZE + 1):
            data, headers = await self._request(
                "GET",
                self.server.identity_server_url,
                path,
                params={
                    "field_mask": "name,description,version_ids",
                    "limit": str(LIST_PAGE_SIZE),
                    "page": str(page),
                    "order": "device_id",
                },
            )
            items = data.get("end_devices", []) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise TTSConnectionError(
                    f"Unexpected device list from {self.server.host}"
                )
            for item in items:
                device = EndDeviceInfo.from_json(item)
                if device is None or device.application_id != application_id:
                    pages.unreadable += 1
                elif device.device_id in pages.devices:
                    pages.moved = True
                else:
                    pages.devices[device.device_id] = device
            count += len(items)
            if (total := _total_count(headers)) is not None:
                totals.add(total)
            if len(items) < LIST_PAGE_SIZE or (
                total is not None and page * LIST_PAGE_SIZE >= total
            ):
                # The pages must add up to the total they were read with.
                pages.moved = (
                    pages.moved or len(totals) > 1 or total not in (None, count)
                )
                return pages
        pages.cut = True
        pages.moved = pages.moved or len(totals) > 1
        return pages

    async def push_downlinks(
        self,
        application_id: str,
        device_id: str,
        downlinks: Sequence[Downlink],
        *,
        replace: bool = False,
    ) -> None:
        """Queue downlinks for a device on the Application Server."""
        operation = "replace" if replace else "push"
        await self._request(
            "POST",
            self.server.url,
            f"/as/applications/{quote(application_id, safe='')}/devices/"
            f"{quote(device_id, safe='')}/down/{operation}",
            payload=downlink_request_json(downlinks),
        )

    async def list_gateways(self) -> list[Gateway]:
        """List every gateway the key's owner can access, directly or not.

        The list is read page by page. When its total changes between pages,
        gateways may have moved across a page boundary unseen, so it is read
        again. `listing_complete` tells whether the result may lack gateways
        (unreadable items, or pages that kept moving: then every gateway seen
        in any read is returned).
        """
        seen: dict[str, Gateway] = {}
        listed: dict[str, tuple[Any, Gateway]] = {}
        for _ in range(LIST_ATTEMPTS):
            gateways: dict[str, Gateway] = {}
            moved, unreadable = await self._read_gateway_pages(gateways, listed)
            seen.update(gateways)
            self._listed = listed
            if not moved:
                self.listing_complete = not unreadable
                if unreadable:
                    _LOGGER.debug("Skipped %d unreadable gateways", unreadable)
                return list(gateways.values())
            _LOGGER.debug("The gateway list changed while it was read; reading again")
        self.listing_complete = False
        return list(seen.values())

    async def _read_gateway_pages(
        self, gateways: dict[str, Gateway], listed: dict[str, tuple[Any, Gateway]]
    ) -> tuple[bool, int]:
        """Read every page into `gateways`; return (total changed, bad items)."""
        params = {
            "field_mask": ",".join(GATEWAY_FIELD_MASK),
            "limit": str(LIST_PAGE_SIZE),
            "order": "gateway_id",
        }
        totals: set[int] = set()
        unreadable = 0
        for page in range(1, LIST_MAX_PAGES + 1):
            data, headers = await self._request(
                "GET",
                self.server.identity_server_url,
                "/gateways",
                params={**params, "page": str(page)},
            )
            items = data.get("gateways", [])
            if not isinstance(items, list):
                raise TTSConnectionError(
                    f"Unexpected gateway list from {self.server.host}"
                )
            for item in items:
                if (gateway := self._parse_gateway(item, listed)) is not None:
                    gateways.setdefault(gateway.gateway_id, gateway)
                else:
                    unreadable += 1
            try:
                total = int(headers.get("X-Total-Count", ""))
            except ValueError:
                total = 0
            totals.add(total)
            if not items or page * LIST_PAGE_SIZE >= total:
                break
        return len(totals) > 1, unreadable

    def _parse_gateway(
        self, item: Any, listed: dict[str, tuple[Any, Gateway]]
    ) -> Gateway | None:
        """Parse a list item, or reuse what the same item parsed to last time."""
        ids = item.get("ids") if type(item) is dict else None
        gateway_id = ids.get("gateway_id") if type(ids) is dict else None
        known = self._listed.get(gateway_id) if type(gateway_id) is str else None
        if known is not None and known[0] == item:
            gateway: Gateway | None = known[1]
        else:
            gateway = Gateway.from_json(item)
        if gateway is not None:
            listed[gateway.gateway_id] = (item, gateway)
        return gateway

    async def get_connection_stats(
        self, gateways: Iterable[Gateway]
    ) -> dict[str, GatewayConnection]:
        """Return the connection of every gateway, in as few requests as TTS allows.

        Gateways are grouped by the cluster that serves their stats and asked in
        batches of 100. A batch refused with 403 is split into single requests,
        and the gateways that refuse are remembered so later polls ask only
        them, once an hour.
        """
        now = self._clock()
        results: dict[str, GatewayConnection] = {}
        batches: dict[str, list[str]] = {}
        singles: dict[str, list[str]] = {}
        for gateway in gateways:
            gateway_id = gateway.gateway_id
            base_url = self.server.gateway_server_url(gateway.gateway_server_address)
            if (recheck_at := self._forbidden.get(gateway_id)) is None:
                batches.setdefault(base_url, []).append(gateway_id)
            elif recheck_at <= now:
                singles.setdefault(base_url, []).append(gateway_id)
            else:
                results[gateway_id] = GatewayConnection(ConnectionState.NO_RIGHTS)
        for base_url, ids in batches.items():
            for start in range(0, len(ids), BATCH_SIZE):
                chunk = list(dict.fromkeys(ids[start : start + BATCH_SIZE]))
                results.update(await self._get_batch(base_url, chunk))
        for base_url, ids in singles.items():
            results.update(await self._get_each(base_url, ids))
        return results

    async def _get_batch(
        self, base_url: str, gateway_ids: Sequence[str]
    ) -> dict[str, GatewayConnection]:
        try:
            data, _ = await self._request(
                "POST",
                base_url,
                "/gs/gateways/connection/stats",
                payload={"gateway_ids": [{"gateway_id": i} for i in gateway_ids]},
            )
        except TTSPermissionError:
            _LOGGER.debug(
                "Batch stats refused for %d gateways; asking each", len(gateway_ids)
            )
            return await self._get_each(base_url, gateway_ids)
        entries = data.get("entries", {})
        if not isinstance(entries, dict):
            raise TTSConnectionError(f"Unexpected batch stats from {self.server.host}")
        results: dict[str, GatewayConnection] = {}
        for gateway_id in gateway_ids:
            entry = entries.get(gateway_id)
            results[gateway_id] = (
                GatewayConnection.from_stats(GatewayConnectionStats.from_json(entry))
                if isinstance(entry, dict)
                else GatewayConnection(ConnectionState.NOT_CONNECTED)
            )
        return results

    async def _get_each(
        self, base_url: str, gateway_ids: Sequence[str]
    ) -> dict[str, GatewayConnection]:
        semaphore = asyncio.Semaphore(FALLBACK_CONCURRENCY)

        async def get_one(gateway_id: str) -> GatewayConnection:
            async with semaphore:
                return await self._get_single(base_url, gateway_id)

        connections = await asyncio.gather(*(get_one(i) for i in gateway_ids))
        return dict(zip(gateway_ids, connections, strict=True))

    async def _get_single(self, base_url: str, gateway_id: str) -> GatewayConnection:
        path = f"/gs/gateways/{quote(gateway_id, safe='')}/connection/stats"
        try:
            data, _ = await self._request("GET", base_url, path)
        except TTSNotFoundError:
            self._forbidden.pop(gateway_id, None)
            return GatewayConnection(ConnectionState.NOT_CONNECTED)
        except TTSPermissionError:
            self._forbidden[gateway_id] = self._clock() + FORBIDDEN_RECHECK_SECONDS
            return GatewayConnection(ConnectionState.NO_RIGHTS)
        self._forbidden.pop(gateway_id, None)
        return GatewayConnection.from_stats(GatewayConnectionStats.from_json(data))

    async def stream_events(
        self,
        base_url: str,
        gateway_ids: Sequence[str],
        names: Sequence[str],
        *,
        after: datetime | None = None,
        idle_timeout: float = STREAM_IDLE_TIMEOUT_SECONDS,
        on_skipped: Callable[[], None] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream the events of some gateways, starting with ``events.stream.start``.

        Accepts both framings TTS uses (one or two newlines) and skips
        messages it cannot parse. Ends when TTS closes the stream or sends an
        in-band error; raises TTSConnectionError when the stream stays silent
        for ``idle_timeout`` seconds. HTTP errors raise as for other calls, but
        a 429 does not hold back the polling requests: the stream has its own
        rate limit in TTS. ``on_skipped`` is called for each skipped message.
        """
        path = "/events"
        payload: dict[str, object] = {
            "identifiers": [{"gateway_ids": {"gateway_id": i}} for i in gateway_ids],
            "names": list(names),
        }
        if after is not None:
            payload["after"] = format_timestamp(after)
        self.request_count += 1
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._session.request(
                    "POST",
                    f"{base_url}{API_PREFIX}{path}",
                    json=payload,
                    headers=self._headers,
                    # No total timeout: the stream is meant to stay open.
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=self._timeout
                    ),
                )
        except TimeoutError as err:
            raise TTSConnectionError(
                f"Timeout after {self._timeout:.0f} s waiting for POST {path}"
                f" on {self.server.host}"
            ) from err
        except aiohttp.ClientError as err:
            raise TTSConnectionError(
                f"Cannot reach {self.server.host} for POST {path}: {type(err).__name__}"
            ) from err
        except Exception as err:
            raise _unexpected(self.server.host, "POST", path, err) from err
        try:
            async with response:
                if response.status >= HTTPStatus.BAD_REQUEST:
                    async with asyncio.timeout(self._timeout):
                        body = await response.read()
                    self._raise_for_status(
                        response.status,
                        body,
                        response.headers,
                        "POST",
                        path,
                        remember_retry=False,
                    )
                buffer = b""
                while True:
                    async with asyncio.timeout(idle_timeout):
                        chunk = await response.content.readany()
                    if not chunk:
                        return
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    if len(buffer) > STREAM_MAX_MESSAGE_BYTES:
                        raise TTSConnectionError(
                            f"Events stream message from {self.server.host} is too long"
                        )
                    for line in lines:
                        if not line.strip():
                            continue
                        message = parse_stream_message(line)
                        if isinstance(message, StreamEvent):
                            yield message
                        elif isinstance(message, StreamError):
                            _LOGGER.debug(
                                "TTS ended the events stream with error %s (code %s)",
                                message.label,
                                message.code,
                            )
                            return
                        else:
                            _LOGGER.debug(
                                "Skipping an unusable events stream message from %s",
                                self.server.host,
                            )
                            if on_skipped is not None:
                                on_skipped()
        except TimeoutError as err:
            raise TTSStreamIdleError(
                f"No data on the events stream from {self.server.host}"
                f" for {idle_timeout:.0f} s"
            ) from err
        except aiohttp.ClientError as err:
            raise TTSConnectionError(
                f"Events stream from {self.server.host} failed: {type(err).__name__}"
            ) from err

    async def get_stored_uplinks(
        self,
        application_id: str,
        *,
        after: datetime,
        limit: int = STORED_UPLINKS_MAX,
    ) -> StoredUplinks:
        """The newest stored uplinks of an application received after a time.

        Asks the Storage Integration for at most ``limit`` uplinks, newest
        first (so a long outage keeps its latest uplinks), and returns them
        oldest first. Unusable lines are skipped and counted. Raises
        TTSStorageNotEnabledError (404: the integration is not enabled, or
        the deployment has none), TTSPermissionError (403: the key lacks
        RIGHT_APPLICATION_TRAFFIC_READ), or another TTSError.
        """
        path = (
            f"/as/applications/{quote(application_id, safe='')}"
            f"/packages/storage/{STORED_TYPE}"
        )
        params = {
            "after": format_timestamp(after),
            "order": "-received_at",
            "limit": str(max(1, min(limit, STORED_UPLINKS_MAX))),
        }
        if (wait := self._retry_at - self._clock()) > 0:
            raise TTSRateLimitError(
                f"Rate limited by TTS; next request allowed in {wait:.0f} s", wait
            )
        self.request_count += 1
        result = StoredUplinks()
        try:
            async with (
                asyncio.timeout(STORED_READ_TIMEOUT_SECONDS),
                self._session.get(
                    f"{self.server.url}{API_PREFIX}{path}",
                    params=params,
                    headers={**self._headers, "Accept": "text/event-stream"},
                ) as response,
            ):
                if response.status >= HTTPStatus.BAD_REQUEST:
                    await self._raise_for_stored(response, path, application_id)
                await self._read_stored(response, result)
        except TimeoutError as err:
            raise TTSConnectionError(
                f"Timeout after {STORED_READ_TIMEOUT_SECONDS:.0f} s reading GET {path}"
                f" on {self.server.host}"
            ) from err
        except aiohttp.ClientError as err:
            raise TTSConnectionError(
                f"Cannot read GET {path} from {self.server.host}: {type(err).__name__}"
            ) from err
        except StoredStreamError as err:
            raise TTSConnectionError(
                f"TTS ended GET {path} with an error: {err}"
            ) from err
        except TTSError:
            raise
        except Exception as err:
            raise _unexpected(self.server.host, "GET", path, err) from err
        result.full = len(result.uplinks) + result.skipped + result.ignored >= int(
            params["limit"]
        )
        # Newest first from TTS; oldest first here (a stable sort keeps the
        # order of equal times).
        result.uplinks.reverse()
        result.uplinks.sort(key=_received_at)
        return result

    async def _raise_for_stored(
        self, response: aiohttp.ClientResponse, path: str, application_id: str
    ) -> None:
        """Raise the error of a refused call for stored uplinks."""
        body = await self._read_body(response, "GET", path)
        if response.status == HTTPStatus.NOT_FOUND:
            # grpc-gateway's routing 404 on a deployment without the
            # integration, or TTS's own when the application has none.
            raise TTSStorageNotEnabledError(
                f"No Storage Integration for application {application_id}"
                f" ({_ErrorBody.parse(body).label})"
            )
        self._raise_for_status(response.status, body, response.headers, "GET", path)

    async def _read_stored(
        self, response: aiohttp.ClientResponse, result: StoredUplinks
    ) -> None:
        """Parse the stream's lines into ``result``, within the size bounds."""
        buffer = b""
        size = 0
        # In a line longer than STORED_LINE_MAX_BYTES: drop up to its end.
        discarding = False
        content = response.content
        while chunk := await content.readany():
            size += len(chunk)
            if size > STORED_BODY_MAX_BYTES:
                raise TTSConnectionError(
                    f"Stored uplinks from {self.server.host} are larger than"
                    f" {STORED_BODY_MAX_BYTES >> 20} MiB"
                )
            *lines, buffer = (buffer + chunk).split(b"\n")
            if discarding and lines:
                discarding = False
                lines = lines[1:]
            for line in lines:
                self._take_stored_line(line, result)
            if discarding:
                buffer = b""
            elif len(buffer) > STORED_LINE_MAX_BYTES:
                buffer, discarding = b"", True
                result.skipped += 1
        self._take_stored_line(buffer, result)

    def _take_stored_line(self, line: bytes, result: StoredUplinks) -> None:
        if not line.strip():
            return
        try:
            uplink = parse_stored_line(line)
        except UplinkError as err:
            result.skipped += 1
            _LOGGER.debug(
                "Skipping a stored message from %s: %s", self.server.host, err
            )
            return
        if uplink is None:
            result.ignored += 1
        else:
            result.uplinks.append(uplink)


def _unexpected(
    host: str, method: str, path: str, err: Exception
) -> TTSConnectionError:
    """A connection error for an exception the HTTP client should not raise.

    Such an exception (for example a DNS resolver library that does not fit
    the installed aiohttp) means that no request reached TTS. Only its type
    is named: its text could quote anything of the request.
    """
    return TTSConnectionError(
        f"Cannot reach {host} for {method} {path}: the HTTP client failed"
        f" unexpectedly ({type(err).__name__})"
    )


def _received_at(uplink: Uplink) -> datetime:
    """Sort key: TTS's received_at; an uplink without one sorts first."""
    return uplink.received_at or datetime.min.replace(tzinfo=UTC)


def _retry_seconds(headers: Mapping[str, str]) -> float:
    for name in ("X-Rate-Limit-Retry", "X-Rate-Limit-Reset"):
        try:
            seconds = float(headers.get(name, ""))
        except ValueError:
            continue
        if seconds > 0:
            return seconds
    return DEFAULT_RETRY_SECONDS


__all__ = ["TTSClient", "TTSError"]
