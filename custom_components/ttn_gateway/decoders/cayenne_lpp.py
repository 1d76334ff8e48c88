"""The Cayenne LPP v1 decoder: channel, type and value records, back to back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import re
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    DEGREE,
    LIGHT_LUX,
    PERCENTAGE,
    UnitOfLength,
    UnitOfPressure,
    UnitOfTemperature,
)

from .base import (
    DecodeError,
    Decoder,
    Reading,
    ReadingDescription,
    Readings,
    ReadingValue,
)

LPP_PREFIX = "lpp_"


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
            readings[f"{LPP_PREFIX}{lpp_field.kind}_{channel}"] = Reading(value)
        position += 2 + lpp_type.size
    return readings


@dataclass(frozen=True, kw_only=True)
class _LppKind:
    translation_key: str
    binary: bool = False
    device_class: SensorDeviceClass | BinarySensorDeviceClass | None = None
    unit: str | None = None
    precision: int | None = None
    state_class: SensorStateClass | None = SensorStateClass.MEASUREMENT
    location: bool = False


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
        translation_key="lpp_latitude",
        unit=DEGREE,
        precision=4,
        state_class=None,
        location=True,
    ),
    "longitude": _LppKind(
        translation_key="lpp_longitude",
        unit=DEGREE,
        precision=4,
        state_class=None,
        location=True,
    ),
    "altitude": _LppKind(
        translation_key="lpp_altitude",
        device_class=SensorDeviceClass.DISTANCE,
        unit=UnitOfLength.METERS,
        precision=2,
        location=True,
    ),
}
_LPP_KEY = re.compile(r"^lpp_([a-z_]+?)_(\d{1,3})$")


def describe_lpp(key: str) -> ReadingDescription | None:
    """An LPP channel's reading; None for keys the LPP decoder does not make."""
    if not (match := _LPP_KEY.match(key)):
        return None
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
        location=kind.location,
    )
