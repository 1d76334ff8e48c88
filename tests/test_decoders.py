"""Payload decoders against hand-computed vectors, and fuzzed."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.ttn_gateway.decoders import (
    DECODERS,
    LPP_TYPES,
    MAX_FORMATTER_READINGS,
    DecodeError,
    Decoder,
    Reading,
    decode,
    decode_cayenne_lpp,
    decode_feather_m0,
    decode_payload_formatter,
    decode_raw,
    describe_reading,
    guess_unit,
)
from custom_components.ttn_gateway.decoders.units import parse_unit

from .common import fuzz_examples


def _values(readings: dict[str, Reading]) -> dict[str, Any]:
    return {key: reading.value for key, reading in readings.items()}


# Feather M0


def test_feather_byte() -> None:
    """The sketch's one unsigned byte on FPort 1."""
    assert _values(decode_feather_m0(1, b"\x00", None)) == {"feather_value": 0}
    assert _values(decode_feather_m0(1, b"\xff", None)) == {"feather_value": 255}


@pytest.mark.parametrize(("f_port", "payload"), [(2, b"\x01"), (1, b""), (1, b"ab")])
def test_feather_rejects(f_port: int, payload: bytes) -> None:
    """Anything but one byte on FPort 1 is not the sketch."""
    with pytest.raises(DecodeError):
        decode_feather_m0(f_port, payload, None)


# Cayenne LPP v1: vectors built from the specification's tables and examples.

LPP_VECTORS: list[tuple[str, dict[str, Any]]] = [
    # Spec example 1: two temperature sensors.
    ("03670110056700FF", {"lpp_temperature_3": 27.2, "lpp_temperature_5": 25.5}),
    # Spec example 2: a negative temperature.
    ("0167FFD7", {"lpp_temperature_1": -4.1}),
    # Spec example 3: accelerometer, 0.001 G per bit, signed.
    (
        "067104D2FB2E0000",
        {
            "lpp_accelerometer_x_6": 1.234,
            "lpp_accelerometer_y_6": -1.234,
            "lpp_accelerometer_z_6": 0.0,
        },
    ),
    # Spec example 4: GPS, 0.0001° and 0.01 m per bit, signed, 3 bytes each.
    (
        "018806765FF2960A0003E8",
        {
            "lpp_latitude_1": 42.3519,
            "lpp_longitude_1": -87.9094,
            "lpp_altitude_1": 10.0,
        },
    ),
    ("010001", {"lpp_digital_input_1": 1}),
    ("020100", {"lpp_digital_output_2": 0}),
    ("0302012C", {"lpp_analog_input_3": 3.0}),
    ("0402FF38", {"lpp_analog_input_4": -2.0}),
    ("05030001", {"lpp_analog_output_5": 0.01}),
    ("066501F4", {"lpp_illuminance_6": 500}),
    ("076601", {"lpp_presence_7": True}),
    ("076600", {"lpp_presence_7": False}),
    ("086861", {"lpp_humidity_8": 48.5}),
    ("0973277F", {"lpp_barometer_9": 1011.1}),
    (
        "0A860064FF9C0000",
        {
            "lpp_gyrometer_x_10": 1.0,
            "lpp_gyrometer_y_10": -1.0,
            "lpp_gyrometer_z_10": 0.0,
        },
    ),
    # Channel 255 and the largest unsigned values.
    ("FF65FFFF", {"lpp_illuminance_255": 65535}),
    # The same channel and type twice: the later value counts.
    ("0167000A0167000B", {"lpp_temperature_1": 1.1}),
]


