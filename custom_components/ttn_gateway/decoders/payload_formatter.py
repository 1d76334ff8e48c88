"""The payload formatter decoder: TTS's ``decoded_payload``, flattened into readings.

Keys come from whoever wrote the formatter (or published the message), so
every key is cut to the slug limit before any other work on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
import math
import re
from typing import Any

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    DEGREE,
    LIGHT_LUX,
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfPressure,
    UnitOfTemperature,
)
from homeassistant.util import slugify

from ..compat import PARTS_PER_MILLION
from .base import (
    DecodeError,
    Decoder,
    Reading,
    ReadingDescription,
    Readings,
    ReadingValue,
)
from .sensecap import sensecap_measurement
from .units import (
    device_class_for,
    parse_number,
    parse_unit,
    state_class_for,
)

# Limits that keep a runaway payload formatter from flooding Home Assistant.
MAX_FORMATTER_READINGS = 64
MAX_FORMATTER_DEPTH = 4
MAX_TEXT_LENGTH = 255
MAX_SLUG_LENGTH = 64

FORMATTER_NUMBER = "formatter_number_"
FORMATTER_TEXT = "formatter_text_"
FORMATTER_FLAG = "formatter_flag_"
# A number whose record names its unit: formatter_measure_<unit, hex>__<slug>.
FORMATTER_MEASURE = "formatter_measure_"
_PREFIXES = (FORMATTER_NUMBER, FORMATTER_TEXT, FORMATTER_FLAG)

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SEPARATORS = re.compile(r"[\s_\-.]+")

# Slug words that make a field a position, redacted in diagnostics.
_LOCATION_WORDS = frozenset(
    {"latitude", "lat", "lon", "lng", "longitude", "location", "alt", "altitude"}
)


def _readable(segment: str) -> str:
    """``batteryVoltage`` and ``battery_voltage`` → ``Battery voltage``."""
    words = _WORD_SEPARATORS.split(_CAMEL_BOUNDARY.sub(" ", segment).strip())
    text = " ".join(word for word in words if word)
    if not text:
        return segment
    if segment.islower() or "_" in segment or _CAMEL_BOUNDARY.search(segment):
        text = text.lower()
    return text[:1].upper() + text[1:]


# The path's parts are cut to MAX_SLUG_LENGTH first, so the cache holds at
# most 2048 keys of at most MAX_FORMATTER_DEPTH * MAX_SLUG_LENGTH characters.
@lru_cache(maxsize=2048)
def _slug(path: tuple[str, ...]) -> str:
    return slugify(
        "_".join(_CAMEL_BOUNDARY.sub("_", part) for part in path), separator="_"
    )[:MAX_SLUG_LENGTH]


# Keys that name a record (``{name, value, unit}``), most telling first.
_NAME_KEYS = (
    "displayName",
    "display_name",
    "name",
    "label",
    "type",
    "measurement",
    # IMST's OBIS lists (vendor/imst/ioke868-codec.yaml).
    "OBIS_ID",
)
_VALUE_KEYS = ("value", "measurementValue", "values")
_UNIT_KEY = "unit"
_RECORD_KEYS = frozenset((*_NAME_KEYS, *_VALUE_KEYS, _UNIT_KEY, "measurementId"))


@dataclass(frozen=True, slots=True)
class _Record:
    """A value with its name and unit, as many codecs write one."""

    value: object
    name: str | None
    unit: str | None


def _text(value: object) -> str | None:
    return value.strip()[:MAX_TEXT_LENGTH] or None if isinstance(value, str) else None


def _record(item: Mapping[str, Any]) -> _Record | None:
    """A record: a value with its name or unit; else None.

    ``{value, unit}``, ``{displayName, unit, value}``, ``{name, unit, values}``,
    ``{type, value}``, SenseCAP's ``{measurementId, measurementValue}``…
    """
    value_key = next((key for key in _VALUE_KEYS if key in item), None)
    if value_key is None:
        return None
    value = item[value_key]
    if isinstance(value, list):
        # Series list the newest first (Adeunis: "values: [t=0, t-1, ...]").
        value = next(
            (
                entry
                for entry in value[:MAX_FORMATTER_READINGS]
                if not isinstance(entry, Mapping | list)
            ),
            None,
        )
    if isinstance(value, Mapping | list) or value is None:
        return None
    unit = _text(item.get(_UNIT_KEY))
    name: str | None = None
    if (known := sensecap_measurement(item.get("measurementId"))) is not None:
        name, unit = known.name, unit or known.unit
    else:
        name = next(
            (text for key in _NAME_KEYS if (text := _text(item.get(key)))), None
        )
    if unit is None and name is None:
        return None
    return _Record(value, name, unit)


def _item_label(item: object) -> str | None:
    """What a list entry calls itself (its name or type), for its readings' names."""
    if not isinstance(item, Mapping):
        return None
    if (record := _record(item)) is not None:
        return record.name
    return next((text for key in _NAME_KEYS if (text := _text(item.get(key)))), None)


def measure_key(unit: str, slug: str) -> str:
    """The key of a reading whose record names its unit: the unit is in the key."""
    code = unit.encode().hex()
    return f"{FORMATTER_MEASURE}{code}__{slug}"


