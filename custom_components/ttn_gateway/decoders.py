"""Payload decoders: an uplink's bytes (or TTS's decoded payload) as named readings.

Each decoder is a pure function of the FPort, the payload bytes and the
payload formatter's output. It returns readings keyed by a stable key, or
raises DecodeError when the payload is not in its format. A reading's key
alone says what it is (``describe_reading``), so the entities of a device
can be rebuilt from the entity registry after a restart, before any uplink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
import math
import re
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    CONCENTRATION_PARTS_PER_MILLION,
    DEGREE,
    LIGHT_LUX,
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfLength,
    UnitOfPressure,
    UnitOfTemperature,
)
from homeassistant.util import slugify

type ReadingValue = float | int | str | bool

# The seed sketch sends one unsigned byte on FPort 1.
FEATHER_FPORT = 1
# Limits that keep a runaway payload formatter from flooding Home Assistant.
MAX_FORMATTER_READINGS = 64
MAX_FORMATTER_DEPTH = 4
MAX_TEXT_LENGTH = 255
MAX_SLUG_LENGTH = 64

FEATHER_KEY = "feather_value"
RAW_KEY = "raw_payload"
_LPP_PREFIX = "lpp_"
_FORMATTER_NUMBER = "formatter_number_"
_FORMATTER_TEXT = "formatter_text_"
_FORMATTER_FLAG = "formatter_flag_"


class Decoder(StrEnum):
    """The decoders a device can use; AUTO picks one per uplink."""

    AUTO = "auto"
    FEATHER_M0 = "feather_m0"
    CAYENNE_LPP = "cayenne_lpp"
    PAYLOAD_FORMATTER = "payload_formatter"
    RAW = "raw"


class DecodeError(ValueError):
    """The payload is not in the decoder's format."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One decoded value; name is set only for payload formatter fields."""

    value: ReadingValue
    name: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ReadingDescription:
    """What a reading is: how Home Assistant shows it."""

    key: str
    decoder: Decoder
    binary: bool = False
    name: str | None = None
    translation_key: str | None = None
    translation_placeholders: Mapping[str, str] | None = None
    device_class: SensorDeviceClass | BinarySensorDeviceClass | None = None
    unit: str | None = None
    state_class: SensorStateClass | None = None
    entity_category: EntityCategory | None = None
    precision: int | None = None


type Readings = dict[str, Reading]
type DecoderFunction = Callable[[int, bytes, Mapping[str, Any] | None], Readings]


# ---------------------------------------------------------------------------
# Adafruit Feather M0 (the seed sketch)
# ---------------------------------------------------------------------------


