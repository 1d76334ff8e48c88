"""End devices' positions as device trackers: which devices get one, and what it shows."""

from __future__ import annotations

import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.ttn_gateway.diagnostics import (
    async_get_config_entry_diagnostics,
)

from .fake_tts import FakeTTS
from .test_end_devices import LPP_PAYLOAD, START, _send, _setup
from .uplinks import LPP_NODE, topic, uplink

FEATHER_TRACKER = "device_tracker.feather_m0_1"


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> MockConfigEntry:
    """The integration set up with HA's MQTT integration, at a fixed time."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    return await _setup(hass, mock_config_entry)


def _position(hass: HomeAssistant, entity_id: str) -> dict[str, Any]:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return dict(state.attributes)


async def test_cayenne_gps_gives_a_tracker(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """An LPP GPS record places the device; a device without one has no tracker."""
    await _send(hass, uplink(f_cnt=1))
    assert hass.states.get(FEATHER_TRACKER) is None
    await _send(
        hass,
        uplink(device_id=LPP_NODE, f_port=2, payload=LPP_PAYLOAD),
        on=topic(device_id=LPP_NODE),
    )
    state = hass.states.get("device_tracker.lpp_node")
    assert state is not None
    assert state.state == "not_home"
    assert state.attributes["latitude"] == 42.3519
    assert state.attributes["longitude"] == -87.9094
    assert state.attributes["source_type"] == "gps"
    assert state.attributes["gps_accuracy"] == 0
    assert state.attributes["friendly_name"] == LPP_NODE
    assert "battery_level" not in state.attributes


async def test_formatter_fields_and_no_fix(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """lat/lng fields place the device; 0, 0 (no fix) keeps the last position."""
    await _send(hass, uplink(decoded={"lat": 52.1, "lng": 4.3, "accuracy": 8}))
    position = _position(hass, FEATHER_TRACKER)
    assert (position["latitude"], position["longitude"]) == (52.1, 4.3)
    assert position["gps_accuracy"] == 8
    await _send(hass, uplink(f_cnt=2, decoded={"latitude": 0, "longitude": 0}))
    position = _position(hass, FEATHER_TRACKER)
    assert (position["latitude"], position["longitude"]) == (52.1, 4.3)
    await _send(hass, uplink(f_cnt=3, decoded={"latitude": 95.0, "longitude": 4.0}))
    assert _position(hass, FEATHER_TRACKER)["latitude"] == 52.1
    await _send(hass, uplink(f_cnt=4, decoded={"latitude": -33.9, "longitude": 151.2}))
    position = _position(hass, FEATHER_TRACKER)
    assert (position["latitude"], position["longitude"]) == (-33.9, 151.2)


async def test_tts_locations_and_no_coordinates_in_diagnostics(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """TTS's locations place a device whose payload does not; not in diagnostics."""
    await _send(
        hass,
        uplink(
            locations={
                "user": {"latitude": 48.137, "longitude": 11.575},
                "frm-payload": {
                    "latitude": 50.9375,
                    "longitude": 6.9603,
                    "accuracy": 12,
                    "source": "SOURCE_GPS",
                },
            }
        ),
    )
    position = _position(hass, FEATHER_TRACKER)
    assert (position["latitude"], position["longitude"]) == (50.9375, 6.9603)
    assert position["gps_accuracy"] == 12
    text = json.dumps(
        await async_get_config_entry_diagnostics(hass, mqtt_entry), default=str
    )
    assert "50.9375" not in text
    assert "48.137" not in text


async def test_position_restored_after_restart(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The tracker comes back with its position before any uplink."""
    await _send(hass, uplink(decoded={"latitude": 52.1, "longitude": 4.3}))
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    position = _position(hass, FEATHER_TRACKER)
    assert (position["latitude"], position["longitude"]) == (52.1, 4.3)
    # The next position replaces it.
    await _send(hass, uplink(f_cnt=2, decoded={"latitude": 52.2, "longitude": 4.4}))
    assert _position(hass, FEATHER_TRACKER)["latitude"] == 52.2


async def test_tts_position_on_the_equator_and_the_prime_meridian(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """TTS leaves a zero coordinate out of its JSON (``pkg/jsonpb/ttn.go``): a
    position with one coordinate missing is on the equator or the meridian."""
    await _send(
        hass, uplink(locations={"frm-payload": {"longitude": 9.5, "altitude": 3}})
    )
    position = _position(hass, FEATHER_TRACKER)
    assert (position["latitude"], position["longitude"]) == (0.0, 9.5)
    await _send(hass, uplink(f_cnt=2, locations={"user": {"latitude": 51.48}}))
    position = _position(hass, FEATHER_TRACKER)
    assert (position["latitude"], position["longitude"]) == (51.48, 0.0)
    # Neither coordinate is no position: the last one stays.
    await _send(hass, uplink(f_cnt=3, locations={"user": {"altitude": 20}}))
    position = _position(hass, FEATHER_TRACKER)
    assert (position["latitude"], position["longitude"]) == (51.48, 0.0)
