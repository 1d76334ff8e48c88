"""The TTN Gateway integration: The Things Stack gateways in Home Assistant.

Data path: the coordinator's polls and the events streams feed the gateway
store; the entities and the silence monitor follow the store.
"""

from __future__ import annotations

from datetime import timedelta

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceEntry

from .const import (
    CONF_SERVER,
    CONF_SILENCE_THRESHOLD,
    DEFAULT_SILENCE_THRESHOLD,
    DOMAIN,
    ISSUE_END_DEVICE_CAP,
    ISSUE_END_DEVICE_ENTITY_CAP,
    ISSUE_MISSING_GATEWAY_RIGHTS,
    ISSUE_MQTT_NOT_SET_UP,
    ISSUE_NO_EVENT_RIGHTS,
)
from .coordinator import TTSCoordinator
from .end_devices import EndDeviceManager, is_end_device
from .runtime import TTSConfigEntry, TTSRuntimeData
from .silence import SilenceMonitor
from .store import GatewayStore
from .stream import GatewayEventStreams
from .tts import TTSClient, TTSServer

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.EVENT,
    Platform.NUMBER,
    Platform.SENSOR,
]


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
    end_devices = EndDeviceManager(hass, entry)
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
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the platforms, so that the restored thresholds count and new end
    # devices' entities can be added.
    entry.async_on_unload(silence.async_start())
    await streams.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> None:
    """Remove the entry's repair issues with the entry: nothing is left to fix."""
    for issue in (
        ISSUE_MISSING_GATEWAY_RIGHTS,
        ISSUE_NO_EVENT_RIGHTS,
        ISSUE_MQTT_NOT_SET_UP,
        ISSUE_END_DEVICE_CAP,
        ISSUE_END_DEVICE_ENTITY_CAP,
    ):
        ir.async_delete_issue(hass, DOMAIN, f"{issue}_{entry.entry_id}")


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: TTSConfigEntry, device_entry: DeviceEntry
) -> bool:
    """Let the user delete end devices; they come back when they send again.

    Gateways follow the account and the options, so they cannot be deleted.
    """
    if not is_end_device(entry.entry_id, device_entry):
        return False
    if entry.state is ConfigEntryState.LOADED:
        entry.runtime_data.end_devices.async_forget(device_entry)
    return True
