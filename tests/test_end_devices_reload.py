"""End devices on HA's MQTT while MQTT and the account reload at the same time."""

from __future__ import annotations

from collections import Counter
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntries
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from .fake_tts import FakeTTS
from .uplinks import encode, topic, uplink

START = "2025-11-07T09:00:00+00:00"


def _send(hass: HomeAssistant, f_cnt: int, value: int) -> None:
    """An uplink of the Feather on the application's MQTT topic."""
    payload = encode(uplink(f_cnt=f_cnt, payload=bytes([value])))
    async_fire_mqtt_message(hass, topic(), payload)


def _end_device_entities(
    entity_registry: er.EntityRegistry, entry: MockConfigEntry
) -> list[er.RegistryEntry]:
    return [
        entity
        for entity in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
        if "/device/" in entity.unique_id
    ]


# HA's MQTT client, reloaded here, leaves its housekeeping timer behind.
@pytest.mark.parametrize(
    ("mqtt_reloads", "expected_lingering_timers"), [(False, False), (True, True)]
)
@pytest.mark.parametrize("during", ["unload", "setup"])
async def test_uplink_while_the_account_reloads(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
    during: str,
    mqtt_reloads: bool,
) -> None:
    """Uplinks go on while the account reloads: one entity each, all available.

    MQTT keeps delivering while the account's entry unloads its platforms
    and sets them up again; with mqtt_reloads, MQTT's entry reloads at that
    moment too and the account subscribes again by itself.
    """
    (mqtt_entry,) = hass.config_entries.async_entries("mqtt")
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    _send(hass, 1, 1)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.feather_m0_1_value").state == "1"
    before = len(_end_device_entities(entity_registry, mock_config_entry))

    real_unload = ConfigEntries.async_unload_platforms
    real_forward = ConfigEntries.async_forward_entry_setups

    async def meanwhile(moment: str, entry: Any) -> None:
        if moment != during or entry is not mock_config_entry:
            return
        if mqtt_reloads:
            assert await hass.config_entries.async_reload(mqtt_entry.entry_id)
        _send(hass, 2, 2)
        await hass.async_block_till_done()

    async def unload(self: ConfigEntries, entry: Any, platforms: Any) -> bool:
        unloaded = await real_unload(self, entry, platforms)
        await meanwhile("unload", entry)
        return unloaded

    async def forward(self: ConfigEntries, entry: Any, platforms: Any) -> None:
        await meanwhile("setup", entry)
        await real_forward(self, entry, platforms)

    caplog.set_level(logging.ERROR)
    with (
        patch.object(ConfigEntries, "async_unload_platforms", unload),
        patch.object(ConfigEntries, "async_forward_entry_setups", forward),
    ):
        assert await hass.config_entries.async_reload(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    _send(hass, 3, 3)
    await hass.async_block_till_done()

    entities = _end_device_entities(entity_registry, mock_config_entry)
    assert len(entities) == before
    assert not [
        unique_id
        for unique_id, count in Counter(e.unique_id for e in entities).items()
        if count > 1
    ]
    for entity in entities:
        if entity.disabled:
            continue
        state = hass.states.get(entity.entity_id)
        assert state is not None, entity.entity_id
        assert state.state != STATE_UNAVAILABLE, entity.entity_id
    assert hass.states.get("sensor.feather_m0_1_value").state == "3"
    assert "does not generate unique IDs" not in caplog.text
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
