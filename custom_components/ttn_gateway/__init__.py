"""The TTN Gateway integration: The Things Stack gateways in Home Assistant."""

from __future__ import annotations

from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import CONF_SERVER
from .coordinator import TTSConfigEntry, TTSCoordinator
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
    entry.runtime_data = coordinator
    entry.async_on_unload(coordinator.silence.async_attach())
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the platforms, so that the restored thresholds count.
    coordinator.silence.async_start()
    coordinator.event_streams = GatewayEventStreams(hass, entry, coordinator)
    await coordinator.event_streams.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