@pytest.mark.parametrize(("payload", "expected"), LPP_VECTORS)
def test_lpp_vectors(payload: str, expected: dict[str, Any]) -> None:
    """Each LPP type decodes with the resolution and sign of the spec."""
    readings = decode_cayenne_lpp(2, bytes.fromhex(payload), None)
    assert _values(readings) == expected
    for key, value in expected.items():
        assert type(readings[key].value) is type(value)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "empty"),
        ("01", "truncated record"),
        ("019900", "unknown LPP type 153"),
        ("016701", "truncated LPP type 103"),
        ("0167000A02", "truncated record"),
        ("2A", "truncated record"),
    ],
)
def test_lpp_rejects(payload: str, reason: str) -> None:
    """Bytes that do not parse completely are not LPP."""
    with pytest.raises(DecodeError, match=reason):
        decode_cayenne_lpp(2, bytes.fromhex(payload), None)


@pytest.mark.parametrize(
    ("key", "device_class", "unit", "binary"),
    [
        ("lpp_temperature_3", "temperature", "°C", False),
        ("lpp_humidity_8", "humidity", "%", False),
        ("lpp_illuminance_6", "illuminance", "lx", False),
        ("lpp_barometer_9", "atmospheric_pressure", "hPa", False),
        ("lpp_altitude_1", "distance", "m", False),
        ("lpp_latitude_1", None, "°", False),
        ("lpp_accelerometer_x_6", None, "G", False),
        ("lpp_gyrometer_z_10", None, "°/s", False),
        ("lpp_digital_input_1", None, None, False),
        ("lpp_presence_7", "occupancy", None, True),
    ],
)
def test_lpp_descriptions(
    key: str, device_class: str | None, unit: str | None, binary: bool
) -> None:
    """Each LPP channel is described with its device class, unit and channel."""
    description = describe_reading(key)
    assert description is not None
    assert description.device_class == device_class
    assert description.unit == unit
    assert description.binary is binary
    assert description.decoder is Decoder.CAYENNE_LPP
    assert description.translation_placeholders == {"channel": key.rsplit("_", 1)[1]}


# Payload formatter


def test_formatter_flattens() -> None:
    """Numbers, strings and booleans become readings with readable names."""
    readings = decode_payload_formatter(
        1,
        b"",
        {
            "Temperature": 21.83,
            "batteryVoltage": 3.61,
            "battery_level": 87,
            "Device Status": {"Sensor Fault": "No", "door_open": True},
            "readings": [1, 2],
            "nothing": None,
            "": 5,
        },
    )
    assert {key: (r.value, r.name) for key, r in readings.items()} == {
        "formatter_number_temperature": (21.83, "Temperature"),
        "formatter_number_battery_voltage": (3.61, "Battery voltage"),
        "formatter_number_battery_level": (87, "Battery level"),
        "formatter_text_device_status_sensor_fault": (
            "No",
            "Device Status Sensor Fault",
        ),
        "formatter_flag_device_status_door_open": (True, "Device Status Door open"),
        "formatter_number_readings_1": (1, "Readings 1"),
        "formatter_number_readings_2": (2, "Readings 2"),
    }


def test_formatter_limits() -> None:
    """Long texts are cut, deep nesting and huge objects are bounded."""
    readings = decode_payload_formatter(
        1,
        b"",
        {
            "text": "x" * 1000,
            "deep": {"a": {"b": {"c": {"d": 1}}}},
            "many": {str(index): index for index in range(200)},
            "nan": float("nan"),
        },
    )
    assert len(readings["formatter_text_text"].value) == 255  # type: ignore[arg-type]
    assert not any(key.startswith("formatter_number_deep") for key in readings)
    assert "formatter_number_nan" not in readings
    assert len(readings) == MAX_FORMATTER_READINGS


@pytest.mark.parametrize("decoded", [None, {}])
def test_formatter_needs_output(decoded: dict[str, Any] | None) -> None:
    """Without a payload formatter there is nothing to show."""
    with pytest.raises(DecodeError):
        decode_payload_formatter(1, b"\x01", decoded)


