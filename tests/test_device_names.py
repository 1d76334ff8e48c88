"""Manufacturer and model names from the Device Repository that TTS serves."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.ttn_gateway.const import DOMAIN

from .common import async_poll
from .compat import device_by_identifier
from .fake_tts import GATEWAY_ROOFTOP, FakeTTS
from .uplinks import APP, FEATHER, encode, topic, uplink

DR = "device_repository"


def _rooftop(
    device_registry: dr.DeviceRegistry, entry: MockConfigEntry
) -> tuple[str | None, str | None]:
    device = device_by_identifier(
        device_registry,
        (DOMAIN, f"{entry.unique_id}/gateway/{GATEWAY_ROOFTOP}"),
        entry.entry_id,
    )
    assert device is not None
    return device.manufacturer, device.model


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_gateway_named_by_device_repository(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The brand's name; a model the repository lacks keeps its id; asked once."""
    await _setup(hass, mock_config_entry)
    assert _rooftop(device_registry, mock_config_entry) == (
        "RAKwireless Technology Co.",
        "rak7248",
    )
    asked = [url for name, url in fake_tts.requests if name == DR]
    assert any(
        "/dr/brands/rakwireless?" in url and "field_mask=name" in url for url in asked
    )
    assert any("/dr/brands/rakwireless/models/rak7248?" in url for url in asked)
    # KERLINK's gateway has no version ids: nothing else is asked.
    assert len(asked) == 2
    for _ in range(3):
        await async_poll(hass, freezer)
    assert fake_tts.count(DR) == 2


async def test_failed_lookup_keeps_id_and_retries(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """TTS failing: setup goes on with the ids; an hour later the name comes."""
    fake_tts.fail(DR, 500, times=2)
    await _setup(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert _rooftop(device_registry, mock_config_entry) == ("rakwireless", "rak7248")

    await async_poll(hass, freezer)
    assert fake_tts.count(DR) == 2
    await async_poll(hass, freezer, seconds=3600)
    assert fake_tts.count(DR) == 4
    assert _rooftop(device_registry, mock_config_entry) == (
        "RAKwireless Technology Co.",
        "rak7248",
    )


async def test_end_device_model_named(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An uplink's version ids: the model's name; a brand TTS lacks keeps its id."""
    freezer.move_to("2025-11-07T09:00:00+00:00")
    await _setup(hass, mock_config_entry)
    message = uplink(version_ids={"brand_id": "elsys", "model_id": "ers"})
    async_fire_mqtt_message(hass, topic(), encode(message))
    await hass.async_block_till_done(wait_background_tasks=True)
    device = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mock_config_entry.unique_id}/device/{APP}/{FEATHER}"),
        mock_config_entry.entry_id,
    )
    assert device is not None
    assert (device.manufacturer, device.model) == ("elsys", "ERS smart building sensor")
