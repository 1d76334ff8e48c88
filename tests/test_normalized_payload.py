"""The normalized payload (TTS's ``normalized_payload``) as entities.

Measurements follow the Device Repository's schema (lorawan-devices
``lib/payload.json``, flattened in ``fixtures/device_repository/normalized-schema.json``);
TTS forwards them in ``uplink_message.normalized_payload`` with
``normalized_payload_warnings`` (lorawan-stack
``pkg/messageprocessors/javascript/javascript.go`` ``decodeUplink``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.ttn_gateway.decoders import (
    DecodeError,
    Decoder,
    decode_normalized,
    decode_uplink,
    describe_reading,
)
from custom_components.ttn_gateway.decoders.normalized import BY_KEY, FIELDS
from custom_components.ttn_gateway.diagnostics import end_device_diagnostics
from custom_components.ttn_gateway.tts import parse_application_up
from custom_components.ttn_gateway.tts.uplink import MAX_WARNINGS

from .common import fuzz_examples
from .device_repository import load_schema
from .fake_tts import FakeTTS
from .uplinks import encode, topic, uplink

START = "2025-11-07T09:00:00+00:00"
NODE = "ers-co2"


def _message(
    normalized: Any,
    *,
    decoded: dict[str, Any] | None = None,
    f_cnt: int = 1,
    payload: bytes = b"\x01\x00\xe2",
    **extra: Any,
) -> dict[str, Any]:
    message = uplink(device_id=NODE, f_port=5, f_cnt=f_cnt, payload=payload)
    if decoded is not None:
        message["uplink_message"]["decoded_payload"] = decoded
    if normalized is not None:
        message["uplink_message"]["normalized_payload"] = normalized
    message["uplink_message"].update(extra)
    return message


# Every leaf of the schema: what Home Assistant shows (device class, unit).
# Written from lib/payload.json's descriptions; time orders the measurements
# and position feeds the device tracker.
EXPECTED: dict[str, tuple[str, str | None, str | None]] = {
    # path: (entity key, device class, unit)
    "battery": ("normalized_battery", "voltage", "V"),
    "soil.depth": ("normalized_soil_depth", "distance", "cm"),
    "soil.moisture": ("normalized_soil_moisture", "moisture", "%"),
    "soil.temperature": ("normalized_soil_temperature", "temperature", "°C"),
    # dS/m = mS/cm
    "soil.ec": ("normalized_soil_ec", "conductivity", "mS/cm"),
    "soil.pH": ("normalized_soil_ph", "ph", None),
    "soil.n": ("normalized_soil_n", None, "ppm"),
    "soil.p": ("normalized_soil_p", None, "ppm"),
    "soil.k": ("normalized_soil_k", None, "ppm"),
    "air.location": ("normalized_air_location", "enum", None),
    "air.temperature": ("normalized_air_temperature", "temperature", "°C"),
    "air.relativeHumidity": ("normalized_air_relative_humidity", "humidity", "%"),
    "air.pressure": ("normalized_air_pressure", "atmospheric_pressure", "hPa"),
    "air.co2": ("normalized_air_co2", "carbon_dioxide", "ppm"),
    "air.lightIntensity": ("normalized_air_light_intensity", "illuminance", "lx"),
    "wind.speed": ("normalized_wind_speed", "wind_speed", "m/s"),
    "wind.direction": ("normalized_wind_direction", "wind_direction", "°"),
    "water.leak": ("normalized_water_leak", "moisture", None),
    "water.temperature.min": ("normalized_water_temperature_min", "temperature", "°C"),
    "water.temperature.max": ("normalized_water_temperature_max", "temperature", "°C"),
    "water.temperature.avg": ("normalized_water_temperature_avg", "temperature", "°C"),
    "water.temperature.current": (
        "normalized_water_temperature_current",
        "temperature",
        "°C",
    ),
    "metering.water.total": ("normalized_metering_water_total", "water", "L"),
    "action.motion.detected": ("normalized_action_motion_detected", "motion", None),
    "action.motion.count": ("normalized_action_motion_count", None, None),
    "action.contactState": ("normalized_action_contact_state", "opening", None),
}
NOT_ENTITIES = {"time", "position.latitude", "position.longitude"}
TOTALS = {"normalized_metering_water_total", "normalized_action_motion_count"}


def test_every_schema_field_is_covered() -> None:
    """Each leaf of lib/payload.json is an entity, the time or the position."""
    paths = {field["path"] for field in load_schema()["fields"]}
    assert paths == set(EXPECTED) | NOT_ENTITIES
    assert {".".join(field.path) for field in FIELDS} == set(EXPECTED)


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_field_description(path: str) -> None:
    """Device class and unit of each field; wind direction where HA has the class."""
    key, device_class, unit = EXPECTED[path]
    description = describe_reading(key)
    assert description is not None
    assert description.decoder is Decoder.NORMALIZED
    assert description.translation_key == key
    shown_class = (
        None if description.device_class is None else str(description.device_class)
    )
    if key == "normalized_wind_direction" and shown_class is None:
        # Home Assistant before the wind direction class: degrees alone.
        device_class = None
    assert (shown_class, description.unit) == (device_class, unit)
    schema_field = next(f for f in load_schema()["fields"] if f["path"] == path)
    assert description.binary == (
        (schema_field["type"] != "number" and "enum" not in schema_field)
        or path == "action.contactState"
    )
    if key in TOTALS:
        assert description.state_class == "total_increasing"


def test_values_newest_measurement_wins() -> None:
    """Several measurements: each field from the newest (by time, else order)."""
    readings = decode_normalized(
        [
            {"time": "2025-11-07T09:10:00Z", "air": {"temperature": 21.0}},
            {"time": "2025-11-07T09:00:00Z", "air": {"temperature": 20.0, "co2": 500}},
        ]
    )
    assert readings["normalized_air_temperature"].value == 21.0
    assert readings["normalized_air_co2"].value == 500
    untimed = decode_normalized(
        [{"air": {"temperature": 20.0}}, {"air": {"temperature": 22.5}}]
    )
    assert untimed["normalized_air_temperature"].value == 22.5


def test_flags_text_and_bad_values() -> None:
    """Leak as boolean or text, contact open/closed, enum text; bad values left out."""
    readings = decode_normalized(
        [
            {
                "water": {"leak": "leak"},
                "action": {"contactState": "open", "motion": {"detected": False}},
                "air": {
                    "location": "indoor",
                    "temperature": "warm",
                    "co2": float("nan"),
                },
                "soil": "wet",
            }
        ]
    )
    assert {key: reading.value for key, reading in readings.items()} == {
        "normalized_water_leak": True,
        "normalized_action_contact_state": True,
        "normalized_action_motion_detected": False,
        "normalized_air_location": "indoor",
    }
    # Quandify's cubicmeter sends leak "" (vendor/quandify/cubicmeter-1-1-plastic-codec.yaml).
    assert "normalized_water_leak" not in decode_normalized(
        [{"water": {"leak": ""}, "air": {"temperature": 22.5}}]
    )
    with pytest.raises(DecodeError):
        decode_normalized([{"air": [{"temperature": 98.67}]}])
    with pytest.raises(DecodeError):
        decode_normalized(None)


@pytest.mark.parametrize(
    ("value", "percent_before", "key"),
    [
        (3.6, False, "normalized_battery"),
        (3, False, "normalized_battery"),
        # Milesight EM300-TH gives 50 (vendor/milesight-iot/em300-th-codec.yaml).
        (50, False, "normalized_battery_percent"),
        # A device seen in percent stays in percent: its 15 % is no 15 V.
        (15, True, "normalized_battery_percent"),
    ],
)
def test_battery_volts_or_percent(value: float, percent_before: bool, key: str) -> None:
    """The schema says volts; a figure above 20 V is a percentage."""
    readings = decode_normalized([{"battery": value}], battery_percent=percent_before)
    assert list(readings) == [key]
    description = describe_reading(key)
    assert description is not None
    assert description.unit == ("%" if key.endswith("percent") else "V")


def test_formatter_field_not_shown_twice() -> None:
    """Automatic: normalized fields, plus the formatter's fields they do not show."""
    # Elsys ERS CO2 (vendor/elsys/ers-co2-codec.yaml), decoded and normalized.
    decoded = {
        "temperature": 22.6,
        "humidity": 41,
        "light": 39,
        "motion": 6,
        "co2": 776,
        "vdd": 3650,
    }
    normalized = [
        {
            "air": {"temperature": 22.6, "relativeHumidity": 41, "lightIntensity": 39},
            "action": {"motion": {"detected": True, "count": 6}},
        }
    ]
    result = decode_uplink(Decoder.AUTO, 5, b"\x01", decoded, normalized)
    assert result.decoder is Decoder.NORMALIZED
    assert set(result.readings) == {
        "normalized_air_temperature",
        "normalized_air_relative_humidity",
        "normalized_air_light_intensity",
        "normalized_action_motion_detected",
        "normalized_action_motion_count",
        "formatter_number_co2",
        "formatter_number_vdd",
    }
    # Chosen explicitly, each shows only its own.
    assert set(
        decode_uplink(Decoder.NORMALIZED, 5, b"", decoded, normalized).readings
    ) <= set(BY_KEY)
    formatter = decode_uplink(Decoder.PAYLOAD_FORMATTER, 5, b"", decoded, normalized)
    assert formatter.decoder is Decoder.PAYLOAD_FORMATTER
    assert "formatter_number_temperature" in formatter.readings


