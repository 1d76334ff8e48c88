"""Application requests: the application, its devices, MQTT access, downlinks.

Identity Server ``ApplicationRegistry`` and ``EndDeviceRegistry`` (lorawan-stack
``api/ttn/lorawan/v3/application_services.proto``, ``end_device_services.proto``);
Application Server ``AppAs.GetMQTTConnectionInfo`` and ``AppAs.DownlinkQueuePush``
/ ``DownlinkQueueReplace`` (``applicationserver.proto``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import logging
from typing import Final
from urllib.parse import quote

from .applications import Application, EndDeviceInfo, EndDeviceListing
from .clusters import (
    APPLICATION_SERVER_FIELD,
    application_server,
    device_application_servers,
)
from .downlink import Downlink, downlink_request_json
from .errors import TTSConnectionError
from .http_core import LIST_ATTEMPTS, LIST_PAGE_SIZE, TTSHttpCore, total_count
from .mqtt import MqttConnectionInfo

_LOGGER = logging.getLogger(__name__)

# The most end devices an application's list is read for.
END_DEVICE_LIST_MAX: Final = 10_000


@dataclass(slots=True)
class _EndDevicePages:
    """One read of every page of a device list."""

    devices: dict[str, EndDeviceInfo] = field(default_factory=dict)
    unreadable: int = 0
    moved: bool = False
    cut: bool = False


class ApplicationRequests(TTSHttpCore):
    """Reads an application and its end devices, and queues downlinks."""

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
            if (total := total_count(headers)) is not None:
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
