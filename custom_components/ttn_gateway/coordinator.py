"""Polls TTS for the gateways of one account and feeds the gateway store.

The coordinator owns the poll: its schedule (the user's interval; relaxed
while the events stream delivers; backing off after failures; the wait TTS
asks for after a 429), the gateway list and the device registry entries of
the gateways. What the gateways' state is, it leaves to the store.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .compat import update_failed
from .const import (
    CONF_GATEWAYS,
    CONF_MONITOR_ALL,
    CONF_SCAN_INTERVAL,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    ISSUE_MISSING_GATEWAY_RIGHTS,
    LOGGER,
    RELAXED_SCAN_INTERVAL,
)
from .device_names import DeviceNames
from .end_devices import is_end_device
from .identifiers import (
    account_id,
    account_identifier,
    gateway_id_of,
    gateway_identifier,
)
from .issues import async_create_issue, async_delete_issue
from .store import GatewayData, GatewayStore
from .tts import (
    ConnectionState,
    Gateway,
    Right,
    TTSAuthenticationError,
    TTSClient,
    TTSError,
    TTSPermissionError,
    TTSRateLimitError,
    console_rights,
)

# After failed polls the interval doubles per failure, up to this factor.
MAX_FAILURE_BACKOFF_FACTOR: Final = 8


class TTSCoordinator(DataUpdateCoordinator[None]):
    """Fetches the gateway list and connection stats of one TTS account.

    It keeps no data of its own: each poll goes into the store, which every
    reader uses. Its listeners learn whether the last poll succeeded.
    """

    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: TTSClient,
        store: GatewayStore,
    ) -> None:
        """Initialise the coordinator from the entry's options."""
        self.polling_interval = timedelta(
            seconds=entry.options.get(
                CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds()
            )
        )
        self.relaxed_interval = max(self.polling_interval, RELAXED_SCAN_INTERVAL)
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=self.polling_interval,
            # No data: listeners hear only of a change of last_update_success.
            always_update=False,
        )
        self.client = client
        self.store = store
        self.device_names = DeviceNames(hass, entry, client)
        # Every gateway the key can see, monitored or not (for the options flow).
        self.account_gateways: list[Gateway] = []
        self.failures = 0
        # Gateways missing from a complete listing: when that was first seen.
        self._missing_since: dict[str, datetime] = {}
        # Gateways this entry has devices of, known before the first listing:
        # a short first listing after setup or a reload deletes none of them.
        self._registered = self._registered_gateways()
        self._device_infos: dict[str, tuple[Gateway, DeviceInfo]] = {}

    def _registered_gateways(self) -> set[str]:
        account = account_id(self.config_entry)
        return {
            gateway_id
            for device in dr.async_entries_for_config_entry(
                dr.async_get(self.hass), self.config_entry.entry_id
            )
            for domain, identifier in device.identifiers
            if domain == DOMAIN
            and (gateway_id := gateway_id_of(account, identifier)) is not None
        }

    def device_identifier(self, gateway_id: str) -> str:
        """Device identifier of a gateway of this entry."""
        return gateway_identifier(account_id(self.config_entry), gateway_id)

    def device_info(self, gateway: Gateway) -> DeviceInfo:
        """Device registry information of a gateway.

        Kept per gateway until its data or a learnt name changes it: each of
        the gateway's entities asks.
        """
        if (known := self._device_infos.get(gateway.gateway_id)) is not None and (
            known[0] is gateway
        ):
            return known[1]
        versions = gateway.version_ids
        info = DeviceInfo(
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
        info = self.device_names.readable(info)
        if len(self._device_infos) > 2 * len(self.store.gateway_ids):
            # Gateways no longer monitored.
            self._device_infos.clear()
        self._device_infos[gateway.gateway_id] = (gateway, info)
        return info

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Follow the store's push health and the poll results; returns the stop."""
        remove_health = self.store.async_subscribe_health(self._async_health_changed)
        # The coordinator polls only while it has a listener.
        remove_listener = self.async_add_listener(self._async_poll_finished)
        remove_names = self.device_names.async_add_listener(self._async_names_learnt)
        stop_names = self.device_names.async_start()

        @callback
        def stop() -> None:
            remove_health()
            remove_listener()
            remove_names()
            stop_names()

        return stop

    @callback
    def _async_names_learnt(self) -> None:
        """Show a learnt manufacturer or model name on the gateways' devices."""
        self._device_infos.clear()
        registry = dr.async_get(self.hass)
        for data in self.store.snapshot().values():
            registry.async_get_or_create(
                config_entry_id=self.config_entry.entry_id,
                **self.device_info(data.gateway),
            )

    @callback
    def _async_poll_finished(self) -> None:
        self.store.async_set_poll_ok(self.last_update_success)

    @callback
    def _async_health_changed(self) -> None:
        """Relax the poll while the stream delivers; poll now when it stops."""
        was_relaxed = self.update_interval == self.relaxed_interval
        self._set_interval()
        if was_relaxed and not self.store.push_healthy:
            # Events may have been missed while the stream was failing.
            self.hass.async_create_task(self.async_request_refresh())

    def _set_interval(self) -> None:
        if self.failures:
            factor = min(2 ** (self.failures - 1), MAX_FAILURE_BACKOFF_FACTOR)
            interval = self.polling_interval * factor
        elif self.store.push_healthy:
            interval = self.relaxed_interval
        else:
            interval = self.polling_interval
        if self.update_interval != interval:
            LOGGER.debug("Polling every %.0f s", interval.total_seconds())
            self.update_interval = interval

    def _monitored(self, gateways: list[Gateway]) -> list[Gateway]:
        options = self.config_entry.options
        if options.get(CONF_MONITOR_ALL, True):
            return gateways
        selected = set(options.get(CONF_GATEWAYS, []))
        return [gateway for gateway in gateways if gateway.gateway_id in selected]

    def _missing(
        self, listed: list[Gateway], *, complete: bool
    ) -> tuple[list[Gateway], set[str]]:
        """Known gateways missing from the listing: (still polled, pending removal).

        Known are the monitored gateways and, until a listing settles them,
        those this entry had devices of at setup. After an incomplete listing
        they are kept and polled as before. A gateway that complete listings
        miss is removed only once two of them at least one poll interval
        apart did: one short answer must not delete a device and its
        customisations. Until then it is kept, unavailable.
        """
        listed_ids = {gateway.gateway_id for gateway in listed}
        now = dt_util.utcnow()
        polled: list[Gateway] = []
        pending: set[str] = set()
        for gateway_id in (self.store.gateway_ids | self._registered) - listed_ids:
            if not self._still_wanted(gateway_id):
                continue
            if not complete:
                if (data := self.store.get(gateway_id)) is not None:
                    polled.append(data.gateway)
                continue
            first = self._missing_since.setdefault(gateway_id, now)
            if now - first < self.polling_interval:
                pending.add(gateway_id)
        for gateway_id in list(self._missing_since):
            if gateway_id not in pending and (gateway_id in listed_ids or complete):
                del self._missing_since[gateway_id]
        self._registered -= listed_ids
        if complete:
            self._registered &= pending
        if polled or pending:
            LOGGER.debug(
                "Keeping %d gateways missing from the list", len(polled) + len(pending)
            )
        return polled, pending

    def _still_wanted(self, gateway_id: str) -> bool:
        options = self.config_entry.options
        return options.get(CONF_MONITOR_ALL, True) or gateway_id in options.get(
            CONF_GATEWAYS, []
        )

    async def _async_update_data(self) -> None:
        started = self.store.begin_poll()
        try:
            gateways = await self.client.list_gateways()
            kept, pending = self._missing(
                gateways, complete=self.client.listing_complete
            )
            monitored = [*self._monitored(gateways), *kept]
            connections = await self.client.get_connection_stats(monitored)
        except TTSAuthenticationError as err:
            self._failed()
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except TTSPermissionError as err:
            self._failed()
            raise update_failed(
                translation_domain=DOMAIN,
                translation_key="missing_rights",
                translation_placeholders={
                    "rights": console_rights(
                        err.missing_rights or (Right.USER_GATEWAYS_LIST,)
                    )
                },
            ) from err
        except TTSRateLimitError as err:
            self._failed()
            raise update_failed(
                retry_after=err.retry_after,
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                translation_placeholders={"seconds": f"{err.retry_after:.0f}"},
            ) from err
        except TTSError as err:
            self._failed()
            raise update_failed(
                translation_domain=DOMAIN,
                translation_key="communication_error",
                translation_placeholders={"error": str(err)},
            ) from err

        self.failures = 0
        self._set_interval()
        self.account_gateways = gateways
        previous = self.store.snapshot()
        self.store.async_apply_poll(
            started,
            {
                gateway.gateway_id: GatewayData(
                    gateway=gateway, connection=connections[gateway.gateway_id]
                )
                for gateway in monitored
            },
            pending,
        )
        self.store.async_set_poll_ok(True)
        data = self.store.snapshot()
        self._sync_devices(
            previous, data, pending if self.client.listing_complete else None
        )
        self._sync_rights_issue(data)

    def _failed(self) -> None:
        self.failures += 1
        self._set_interval()

    def _sync_devices(
        self,
        previous: dict[str, GatewayData],
        data: dict[str, GatewayData],
        pending: set[str] | None,
    ) -> None:
        """Update renamed gateways' devices and remove those that are gone.

        ``pending`` gateways are kept; after an incomplete listing (None)
        nothing is removed.
        """
        registry = dr.async_get(self.hass)
        entry_id = self.config_entry.entry_id
        for gateway_id, current in data.items():
            before = previous.get(gateway_id)
            if before is not None and before.gateway != current.gateway:
                registry.async_get_or_create(
                    config_entry_id=entry_id, **self.device_info(current.gateway)
                )
        if pending is None:
            return
        wanted = {
            (DOMAIN, self.device_identifier(gateway_id))
            for gateway_id in (*data, *pending)
        }
        wanted.add((DOMAIN, account_identifier(account_id(self.config_entry))))
        for device in dr.async_entries_for_config_entry(registry, entry_id):
            if not device.identifiers & wanted and not is_end_device(
                account_id(self.config_entry), device
            ):
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
            async_delete_issue(self.hass, issue_id)
            return
        async_create_issue(
            self.hass,
            issue_id,
            fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_MISSING_GATEWAY_RIGHTS,
            placeholders={
                "gateways": ", ".join(forbidden),
                "right": Right.GATEWAY_STATUS_READ,
                "title": self.config_entry.title,
            },
        )