@pytest.mark.parametrize(
    ("slug", "device_class", "unit"),
    [
        ("temperature", "temperature", "°C"),
        ("air_temp", "temperature", "°C"),
        ("temperature_f", "temperature", "°F"),
        ("humidity", "humidity", "%"),
        ("battery_voltage", "voltage", "V"),
        ("battery_mv", "voltage", "mV"),
        ("battery_level", "battery", "%"),
        ("co2", "carbon_dioxide", "ppm"),
        ("rssi", "signal_strength", "dBm"),
        ("battery", None, None),
        ("distance", None, None),
        ("temperature_count", None, None),
        # Field names of TTS's own CayenneLPP formatter end in the channel.
        ("temperature_1", "temperature", "°C"),
        ("relative_humidity_2", "humidity", "%"),
        ("barometric_pressure_3", "atmospheric_pressure", "hPa"),
        ("luminosity_4", "illuminance", "lx"),
        ("analog_in_5", None, None),
        ("12", None, None),
    ],
)
def test_unit_guesses(slug: str, device_class: str | None, unit: str | None) -> None:
    """Units are guessed only from names that leave no doubt."""
    assert guess_unit(slug) == (device_class, unit)


def test_formatter_descriptions() -> None:
    """Formatter keys say their kind; names come from the field."""
    number = describe_reading("formatter_number_temperature", "Temperature")
    assert number is not None
    assert number.name == "Temperature"
    assert number.unit == "°C"
    assert number.state_class == "measurement"
    text = describe_reading("formatter_text_battery_status")
    assert text is not None
    assert text.name == "Battery status"
    assert text.state_class is None
    flag = describe_reading("formatter_flag_door_open")
    assert flag is not None
    assert flag.binary


# Raw and the registry


def test_raw() -> None:
    """Uppercase hex, nothing for an empty payload."""
    assert _values(decode_raw(3, b"\x01\xab", None)) == {"raw_payload": "01AB"}
    assert decode_raw(0, b"", None) == {}
    description = describe_reading("raw_payload")
    assert description is not None
    assert description.entity_category == "diagnostic"


@pytest.mark.parametrize(
    ("f_port", "payload", "decoded", "expected_key"),
    [
        (1, bytes.fromhex("0367011005"), {"t": 1}, "formatter_number_t"),
        (2, bytes.fromhex("03670110"), None, "lpp_temperature_3"),
        (1, b"\x2a", None, "feather_value"),
        (2, b"\x2a", None, "raw_payload"),
        (1, bytes.fromhex("0399"), {}, "raw_payload"),
    ],
)
def test_auto_order(
    f_port: int, payload: bytes, decoded: dict[str, Any] | None, expected_key: str
) -> None:
    """Formatter output first, then LPP, then the Feather byte, then raw."""
    assert expected_key in decode(Decoder.AUTO, f_port, payload, decoded)


def test_chosen_decoder_is_used_alone() -> None:
    """A chosen decoder does not fall back."""
    assert decode(Decoder.RAW, 1, b"\x2a", None) == {"raw_payload": Reading("2A")}
    with pytest.raises(DecodeError):
        decode(Decoder.CAYENNE_LPP, 1, b"\x2a", None)


@pytest.mark.parametrize(
    "key",
    ["unknown", "lpp_teleport_1", "lpp_temperature", "formatter_number_", "x_1"],
)
def test_unknown_keys(key: str) -> None:
    """Keys no decoder makes describe nothing."""
    assert describe_reading(key) is None


# Fuzzing

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()
    | st.text(max_size=300),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=20), children, max_size=6),
    max_leaves=40,
)


def _assert_well_formed(readings: dict[str, Reading]) -> None:
    for key, reading in readings.items():
        description = describe_reading(key, reading.name)
        assert description is not None, key
        assert description.binary is isinstance(reading.value, bool)
        if isinstance(reading.value, str):
            assert len(reading.value) <= 255


