"""What every decoder shares: readings, their descriptions and the error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import EntityCategory

type ReadingValue = float | int | str | bool


class Decoder(StrEnum):
    """The decoders a device can use; AUTO picks one per uplink."""

    AUTO = "auto"
    NORMALIZED = "normalized"
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
    # The states of an enum sensor.
    options: tuple[str, ...] | None = None
    # A position (GPS): redacted in the diagnostics download.
    location: bool = False


type Readings = dict[str, Reading]
type DecoderFunction = Callable[[int, bytes, Mapping[str, Any] | None], Readings]