def decode_payload_formatter(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """The TTS payload formatter's output, flattened into readings."""
    if not decoded:
        raise DecodeError("no decoded_payload")
    readings: Readings = {}

    def put(
        path: tuple[str, ...], value: object, name: str | None, unit: str | None
    ) -> None:
        prefix: str
        reading: ReadingValue
        if isinstance(value, str) and (parsed_text := parse_number(value)) is not None:
            value, unit = parsed_text[0], unit or parsed_text[1]
        if isinstance(value, bool):
            prefix, reading = FORMATTER_FLAG, value
        elif isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                return
            prefix, reading = FORMATTER_NUMBER, value
        elif isinstance(value, str):
            prefix, reading = FORMATTER_TEXT, value[:MAX_TEXT_LENGTH]
        else:
            return
        if not (slug := _slug(path)):
            return
        parsed = parse_unit(unit) if unit and prefix == FORMATTER_NUMBER else None
        key = f"{prefix}{slug}" if parsed is None else measure_key(parsed, slug)
        # Records of the same name (two channels) get a number each.
        suffix = ""
        for count in range(2, MAX_FORMATTER_READINGS + 1):
            if key not in readings:
                break
            suffix = f" {count}"
            numbered = f"{slug[: MAX_SLUG_LENGTH - 3]}_{count}"
            key = (
                f"{prefix}{numbered}"
                if parsed is None
                else measure_key(parsed, numbered)
            )
        else:  # pragma: no cover - the reading cap stops first
            return
        name = name or " ".join(_readable(part) for part in path)
        readings[key] = Reading(reading, name[: MAX_TEXT_LENGTH - len(suffix)] + suffix)

    def add(path: tuple[str, ...], value: object) -> None:
        if len(readings) >= MAX_FORMATTER_READINGS:
            return
        if isinstance(value, Mapping):
            if (record := _record(value)) is not None:
                put(path, record.value, record.name, record.unit)
                # The record's other fields (IMST's Scaler, GroupMask…).
                value = {
                    key: item for key, item in value.items() if key not in _RECORD_KEYS
                }
            if len(path) < MAX_FORMATTER_DEPTH:
                for key, item in value.items():
                    add((*path, str(key)[:MAX_SLUG_LENGTH]), item)
            return
        if isinstance(value, list) and len(path) < MAX_FORMATTER_DEPTH:
            for index, item in enumerate(value[:MAX_FORMATTER_READINGS], start=1):
                if isinstance(item, list):
                    # A list of lists (SenseCAP's messages): one list.
                    add(path, item)
                elif (label := _item_label(item)) is not None:
                    # Named entries take their name, not their place.
                    add((label[:MAX_SLUG_LENGTH],), _without_label(item))
                else:
                    add((*path, str(index)), item)
            return
        if not isinstance(value, list):
            put(path, value, None, None)

    add((), decoded)
    return readings


def _without_label(item: object) -> object:
    """A list entry without the name its readings take (records keep theirs)."""
    if not isinstance(item, Mapping) or _record(item) is not None:
        return item
    for key in _NAME_KEYS:
        if _text(item.get(key)):
            return {name: value for name, value in item.items() if name != key}
    return item


class _Guess:
    __slots__ = ("device_class", "unit")

    def __init__(self, device_class: SensorDeviceClass | None, unit: str) -> None:
        self.device_class = device_class
        self.unit = unit


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
    (("co2",), _Guess(SensorDeviceClass.CO2, PARTS_PER_MILLION)),
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


def is_location(slug: str) -> bool:
    """Whether a field's name says it is a position (gps_*, lat, location...)."""
    words = slug.split("_")
    return any(word in _LOCATION_WORDS or word.startswith("gps") for word in words)


def _describe_measure(key: str, name: str | None) -> ReadingDescription | None:
    """A reading whose record named its unit (the unit is in the key)."""
    code, _, slug = key[len(FORMATTER_MEASURE) :].partition("__")
    try:
        unit = parse_unit(bytes.fromhex(code).decode())
    except ValueError:
        return None
    if unit is None or not slug:
        return None
    # The record's own name says more than its key (p: Barometric pressure).
    words = f"{_slug((name[:MAX_SLUG_LENGTH],)) if name else ''}_{slug}"
    device_class = device_class_for(unit, words)
    return ReadingDescription(
        key=key,
        decoder=Decoder.PAYLOAD_FORMATTER,
        name=name or _readable(slug),
        device_class=device_class,
        unit=unit,
        state_class=state_class_for(device_class, SensorStateClass.MEASUREMENT),
        location=is_location(slug),
    )


def describe_formatter(key: str, name: str | None) -> ReadingDescription | None:
    """A payload formatter field's reading; None for other keys."""
    if key.startswith(FORMATTER_MEASURE):
        return _describe_measure(key, name)
    for prefix in _PREFIXES:
        if key.startswith(prefix) and (slug := key[len(prefix) :]):
            location = is_location(slug)
            name = name or _readable(slug)
            if prefix != FORMATTER_NUMBER:
                return ReadingDescription(
                    key=key,
                    decoder=Decoder.PAYLOAD_FORMATTER,
                    binary=prefix == FORMATTER_FLAG,
                    name=name,
                    location=location,
                )
            device_class, unit = guess_unit(slug)
            return ReadingDescription(
                key=key,
                decoder=Decoder.PAYLOAD_FORMATTER,
                name=name,
                device_class=device_class,
                unit=unit,
                state_class=SensorStateClass.MEASUREMENT,
                location=location,
            )
    return None
