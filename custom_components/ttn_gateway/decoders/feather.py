"""The Adafruit Feather M0 decoder: the seed sketch's one unsigned byte on FPort 1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.sensor import SensorStateClass

from .base import DecodeError, Decoder, Reading, ReadingDescription, Readings

FEATHER_FPORT = 1
FEATHER_KEY = "feather_value"


def decode_feather_m0(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """One unsigned byte on FPort 1."""
    if f_port != FEATHER_FPORT or len(payload) != 1:
        raise DecodeError("not one byte on FPort 1")
    return {FEATHER_KEY: Reading(payload[0])}


def describe_feather(key: str) -> ReadingDescription | None:
    """The Feather's value sensor; None for other keys."""
    if key != FEATHER_KEY:
        return None
    return ReadingDescription(
        key=key,
        decoder=Decoder.FEATHER_M0,
        translation_key="feather_value",
        state_class=SensorStateClass.MEASUREMENT,
    )
