"""Gateway requests: the gateway list and the Gateway Server's connection stats.

``GET /api/v3/gateways`` is ``GatewayRegistry.List`` (lorawan-stack
``gateway_services.proto``); the stats ``Gs.GetGatewayConnectionStats`` and its
batch form (``gatewayserver.proto``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
import logging
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from .errors import TTSConnectionError, TTSNotFoundError, TTSPermissionError
from .gateways import (
    ConnectionState,
    Gateway,
    GatewayConnection,
    GatewayConnectionStats,
)
from .http_core import (
    DEFAULT_TIMEOUT_SECONDS,
    LIST_ATTEMPTS,
    LIST_PAGE_SIZE,
    TTSHttpCore,
)
from .servers import TTSServer

_LOGGER = logging.getLogger(__name__)

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
# Far more than any account has; stops a server that never ends its pages.
LIST_MAX_PAGES: Final = 100
BATCH_SIZE: Final = 100
# Per-gateway requests in flight when a batch must be split up.
FALLBACK_CONCURRENCY: Final = 4
# A gateway that answered 403 is asked again only after this many seconds.
FORBIDDEN_RECHECK_SECONDS: Final = 3600.0


class GatewayRequests(TTSHttpCore):
    """Lists the gateways and reads their connection stats.

    Remembers the gateways whose stats the key may not read: they are asked
    again only once an hour.
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
        super().__init__(
            session, server, api_key, request_timeout=request_timeout, clock=clock
        )
        self._forbidden: dict[str, float] = {}
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