def decode_feather_m0(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """One unsigned byte on FPort 1."""
    if f_port != FEATHER_FPORT or len(payload) != 1:
        raise DecodeError("not one byte on FPort 1")
    return {FEATHER_KEY: Reading(payload[0])}


# ---------------------------------------------------------------------------
# Cayenne LPP v1
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LppField:
    """One value of an LPP data type: where it sits and how to scale it."""

    kind: str
    offset: int
    size: int
    signed: bool
    divisor: int
    # Decimal places of the resolution (0.5 → 1, 0.01 → 2).
    digits: int


@dataclass(frozen=True, slots=True)
class _LppType:
    size: int
    fields: tuple[_LppField, ...]


def _lpp_axes(kind: str, divisor: int, digits: int) -> tuple[_LppField, ...]:
    return tuple(
        _LppField(f"{kind}_{axis}", index * 2, 2, True, divisor, digits)
        for index, axis in enumerate("xyz")
    )


# Type number (IPSO object ID - 3200) → size and fields, from the LPP v1 spec.
LPP_TYPES: dict[int, _LppType] = {
    0: _LppType(1, (_LppField("digital_input", 0, 1, False, 1, 0),)),
    1: _LppType(1, (_LppField("digital_output", 0, 1, False, 1, 0),)),
    2: _LppType(2, (_LppField("analog_input", 0, 2, True, 100, 2),)),
    3: _LppType(2, (_LppField("analog_output", 0, 2, True, 100, 2),)),
    101: _LppType(2, (_LppField("illuminance", 0, 2, False, 1, 0),)),
    102: _LppType(1, (_LppField("presence", 0, 1, False, 1, 0),)),
    103: _LppType(2, (_LppField("temperature", 0, 2, True, 10, 1),)),
    104: _LppType(1, (_LppField("humidity", 0, 1, False, 2, 1),)),
    113: _LppType(6, _lpp_axes("accelerometer", 1000, 3)),
    115: _LppType(2, (_LppField("barometer", 0, 2, False, 10, 1),)),
    134: _LppType(6, _lpp_axes("gyrometer", 100, 2)),
    136: _LppType(
        9,
        (
            _LppField("latitude", 0, 3, True, 10000, 4),
            _LppField("longitude", 3, 3, True, 10000, 4),
            _LppField("altitude", 6, 3, True, 100, 2),
        ),
    ),
}


def decode_cayenne_lpp(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """Channel, type and value records, back to back; all bytes must parse."""
    if not payload:
        raise DecodeError("empty payload")
    readings: Readings = {}
    position = 0
    while position < len(payload):
        if position + 2 > len(payload):
            raise DecodeError(f"truncated record at byte {position}")
        channel, type_id = payload[position], payload[position + 1]
        if (lpp_type := LPP_TYPES.get(type_id)) is None:
            raise DecodeError(f"unknown LPP type {type_id} at byte {position + 1}")
        data = payload[position + 2 : position + 2 + lpp_type.size]
        if len(data) < lpp_type.size:
            raise DecodeError(f"truncated LPP type {type_id} at byte {position + 1}")
        for lpp_field in lpp_type.fields:
            raw = int.from_bytes(
                data[lpp_field.offset : lpp_field.offset + lpp_field.size],
                "big",
                signed=lpp_field.signed,
            )
            value: ReadingValue
            if lpp_field.kind == "presence":
                value = raw != 0
            elif lpp_field.divisor == 1:
                value = raw
            else:
                value = round(raw / lpp_field.divisor, lpp_field.digits)
            readings[f"{_LPP_PREFIX}{lpp_field.kind}_{channel}"] = Reading(value)
        position += 2 + lpp_type.size
    return readings


# ---------------------------------------------------------------------------
# TTS payload formatter output (decoded_payload)
# ---------------------------------------------------------------------------

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SEPARATORS = re.compile(r"[\s_\-.]+")


def _readable(segment: str) -> str:
    """``batteryVoltage`` and ``battery_voltage`` → ``Battery voltage``."""
    words = _WORD_SEPARATORS.split(_CAMEL_BOUNDARY.sub(" ", segment).strip())
    text = " ".join(word for word in words if word)
    if not text:
        return segment
    if segment.islower() or "_" in segment or _CAMEL_BOUNDARY.search(segment):
        text = text.lower()
    return text[:1].upper() + text[1:]


@lru_cache(maxsize=2048)
def _slug(path: tuple[str, ...]) -> str:
    return slugify(
        "_".join(_CAMEL_BOUNDARY.sub("_", part) for part in path), separator="_"
    )[:MAX_SLUG_LENGTH]


def decode_payload_formatter(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """The TTS payload formatter's output, flattened into readings."""
    if not decoded:
        raise DecodeError("no decoded_payload")
    readings: Readings = {}

    def add(path: tuple[str, ...], value: object) -> None:
        if len(readings) >= MAX_FORMATTER_READINGS:
            return
        if isinstance(value, Mapping):
            if len(path) < MAX_FORMATTER_DEPTH:
                for key, item in value.items():
                    add((*path, str(key)), item)
            return
        if isinstance(value, list):
            if len(path) < MAX_FORMATTER_DEPTH:
                for index, item in enumerate(value, start=1):
                    add((*path, str(index)), item)
            return
        if not (slug := _slug(path)):
            return
        prefix: str
        if isinstance(value, bool):
            prefix = _FORMATTER_FLAG
        elif isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                return
            prefix = _FORMATTER_NUMBER
        elif isinstance(value, str):
            prefix, value = _FORMATTER_TEXT, value[:MAX_TEXT_LENGTH]
        else:
            return
        name = " ".join(_readable(part) for part in path)[:MAX_TEXT_LENGTH]
        readings[f"{prefix}{slug}"] = Reading(value, name)

    for key, item in decoded.items():
        add((str(key),), item)
    return readings


# ---------------------------------------------------------------------------
# Raw bytes
# ---------------------------------------------------------------------------


def decode_raw(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """The payload as uppercase hex; nothing for an empty payload."""
    return {RAW_KEY: Reading(payload.hex().upper())} if payload else {}


DECODERS: dict[Decoder, DecoderFunction] = {
    Decoder.FEATHER_M0: decode_feather_m0,
    Decoder.CAYENNE_LPP: decode_cayenne_lpp,
    Decoder.PAYLOAD_FORMATTER: decode_payload_formatter,
    Decoder.RAW: decode_raw,
}
# The order in which AUTO tries them; raw always succeeds.
AUTO_ORDER = (
    Decoder.PAYLOAD_FORMATTER,
    Decoder.CAYENNE_LPP,
    Decoder.FEATHER_M0,
    Decoder.RAW,
)


def decode(
    decoder: Decoder,
    f_port: int,
    payload: bytes,
    decoded: Mapping[str, Any] | None,
) -> Readings:
    """Decode with the chosen decoder, or the first that fits for AUTO."""
    if decoder is not Decoder.AUTO:
        return DECODERS[decoder](f_port, payload, decoded)
    for candidate in AUTO_ORDER:
        try:
            return DECODERS[candidate](f_port, payload, decoded)
        except DecodeError:
            continue
    raise DecodeError("no decoder fits")  # pragma: no cover - raw always fits


# ---------------------------------------------------------------------------
# What a reading key means
# ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _LppKind:
    translation_key: str
    binary: bool = False
    device_class: SensorDeviceClass | BinarySensorDeviceClass | None = None
    unit: str | None = None
    precision: int | None = None
    state_class: SensorStateClass | None = SensorStateClass.MEASUREMENT


_LPP_KINDS: dict[str, _LppKind] = {
    "digital_input": _LppKind(translation_key="lpp_digital_input"),
    "digital_output": _LppKind(translation_key="lpp_digital_output"),
    "analog_input": _LppKind(translation_key="lpp_analog_input", precision=2),
    "analog_output": _LppKind(translation_key="lpp_analog_output", precision=2),
    "illuminance": _LppKind(
        translation_key="lpp_illuminance",
        device_class=SensorDeviceClass.ILLUMINANCE,
        unit=LIGHT_LUX,
    ),
    "presence": _LppKind(
        translation_key="lpp_presence",
        binary=True,
        device_class=BinarySensorDeviceClass.OCCUPANCY,
        state_class=None,
    ),
    "temperature": _LppKind(
        translation_key="lpp_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        unit=UnitOfTemperature.CELSIUS,
        precision=1,
    ),
    "humidity": _LppKind(
        translation_key="lpp_humidity",
        device_class=SensorDeviceClass.HUMIDITY,
        unit=PERCENTAGE,
        precision=1,
    ),
    "accelerometer_x": _LppKind(
        translation_key="lpp_accelerometer_x", unit="G", precision=3
    ),
    "accelerometer_y": _LppKind(
        translation_key="lpp_accelerometer_y", unit="G", precision=3
    ),
    "accelerometer_z": _LppKind(
        translation_key="lpp_accelerometer_z", unit="G", precision=3
    ),
    "barometer": _LppKind(
        translation_key="lpp_barometer",
        device_class=SensorDeviceClass.ATMOSPHERIC_PRESSURE,
        unit=UnitOfPressure.HPA,
        precision=1,
    ),
    "gyrometer_x": _LppKind(
        translation_key="lpp_gyrometer_x", unit=f"{DEGREE}/s", precision=2
    ),
    "gyrometer_y": _LppKind(
        translation_key="lpp_gyrometer_y", unit=f"{DEGREE}/s", precision=2
    ),
    "gyrometer_z": _LppKind(
        translation_key="lpp_gyrometer_z", unit=f"{DEGREE}/s", precision=2
    ),
    "latitude": _LppKind(
        translation_key="lpp_latitude", unit=DEGREE, precision=4, state_class=None
    ),
    "longitude": _LppKind(
        translation_key="lpp_longitude", unit=DEGREE, precision=4, state_class=None
    ),
    "altitude": _LppKind(
        translation_key="lpp_altitude",
        device_class=SensorDeviceClass.DISTANCE,
        unit=UnitOfLength.METERS,
        precision=2,
    ),
}
_LPP_KEY = re.compile(r"^lpp_([a-z_]+?)_(\d{1,3})$")


@dataclass(frozen=True, slots=True)
class _Guess:
    device_class: SensorDeviceClass | None
    unit: str


# Units guessed from a payload formatter field's name, only where the name
# leaves no doubt. Checked on the slug's last words: (words, guess).
_UNIT_GUESSES: tuple[tuple[tuple[str, ...], _Guess], ...] = (
    (
        ("temperature", "f"),
        _Guess(SensorDeviceClass.TEMPERATURE, UnitOfTemperature.FAHRENHEIT),
    ),
    (
        ("temperature", "c"),
        _Guess(SensorDeviceClass.TEMPERATURE, UnitOfTemperature.CELSIUS),
    ),
    (
        ("temperature",),
        _Guess(SensorDeviceClass.TEMPERATURE, UnitOfTemperature.CELSIUS),
    ),
    (("temp",), _Guess(SensorDeviceClass.TEMPERATURE, UnitOfTemperature.CELSIUS)),
    (("humidity",), _Guess(SensorDeviceClass.HUMIDITY, PERCENTAGE)),
    (
        ("voltage", "mv"),
        _Guess(SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.MILLIVOLT),
    ),
    (("mv",), _Guess(SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.MILLIVOLT)),
    (("voltage",), _Guess(SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.VOLT)),
    (("vbat",), _Guess(SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.VOLT)),
    (("ma",), _Guess(SensorDeviceClass.CURRENT, UnitOfElectricCurrent.MILLIAMPERE)),
    (("battery", "percent"), _Guess(SensorDeviceClass.BATTERY, PERCENTAGE)),
    (("battery", "percentage"), _Guess(SensorDeviceClass.BATTERY, PERCENTAGE)),
    (("battery", "level"), _Guess(SensorDeviceClass.BATTERY, PERCENTAGE)),
    (("battery", "pct"), _Guess(SensorDeviceClass.BATTERY, PERCENTAGE)),
    (("co2",), _Guess(SensorDeviceClass.CO2, CONCENTRATION_PARTS_PER_MILLION)),
    (("illuminance",), _Guess(SensorDeviceClass.ILLUMINANCE, LIGHT_LUX)),
    (("lux",), _Guess(SensorDeviceClass.ILLUMINANCE, LIGHT_LUX)),
    (("luminosity",), _Guess(SensorDeviceClass.ILLUMINANCE, LIGHT_LUX)),
    (
        ("barometric", "pressure"),
        _Guess(SensorDeviceClass.ATMOSPHERIC_PRESSURE, UnitOfPressure.HPA),
    ),
    (("hpa",), _Guess(SensorDeviceClass.ATMOSPHERIC_PRESSURE, UnitOfPressure.HPA)),
    (
        ("rssi",),
        _Guess(SensorDeviceClass.SIGNAL_STRENGTH, SIGNAL_STRENGTH_DECIBELS_MILLIWATT),
    ),
    (("snr",), _Guess(None, SIGNAL_STRENGTH_DECIBELS)),
    (("percent",), _Guess(None, PERCENTAGE)),
    (("latitude",), _Guess(None, DEGREE)),
    (("longitude",), _Guess(None, DEGREE)),
)


def guess_unit(slug: str) -> tuple[SensorDeviceClass | None, str | None]:
    """Device class and unit of a numeric field, from its name; else None."""
    words = tuple(slug.split("_"))
    # TTS's own CayenneLPP formatter appends the channel: temperature_1.
    while len(words) > 1 and words[-1].isdecimal():
        words = words[:-1]
    for suffix, guess in _UNIT_GUESSES:
        if words[-len(suffix) :] == suffix:
            return guess.device_class, guess.unit
    return None, None


def _slug_name(slug: str) -> str:
    return _readable(slug)


@lru_cache(maxsize=4096)
def describe_reading(key: str, name: str | None = None) -> ReadingDescription | None:
    """What the reading with this key is; None for keys no decoder makes.

    name is the readable name of a payload formatter field (from the uplink
    or from the entity registry); without it one is made from the key.
    """
    if key == FEATHER_KEY:
        return ReadingDescription(
            key=key,
            decoder=Decoder.FEATHER_M0,
            translation_key="feather_value",
            state_class=SensorStateClass.MEASUREMENT,
        )
    if key == RAW_KEY:
        return ReadingDescription(
            key=key,
            decoder=Decoder.RAW,
            translation_key="raw_payload",
            entity_category=EntityCategory.DIAGNOSTIC,
        )
    if match := _LPP_KEY.match(key):
        kind_name, channel = match.groups()
        if (kind := _LPP_KINDS.get(kind_name)) is None:
            return None
        return ReadingDescription(
            key=key,
            decoder=Decoder.CAYENNE_LPP,
            binary=kind.binary,
            translation_key=kind.translation_key,
            translation_placeholders={"channel": channel},
            device_class=kind.device_class,
            unit=kind.unit,
            state_class=kind.state_class,
            precision=kind.precision,
        )
    for prefix in (_FORMATTER_NUMBER, _FORMATTER_TEXT, _FORMATTER_FLAG):
        if key.startswith(prefix) and (slug := key[len(prefix) :]):
            description = ReadingDescription(
                key=key,
                decoder=Decoder.PAYLOAD_FORMATTER,
                binary=prefix == _FORMATTER_FLAG,
                name=name or _slug_name(slug),
            )
            if prefix != _FORMATTER_NUMBER:
                return description
            device_class, unit = guess_unit(slug)
            return ReadingDescription(
                key=key,
                decoder=Decoder.PAYLOAD_FORMATTER,
                name=description.name,
                device_class=device_class,
                unit=unit,
                state_class=SensorStateClass.MEASUREMENT,
            )
    return None
