"""End devices over MQTT, as a user sees them: devices, states, options, faults."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.mqtt import MQTT_CONNECTION_STATE

# Imported before time is frozen: the supervisor models it pulls in cannot be
# imported under freezegun.
import homeassistant.components.mqtt.config_flow  # noqa: F401
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.const import (
    CONF_API_KEY,
    EVENT_HOMEASSISTANT_STOP,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import (
    MqttMockHAClient,
    WebSocketGenerator,
)

from custom_components.ttn_gateway.const import (
    CONF_APPLICATION_ID,
    CONF_APPLICATIONS,
    CONF_DECODERS,
    CONF_END_DEVICE_SILENCE_THRESHOLD,
    CONF_MAX_END_DEVICES,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DOMAIN,
    SUBENTRY_APPLICATION,
    TRANSPORT_DIRECT,
    TRANSPORT_MQTT,
)
from custom_components.ttn_gateway.diagnostics import end_device_diagnostics
from custom_components.ttn_gateway.end_devices.applications import subentry_for

from .common import async_poll
from .compat import device_by_identifier, device_config_entry_id
from .fake_app_mqtt import serving
from .fake_tts import API_KEY, GATEWAY_ROOFTOP, SERVER_URL, FakeTTS, load_json
from .uplinks import (
    APP,
    FEATHER,
    FORMATTER_APP,
    FORMATTER_NODE,
    LPP_NODE,
    encode,
    timestamp,
    topic,
    uplink,
)

START = "2025-11-07T09:00:00+00:00"
LOGGER_NAME = "custom_components.ttn_gateway"
# Cayenne LPP: temperature 27.2 °C on channel 3, humidity 48.5 % on channel 7,
# presence on channel 6, GPS on channel 1 (the spec's example).
LPP_PAYLOAD = bytes.fromhex("03670110076861066601018806765ff2960a0003e8")


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def _setup(
    hass: HomeAssistant, entry: MockConfigEntry, **options: Any
) -> MockConfigEntry:
    if options:
        hass.config_entries.async_update_entry(entry, options=options)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _send(
    hass: HomeAssistant, message: dict[str, Any] | str | bytes, **kw: str
) -> None:
    payload = message if isinstance(message, str | bytes) else encode(message)
    async_fire_mqtt_message(hass, kw.get("on", topic()), payload)
    await hass.async_block_till_done()


def _mqtt_config_entry(hass: HomeAssistant) -> MockConfigEntry:
    """An entry of HA's MQTT integration (the test harness mocks the client).

    On MQTT protocol 5, as the harness's own MQTT entry: with an older one,
    Home Assistant 2026 tries a real connection to the broker at setup and
    waits 5 s for it (mqtt/__init__.py async_setup_entry, try_connection).
    """
    entry = MockConfigEntry(
        domain="mqtt",
        data={"broker": "mock-broker", "protocol": "5"},
        options={"birth_message": {}},
        version=1,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    entity_registry_enabled_by_default: None,
) -> MockConfigEntry:
    """The integration set up with HA's MQTT integration, at a fixed time.

    Radio figures, disabled by default, are enabled here to be checked.
    """
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    return await _setup(hass, mock_config_entry)


def _subentry_id(entry: MockConfigEntry) -> str:
    """The application sub-entry that a version 2 entry migrates to."""
    (subentry_id,) = entry.subentries
    return subentry_id


def _diagnostics(entry: MockConfigEntry) -> dict[str, Any]:
    return end_device_diagnostics(entry.runtime_data.end_devices)


async def test_feather_appears_on_first_uplink(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    mqtt_mock: MqttMockHAClient,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The seed sketch's byte becomes a device with its value and radio figures."""
    assert hass.states.get("sensor.feather_m0_1_value") is None

    await _send(
        hass,
        uplink(
            payload=b"\x2a",
            f_cnt=17,
            gateways=(("garden", -112.0, -3.25), ("rooftop", -97.0, 7.5)),
            spreading_factor=9,
            frequency="867500000",
            airtime="0.185344s",
        ),
    )

    value = hass.states.get("sensor.feather_m0_1_value")
    assert value is not None
    assert value.state == "42"
    assert value.attributes["state_class"] == "measurement"
    assert value.attributes["friendly_name"] == "feather-m0-1 Value"
    rssi = hass.states.get("sensor.feather_m0_1_rssi")
    assert rssi.state == "-97.0"
    assert rssi.attributes["unit_of_measurement"] == "dBm"
    assert rssi.attributes["device_class"] == "signal_strength"
    assert _state(hass, "sensor.feather_m0_1_snr") == "7.5"
    assert _state(hass, "sensor.feather_m0_1_spreading_factor") == "9"
    frequency = hass.states.get("sensor.feather_m0_1_frequency")
    assert frequency.state == "867.5"
    assert frequency.attributes["unit_of_measurement"] == "MHz"
    assert _state(hass, "sensor.feather_m0_1_frame_counter") == "17"
    assert _state(hass, "sensor.feather_m0_1_gateways") == "2"
    airtime = hass.states.get("sensor.feather_m0_1_airtime")
    assert airtime.state == "185.344"
    assert airtime.attributes["unit_of_measurement"] == "ms"
    assert _state(hass, "sensor.feather_m0_1_last_seen") == START
    silent = hass.states.get("binary_sensor.feather_m0_1_silent")
    assert silent.state == STATE_OFF
    assert silent.attributes["device_class"] == "problem"
    assert silent.attributes["friendly_name"] == "feather-m0-1 Silent"
    # One uplink: the interval is unknown, silent after an hour.
    assert silent.attributes["threshold"] == 60

    device = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{APP}/{FEATHER}"),
        mqtt_entry.entry_id,
    )
    assert device is not None
    assert device.name == FEATHER
    assert device.serial_number == "70B3D57ED005A1B2"
    assert device.configuration_url == (
        "https://eu1.cloud.thethings.network/console/applications/"
        f"{APP}/devices/{FEATHER}"
    )
    assert device_config_entry_id(device) == mqtt_entry.entry_id

    # Gateway monitoring is untouched.
    assert _state(hass, "binary_sensor.rooftop_gateway_connectivity") == STATE_ON


