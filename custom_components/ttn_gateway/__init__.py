"""The TTN Gateway integration: The Things Stack gateways in Home Assistant.

Data path: the coordinator's polls and the events streams feed the gateway
store; the entities and the silence monitor follow the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_SERVER,
    CONF_SILENCE_THRESHOLD,
    DEFAULT_SILENCE_THRESHOLD,
    DOMAIN,
    ISSUE_APPLICATION_KEY_REJECTED,
    ISSUE_END_DEVICE_CAP,
    ISSUE_END_DEVICE_ENTITY_CAP,
    ISSUE_MISSING_GATEWAY_RIGHTS,
    ISSUE_MQTT_NOT_SET_UP,
    ISSUE_NO_EVENT_RIGHTS,
)
from .coordinator import TTSCoordinator
from .end_devices import EndDeviceManager, is_end_device
from .end_devices.catchup import CatchUpStore, issue_id as storage_issue_id
from .end_devices.registry import async_remove_deleted_devices
from .entity import async_announce_gateways
from .identifiers import account_id
from .issues import async_delete_issue
from .migration import async_migrate
from .runtime import TTSConfigEntry, TTSRuntimeData
from .services import async_setup_services
from .silence import SilenceMonitor
from .silent_migration import issue_id as silent_issue_id
from .store import GatewayStore
from .stream import GatewayEventStreams
from .tts import TTSClient, TTSServer

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.DEVICE_TRACKER,
    Platform.EVENT,
    Platform.NUMBER,
    Platform.SENSOR,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, whether or not an entry is loaded."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Bring an entry of an earlier version up to date."""
    return await async_migrate(hass, entry)


async def async_setup_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Set up a TTS account from a config entry."""
    client = TTSClient(
        async_get_clientsession(hass),
        TTSServer(entry.data[CONF_SERVER]),
        entry.data[CONF_API_KEY],
    )
    store = GatewayStore()
    coordinator = TTSCoordinator(hass, entry, client, store)
    await coordinator.async_config_entry_first_refresh()
    end_devices = EndDeviceManager(
        hass,
        entry,
        client.server,
        async_get_clientsession(hass),
        coordinator.device_names,
    )
    end_devices.async_load_known_devices()
    entry.async_on_unload(end_devices.async_stop)
    await end_devices.async_setup()
    silence = SilenceMonitor(
        hass,
        store,
        timedelta(
            minutes=entry.options.get(CONF_SILENCE_THRESHOLD, DEFAULT_SILENCE_THRESHOLD)
        ),
    )
    streams = GatewayEventStreams(
        hass, entry, client, store, coordinator.polling_interval
    )
    entry.runtime_data = TTSRuntimeData(
        client=client,
        store=store,
        coordinator=coordinator,
        streams=streams,
        silence=silence,
        end_devices=end_devices,
    )
    entry.async_on_unload(coordinator.async_start())
    entry.async_on_unload(async_announce_gateways(hass, entry, store))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the platforms, so that the restored thresholds count and new end
    # devices' entities can be added.
    entry.async_on_unload(silence.async_start())
    await streams.async_start()
    entry.async_on_unload(_async_reload_on_subentry_change(hass, entry))
    return True


def _subentries_of(entry: ConfigEntry) -> dict[str, tuple[str, Any]]:
    return {
        subentry_id: (subentry.title, dict(subentry.data))
        for subentry_id, subentry in entry.subentries.items()
    }


@callback
def _async_reload_on_subentry_change(
    hass: HomeAssistant, entry: ConfigEntry
) -> Callable[[], None]:
    """Reload when an application is added, changed or removed.

    Options flows reload the entry themselves, so this is not an update
    listener (HA 2026.12 rejects one beside flows that reload).
    """
    loaded = _subentries_of(entry)

    @callback
    def changed(change: ConfigEntryChange, changed_entry: ConfigEntry) -> None:
        if (
            change is ConfigEntryChange.UPDATED
            and changed_entry.entry_id == entry.entry_id
            and changed_entry.state is ConfigEntryState.LOADED
            and _subentries_of(changed_entry) != loaded
        ):
            hass.config_entries.async_schedule_reload(entry.entry_id)

    return async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, changed)


async def async_unload_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> None:
    """Remove the entry's repair issues and stored data with the entry."""
    await async_remove_deleted_devices(hass, entry.entry_id)
    for subentry_id in entry.subentries:
        for issue in (ISSUE_APPLICATION_KEY_REJECTED, ISSUE_MQTT_NOT_SET_UP):
            async_delete_issue(hass, f"{issue}_{subentry_id}")
        async_delete_issue(hass, storage_issue_id(subentry_id))
    await CatchUpStore(hass, entry.entry_id).async_remove()
    async_delete_issue(hass, silent_issue_id(entry.entry_id))
    for issue in (
        ISSUE_MISSING_GATEWAY_RIGHTS,
        ISSUE_NO_EVENT_RIGHTS,
        ISSUE_MQTT_NOT_SET_UP,
        ISSUE_END_DEVICE_CAP,
        ISSUE_END_DEVICE_ENTITY_CAP,
    ):
        async_delete_issue(hass, f"{issue}_{entry.entry_id}")


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: TTSConfigEntry, device_entry: DeviceEntry
) -> bool:
    """Let the user delete end devices; they come back when they send again.

    Gateways follow the account and the options, so they cannot be deleted.
    """
    if not is_end_device(account_id(entry), device_entry):
        return False
    if entry.state is ConfigEntryState.LOADED:
        entry.runtime_data.end_devices.async_forget(device_entry)
    return True
