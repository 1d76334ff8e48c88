"""Coverage of end devices and TTN fair use, through the MQTT uplinks TTS sends."""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory

# Imported before freezegun freezes time (as in test_end_devices).
import homeassistant.components.mqtt.config_flow  # noqa: F401
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.ttn_gateway.const import CONF_SERVER, DOMAIN

from .fake_tts import API_KEY, GATEWAY_GARDEN, GATEWAY_ROOFTOP, FakeTTS
from .uplinks import APP, FEATHER, LPP_NODE, encode, timestamp, topic, uplink

START = "2025-11-07T09:00:00+00:00"
ROOFTOP = (GATEWAY_ROOFTOP, -90.0, 5.0)
GARDEN = (GATEWAY_GARDEN, -100.0, 2.0)
# TTS names traffic Packet Broker forwarded from another network this way
# (pkg/packetbroker: the gateway ID is "packetbroker").
PACKET_BROKER = ("packetbroker", -80.0, 6.0)

IN_REACH = "sensor.feather_m0_1_gateways_in_reach"
NO_FALLBACK = "binary_sensor.feather_m0_1_no_fallback_gateway"
ONLY_ROOFTOP = "sensor.rooftop_gateway_end_devices_only_this_gateway_hears"
ONLY_GARDEN = "sensor.kerlink_garden_end_devices_only_this_gateway_hears"
AIRTIME = "sensor.feather_m0_1_airtime_today"
DOWNLINKS = "sensor.feather_m0_1_downlinks_today"
FAIR_USE = "binary_sensor.feather_m0_1_fair_use_exceeded"


def _state(hass: HomeAssistant, entity_id: str) -> tuple[str, dict[str, Any]]:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state, dict(state.attributes)


async def _send(
    hass: HomeAssistant, message: dict[str, Any], device_id: str = FEATHER
) -> None:
    async_fire_mqtt_message(hass, topic(device_id=device_id), encode(message))
    await hass.async_block_till_done()


