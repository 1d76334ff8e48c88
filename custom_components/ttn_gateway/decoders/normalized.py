"""The normalized payload: TTS's ``normalized_payload`` in the Device Repository's schema.

The schema is TheThingsNetwork/lorawan-devices ``lib/payload.json``: a list
of measurements, each an object of the fields below (units as the schema's
descriptions state them). TTS validates the codec's ``normalizeUplink``
output against it and forwards the valid fields
(lorawan-stack ``pkg/messageprocessors/javascript/javascript.go``
``decodeUplink``, ``pkg/messageprocessors/normalizedpayload``). The
position (``position.latitude``/``longitude``) feeds the device tracker
(``tts/uplink.py``), not a sensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
import math
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    DEGREE,
    LIGHT_LUX,
    PERCENTAGE,
    UnitOfElectricPotential,
    UnitOfLength,
    UnitOfPressure,
    UnitOfSpeed,
    UnitOfTemperature,
    UnitOfVolume,
)
from homeassistant.util import dt as dt_util

from ..compat import PARTS_PER_MILLION
from .base import DecodeError, Decoder, Reading, ReadingDescription, Readings

NORMALIZED_PREFIX = "normalized_"
# Measurements read from one uplink (a codec may send one per time).
MAX_MEASUREMENTS = 64
# A battery figure above this is no cell's voltage: the codec sent percent.
MAX_BATTERY_VOLTS = 20.0

_MEASUREMENT = SensorStateClass.MEASUREMENT
_TOTAL_INCREASING = SensorStateClass.TOTAL_INCREASING
# 1 dS/m (the schema's unit of soil conductivity) is 1 mS/cm.
_MILLISIEMENS_PER_CM = "mS/cm"


@dataclass(frozen=True, kw_only=True, slots=True)
class NormalizedField:
    """One field of the schema and how Home Assistant shows it."""

    path: tuple[str, ...]
    key: str
    kind: str = "number"  # number, flag, text
    device_class: SensorDeviceClass | BinarySensorDeviceClass | None = None
    unit: str | None = None
    state_class: SensorStateClass | None = _MEASUREMENT
    options: tuple[str, ...] | None = None


def _field(path: str, key: str, **kwargs: Any) -> NormalizedField:
    """A field by its dotted path; its key is its entity key and translation key."""
    return NormalizedField(path=tuple(path.split(".")), key=key, **kwargs)


_TEMPERATURE: dict[str, Any] = {
    "device_class": SensorDeviceClass.TEMPERATURE,
    "unit": UnitOfTemperature.CELSIUS,
}
# Every field of lib/payload.json but time (the measurement's time) and
# position (the device tracker's).
FIELDS: tuple[NormalizedField, ...] = (
    _field(
        "battery",
        "normalized_battery",
        device_class=SensorDeviceClass.VOLTAGE,
        unit=UnitOfElectricPotential.VOLT,
    ),
    _field(
        "soil.depth",
        "normalized_soil_depth",
        device_class=SensorDeviceClass.DISTANCE,
        unit=UnitOfLength.CENTIMETERS,
    ),
    _field(
        "soil.moisture",
        "normalized_soil_moisture",
        device_class=SensorDeviceClass.MOISTURE,
        unit=PERCENTAGE,
    ),
    _field("soil.temperature", "normalized_soil_temperature", **_TEMPERATURE),
    _field(
        "soil.ec",
        "normalized_soil_ec",
        device_class=SensorDeviceClass.CONDUCTIVITY,
        unit=_MILLISIEMENS_PER_CM,
    ),
    _field("soil.pH", "normalized_soil_ph", device_class=SensorDeviceClass.PH),
    _field("soil.n", "normalized_soil_n", unit=PARTS_PER_MILLION),
    _field("soil.p", "normalized_soil_p", unit=PARTS_PER_MILLION),
    _field("soil.k", "normalized_soil_k", unit=PARTS_PER_MILLION),
    _field(
        "air.location",
        "normalized_air_location",
        kind="text",
        device_class=SensorDeviceClass.ENUM,
        state_class=None,
        options=("indoor", "outdoor"),
    ),
    _field("air.temperature", "normalized_air_temperature", **_TEMPERATURE),
    _field(
        "air.relativeHumidity",
        "normalized_air_relative_humidity",
        device_class=SensorDeviceClass.HUMIDITY,
        unit=PERCENTAGE,
    ),
    _field(
        "air.pressure",
        "normalized_air_pressure",
        device_class=SensorDeviceClass.ATMOSPHERIC_PRESSURE,
        unit=UnitOfPressure.HPA,
    ),
    _field(
        "air.co2",
        "normalized_air_co2",
        device_class=SensorDeviceClass.CO2,
        unit=PARTS_PER_MILLION,
    ),
    _field(
        "air.lightIntensity",
        "normalized_air_light_intensity",
        device_class=SensorDeviceClass.ILLUMINANCE,
        unit=LIGHT_LUX,
    ),
    _field(
        "wind.speed",
        "normalized_wind_speed",
        device_class=SensorDeviceClass.WIND_SPEED,
        unit=UnitOfSpeed.METERS_PER_SECOND,
    ),
    _field(
        "wind.direction",
        "normalized_wind_direction",
        device_class=SensorDeviceClass.WIND_DIRECTION,
        unit=DEGREE,
        state_class=SensorStateClass.MEASUREMENT_ANGLE,
    ),
    _field(
        "water.leak",
        "normalized_water_leak",
        kind="flag",
        device_class=BinarySensorDeviceClass.MOISTURE,
    ),
    _field("water.temperature.min", "normalized_water_temperature_min", **_TEMPERATURE),
    _field("water.temperature.max", "normalized_water_temperature_max", **_TEMPERATURE),
    _field("water.temperature.avg", "normalized_water_temperature_avg", **_TEMPERATURE),
    _field(
        "water.temperature.current",
        "normalized_water_temperature_current",
        **_TEMPERATURE,
    ),
    _field(
        "metering.water.total",
        "normalized_metering_water_total",
        device_class=SensorDeviceClass.WATER,
        unit=UnitOfVolume.LITERS,
        state_class=_TOTAL_INCREASING,
    ),
    _field(
        "action.motion.detected",
        "normalized_action_motion_detected",
        kind="flag",
        device_class=BinarySensorDeviceClass.MOTION,
    ),
    _field(
        "action.motion.count",
        "normalized_action_motion_count",
        state_class=_TOTAL_INCREASING,
    ),
    # On while open, as Home Assistant's opening class shows it.
    _field(
        "action.contactState",
        "normalized_action_contact_state",
        kind="flag",
        device_class=BinarySensorDeviceClass.OPENING,
    ),
)
# A battery the codec gave in percent (against the schema's volts).
BATTERY_PERCENT = NormalizedField(
    path=("battery",),
    key="normalized_battery_percent",
    device_class=SensorDeviceClass.BATTERY,
    unit=PERCENTAGE,
)
BY_KEY: dict[str, NormalizedField] = {
    field.key: field for field in (*FIELDS, BATTERY_PERCENT)
}
_BATTERY_VOLTS = FIELDS[0]

# The schema gives water.leak as a boolean or a string; these strings say.
_TRUE_TEXT = frozenset({"true", "yes", "1", "leak", "detected", "on"})
_FALSE_TEXT = frozenset({"false", "no", "0", "none", "no leak", "off", "dry"})
_CONTACT = {"open": True, "closed": False}


def _at(measurement: Mapping[str, Any], path: tuple[str, ...]) -> object:
    value: object = measurement
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _flag(field: NormalizedField, value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip().casefold()
    if field.path == ("action", "contactState"):
        return _CONTACT.get(text)
    if text in _TRUE_TEXT:
        return True
    if text in _FALSE_TEXT:
        return False
    return None


def _number(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _battery(value: float | int, percent_before: bool) -> NormalizedField:
    """Volts as the schema says, unless the figure (or the device) says percent.

    No battery of a LoRaWAN device is above MAX_BATTERY_VOLTS; a device once
    seen in percent stays in percent (its 15 % is no 15 V).
    """
    if value > MAX_BATTERY_VOLTS or percent_before:
        return BATTERY_PERCENT
    return _BATTERY_VOLTS


def _time(measurement: Mapping[str, Any]) -> datetime | None:
    value = measurement.get("time")
    return dt_util.parse_datetime(value) if isinstance(value, str) else None


def newest_first(
    measurements: Sequence[Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """The measurements, newest first: by time, later in the list on a tie or none."""
    indexed = list(enumerate(measurements[:MAX_MEASUREMENTS]))
    times = {index: _time(measurement) for index, measurement in indexed}
    timed = [index for index, _ in indexed if times[index] is not None]

    def order(item: tuple[int, Mapping[str, Any]]) -> tuple[int, float, int]:
        index = item[0]
        moment = times[index]
        if moment is None or len(timed) != len(indexed):
            return (0, 0.0, index)
        return (1, moment.timestamp(), index)

    return [measurement for _, measurement in sorted(indexed, key=order, reverse=True)]


def decode_normalized(
    measurements: Sequence[Mapping[str, Any]] | None,
    *,
    battery_percent: bool = False,
) -> Readings:
    """Readings of the normalized payload; each field from the newest measurement.

    battery_percent: the device's battery was already shown in percent.
    """
    if not measurements:
        raise DecodeError("no normalized_payload")
    readings: Readings = {}
    for measurement in newest_first(measurements):
        for field in FIELDS:
            value = _at(measurement, field.path)
            if value is None:
                continue
            if field.kind == "flag":
                if (flag := _flag(field, value)) is not None:
                    readings.setdefault(field.key, Reading(flag))
                continue
            if field.kind == "text":
                if isinstance(value, str) and field.options and value in field.options:
                    readings.setdefault(field.key, Reading(value))
                continue
            if (number := _number(value)) is None:
                continue
            key = field.key
            if field is _BATTERY_VOLTS:
                if BATTERY_PERCENT.key in readings or _BATTERY_VOLTS.key in readings:
                    continue
                key = _battery(number, battery_percent).key
            readings.setdefault(key, Reading(number))
    if not readings:
        raise DecodeError("normalized_payload has no field of the schema")
    return readings


def describe_normalized(key: str) -> ReadingDescription | None:
    """A normalized field's reading; None for other keys."""
    if (field := BY_KEY.get(key)) is None:
        return None
    return ReadingDescription(
        key=key,
        decoder=Decoder.NORMALIZED,
        binary=field.kind == "flag",
        translation_key=key,
        device_class=field.device_class,
        unit=field.unit,
        state_class=field.state_class if field.kind == "number" else None,
        options=field.options,
    )
