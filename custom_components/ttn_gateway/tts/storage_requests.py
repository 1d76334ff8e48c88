"""Stored uplinks: ``ApplicationUpStorage.GetStoredApplicationUp`` (see storage.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from http import HTTPStatus
import logging
from urllib.parse import quote

import aiohttp

from .errors import (
    TTSConnectionError,
    TTSError,
    TTSRateLimitError,
    TTSStorageNotEnabledError,
)
from .http_core import API_PREFIX, ErrorBody, TTSHttpCore, unexpected_error
from .primitives import format_timestamp
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


class StorageRequests(TTSHttpCore):
    """Reads the uplinks the Storage Integration kept."""

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
            raise unexpected_error(self.server.host, "GET", path, err) from err
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
                f" ({ErrorBody.parse(body).label})"
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


def _received_at(uplink: Uplink) -> datetime:
    """Sort key: TTS's received_at; an uplink without one sorts first."""
    return uplink.received_at or datetime.min.replace(tzinfo=UTC)