async def test_values_follow_uplinks_and_unchanged_states_are_not_written(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """A new uplink updates what changed and leaves the rest alone."""
    await _send(hass, uplink(payload=b"\x01", f_cnt=1))
    sf_before = hass.states.get("sensor.feather_m0_1_spreading_factor")
    freezer.tick(timedelta(minutes=10))
    await _send(hass, uplink(payload=b"\xff", f_cnt=2))
    assert _state(hass, "sensor.feather_m0_1_value") == "255"
    assert _state(hass, "sensor.feather_m0_1_frame_counter") == "2"
    assert _state(hass, "sensor.feather_m0_1_last_seen") == "2025-11-07T09:10:00+00:00"
    sf_after = hass.states.get("sensor.feather_m0_1_spreading_factor")
    assert sf_after.last_reported == sf_before.last_reported


async def test_cayenne_lpp_device(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """Each LPP channel becomes a sensor with its device class and unit."""
    await _send(
        hass,
        uplink(device_id=LPP_NODE, f_port=2, payload=LPP_PAYLOAD),
        on=topic(device_id=LPP_NODE),
    )
    temperature = hass.states.get("sensor.lpp_node_temperature_3")
    assert temperature.state == "27.2"
    assert temperature.attributes["device_class"] == "temperature"
    assert temperature.attributes["unit_of_measurement"] == "°C"
    humidity = hass.states.get("sensor.lpp_node_humidity_7")
    assert humidity.state == "48.5"
    assert humidity.attributes["unit_of_measurement"] == "%"
    presence = hass.states.get("binary_sensor.lpp_node_presence_6")
    assert presence.state == STATE_ON
    assert presence.attributes["device_class"] == "occupancy"
    assert _state(hass, "sensor.lpp_node_latitude_1") == "42.3519"
    assert _state(hass, "sensor.lpp_node_longitude_1") == "-87.9094"
    altitude = hass.states.get("sensor.lpp_node_altitude_1")
    assert altitude.state == "10.0"
    assert altitude.attributes["unit_of_measurement"] == "m"

    # A later uplink with only some channels keeps the others.
    await _send(
        hass,
        uplink(
            device_id=LPP_NODE, f_port=2, f_cnt=2, payload=bytes.fromhex("0367FFD7")
        ),
        on=topic(device_id=LPP_NODE),
    )
    assert _state(hass, "sensor.lpp_node_temperature_3") == "-4.1"
    assert _state(hass, "sensor.lpp_node_humidity_7") == "48.5"


async def test_payload_formatter_device(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The recorded TTN uplink: the formatter's fields become named sensors."""
    message = load_json("mqtt-uplink.json")
    freezer.move_to("2025-11-07T08:52:15+00:00")
    message["uplink_message"]["decoded_payload"]["Heater"] = {"On": True}
    await _send(hass, message, on=topic(FORMATTER_APP, FORMATTER_NODE))

    prefix = "sensor.rs261_erik_internal"
    temperature = hass.states.get(f"{prefix}_temperature")
    assert temperature.state == "21.83"
    assert temperature.attributes["unit_of_measurement"] == "°C"
    assert temperature.attributes["device_class"] == "temperature"
    battery = hass.states.get(f"{prefix}_battery_status")
    assert battery.state == "Good"
    assert battery.attributes["friendly_name"] == "rs261-erik-internal Battery Status"
    assert _state(hass, f"{prefix}_device_status_sensor_fault") == "No"
    heater = hass.states.get("binary_sensor.rs261_erik_internal_heater_on")
    assert heater.state == STATE_ON
    assert _state(hass, f"{prefix}_last_seen") == "2025-11-07T08:52:14+00:00"
    assert _state(hass, f"{prefix}_rssi") == "-69.0"
    assert _state(hass, f"{prefix}_snr") == "8.25"

    device = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{FORMATTER_APP}/{FORMATTER_NODE}"),
        mqtt_entry.entry_id,
    )
    assert device.manufacturer == "ezurio"
    assert device.model == "rs26x-int-temp-sensor"
    assert device.hw_version == "rev 1"
    assert device.sw_version == "1.0.2+1748617279"
    assert device.serial_number == "0025CA00000017C2"


async def test_auto_falls_back_to_raw(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """Bytes no decoder understands are shown as hex (a diagnostic sensor)."""
    await _send(hass, uplink(f_port=5, payload=b"\xde\xad\xbe\xef"))
    assert _state(hass, "sensor.feather_m0_1_payload") == "DEADBEEF"
    entry = entity_registry.async_get("sensor.feather_m0_1_payload")
    assert entry.entity_category is er.EntityCategory.DIAGNOSTIC
    assert hass.states.get("sensor.feather_m0_1_value") is None


async def test_model_added_when_uplinks_bring_it(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """A device registered before TTS knew its model gets it later."""
    await _send(hass, uplink(f_cnt=1))
    await _send(
        hass,
        uplink(
            f_cnt=2,
            version_ids={"brand_id": "adafruit", "model_id": "feather-m0-lora"},
        ),
    )
    device = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{APP}/{FEATHER}"),
        mqtt_entry.entry_id,
    )
    assert device.manufacturer == "Adafruit Industries"  # the Device Repository's name
    assert device.model == "feather-m0-lora"


async def test_repeated_uplink_counted_once(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """The same frame counter and payload again is a repeat, not a new uplink."""
    message = uplink(f_cnt=7, payload=b"\x10")
    await _send(hass, message)
    before = hass.states.get("sensor.feather_m0_1_last_seen")
    freezer.tick(timedelta(seconds=30))
    message["uplink_message"]["received_at"] = timestamp()
    await _send(hass, message)
    assert hass.states.get("sensor.feather_m0_1_last_seen") == before
    counters = _diagnostics(mqtt_entry)["messages"]
    assert counters["uplinks"] == 1
    assert counters["repeats"] == 1

    # Simulated uplinks (Console) are never repeats; a new counter is new.
    await _send(hass, uplink(f_cnt=7, payload=b"\x10", simulated=True))
    await _send(hass, uplink(f_cnt=8, payload=b"\x10"))
    assert _diagnostics(mqtt_entry)["messages"]["uplinks"] == 3
    assert _state(hass, "sensor.feather_m0_1_frame_counter") == "8"


async def test_other_message_types_ignored(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Joins and downlink events on the topic are ignored without a word."""
    ids = uplink()["end_device_ids"]
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    caplog.clear()
    await _send(
        hass, {"end_device_ids": ids, "join_accept": {"session_key_id": "AQ=="}}
    )
    await _send(
        hass,
        {
            "end_device_ids": ids,
            "downlink_queued": {"f_port": 1, "frm_payload": "AQ=="},
        },
    )
    assert not [r for r in caplog.records if r.name == LOGGER_NAME]
    assert _diagnostics(mqtt_entry)["messages"]["ignored"] == 2
    assert not [
        device
        for device in dr.async_entries_for_config_entry(
            device_registry, mqtt_entry.entry_id
        )
        if device.name == FEATHER
    ]


GARBAGE: list[tuple[str | bytes, str]] = [
    ("not json at all", "not JSON"),
    (b"\xff\xfe\x00binary", "not JSON"),
    ("[1, 2, 3]", "the message is not a JSON object"),
    ('{"uplink_message": {}}', "end_device_ids is not an object"),
    (
        encode(
            {
                **uplink(),
                "end_device_ids": {
                    "device_id": "X",
                    "application_ids": {"application_id": APP},
                },
            }
        ),
        "an end device or application ID is not a TTS identifier",
    ),
    (
        encode({**uplink(), "uplink_message": "up"}),
        "uplink_message is not an object",
    ),
    (encode({"end_device_ids": uplink()["end_device_ids"]}), "the message has no"),
    ("x" * 1_000_001, "message larger than"),
]


def _mutated(path: tuple[str, ...], value: Any) -> str:
    message = uplink()
    target = message
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return encode(message)


GARBAGE += [
    (
        _mutated(("uplink_message", "frm_payload"), "not base64!"),
        "frm_payload is not base64",
    ),
    (_mutated(("uplink_message", "frm_payload"), 42), "frm_payload is not a string"),
    (
        _mutated(("uplink_message", "frm_payload"), "QUFB" * 200),
        "frm_payload is longer",
    ),
    (_mutated(("uplink_message", "f_port"), "1"), "f_port is not an integer"),
    (_mutated(("uplink_message", "f_cnt"), -1), "f_cnt is not an integer"),
    (
        _mutated(("uplink_message", "decoded_payload"), [1]),
        "decoded_payload is not an object",
    ),
    (_mutated(("uplink_message", "rx_metadata"), {}), "rx_metadata is not a list"),
]


async def test_garbage_dropped_and_counted(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each bad message is dropped with one debug line; good ones go through."""
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    await _send(hass, uplink(f_cnt=1, payload=b"\x01"))
    for number, (payload, reason) in enumerate(GARBAGE, start=2):
        caplog.clear()
        await _send(hass, payload)
        lines = [r for r in caplog.records if r.name == LOGGER_NAME]
        assert len(lines) == 1, (reason, caplog.text)
        assert lines[0].levelno == logging.DEBUG
        assert reason in lines[0].getMessage()
        await _send(hass, uplink(f_cnt=number, payload=bytes([number])))
        assert _state(hass, "sensor.feather_m0_1_value") == str(number)
    counters = _diagnostics(mqtt_entry)["messages"]
    assert counters["dropped"] == len(GARBAGE)
    assert counters["uplinks"] == len(GARBAGE) + 1
    assert counters["drop_reasons"]["not JSON"] == 2


async def test_unexpected_error_is_contained(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug while handling one uplink is logged; the next uplink still works."""
    manager = mqtt_entry.runtime_data.end_devices

    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(manager.intake, "_update_info", broken)
    await _send(hass, uplink(f_cnt=1))
    assert "Error handling an uplink" in caplog.text
    monkeypatch.undo()
    await _send(hass, uplink(f_cnt=2, payload=b"\x07"))
    assert _state(hass, "sensor.feather_m0_1_value") == "7"
    assert _diagnostics(mqtt_entry)["messages"]["drop_reasons"] == {"error": 1}


async def test_bridged_topic_prefix(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """With a Mosquitto bridge the uplinks arrive under a prefix."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    await _setup(
        hass, mock_config_entry, **{CONF_UPLINK_TOPIC: "ttn/v3/+/devices/+/up"}
    )
    await _send(hass, uplink(f_cnt=1, payload=b"\x05"), on=topic())
    assert hass.states.get("sensor.feather_m0_1_value") is None
    await _send(hass, uplink(f_cnt=2, payload=b"\x06"), on=topic(prefix="ttn/"))
    assert _state(hass, "sensor.feather_m0_1_value") == "6"


async def test_silence_threshold_from_interval(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Silent after three uplink intervals without one, not at the next."""
    silent = "binary_sensor.feather_m0_1_silent"
    for f_cnt in (1, 2, 3):
        if f_cnt > 1:
            freezer.tick(timedelta(minutes=10))
        await _send(hass, uplink(f_cnt=f_cnt))
    assert _state(hass, silent) == STATE_OFF
    assert hass.states.get(silent).attributes["threshold"] == 30

    freezer.tick(timedelta(minutes=29))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _state(hass, silent) == STATE_OFF

    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _state(hass, silent) == STATE_ON

    await _send(hass, uplink(f_cnt=4))
    assert _state(hass, silent) == STATE_OFF


async def test_silence_threshold_minimum(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Devices sending every 2 minutes still get 15 minutes of silence."""
    silent = "binary_sensor.feather_m0_1_silent"
    for f_cnt in (1, 2, 3):
        if f_cnt > 1:
            freezer.tick(timedelta(minutes=2))
        await _send(hass, uplink(f_cnt=f_cnt))
    freezer.tick(timedelta(minutes=14))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _state(hass, silent) == STATE_OFF
    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _state(hass, silent) == STATE_ON


async def test_silence_threshold_unknown_interval(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """After a single uplink the device is silent after an hour."""
    silent = "binary_sensor.feather_m0_1_silent"
    await _send(hass, uplink(f_cnt=1))
    freezer.tick(timedelta(minutes=59))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _state(hass, silent) == STATE_OFF
    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _state(hass, silent) == STATE_ON


async def test_silence_threshold_option(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A threshold set in the options applies to every device."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    await _setup(hass, mock_config_entry, **{CONF_END_DEVICE_SILENCE_THRESHOLD: 5})
    await _send(hass, uplink(f_cnt=1))
    freezer.tick(timedelta(minutes=5, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    silent = hass.states.get("binary_sensor.feather_m0_1_silent")
    assert (silent.state, silent.attributes["threshold"]) == (STATE_ON, 5)
    assert _diagnostics(mock_config_entry)["silence_threshold_minutes"] == 5


async def test_offline_threshold_of_an_earlier_version_still_applies(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The option saved as offline_threshold becomes the silence threshold."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    await _setup(hass, mock_config_entry, offline_threshold=5)
    assert mock_config_entry.options == {CONF_END_DEVICE_SILENCE_THRESHOLD: 5}
    await _send(hass, uplink(f_cnt=1))
    freezer.tick(timedelta(minutes=5, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _state(hass, "binary_sensor.feather_m0_1_silent") == STATE_ON
    assert _diagnostics(mock_config_entry)["silence_threshold_minutes"] == 5


async def test_restore_after_restart(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    mqtt_mock: MqttMockHAClient,
) -> None:
    """Known devices and their last values come back before any uplink."""
    for f_cnt in (1, 2):
        if f_cnt > 1:
            freezer.tick(timedelta(minutes=20))
        await _send(hass, uplink(f_cnt=f_cnt, payload=bytes([f_cnt * 10])))
    await _send(
        hass,
        uplink(device_id=LPP_NODE, f_port=2, payload=LPP_PAYLOAD),
        on=topic(device_id=LPP_NODE),
    )
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, "sensor.feather_m0_1_value") == STATE_UNAVAILABLE

    freezer.tick(timedelta(minutes=30))
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, "sensor.feather_m0_1_value") == "20"
    assert _state(hass, "sensor.feather_m0_1_frame_counter") == "2"
    assert _state(hass, "sensor.feather_m0_1_rssi") == "-97.0"
    assert _state(hass, "sensor.feather_m0_1_last_seen") == "2025-11-07T09:20:00+00:00"
    assert _state(hass, "sensor.lpp_node_temperature_3") == "27.2"
    assert _state(hass, "binary_sensor.lpp_node_presence_6") == STATE_ON
    # The attributes of the latest uplink come back with the values.
    best = hass.states.get("sensor.feather_m0_1_best_gateway")
    assert best is not None
    assert (best.state, best.attributes["rssi"], best.attributes["gateway_count"]) == (
        "rooftop",
        -97.0,
        1,
    )
    decoder = hass.states.get("sensor.feather_m0_1_decoder")
    assert decoder is not None
    assert decoder.attributes["formatter_failed"] is False
    # The interval (20 min) survives too: silent 60 min after the last uplink.
    silent = "binary_sensor.feather_m0_1_silent"
    assert _state(hass, silent) == STATE_OFF
    freezer.tick(timedelta(minutes=30, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _state(hass, silent) == STATE_ON

    await _send(hass, uplink(f_cnt=3, payload=b"\x1e"))
    assert _state(hass, "sensor.feather_m0_1_value") == "30"
    assert _state(hass, silent) == STATE_OFF


# HA's MQTT client, set up by hand here, leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_mqtt_missing_raises_repair_issue(
    hass: HomeAssistant,
    mock_hass_config: None,
    mqtt_client_mock: Any,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Without MQTT: a repair issue, gateways still work; MQTT later: uplinks."""
    mock_config_entry.add_to_hass(hass)
    # An end device from before MQTT went: there is something to keep.
    dr.async_get(hass).async_get_or_create(
        config_entry_id=mock_config_entry.entry_id,
        identifiers={(DOMAIN, f"{mock_config_entry.unique_id}/device/app/sensor-1")},
        name="sensor-1",
    )
    await _setup(hass, mock_config_entry)
    issue_id = f"mqtt_not_set_up_{_subentry_id(mock_config_entry)}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders["topic"] == "v3/+/devices/+/up"
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert _state(hass, "binary_sensor.rooftop_gateway_connectivity") == STATE_ON
    assert _diagnostics(mock_config_entry)["receiving"] is False

    mqtt_entry = _mqtt_config_entry(hass)
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await _send(hass, uplink(payload=b"\x09"))
    assert _state(hass, "sensor.feather_m0_1_value") == "9"
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)


# HA's MQTT client, set up by hand here, leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_known_devices_unavailable_without_mqtt(
    hass: HomeAssistant,
    mock_hass_config: None,
    mqtt_client_mock: Any,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """If MQTT is gone at the next start, known end devices are unavailable."""
    mqtt_entry = _mqtt_config_entry(hass)
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    mock_config_entry.add_to_hass(hass)
    await _setup(hass, mock_config_entry)
    await _send(hass, uplink(payload=b"\x09"))
    assert _state(hass, "sensor.feather_m0_1_value") == "9"

    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert await hass.config_entries.async_remove(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    value = hass.states.get("sensor.feather_m0_1_value")
    assert value.state == STATE_UNAVAILABLE
    assert _state(hass, "binary_sensor.rooftop_gateway_connectivity") == STATE_ON
    assert issue_registry.async_get_issue(
        DOMAIN, f"mqtt_not_set_up_{_subentry_id(mock_config_entry)}"
    )


async def test_removing_the_application_removes_its_devices(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    mqtt_mock: MqttMockHAClient,
    device_registry: dr.DeviceRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Without the sub-entry: no subscription, no issue, no end devices."""
    await _send(hass, uplink())
    assert hass.config_entries.async_remove_subentry(
        mqtt_entry, _subentry_id(mqtt_entry)
    )
    await hass.async_block_till_done()
    assert mqtt_entry.state is ConfigEntryState.LOADED
    names = {
        device.name
        for device in dr.async_entries_for_config_entry(
            device_registry, mqtt_entry.entry_id
        )
    }
    assert FEATHER not in names
    assert "Rooftop gateway" in names
    assert not issue_registry.issues
    await _send(hass, uplink(f_cnt=2))
    assert hass.states.get("sensor.feather_m0_1_value") is None


async def test_decoder_option(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Choosing a decoder removes other decoders' entities and uses it."""
    await _send(hass, uplink(payload=b"\x2a"))
    assert _state(hass, "sensor.feather_m0_1_value") == "42"
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    hass.config_entries.async_update_entry(
        mqtt_entry, options={CONF_DECODERS: {f"{APP}/{FEATHER}": "raw"}}
    )
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert entity_registry.async_get("sensor.feather_m0_1_value") is None
    assert _state(hass, "sensor.feather_m0_1_rssi") == "-97.0"
    await _send(hass, uplink(f_cnt=2, payload=b"\x2a"))
    assert _state(hass, "sensor.feather_m0_1_payload") == "2A"


async def test_decoder_that_does_not_fit(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    entity_registry_enabled_by_default: None,
) -> None:
    """A chosen decoder that does not fit the payload: radio figures only."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    await _setup(
        hass, mock_config_entry, **{CONF_DECODERS: {f"{APP}/{FEATHER}": "cayenne_lpp"}}
    )
    await _send(hass, uplink(payload=b"\x2a"))
    assert hass.states.get("sensor.feather_m0_1_value") is None
    assert _state(hass, "sensor.feather_m0_1_frame_counter") == "1"
    assert _diagnostics(mock_config_entry)["messages"]["undecodable"] == 1


async def test_deleted_device_stays_deleted_until_it_sends(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """The user may delete end devices (not gateways); they return on uplink."""
    assert await async_setup_component(hass, "config", {})
    await _send(hass, uplink(payload=b"\x2a"))
    feather = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{APP}/{FEATHER}"),
        mqtt_entry.entry_id,
    )
    gateway = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/gateway/{GATEWAY_ROOFTOP}"),
        mqtt_entry.entry_id,
    )
    client = await hass_ws_client(hass)

    async def remove(device_id: str) -> dict[str, Any]:
        await client.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": mqtt_entry.entry_id,
                "device_id": device_id,
            }
        )
        return await client.receive_json()

    assert (await remove(gateway.id))["success"] is False
    assert (await remove(feather.id))["success"] is True
    await hass.async_block_till_done()
    assert hass.states.get("sensor.feather_m0_1_value") is None

    # Not back after a reload...
    assert await hass.config_entries.async_reload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.feather_m0_1_value") is None
    # ...but back with its next uplink.
    await _send(hass, uplink(f_cnt=2, payload=b"\x2b"))
    assert _state(hass, "sensor.feather_m0_1_value") == "43"


async def test_deleted_entity_returns_with_next_uplink(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """An entity the user deletes comes back when the device sends it again."""
    await _send(hass, uplink(payload=b"\x2a"))
    entity_registry.async_remove("sensor.feather_m0_1_value")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.feather_m0_1_value") is None
    await _send(hass, uplink(f_cnt=2, payload=b"\x2c"))
    assert _state(hass, "sensor.feather_m0_1_value") == "44"


async def test_platforms_hear_of_a_device_only_with_new_entities(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """Uplinks with the same readings add nothing: no signal to the platforms."""
    with patch(
        "custom_components.ttn_gateway.end_devices.manager.async_dispatcher_send",
        wraps=async_dispatcher_send,
    ) as send:
        await _send(hass, uplink(f_cnt=1))
        first = send.call_count
        await _send(hass, uplink(f_cnt=2, payload=b"\x2b"))
        await _send(hass, uplink(f_cnt=3, payload=b"\x2c"))
        assert send.call_count == first
        # A reading the device did not send before: its sensor is added.
        await _send(hass, uplink(f_cnt=4, battery=87.5))
        assert send.call_count == first + 1
    assert first >= 1
    assert _state(hass, "sensor.feather_m0_1_battery") == "87.5"
    assert _state(hass, "sensor.feather_m0_1_value") == "42"


async def test_removed_entry_device_not_loaded(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """End devices of an entry that is not loaded may be deleted too."""
    from custom_components.ttn_gateway import async_remove_config_entry_device

    mock_config_entry.add_to_hass(hass)
    device = device_registry.async_get_or_create(
        config_entry_id=mock_config_entry.entry_id,
        identifiers={(DOMAIN, f"{mock_config_entry.unique_id}/device/{APP}/{FEATHER}")},
    )
    assert await async_remove_config_entry_device(hass, mock_config_entry, device)


async def test_diagnostics_of_end_devices(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """Diagnostics list each device's decoder, timing and readings."""
    await _send(hass, uplink(payload=b"\x2a", f_cnt=3))
    diagnostics = _diagnostics(mqtt_entry)
    device = diagnostics["devices"][f"{APP}/{FEATHER}"]
    assert device["decoder"] == "auto"
    assert device["readings"] == {"feather_value": 42}
    assert device["f_cnt"] == 3
    assert device["silence_threshold_seconds"] == 3600
    assert "feather_value" in device["entities"]["sensor"]
    json.dumps(diagnostics, default=str)
    (application,) = diagnostics["applications"]
    assert application["topic"] == "v3/+/devices/+/up"
    assert application["transport"] == "mqtt"
    assert application["available"] is True
    assert diagnostics["receiving"] is True


async def test_helper_on_end_device_survives_restarts(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    area_registry: ar.AreaRegistry,
) -> None:
    """A derivative helper and another integration's entity on a Feather stay."""
    await _send(hass, uplink(payload=b"\x2a"))
    feather = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{APP}/{FEATHER}"),
        mqtt_entry.entry_id,
    )
    garden = area_registry.async_create("Garden")
    helper_entry = MockConfigEntry(
        domain="derivative",
        title="Feather rate",
        options={
            "name": "Feather rate",
            "round": 2.0,
            "source": "sensor.feather_m0_1_value",
            "time_window": {"seconds": 0},
            "unit_prefix": "none",
            "unit_time": "h",
        },
    )
    helper_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(helper_entry.entry_id)
    await hass.async_block_till_done()
    # Newer Home Assistant names a helper on a device after the device too.
    (helper,) = er.async_entries_for_config_entry(
        entity_registry, helper_entry.entry_id
    )
    helper_id = helper.entity_id
    helper = entity_registry.async_get(helper_id)
    assert helper is not None
    assert helper.device_id == feather.id
    entity_registry.async_update_entity(
        helper_id, name="Feather per hour", area_id=garden.id
    )
    other_entry = MockConfigEntry(domain="other_integration")
    other_entry.add_to_hass(hass)
    other = entity_registry.async_get_or_create(
        "sensor",
        "other_integration",
        "feather-extra",
        config_entry=other_entry,
        device_id=feather.id,
    )

    for _ in range(2):
        assert await hass.config_entries.async_reload(mqtt_entry.entry_id)
        await hass.async_block_till_done()
        helper = entity_registry.async_get(helper_id)
        assert helper is not None
        assert helper.name == "Feather per hour"
        assert helper.area_id == garden.id
        assert entity_registry.async_get(other.entity_id) is not None
    assert _state(hass, "sensor.feather_m0_1_value") == "42"


# MQTT lifecycle: setup never waits; the platform follows MQTT's entry.


# HA's MQTT client, set up by hand here, leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_setup_does_not_wait_for_mqtt(
    hass: HomeAssistant,
    mock_hass_config: None,
    mqtt_client_mock: Any,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """MQTT configured but not loaded yet: setup finishes; uplinks once it loads."""
    mqtt_entry = _mqtt_config_entry(hass)
    mock_config_entry.add_to_hass(hass)
    # A guard against waiting for MQTT (which would take 50 s), not a timing.
    async with asyncio.timeout(10):
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert mqtt_entry.state is ConfigEntryState.NOT_LOADED
    assert _diagnostics(mock_config_entry)["receiving"] is False
    # MQTT is configured: no repair issue about it.
    assert not issue_registry.async_get_issue(
        DOMAIN, f"mqtt_not_set_up_{_subentry_id(mock_config_entry)}"
    )

    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    await _send(hass, uplink(payload=b"\x0b"))
    assert _state(hass, "sensor.feather_m0_1_value") == "11"
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)


# HA's MQTT client, set up by hand here, leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_mqtt_unload_and_return(
    hass: HomeAssistant,
    mock_hass_config: None,
    mqtt_client_mock: Any,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
) -> None:
    """MQTT unloads: unavailable; MQTT loads again: subscribed again."""
    mqtt_entry = _mqtt_config_entry(hass)
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    mock_config_entry.add_to_hass(hass)
    await _setup(hass, mock_config_entry)
    await _send(hass, uplink(payload=b"\x09"))
    assert _state(hass, "sensor.feather_m0_1_value") == "9"

    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, "sensor.feather_m0_1_value") == STATE_UNAVAILABLE
    assert _state(hass, "binary_sensor.feather_m0_1_silent") == STATE_UNAVAILABLE
    assert _state(hass, "binary_sensor.rooftop_gateway_connectivity") == STATE_ON

    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, "sensor.feather_m0_1_value") == "9"
    await _send(hass, uplink(f_cnt=2, payload=b"\x0a"))
    assert _state(hass, "sensor.feather_m0_1_value") == "10"

    # A reload of MQTT: the same again, in one go.
    assert await hass.config_entries.async_reload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    await _send(hass, uplink(f_cnt=3, payload=b"\x0c"))
    assert _state(hass, "sensor.feather_m0_1_value") == "12"
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)


# Caps, the topic check and the allow-list.


def _devices_of(
    device_registry: dr.DeviceRegistry, entry: MockConfigEntry
) -> set[str | None]:
    return {
        device.name
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        if any("/device/" in identifier for _, identifier in device.identifiers)
    }


async def test_device_cap_and_repair_issue(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Devices over the cap are dropped, counted and reported once."""
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    hass.config_entries.async_update_entry(
        mqtt_entry, options={CONF_MAX_END_DEVICES: 2}
    )
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    for number in range(5):
        device_id = f"node-{number}"
        await _send(hass, uplink(device_id=device_id), on=topic(device_id=device_id))
    assert _devices_of(device_registry, mqtt_entry) == {"node-0", "node-1"}
    messages = _diagnostics(mqtt_entry)["messages"]
    assert messages["over_device_cap"] == 3
    issues = [
        issue
        for (domain, _), issue in issue_registry.issues.items()
        if domain == DOMAIN and issue.translation_key == "end_device_cap"
    ]
    assert len(issues) == 1
    assert issues[0].translation_placeholders["max_devices"] == "2"
    # Known devices still update.
    await _send(
        hass,
        uplink(device_id="node-1", f_cnt=2, payload=b"\x07"),
        on=topic(device_id="node-1"),
    )
    assert _state(hass, "sensor.node_1_value") == "7"


async def test_lowered_cap_after_a_restart_leaves_no_orphans(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Devices over a lowered cap go with their entities: those silent longest."""
    for number in (1, 0, 2):
        device_id = f"node-{number}"
        freezer.tick(timedelta(minutes=1))
        await _send(
            hass,
            uplink(device_id=device_id, received_at=dt_util.utcnow()),
            on=topic(device_id=device_id),
        )
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    hass.config_entries.async_update_entry(
        mqtt_entry, options={CONF_MAX_END_DEVICES: 2}
    )
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()

    assert _devices_of(device_registry, mqtt_entry) == {"node-0", "node-2"}
    assert hass.states.get("sensor.node_1_value") is None
    devices = {
        device.id
        for device in dr.async_entries_for_config_entry(
            device_registry, mqtt_entry.entry_id
        )
    }
    entities = er.async_entries_for_config_entry(entity_registry, mqtt_entry.entry_id)
    assert all(entity.device_id in devices for entity in entities)
    assert not [entity for entity in entities if "node-1" in entity.unique_id]
    assert _state(hass, "sensor.node_0_value") == "42"
    # Room for no other: the cap holds.
    await _send(hass, uplink(device_id="node-3"), on=topic(device_id="node-3"))
    assert _devices_of(device_registry, mqtt_entry) == {"node-0", "node-2"}


async def test_entity_cap_per_device(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A formatter adding fields uplink after uplink stops at 64 entities."""
    for batch in range(3):
        decoded = {f"field{batch}x{n}": n for n in range(60)}
        await _send(hass, uplink(f_cnt=batch + 1, decoded=decoded))
    device = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{APP}/{FEATHER}"),
        mqtt_entry.entry_id,
    )
    entities = er.async_entries_for_device(
        entity_registry, device.id, include_disabled_entities=True
    )
    assert len(entities) == 64
    assert _diagnostics(mqtt_entry)["messages"]["over_entity_cap"] > 0
    assert issue_registry.async_get_issue(
        DOMAIN, f"end_device_entity_cap_{mqtt_entry.entry_id}"
    )


async def test_topic_must_name_the_payload_device(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """An uplink on another device's topic, or on no uplink topic, is dropped."""
    await _send(hass, uplink(), on=topic(device_id="someone-else"))
    await _send(hass, uplink(), on=topic(application_id="other-app"))
    assert FEATHER not in _devices_of(device_registry, mqtt_entry)
    reasons = _diagnostics(mqtt_entry)["messages"]["drop_reasons"]
    assert reasons["topic and end_device_ids name different devices"] == 2
    assert sum(reasons.values()) == 2


async def test_application_allow_list(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """With an allow-list only those applications' uplinks are taken."""
    subentry = mqtt_entry.subentries[_subentry_id(mqtt_entry)]
    hass.config_entries.async_update_subentry(
        mqtt_entry,
        subentry,
        data={**subentry.data, CONF_APPLICATIONS: [FORMATTER_APP]},
    )
    await hass.async_block_till_done()
    assert mqtt_entry.state is ConfigEntryState.LOADED
    await _send(hass, uplink())
    await _send(
        hass,
        uplink(application_id=FORMATTER_APP, device_id=FORMATTER_NODE),
        on=topic(FORMATTER_APP, FORMATTER_NODE),
    )
    assert _devices_of(device_registry, mqtt_entry) == {FORMATTER_NODE}
    reasons = _diagnostics(mqtt_entry)["messages"]["drop_reasons"]
    assert reasons == {"application not set up": 1}


# Attacker-sized messages and registry strings.


async def test_message_cap_is_64_kib(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """A 100 kB uplink (a huge formatter key) is dropped before parsing."""
    await _send(hass, uplink(decoded={"k" * 100_000: 1}))
    assert FEATHER not in _devices_of(device_registry, mqtt_entry)
    reasons = _diagnostics(mqtt_entry)["messages"]["drop_reasons"]
    assert reasons == {"message larger than 65536 bytes": 1}


async def test_long_formatter_key_is_cut(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """A 60,000-character key gives one entity with a bounded ID and name."""
    await _send(hass, uplink(decoded={"a" * 60_000: 5}))
    entries = [
        entry
        for entry in entity_registry.entities.values()
        if entry.unique_id.startswith(f"{mqtt_entry.unique_id}/device/")
        and "formatter_number_" in entry.unique_id
    ]
    assert len(entries) == 1
    assert len(entries[0].unique_id) < 200
    assert len(entries[0].entity_id) < 100
    assert hass.states.get(entries[0].entity_id).state == "5"


async def test_registry_strings_bounded_and_console_link_ours(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """Long model names are cut, a bogus DevEUI is left out, no foreign links."""
    message = uplink(
        version_ids={"brand_id": "b" * 5000, "model_id": "m" * 5000},
    )
    message["end_device_ids"]["dev_eui"] = "x" * 3000
    message["uplink_message"]["network_ids"]["cluster_address"] = "evil.example.com"
    await _send(hass, message)
    device = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{APP}/{FEATHER}"),
        mqtt_entry.entry_id,
    )
    assert device.manufacturer == "b" * 64
    assert device.model == "m" * 64
    assert device.serial_number is None
    assert device.configuration_url == (
        "https://eu1.cloud.thethings.network/console/applications/"
        f"{APP}/devices/{FEATHER}"
    )


# Diagnostics without coordinates or the owner.


async def test_diagnostics_redact_location_and_owner(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """GPS channels and position-like formatter fields are redacted."""
    from custom_components.ttn_gateway.diagnostics import (
        async_get_config_entry_diagnostics,
    )

    await _send(
        hass,
        uplink(device_id=LPP_NODE, f_port=2, payload=LPP_PAYLOAD),
        on=topic(device_id=LPP_NODE),
    )
    await _send(
        hass,
        uplink(
            decoded={
                "lat": 52.1,
                "lon": 4.3,
                "gps_fix": 3,
                "location": "52.1,4.3",
                "altitude": 12,
                "temperature": 20.5,
            }
        ),
    )
    diagnostics = await async_get_config_entry_diagnostics(hass, mqtt_entry)
    text = json.dumps(diagnostics, default=str)
    assert "42.3519" not in text
    assert "-87.9094" not in text
    assert "52.1" not in text
    assert "jdoe" not in text
    devices = diagnostics["end_devices"]["devices"]
    lpp = devices[f"{APP}/{LPP_NODE}"]["readings"]
    assert lpp["lpp_latitude_1"] == "**REDACTED**"
    assert lpp["lpp_altitude_1"] == "**REDACTED**"
    assert lpp["lpp_temperature_3"] == 27.2
    feather = devices[f"{APP}/{FEATHER}"]["readings"]
    assert feather["formatter_number_lat"] == "**REDACTED**"
    assert feather["formatter_number_gps_fix"] == "**REDACTED**"
    assert feather["formatter_text_location"] == "**REDACTED**"
    assert feather["formatter_number_temperature"] == 20.5
    assert diagnostics["entry"]["title"] == "**REDACTED** (eu1.cloud.thethings.network)"


# Smaller defects.


async def test_older_uplink_does_not_replace_newer(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """An uplink TTS received earlier than the shown one arrives late: kept out."""
    earlier = dt_util.utcnow()
    freezer.tick(timedelta(minutes=10))
    await _send(hass, uplink(f_cnt=2, payload=b"\x02"))
    await _send(hass, uplink(f_cnt=1, payload=b"\x01", received_at=earlier))
    assert _state(hass, "sensor.feather_m0_1_value") == "2"
    assert _state(hass, "sensor.feather_m0_1_frame_counter") == "2"
    assert _diagnostics(mqtt_entry)["messages"]["older"] == 1


async def test_rejoin_with_reset_frame_counter_is_not_a_repeat(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """After a rejoin (new DevAddr) f_cnt 1 with the same payload is new."""
    await _send(hass, uplink(f_cnt=1, payload=b"\x05"))
    freezer.tick(timedelta(minutes=5))
    rejoined = uplink(f_cnt=1, payload=b"\x05")
    rejoined["end_device_ids"]["dev_addr"] = "260B9999"
    await _send(hass, rejoined)
    assert _diagnostics(mqtt_entry)["messages"]["uplinks"] == 2
    assert _state(hass, "sensor.feather_m0_1_last_seen") == "2025-11-07T09:05:00+00:00"


async def test_radio_figures_disabled_by_default(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Radio figures and timing are diagnostic and off; the frame counter has no
    state class."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    await _setup(hass, mock_config_entry)
    await _send(hass, uplink())
    for key in (
        "rssi",
        "snr",
        "spreading_factor",
        "frequency",
        "frame_counter",
        "gateways",
        "airtime",
        "last_seen",
        "best_gateway",
    ):
        entry = entity_registry.async_get(f"sensor.feather_m0_1_{key}")
        assert entry is not None, key
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION, key
        assert entry.entity_category is er.EntityCategory.DIAGNOSTIC, key
    assert (
        entity_registry.async_get("sensor.feather_m0_1_frame_counter").capabilities
        is None
    )
    assert _state(hass, "sensor.feather_m0_1_value") == "42"
    assert _state(hass, "binary_sensor.feather_m0_1_silent") == STATE_OFF


async def test_silent_sensor_adds_no_stop_listener(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """Silence timers end with their entity, not in a stop listener per device."""
    before = hass.bus.async_listeners().get(EVENT_HOMEASSISTANT_STOP, 0)
    for number in range(3):
        device_id = f"node-{number}"
        await _send(hass, uplink(device_id=device_id), on=topic(device_id=device_id))
    assert _state(hass, "binary_sensor.node_2_silent") == STATE_OFF
    assert hass.bus.async_listeners().get(EVENT_HOMEASSISTANT_STOP, 0) == before


async def test_uplink_dated_in_the_future_holds_nothing_back(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """A received_at a year ahead counts as five minutes ahead, no more."""
    future = dt_util.utcnow() + timedelta(days=365)
    await _send(hass, uplink(f_cnt=1, payload=b"\x01", received_at=future))
    assert _state(hass, "sensor.feather_m0_1_last_seen") == "2025-11-07T09:05:00+00:00"
    freezer.tick(timedelta(minutes=6))
    await _send(hass, uplink(f_cnt=2, payload=b"\x02"))
    assert _state(hass, "sensor.feather_m0_1_value") == "2"
    assert _state(hass, "sensor.feather_m0_1_last_seen") == "2025-11-07T09:06:00+00:00"


# Best gateway, battery, end devices heard.


async def test_best_gateway_names_the_loudest(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An own gateway by its name (following renames), others by ID."""
    await _send(
        hass,
        uplink(
            gateways=(("kerlink-garden", -112.0, -3.0), (GATEWAY_ROOFTOP, -80.0, 9.0))
        ),
    )
    best = hass.states.get("sensor.feather_m0_1_best_gateway")
    assert best is not None
    assert best.state == "Rooftop gateway"
    assert best.attributes["gateway_id"] == GATEWAY_ROOFTOP
    assert best.attributes["rssi"] == -80.0
    assert best.attributes["snr"] == 9.0
    assert best.attributes["gateway_count"] == 2
    # Changes with the uplinks: diagnostic, disabled by default (the
    # fixture enables it), to keep the logbook calm.
    entry = er.async_get(hass).async_get("sensor.feather_m0_1_best_gateway")
    assert entry is not None
    assert entry.entity_category is er.EntityCategory.DIAGNOSTIC

    # Same loudness: the better SNR wins.
    await _send(
        hass,
        uplink(
            f_cnt=2,
            gateways=(("kerlink-garden", -80.0, 10.5), (GATEWAY_ROOFTOP, -80.0, 9.0)),
        ),
    )
    assert _state(hass, "sensor.feather_m0_1_best_gateway") == "Kerlink garden"

    # A gateway of someone else is named by its ID.
    await _send(hass, uplink(f_cnt=3, gateways=(("neighbour-gw", -70.0, 8.0),)))
    assert _state(hass, "sensor.feather_m0_1_best_gateway") == "neighbour-gw"

    # The name follows a rename of the entry's gateway.
    await _send(hass, uplink(f_cnt=4, gateways=((GATEWAY_ROOFTOP, -90.0, 5.0),)))
    fake_tts.gateways[0]["name"] = "Roof"
    await async_poll(hass, freezer)
    assert _state(hass, "sensor.feather_m0_1_best_gateway") == "Roof"


async def test_best_gateway_via_packet_broker(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """Traffic forwarded by Packet Broker shows as packetbroker."""
    message = uplink(
        gateways=((GATEWAY_ROOFTOP, -110.0, -5.0), ("packetbroker", -60.0, 9.0))
    )
    message["uplink_message"]["rx_metadata"][1]["packet_broker"] = {
        "forwarder_net_id": "000013",
        "forwarder_tenant_id": "ttn",
    }
    await _send(hass, message)
    best = hass.states.get("sensor.feather_m0_1_best_gateway")
    assert best.state == "packetbroker"
    assert best.attributes["rssi"] == -60.0


async def test_battery_appears_with_the_first_level(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """A battery sensor only for devices that report a level; it keeps it."""
    await _send(hass, uplink(f_cnt=1))
    assert hass.states.get("sensor.feather_m0_1_battery") is None
    await _send(hass, uplink(f_cnt=2, battery=87.5))
    battery = hass.states.get("sensor.feather_m0_1_battery")
    assert battery is not None
    assert battery.state == "87.5"
    assert battery.attributes["device_class"] == "battery"
    assert battery.attributes["unit_of_measurement"] == "%"
    entry = er.async_get(hass).async_get("sensor.feather_m0_1_battery")
    assert entry is not None
    assert entry.entity_category is None
    await _send(hass, uplink(f_cnt=3))
    assert _state(hass, "sensor.feather_m0_1_battery") == "87.5"
    await _send(hass, uplink(f_cnt=4, battery=250))
    assert _state(hass, "sensor.feather_m0_1_battery") == "87.5"


def _heard(hass: HomeAssistant) -> tuple[str, dict[str, Any]]:
    state = hass.states.get("sensor.rooftop_gateway_end_devices_heard")
    assert state is not None
    return state.state, dict(state.attributes)


async def test_end_devices_heard_by_a_gateway(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Devices whose uplinks the gateway received within 24 h, by name."""
    assert _heard(hass)[0] == "0"
    assert _heard(hass)[1]["state_class"] == "measurement"
    # Heard, though another gateway heard it better.
    await _send(
        hass,
        uplink(
            gateways=((GATEWAY_ROOFTOP, -115.0, -8.0), ("kerlink-garden", -60.0, 9.0))
        ),
    )
    freezer.tick(timedelta(hours=12))
    rooftop = ((GATEWAY_ROOFTOP, -90.0, 5.0),)
    await _send(
        hass,
        uplink(device_id=LPP_NODE, f_port=2, payload=LPP_PAYLOAD, gateways=rooftop),
        on=topic(device_id=LPP_NODE),
    )
    # Only Packet Broker: the gateway did not hear it.
    await _send(
        hass,
        uplink(device_id="far-node", gateways=(("packetbroker", -70.0, 5.0),)),
        on=topic(device_id="far-node"),
    )
    state, attributes = _heard(hass)
    assert state == "2"
    assert attributes["end_devices"] == [f"{APP}/{FEATHER}", f"{APP}/{LPP_NODE}"]
    assert attributes["end_devices_not_listed"] == 0
    garden = hass.states.get("sensor.kerlink_garden_end_devices_heard")
    assert garden.state == "1"

    # Written only on change: another uplink of a device heard changes nothing.
    before = hass.states.get("sensor.rooftop_gateway_end_devices_heard")
    freezer.tick(timedelta(minutes=1))
    await _send(
        hass,
        uplink(
            device_id=LPP_NODE, f_port=2, f_cnt=2, payload=LPP_PAYLOAD, gateways=rooftop
        ),
        on=topic(device_id=LPP_NODE),
    )
    after = hass.states.get("sensor.rooftop_gateway_end_devices_heard")
    assert after.last_reported == before.last_reported

    # 24 h after its uplink the Feather drops out, with no traffic at all.
    freezer.tick(timedelta(hours=12))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    state, attributes = _heard(hass)
    assert state == "1"
    assert attributes["end_devices"] == [f"{APP}/{LPP_NODE}"]
    freezer.tick(timedelta(hours=12))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _heard(hass)[0] == "0"


async def test_end_devices_heard_capped_list_and_restart(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    """At most 50 names (plus how many more); the devices heard survive a restart."""
    for number in range(55):
        device_id = f"node-{number:02d}"
        await _send(
            hass,
            uplink(device_id=device_id, gateways=((GATEWAY_ROOFTOP, -90.0, 5.0),)),
            on=topic(device_id=device_id),
        )
    state, attributes = _heard(hass)
    assert state == "55"
    assert len(attributes["end_devices"]) == 50
    assert attributes["end_devices"][0] == f"{APP}/node-00"
    assert attributes["end_devices_not_listed"] == 5

    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    freezer.tick(timedelta(hours=1))
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    assert _heard(hass)[0] == "55"
    # And they still leave the window 24 h after their uplink.
    freezer.tick(timedelta(hours=23))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _heard(hass)[0] == "0"


async def test_deleted_device_no_longer_counts_as_heard(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A device the user deleted leaves the gateway's list."""
    assert await async_setup_component(hass, "config", {})
    rooftop = ((GATEWAY_ROOFTOP, -90.0, 5.0),)
    await _send(hass, uplink(gateways=rooftop))
    await _send(
        hass,
        uplink(device_id=LPP_NODE, f_port=2, payload=LPP_PAYLOAD, gateways=rooftop),
        on=topic(device_id=LPP_NODE),
    )
    assert _heard(hass)[0] == "2"
    feather = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{APP}/{FEATHER}"),
        mqtt_entry.entry_id,
    )
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": mqtt_entry.entry_id,
            "device_id": feather.id,
        }
    )
    assert (await client.receive_json())["success"] is True
    await hass.async_block_till_done()
    assert await hass.config_entries.async_reload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    state, attributes = _heard(hass)
    assert state == "1"
    assert attributes["end_devices"] == [f"{APP}/{LPP_NODE}"]


# Sources: each application's messages come from the source its sub-entry chose.

DIRECT_KEY = "NNSXS.DIRECTAPPKEY.SECRETPART"
LAST_DOWNLINK = "sensor.feather_m0_1_last_downlink"


def _two_sources_entry() -> MockConfigEntry:
    """A catch-all sub-entry on HA's broker and APP connected directly."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id="01JTTNGATEWAYTESTENTRY0001",
        version=3,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
        subentries_data=[
            ConfigSubentryData(
                data={
                    CONF_TRANSPORT: TRANSPORT_MQTT,
                    CONF_UPLINK_TOPIC: "v3/+/devices/+/up",
                },
                subentry_id="01JTTNCATCHALLSUBENTRY0001",
                subentry_type=SUBENTRY_APPLICATION,
                title="All applications",
                unique_id=None,
            ),
            ConfigSubentryData(
                data={
                    CONF_APPLICATION_ID: APP,
                    CONF_API_KEY: DIRECT_KEY,
                    CONF_TRANSPORT: TRANSPORT_DIRECT,
                    CONF_RIGHTS: ["RIGHT_APPLICATION_TRAFFIC_READ"],
                },
                subentry_id="01JTTNAPPLICATIONSUBENTRY1",
                subentry_type=SUBENTRY_APPLICATION,
                title="Home sensors",
                unique_id=APP,
            ),
        ],
    )


def _downlink_event(name: str, device_id: str = FEATHER, **body: Any) -> str:
    """An ApplicationUp of a downlink event (``messages.proto``), as TTS sends it."""
    ids = {"device_id": device_id, "application_ids": {"application_id": APP}}
    return json.dumps({"end_device_ids": ids, name: {"f_port": 1, **body}})


def _down_topic(event: str, device_id: str = FEATHER) -> str:
    """``…/down/<event>`` (``pkg/applicationserver/io/mqtt/topics/v3.go``)."""
    return f"v3/{APP}@ttn/devices/{device_id}/down/{event}"


# HA's MQTT client leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_messages_only_from_the_applications_own_source(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Uplinks and downlink events of a directly connected application that
    arrive over HA's broker are dropped, counted and logged at debug."""
    freezer.move_to(START)
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    with serving(DIRECT_KEY) as server:
        entry = _two_sources_entry()
        entry.add_to_hass(hass)
        await _setup(hass, entry)
        await _send(hass, uplink(payload=b"\x07"))
        await _send(hass, _downlink_event("downlink_sent"), on=_down_topic("sent"))
        assert _devices_of(device_registry, entry) == set()
        assert "taken from another source" in caplog.text

        server.publish(topic(), encode(uplink(payload=b"\x2a")))
        await hass.async_block_till_done()
        assert _state(hass, "sensor.feather_m0_1_value") == "42"
        # Forged over HA's broker: no effect on the device.
        await _send(hass, uplink(f_cnt=2, payload=b"\x07"))
        await _send(hass, _downlink_event("downlink_sent"), on=_down_topic("sent"))
        assert _state(hass, "sensor.feather_m0_1_value") == "42"
        assert hass.states.get(LAST_DOWNLINK) is None
        # Other applications still come over HA's broker.
        await _send(
            hass,
            uplink(application_id=FORMATTER_APP, device_id=FORMATTER_NODE),
            on=topic(FORMATTER_APP, FORMATTER_NODE),
        )
        assert FORMATTER_NODE in _devices_of(device_registry, entry)

        diagnostics = _diagnostics(entry)
        catch_all, direct = sorted(
            diagnostics["applications"], key=lambda app: app["application_id"] or ""
        )
        assert catch_all["messages_for_other_sources"] == {APP: 4}
        assert direct["messages_for_other_sources"] == {}
        reasons = diagnostics["messages"]["drop_reasons"]
        assert reasons == {"application taken from another source": 4}
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_downlink_events_pass_the_intake_checks(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """The 64 KiB cap, the topic-versus-payload check and the allow-list."""
    await _send(hass, uplink())
    await _send(hass, uplink(device_id="node-2"), on=topic(device_id="node-2"))
    await _send(
        hass,
        _downlink_event(
            "downlink_failed", downlink={"f_port": 1}, error={"name": "x" * 70_000}
        ),
        on=_down_topic("failed"),
    )
    # No event in it: ignored.
    ids = {"device_id": FEATHER, "application_ids": {"application_id": APP}}
    await _send(hass, json.dumps({"end_device_ids": ids}), on=_down_topic("sent"))
    assert _diagnostics(mqtt_entry)["messages"]["ignored"] == 1
    # node-2's event on the Feather's topic.
    await _send(
        hass, _downlink_event("downlink_sent", "node-2"), on=_down_topic("sent")
    )
    assert hass.states.get(LAST_DOWNLINK) is None
    assert hass.states.get("sensor.node_2_last_downlink") is None
    reasons = _diagnostics(mqtt_entry)["messages"]["drop_reasons"]
    assert reasons == {
        "message larger than 65536 bytes": 1,
        "topic and end_device_ids name different devices": 1,
    }

    subentry = mqtt_entry.subentries[_subentry_id(mqtt_entry)]
    hass.config_entries.async_update_subentry(
        mqtt_entry,
        subentry,
        data={**subentry.data, CONF_APPLICATIONS: [FORMATTER_APP]},
    )
    await hass.async_block_till_done()
    await _send(hass, _downlink_event("downlink_sent"), on=_down_topic("sent"))
    assert hass.states.get(LAST_DOWNLINK) is None
    reasons = _diagnostics(mqtt_entry)["messages"]["drop_reasons"]
    assert reasons["application not set up"] == 1


async def test_invalidated_downlinks_show_on_the_last_downlink(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """``down/invalidated``: TTS dropped the queue (``downlink_queue_invalidated``)."""
    await _send(hass, uplink())
    await _send(hass, _downlink_event("downlink_queued"), on=_down_topic("queued"))
    assert _state(hass, LAST_DOWNLINK) == "queued"
    ids = {"device_id": FEATHER, "application_ids": {"application_id": APP}}
    await _send(
        hass,
        json.dumps(
            {
                "end_device_ids": ids,
                "downlink_queue_invalidated": {
                    "downlinks": [{"f_port": 2, "frm_payload": "AQ=="}],
                    "last_f_cnt_down": 4,
                },
            }
        ),
        on=_down_topic("invalidated"),
    )
    state = hass.states.get(LAST_DOWNLINK)
    assert state is not None
    assert state.state == "invalidated"
    assert state.attributes["f_port"] == 2

    # A restart keeps the state and its attributes.
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get(LAST_DOWNLINK)
    assert state is not None
    assert (state.state, state.attributes["f_port"]) == ("invalidated", 2)


async def test_end_devices_follow_the_broker_connection(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry
) -> None:
    """The broker goes down: unavailable; it reconnects: available again."""
    await _send(hass, uplink(payload=b"\x09"))
    assert _state(hass, "sensor.feather_m0_1_value") == "9"
    # What HA's MQTT client sends when it loses and regains its broker.
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, False)
    await hass.async_block_till_done()
    assert _state(hass, "sensor.feather_m0_1_value") == STATE_UNAVAILABLE
    assert _state(hass, "binary_sensor.feather_m0_1_silent") == STATE_UNAVAILABLE
    assert _diagnostics(mqtt_entry)["receiving"] is False
    assert _state(hass, "binary_sensor.rooftop_gateway_connectivity") == STATE_ON

    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, True)
    await hass.async_block_till_done()
    assert _state(hass, "sensor.feather_m0_1_value") == "9"
    await _send(hass, uplink(f_cnt=2, payload=b"\x0a"))
    assert _state(hass, "sensor.feather_m0_1_value") == "10"


async def test_no_downlink_for_an_application_without_a_key(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """A device of the migrated catch-all sub-entry: nothing can send for it."""
    await _send(hass, uplink())
    device = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mqtt_entry.unique_id}/device/{APP}/{FEATHER}"),
        mqtt_entry.entry_id,
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "send_downlink",
            {"device_id": device.id, "f_port": 1, "payload": "01"},
            blocking=True,
        )
    assert err.value.translation_key == "downlink_no_application"


async def test_a_device_application_is_looked_up_once(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Each entity asks on each uplink whether its source is up: one lookup."""
    with patch(
        "custom_components.ttn_gateway.end_devices.manager.subentry_for",
        wraps=subentry_for,
    ) as lookup:
        for f_cnt in range(1, 4):
            freezer.tick(timedelta(minutes=1))
            await _send(hass, uplink(payload=bytes([f_cnt]), f_cnt=f_cnt))
    assert _state(hass, "sensor.feather_m0_1_value") == "3"
    looked_up = {call.args[1] for call in lookup.call_args_list}
    assert lookup.call_count == len(looked_up) == 1
