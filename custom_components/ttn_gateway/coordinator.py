"""Polls TTS for the gateways of one account and their connection stats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    CONF_GATEWAYS,
    CONF_MONITOR_ALL,
    CONF_SCAN_INTERVAL,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    ISSUE_MISSING_GATEWAY_RIGHTS,
    LOGGER,
)
from .end_devices import is_end_device
from .silence import SilenceMonitor
from .tts import (
    ConnectionState,
    Gateway,
    GatewayConnection,
    Right,
    TTSAuthenticationError,
    TTSClient,
    TTSError,
    TTSPermissionError,
    TTSRateLimitError,
)

if TYPE_CHECKING:
    from .end_devices import EndDeviceManager
    from .stream import GatewayEventStreams

type TTSConfigEntry = ConfigEntry[TTSRuntimeData]


@dataclass(frozen=True, slots=True)
class TTSRuntimeData:
    """What a loaded entry runs: gateway polling and end-device uplinks."""

    coordinator: TTSCoordinator
    end_devices: EndDeviceManager


@dataclass(frozen=True, slots=True)
class GatewayData:
    """A monitored gateway and its latest connection state."""

    gateway: Gateway
    connection: GatewayConnection


class TTSCoordinator(DataUpdateCoordinator[dict[str, GatewayData]]):
    """Fetches the gateway list and connection stats of one TTS account."""

    config_entry: TTSConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: TTSConfigEntry, client: TTSClient
    ) -> None:
        """Initialise the coordinator from the entry's options."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=timedelta(
                seconds=entry.options.get(
                    CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds()
                )
            ),
            # A poll that brings the same data (frozen dataclasses compare by
            # value) costs no entity any work; silence has its own timers.
            always_update=False,
        )
        self.client = client
        # Every gateway the key can see, monitored or not (for the options flow).
        self.account_gateways: list[Gateway] = []
        # Applied to every poll result: the events stream re-applies what it
        # pushed, so that a poll that raced a pushed event does not undo it.
        self.merge_pushed: (
            Callable[[dict[str, GatewayData]], dict[str, GatewayData]] | None
        ) = None
        self.silence = SilenceMonitor(hass, self)
        # Opened by async_setup_entry once the first poll succeeded.
        self.event_streams: GatewayEventStreams | None = None

    def device_identifier(self, gateway_id: str) -> str:
        """Device identifier of a gateway, unique across config entries."""
        return f"{self.config_entry.entry_id}_{gateway_id}"

    def device_info(self, gateway: Gateway) -> DeviceInfo:
        """Device registry information of a gateway."""
        versions = gateway.version_ids
        return DeviceInfo(
            identifiers={(DOMAIN, self.device_identifier(gateway.gateway_id))},
            name=gateway.name or gateway.gateway_id,
            manufacturer=versions.brand_id,
            model=versions.model_id,
            hw_version=versions.hardware_version,
            sw_version=versions.firmware_version,
            serial_number=gateway.eui,
            configuration_url=self.client.server.console_url(
                gateway.gateway_id, gateway.gateway_server_address
            ),
        )

    def _monitored(self, gateways: list[Gateway]) -> list[Gateway]:
        options = self.config_entry.options
        if options.get(CONF_MONITOR_ALL, True):
            return gateways
        selected = set(options.get(CONF_GATEWAYS, []))
        return [gateway for gateway in gateways if gateway.gateway_id in selected]

    def _with_unlisted(self, gateways: list[Gateway]) -> list[Gateway]:
        """Add the known gateways an incomplete list left out: keep their devices."""
        listed = {gateway.gateway_id for gateway in gateways}
        kept = [
            data.gateway
            for gateway_id, data in (self.data or {}).items()
            if gateway_id not in listed
        ]
        if kept:
            LOGGER.debug(
                "Gateway list incomplete; keeping %d known gateways", len(kept)
            )
        return [*gateways, *kept]

    async def _async_update_data(self) -> dict[str, GatewayData]:
        try:
            gateways = await self.client.list_gateways()
            if not self.client.listing_complete:
                gateways = self._with_unlisted(gateways)
            monitored = self._monitored(gateways)
            connections = await self.client.get_connection_stats(monitored)
        except TTSAuthenticationError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except TTSPermissionError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="missing_rights",
                translation_placeholders={
                    "rights": ", ".join(err.missing_rights) or Right.USER_GATEWAYS_LIST
                },
            ) from err
        except TTSRateLimitError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                translation_placeholders={"seconds": f"{err.retry_after:.0f}"},
            ) from err
        except TTSError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="communication_error",
                translation_placeholders={"error": str(err)},
            ) from err

        self.account_gateways = gateways
        data = {
            gateway.gateway_id: GatewayData(
                gateway=gateway, connection=connections[gateway.gateway_id]
            )
            for gateway in monitored
        }
        if self.merge_pushed is not None:
            data = self.merge_pushed(data)
        self._sync_devices(data)
        self._sync_rights_issue(data)
        return data

    @callback
    def async_set_pushed_data(self, data: dict[str, GatewayData]) -> None:
        """Show data that arrived by push.

        Unlike async_set_updated_data this keeps the poll schedule: frequent
        events must not postpone the polls that refresh the counters.
        """
        self.data = data
        self.async_update_listeners()

    def _sync_devices(self, data: dict[str, GatewayData]) -> None:
        """Update renamed gateways' devices and remove those that are gone."""
        registry = dr.async_get(self.hass)
        entry_id = self.config_entry.entry_id
        previous = self.data or {}
        for gateway_id, current in data.items():
            before = previous.get(gateway_id)
            if before is not None and before.gateway != current.gateway:
                registry.async_get_or_create(
                    config_entry_id=entry_id, **self.device_info(current.gateway)
                )
        wanted = {(DOMAIN, self.device_identifier(gateway_id)) for gateway_id in data}
        for device in dr.async_entries_for_config_entry(registry, entry_id):
            if not device.identifiers & wanted and not is_end_device(entry_id, device):
                LOGGER.debug(
                    "Removing device %s: gateway no longer monitored", device.name
                )
                registry.async_remove_device(device.id)

    def _sync_rights_issue(self, data: dict[str, GatewayData]) -> None:
        """Raise a repair issue while the key may not read some gateways' status."""
        issue_id = f"{ISSUE_MISSING_GATEWAY_RIGHTS}_{self.config_entry.entry_id}"
        forbidden = sorted(
            gateway_id
            for gateway_id, gateway in data.items()
            if gateway.connection.state is ConnectionState.NO_RIGHTS
        )
        if not forbidden:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_MISSING_GATEWAY_RIGHTS,
            translation_placeholders={
                "gateways": ", ".join(forbidden),
                "right": Right.GATEWAY_STATUS_READ,
                "title": self.config_entry.title,
            },
        )
