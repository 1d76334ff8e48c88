"""The TTN Gateway integration: The Things Stack gateways in Home Assistant."""

from __future__ import annotations

from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import CONF_SERVER
from .coordinator import TTSConfigEntry, TTSCoordinator
from .tts import TTSClient, TTSServer

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]


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
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