@settings(max_examples=fuzz_examples(2000))
@given(
    st.sampled_from(list(Decoder)),
    st.integers(0, 255),
    st.binary(max_size=300),
    st.none() | st.dictionaries(st.text(max_size=20), JSON_VALUES, max_size=8),
)
def test_fuzz_every_decoder(
    decoder: Decoder, f_port: int, payload: bytes, decoded: dict[str, Any] | None
) -> None:
    """Any input decodes into describable readings or raises DecodeError."""
    try:
        readings = decode(decoder, f_port, payload, decoded)
    except DecodeError:
        assert decoder is not Decoder.AUTO
        return
    _assert_well_formed(readings)


@settings(max_examples=fuzz_examples(1000))
@given(
    st.lists(
        st.tuples(
            st.integers(0, 255), st.sampled_from(sorted(LPP_TYPES)), st.randoms()
        ),
        min_size=1,
        max_size=10,
    )
)
def test_fuzz_lpp_round_trip(records: list[tuple[int, int, Any]]) -> None:
    """Any well-formed LPP frame parses completely, one reading per field."""
    payload = b"".join(
        bytes([channel, type_id]) + random.randbytes(LPP_TYPES[type_id].size)
        for channel, type_id, random in records
    )
    readings = DECODERS[Decoder.CAYENNE_LPP](2, payload, None)
    expected_keys = {
        f"lpp_{field.kind}_{channel}"
        for channel, type_id, _ in records
        for field in LPP_TYPES[type_id].fields
    }
    assert set(readings) == expected_keys
    _assert_well_formed(readings)


def test_raw_payload_fits_a_state() -> None:
    """A state holds 255 characters: a 242-byte payload is cut, not refused."""
    from custom_components.ttn_gateway.decoders.raw import RAW_KEY, decode_raw

    assert decode_raw(1, bytes(127), None)[RAW_KEY].value == "00" * 127
    long = decode_raw(1, bytes(range(242)), None)[RAW_KEY].value
    assert isinstance(long, str)
    assert len(long) <= 255
    assert long == bytes(range(126)).hex().upper() + "…"


# Shapes of real codecs (Device Repository examples, see
# test_device_repository_examples.py for the whole corpus)


def _shown(decoded: dict[str, Any]) -> dict[str, tuple[Any, str | None, Any, Any]]:
    readings = decode_payload_formatter(1, b"", decoded)
    shown: dict[str, tuple[Any, str | None, Any, Any]] = {}
    for key, reading in readings.items():
        description = describe_reading(key, reading.name)
        assert description is not None
        assert description.name is not None
        shown[description.name] = (
            reading.value,
            description.unit,
            description.device_class,
            description.state_class,
        )
    return shown