async def _tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta
) -> None:
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def _restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def _entry(server: str) -> MockConfigEntry:
    host = server.removeprefix("https://")
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id="01JTTNGATEWAYTESTENTRY0001",
        version=2,
        title=f"jdoe ({host})",
        unique_id=f"jdoe@{host}",
        data={CONF_SERVER: server, CONF_API_KEY: API_KEY},
    )


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    entity_registry_enabled_by_default: None,
) -> MockConfigEntry:
    """The integration on TTN eu1 with Home Assistant's MQTT, at a fixed time."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry


async def test_gateways_in_reach_count_every_gateway_of_every_uplink(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """All rx_metadata gateways of the last 24 h count, by name; 25 h ago not."""
    await _send(hass, uplink(f_cnt=1, gateways=(ROOFTOP,)))
    state, attributes = _state(hass, IN_REACH)
    assert state == "1"
    assert attributes["gateways"] == ["Rooftop gateway"]
    assert attributes["other_networks"] is False
    assert _state(hass, NO_FALLBACK)[0] == "on"
    assert _state(hass, ONLY_ROOFTOP)[1]["end_devices_only_here"] == [
        f"{APP}/{FEATHER}"
    ]

    # One hour later the garden gateway alone hears it: both are in reach.
    await _tick(hass, freezer, timedelta(hours=1))
    await _send(
        hass, uplink(f_cnt=2, gateways=(GARDEN, ("unmonitored-gw", -110.0, 1.0)))
    )
    state, attributes = _state(hass, IN_REACH)
    assert state == "3"
    assert attributes["gateways"] == [
        "Kerlink garden",
        "Rooftop gateway",
        "unmonitored-gw",
    ]
    assert _state(hass, NO_FALLBACK)[0] == "off"
    assert _state(hass, ONLY_ROOFTOP)[0] == "0"
    assert _state(hass, ONLY_GARDEN)[0] == "0"

    # 24.5 h after the first uplink the rooftop no longer counts: the device
    # moved to the garden (and an unmonitored gateway).
    await _tick(hass, freezer, timedelta(hours=23, minutes=30))
    state, attributes = _state(hass, IN_REACH)
    assert state == "2"
    assert attributes["gateways"] == ["Kerlink garden", "unmonitored-gw"]
    # Another hour: nothing heard it in the window.
    await _tick(hass, freezer, timedelta(hours=1))
    assert _state(hass, IN_REACH)[0] == "0"
    assert _state(hass, NO_FALLBACK)[0] == "unknown"


async def test_device_moving_between_gateways(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """A device heard only by the rooftop, then only by the garden, moves lists."""
    await _send(hass, uplink(f_cnt=1, gateways=(ROOFTOP,)))
    assert _state(hass, ONLY_ROOFTOP)[0] == "1"
    assert _state(hass, ONLY_GARDEN)[0] == "0"
    await _tick(hass, freezer, timedelta(hours=12))
    await _send(hass, uplink(f_cnt=2, gateways=(GARDEN,)))
    # Within 24 h both heard it: neither is its only gateway.
    assert _state(hass, ONLY_ROOFTOP)[0] == "0"
    assert _state(hass, ONLY_GARDEN)[0] == "0"
    await _tick(hass, freezer, timedelta(hours=12, seconds=1))
    assert _state(hass, ONLY_ROOFTOP)[0] == "0"
    state, attributes = _state(hass, ONLY_GARDEN)
    assert state == "1"
    assert attributes["end_devices_only_here"] == [f"{APP}/{FEATHER}"]
    assert _state(hass, NO_FALLBACK)[0] == "on"


async def test_packet_broker_is_another_network_not_a_fallback(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """Packet Broker traffic shows as other networks; it clears no problem."""
    await _send(hass, uplink(f_cnt=1, gateways=(ROOFTOP, PACKET_BROKER)))
    state, attributes = _state(hass, IN_REACH)
    assert state == "1"
    assert attributes["gateways"] == ["Rooftop gateway"]
    assert attributes["other_networks"] is True
    assert _state(hass, NO_FALLBACK)[0] == "on"
    assert _state(hass, ONLY_ROOFTOP)[0] == "1"
    # Heard through Packet Broker only: no own gateway at all.
    await _send(hass, uplink(device_id=LPP_NODE, gateways=(PACKET_BROKER,)), LPP_NODE)
    assert _state(hass, "sensor.lpp_node_gateways_in_reach")[0] == "0"
    assert _state(hass, "binary_sensor.lpp_node_no_fallback_gateway")[0] == "on"


async def test_coverage_restored_over_a_restart(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """What heard the devices survives a restart and still leaves after 24 h."""
    await _send(hass, uplink(f_cnt=1, gateways=(ROOFTOP, GARDEN)))
    await _send(hass, uplink(device_id=LPP_NODE, gateways=(ROOFTOP,)), LPP_NODE)
    await _restart(hass, entry)
    freezer.tick(timedelta(hours=1))
    assert _state(hass, IN_REACH)[0] == "2"
    assert _state(hass, NO_FALLBACK)[0] == "off"
    state, attributes = _state(hass, ONLY_ROOFTOP)
    assert state == "1"
    assert attributes["end_devices_only_here"] == [f"{APP}/{LPP_NODE}"]
    await _tick(hass, freezer, timedelta(hours=23))
    assert _state(hass, IN_REACH)[0] == "0"
    assert _state(hass, ONLY_ROOFTOP)[0] == "0"


async def test_only_here_list_is_bounded(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """At most 50 names, plus how many more."""
    for number in range(53):
        device_id = f"node-{number:02d}"
        await _send(hass, uplink(device_id=device_id, gateways=(ROOFTOP,)), device_id)
    state, attributes = _state(hass, ONLY_ROOFTOP)
    assert state == "53"
    assert len(attributes["end_devices_only_here"]) == 50
    assert attributes["end_devices_only_here_not_listed"] == 3


def _downlink_sent(f_cnt: int, at: str) -> str:
    # ApplicationUp with downlink_sent, as TTS publishes it on .../down/sent
    # (api/api.md ApplicationUp; pkg/applicationserver/io/mqtt topics).
    ids = {"device_id": FEATHER, "application_ids": {"application_id": APP}}
    return json.dumps(
        {
            "end_device_ids": ids,
            "received_at": at,
            "downlink_sent": {"f_port": 1, "f_cnt": f_cnt},
        }
    )


async def test_airtime_and_downlinks_today(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """The day's airtime and downlinks add up; over a limit is a problem."""
    for f_cnt in range(1, 11):
        await _send(hass, uplink(f_cnt=f_cnt, airtime="2.5s"))
    # A repeat of the last uplink used no airtime of its own.
    await _send(hass, uplink(f_cnt=10, airtime="2.5s"))
    assert float(_state(hass, AIRTIME)[0]) == 25.0
    assert _state(hass, FAIR_USE)[0] == "off"
    await _send(hass, uplink(f_cnt=11, airtime="5.5s"))
    state, attributes = _state(hass, FAIR_USE)
    assert state == "on"
    assert attributes["airtime_today"] == 30.5
    assert attributes["airtime_limit"] == 30.0

    down = f"v3/{APP}@ttn/devices/{FEATHER}/down/sent"
    for f_cnt in range(1, 12):
        async_fire_mqtt_message(hass, down, _downlink_sent(f_cnt, timestamp()))
    # The same event delivered twice counts once.
    async_fire_mqtt_message(hass, down, _downlink_sent(11, timestamp()))
    await hass.async_block_till_done()
    assert _state(hass, DOWNLINKS)[0] == "11"
    assert _state(hass, FAIR_USE)[1]["downlinks_today"] == 11


