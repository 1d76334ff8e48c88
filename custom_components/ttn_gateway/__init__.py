"""The TTN Gateway integration: The Things Stack gateways in Home Assistant."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceEntry

from .const import (
    CONF_SERVER,
    DOMAIN,
    ISSUE_MISSING_GATEWAY_RIGHTS,
    ISSUE_MQTT_NOT_SET_UP,
)
from .coordinator import TTSConfigEntry, TTSCoordinator, TTSRuntimeData
from .end_devices import EndDeviceManager, is_end_device
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
    coordinator = TTSCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    end_devices = EndDeviceManager(hass, entry)
    end_devices.async_load_known_devices()
    entry.async_on_unload(end_devices.async_stop)
    await end_devices.async_setup()
    entry.runtime_data = TTSRuntimeData(
        coordinator=coordinator, end_devices=end_devices
    )
    entry.async_on_unload(coordinator.silence.async_attach())
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the platforms, so that the restored thresholds count and new end
    # devices' entities can be added.
    coordinator.silence.async_start()
    coordinator.event_streams = GatewayEventStreams(hass, entry, coordinator)
    await coordinator.event_streams.async_start()
    await end_devices.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> None:
    """Remove the entry's repair issues with the entry: nothing is left to fix."""
    for issue in (ISSUE_MISSING_GATEWAY_RIGHTS, ISSUE_MQTT_NOT_SET_UP):
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