@pytest.mark.parametrize(
    ("decoded", "name", "expected"),
    [
        # Decentlab (vendor/decentlab/dl-sht35-codec.yaml).
        (
            {
                "battery_voltage": {
                    "displayName": "Battery voltage",
                    "unit": "V",
                    "value": 3.168,
                }
            },
            "Battery voltage",
            (3.168, "V", "voltage", "measurement"),
        ),
        # A bare {value, unit}: named after its key.
        (
            {"waterTemp": {"value": 12.5, "unit": "℃"}},
            "Water temp",
            (12.5, "°C", "temperature", "measurement"),
        ),
        # Adeunis (vendor/adeunis/comfort-co2-codec.yaml): values newest first.
        (
            {"co2": {"unit": "ppm", "values": [420, 421]}},
            "Co2",
            (420, "ppm", "carbon_dioxide", "measurement"),
        ),
        # The name decides among the classes a unit fits.
        (
            {"p": {"name": "Barometric pressure", "unit": "Pa", "value": 96412}},
            "Barometric pressure",
            (96412, "Pa", "atmospheric_pressure", "measurement"),
        ),
        (
            {"soil": {"name": "Soil moisture", "unit": "%", "value": 33}},
            "Soil moisture",
            (33, "%", "moisture", "measurement"),
        ),
        # A unit no device class takes: kept as it is, no class.
        (
            {"o2": {"name": "Dissolved oxygen", "unit": "mg/L", "value": 7.1}},
            "Dissolved oxygen",
            (7.1, "mg/L", None, "measurement"),
        ),
        # An energy meter's unit: total increasing.
        (
            {"energy": {"name": "Energy", "unit": "kWh", "value": 1234.5}},
            "Energy",
            (1234.5, "kWh", "energy", "total_increasing"),
        ),
        # Numbers sent as text.
        (
            {"temperature": "24.1"},
            "Temperature",
            (24.1, "°C", "temperature", "measurement"),
        ),
        ({"vbat": "3.6 V"}, "Vbat", (3.6, "V", "voltage", "measurement")),
        ({"status": "3 ok"}, "Status", ("3 ok", None, None, None)),
        ({"firmware": "v1.2"}, "Firmware", ("v1.2", None, None, None)),
    ],
)
def test_records_with_units(
    decoded: dict[str, Any], name: str, expected: tuple[Any, ...]
) -> None:
    """One sensor per record, with its unit and the class unit and name imply."""
    shown = _shown(decoded)
    assert shown[name] == expected
    assert len(shown) == 1


def test_typed_record_lists_are_named() -> None:
    """Lists of named records give named readings, not list positions."""
    shown = _shown(
        {
            # SenseCAP (vendor/sensecap/sensecap2120-8-in-1-codec.yaml).
            "messages": [
                [
                    {
                        "type": "report_telemetry",
                        "measurementId": 4097,
                        "measurementValue": 21.4,
                    },
                    {
                        "type": "report_telemetry",
                        "measurementId": "4098",
                        "measurementValue": 31.4,
                    },
                ]
            ],
            "sensors": [
                {"type": "Air temperature", "value": 20.5, "unit": "°C"},
                {"type": "Air temperature", "value": 20.7, "unit": "°C"},
                {"name": "Light", "measurementValue": 120, "unit": "lux"},
            ],
        }
    )
    assert shown == {
        "Air temperature": (21.4, "°C", "temperature", "measurement"),
        "Air humidity": (31.4, "%", "humidity", "measurement"),
        # Two records of one name: numbered, each with its unit.
        "Air temperature 2": (20.5, "°C", "temperature", "measurement"),
        "Air temperature 3": (20.7, "°C", "temperature", "measurement"),
        "Light": (120, "lx", "illuminance", "measurement"),
    }
    readings = decode_payload_formatter(
        1, b"", {"messages": [{"type": "x", "value": 1}]}
    )
    assert not any("messages" in key for key in readings)


def test_record_keys_keep_the_unit_for_a_restart() -> None:
    """The unit is in the key: a reading is described without its uplink."""
    readings = decode_payload_formatter(
        1, b"", {"t": {"displayName": "Air temperature", "unit": "°C", "value": 21}}
    )
    (key,) = readings
    description = describe_reading(key, "Air temperature")
    assert description is not None
    assert (description.unit, description.device_class) == ("°C", "temperature")
    # Fields without a record keep the keys they had.
    assert set(decode_payload_formatter(1, b"", {"temperature": 21.5})) == {
        "formatter_number_temperature"
    }


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("°C", "°C"),
        ("℃", "°C"),
        ("%RH", "%"),
        ("lux", "lx"),
        ("hPa", "hPa"),
        ("mbar", "mbar"),
        ("uS/cm", "µS/cm"),
        ("dS/m", "mS/cm"),
        ("m3", "m³"),
        ("kWh", "kWh"),
        ("mg/L", "mg/L"),
        ("", None),
        ("x" * 17, None),
    ],
)
def test_unit_spellings(text: str, unit: str | None) -> None:
    """Codecs' spellings become Home Assistant's units."""
    assert parse_unit(text) == unit