async def test_fair_use_resets_at_utc_midnight_and_survives_restarts(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Restored over a restart the same day, zero after 00:00 UTC."""
    for f_cnt in range(1, 4):
        await _send(hass, uplink(f_cnt=f_cnt, airtime="11s"))
    assert _state(hass, FAIR_USE)[0] == "on"
    await _restart(hass, entry)
    assert float(_state(hass, AIRTIME)[0]) == 33.0
    assert _state(hass, FAIR_USE)[0] == "on"
    # An uplink after the restart adds to the restored figure.
    await _send(hass, uplink(f_cnt=4, airtime="1s"))
    assert float(_state(hass, AIRTIME)[0]) == 34.0
    # START is 09:00 UTC: 15 h later is the next day.
    await _tick(hass, freezer, timedelta(hours=15))
    assert float(_state(hass, AIRTIME)[0]) == 0.0
    assert _state(hass, FAIR_USE)[0] == "off"
    # Yesterday's uplink arriving late does not count towards today.
    await _send(
        hass,
        uplink(
            f_cnt=3, airtime="11s", received_at=dt_util.utcnow() - timedelta(hours=2)
        ),
    )
    assert float(_state(hass, AIRTIME)[0]) == 0.0
    # A restart the next day does not bring yesterday back.
    await _restart(hass, entry)
    assert float(_state(hass, AIRTIME)[0]) == 0.0


@pytest.mark.parametrize(
    "server",
    ["https://tts.example.com", "https://acme.eu1.cloud.thethings.industries"],
)
async def test_no_fair_use_entities_off_the_things_network(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    entity_registry_enabled_by_default: None,
    server: str,
) -> None:
    """Self-hosted and TTS Cloud servers have no Fair Use Policy: no entities."""
    freezer.move_to(START)
    config_entry = _entry(server)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await _send(hass, uplink(f_cnt=1, gateways=(ROOFTOP,)))
    assert _state(hass, IN_REACH)[0] == "1"
    registry = er.async_get(hass)
    for entity_id in (AIRTIME, DOWNLINKS, FAIR_USE):
        assert hass.states.get(entity_id) is None
        assert registry.async_get(entity_id) is None


async def test_figures_disabled_by_default_problems_enabled(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Airtime and downlinks today are diagnostic and disabled by default."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await _send(hass, uplink(f_cnt=1, gateways=(ROOFTOP,)))
    registry = er.async_get(hass)
    for entity_id in (AIRTIME, DOWNLINKS):
        registry_entry = registry.async_get(entity_id)
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    for entity_id in (IN_REACH, NO_FALLBACK, FAIR_USE, ONLY_ROOFTOP):
        assert hass.states.get(entity_id) is not None, entity_id