def test_uplink_parses_normalized_payload_and_warnings() -> None:
    """A list of measurements (one object is one), warnings bounded, position."""
    message = _message(
        [
            {
                "air": {"temperature": 21},
                "position": {"latitude": 52.1, "longitude": 4.3},
            },
            "junk",
        ],
        decoded_payload_warnings=["low battery", 3, ""],
        normalized_payload_warnings=[f"measurement {n}" for n in range(40)],
    )
    parsed = parse_application_up(message)
    assert parsed is not None
    assert parsed.normalized_payload == (
        {"air": {"temperature": 21}, "position": {"latitude": 52.1, "longitude": 4.3}},
    )
    assert parsed.decoded_payload_warnings == ("low battery",)
    assert len(parsed.normalized_payload_warnings) == MAX_WARNINGS
    assert parsed.location is not None
    assert (parsed.location.latitude, parsed.location.longitude) == (52.1, 4.3)
    single = parse_application_up(_message({"air": {"temperature": 21}}))
    assert single is not None
    assert single.normalized_payload == ({"air": {"temperature": 21}},)
    for junk in ("text", 3, [], ["a"]):
        parsed = parse_application_up(_message(junk, normalized_payload_warnings="x"))
        assert parsed is not None
        assert parsed.normalized_payload is None
        assert parsed.warnings == ()


