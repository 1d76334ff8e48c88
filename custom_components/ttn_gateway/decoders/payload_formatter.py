"""The payload formatter decoder: TTS's ``decoded_payload``, flattened into readings.

Keys come from whoever wrote the formatter (or published the message), so
every key is cut to the slug limit before any other work on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
import math
import re
from typing import Any

from homeassistant import const as ha_const
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

from .base import (
    DecodeError,
    Decoder,
    Reading,
    ReadingDescription,
    Readings,
    ReadingValue,
)

# Limits that keep a runaway payload formatter from flooding Home Assistant.
MAX_FORMATTER_READINGS = 64
MAX_FORMATTER_DEPTH = 4
MAX_TEXT_LENGTH = 255
MAX_SLUG_LENGTH = 64

FORMATTER_NUMBER = "formatter_number_"
FORMATTER_TEXT = "formatter_text_"
FORMATTER_FLAG = "formatter_flag_"
_PREFIXES = (FORMATTER_NUMBER, FORMATTER_TEXT, FORMATTER_FLAG)

# Newer Home Assistant has UnitOfRatio (and deprecates the old constant).
_ratio = getattr(ha_const, "UnitOfRatio", None)
PARTS_PER_MILLION: str = _ratio.PARTS_PER_MILLION if _ratio is not None else "ppm"

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


def decode_payload_formatter(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """The TTS payload formatter's output, flattened into readings."""
    if not decoded:
        raise DecodeError("no decoded_payload")
    readings: Readings = {}

    def add(path: tuple[str, ...], value: object) -> None:
        if isinstance(value, Mapping):
            if len(path) < MAX_FORMATTER_DEPTH:
                for key, item in value.items():
                    if len(readings) >= MAX_FORMATTER_READINGS:
                        return
                    add((*path, str(key)[:MAX_SLUG_LENGTH]), item)
            return
        if isinstance(value, list):
            if len(path) < MAX_FORMATTER_DEPTH:
                for index, item in enumerate(value[:MAX_FORMATTER_READINGS], start=1):
                    if len(readings) >= MAX_FORMATTER_READINGS:
                        return
                    add((*path, str(index)), item)
            return
        prefix: str
        reading: ReadingValue
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
        name = " ".join(_readable(part) for part in path)[:MAX_TEXT_LENGTH]
        readings[f"{prefix}{slug}"] = Reading(reading, name)

    add((), decoded)
    return readings


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


def describe_formatter(key: str, name: str | None) -> ReadingDescription | None:
    """A payload formatter field's reading; None for other keys."""
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