_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats()
    | st.text(max_size=20)
)
_MEASUREMENTS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "time": st.text(max_size=30) | st.just("2025-11-07T09:00:00Z"),
            "battery": _VALUES,
            "air": st.dictionaries(
                st.sampled_from(["temperature", "co2", "location", "pressure"]), _VALUES
            )
            | _VALUES,
            "water": st.fixed_dictionaries({}, optional={"leak": _VALUES}),
            "action": st.fixed_dictionaries(
                {},
                optional={
                    "contactState": _VALUES,
                    "motion": st.dictionaries(
                        st.sampled_from(["detected", "count"]), _VALUES
                    ),
                },
            ),
        },
    ),
    max_size=5,
)


@settings(max_examples=fuzz_examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(_MEASUREMENTS, st.booleans())
def test_fuzz_normalized(measurements: list[dict[str, Any]], percent: bool) -> None:
    """Any measurements give describable readings of the right kind, or none."""
    try:
        readings = decode_normalized(measurements, battery_percent=percent)
    except DecodeError:
        return
    for key, reading in readings.items():
        description = describe_reading(key)
        assert description is not None
        assert description.binary is isinstance(reading.value, bool)
        if description.options is not None:
            assert reading.value in description.options


# In Home Assistant


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> MockConfigEntry:
    """The integration set up with HA's MQTT integration."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry


async def _send(hass: HomeAssistant, message: dict[str, Any]) -> None:
    async_fire_mqtt_message(hass, topic(device_id=NODE), encode(message))
    await hass.async_block_till_done()


ERS_CO2 = [
    {
        "air": {"temperature": 22.6, "relativeHumidity": 41, "lightIntensity": 39},
        "action": {"motion": {"detected": True, "count": 6}},
        "water": {"leak": False},
        "metering": {"water": {"total": 5342}},
        "battery": 3.64,
    }
]


async def test_entities_with_device_class_unit_and_name(
    hass: HomeAssistant, entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """One entity per field, named in Home Assistant's language, with its unit."""
    await _send(hass, _message(ERS_CO2, decoded={"temperature": 22.6, "co2": 776}))
    shown = {
        "sensor.ers_co2_air_temperature": ("22.6", "temperature", "°C", "measurement"),
        "sensor.ers_co2_relative_humidity": ("41", "humidity", "%", "measurement"),
        "sensor.ers_co2_light_intensity": ("39", "illuminance", "lx", "measurement"),
        "sensor.ers_co2_motion_count": ("6", None, None, "total_increasing"),
        "sensor.ers_co2_water_total": ("5342", "water", "L", "total_increasing"),
        "sensor.ers_co2_battery_voltage": ("3.64", "voltage", "V", "measurement"),
        "sensor.ers_co2_co2": ("776", "carbon_dioxide", "ppm", "measurement"),
    }
    for entity_id, (state, device_class, unit, state_class) in shown.items():
        found = hass.states.get(entity_id)
        assert found is not None, entity_id
        assert found.state == state, entity_id
        assert found.attributes.get("device_class") == device_class, entity_id
        assert found.attributes.get("unit_of_measurement") == unit, entity_id
        assert found.attributes.get("state_class") == state_class, entity_id
    assert hass.states.get("sensor.ers_co2_temperature") is None  # shown once
    motion = hass.states.get("binary_sensor.ers_co2_motion")
    assert motion is not None
    assert motion.state == STATE_ON
    assert motion.attributes["device_class"] == "motion"
    leak = hass.states.get("binary_sensor.ers_co2_leak")
    assert leak is not None
    assert leak.state == STATE_OFF
    assert leak.attributes["device_class"] == "moisture"

    decoder = hass.states.get("sensor.ers_co2_decoder")
    assert decoder is not None
    assert decoder.state == "normalized"
    assert decoder.attributes["chosen"] == "auto"
    assert decoder.attributes["warnings"] == []
    registry_entry = entity_registry.async_get("sensor.ers_co2_decoder")
    assert registry_entry is not None
    assert registry_entry.entity_category is er.EntityCategory.DIAGNOSTIC


async def test_warnings_and_failed_formatter_keep_readings(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Warnings show on the Decoder sensor and in diagnostics; an uplink the
    formatter failed on (TTS forwards it undecoded) keeps the readings."""
    await _send(
        hass,
        _message(
            ERS_CO2,
            normalized_payload_warnings=["measurement 1: air.pressure out of range"],
        ),
    )
    decoder = hass.states.get("sensor.ers_co2_decoder")
    assert decoder is not None
    assert decoder.attributes["warnings"] == [
        "measurement 1: air.pressure out of range"
    ]
    assert decoder.attributes["formatter_failed"] is False

    freezer.tick(timedelta(minutes=10))
    await _send(hass, _message(None, f_cnt=2, payload=b"\xff\xff"))
    assert hass.states.get("sensor.ers_co2_air_temperature").state == "22.6"
    assert hass.states.get("sensor.ers_co2_payload") is None  # not raw
    decoder = hass.states.get("sensor.ers_co2_decoder")
    assert decoder.state == "normalized"
    assert decoder.attributes["formatter_failed"] is True
    assert decoder.attributes["warnings"] == []
    device = end_device_diagnostics(entry.runtime_data.end_devices)["devices"][
        f"home-sensors/{NODE}"
    ]
    assert device["decoder_used"] == "normalized"
    assert device["formatter_failed"] is True
    assert device["readings"]["normalized_air_temperature"] == 22.6

    freezer.tick(timedelta(minutes=10))
    await _send(hass, _message([{"air": {"temperature": 23.1}}], f_cnt=3))
    assert hass.states.get("sensor.ers_co2_air_temperature").state == "23.1"
    assert (
        hass.states.get("sensor.ers_co2_decoder").attributes["formatter_failed"]
        is False
    )


async def test_position_feeds_the_device_tracker(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """position.latitude/longitude: the device tracker, not sensors."""
    await _send(
        hass,
        _message(
            [{"position": {"latitude": 52.37, "longitude": 4.89}, "battery": 3.1}]
        ),
    )
    tracker = hass.states.get("device_tracker.ers_co2")
    assert tracker is not None
    assert (tracker.attributes["latitude"], tracker.attributes["longitude"]) == (
        52.37,
        4.89,
    )
    assert hass.states.get("sensor.ers_co2_latitude") is None


async def test_entities_come_back_after_restart(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """The key alone says what a reading is: entities return before any uplink."""
    await _send(hass, _message(ERS_CO2))
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.ers_co2_air_temperature").state == STATE_UNAVAILABLE
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    temperature = hass.states.get("sensor.ers_co2_air_temperature")
    assert temperature.state == "22.6"
    assert temperature.attributes["unit_of_measurement"] == "°C"
    assert hass.states.get("binary_sensor.ers_co2_motion").state == STATE_ON
    assert hass.states.get("sensor.ers_co2_decoder").state == "normalized"
