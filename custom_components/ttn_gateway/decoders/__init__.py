"""Payload decoders: the registry of decoders and of what their readings mean.

Each decoder (one module each) is a pure function of the FPort, the payload
bytes and the payload formatter's output. It returns readings keyed by a
stable key, or raises DecodeError when the payload is not in its format. A
reading's key alone says what it is (``describe_reading``), so the entities
of a device can be rebuilt from the entity registry after a restart, before
any uplink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
import math
from typing import Any

from .base import (
    DecodeError,
    Decoder,
    DecoderFunction,
    Reading,
    ReadingDescription,
    Readings,
    ReadingValue,
)
from .cayenne_lpp import LPP_TYPES, decode_cayenne_lpp, describe_lpp
from .feather import FEATHER_FPORT, FEATHER_KEY, decode_feather_m0, describe_feather
from .normalized import (
    BATTERY_PERCENT,
    NORMALIZED_PREFIX,
    decode_normalized,
    describe_normalized,
)
from .payload_formatter import (
    MAX_FORMATTER_DEPTH,
    MAX_FORMATTER_READINGS,
    MAX_SLUG_LENGTH,
    MAX_TEXT_LENGTH,
    decode_payload_formatter,
    describe_formatter,
    guess_unit,
)
from .raw import RAW_KEY, decode_raw, describe_raw

__all__ = [
    "BATTERY_PERCENT",
    "DECODERS",
    "FEATHER_FPORT",
    "FEATHER_KEY",
    "LPP_TYPES",
    "MAX_FORMATTER_DEPTH",
    "MAX_FORMATTER_READINGS",
    "MAX_SLUG_LENGTH",
    "MAX_TEXT_LENGTH",
    "NORMALIZED_PREFIX",
    "RAW_KEY",
    "DecodeError",
    "Decoded",
    "Decoder",
    "DecoderFunction",
    "Reading",
    "ReadingDescription",
    "ReadingValue",
    "Readings",
    "decode",
    "decode_cayenne_lpp",
    "decode_feather_m0",
    "decode_normalized",
    "decode_payload_formatter",
    "decode_raw",
    "decode_uplink",
    "describe_reading",
    "guess_unit",
]

DECODERS: dict[Decoder, DecoderFunction] = {
    Decoder.FEATHER_M0: decode_feather_m0,
    Decoder.CAYENNE_LPP: decode_cayenne_lpp,
    Decoder.PAYLOAD_FORMATTER: decode_payload_formatter,
    Decoder.RAW: decode_raw,
}
# The order in which AUTO tries them after the normalized payload; raw
# always succeeds.
AUTO_ORDER = (
    Decoder.PAYLOAD_FORMATTER,
    Decoder.CAYENNE_LPP,
    Decoder.FEATHER_M0,
    Decoder.RAW,
)
_DESCRIBERS: tuple[Callable[[str], ReadingDescription | None], ...] = (
    describe_feather,
    describe_raw,
    describe_lpp,
    describe_normalized,
)


@dataclass(frozen=True, slots=True)
class Decoded:
    """The readings of an uplink and the decoder that made them."""

    readings: Readings
    decoder: Decoder


def _same_value(left: object, right: object) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return math.isclose(left, right, rel_tol=1e-6, abs_tol=1e-9)
    return False


def _words(key: str) -> set[str]:
    """The words of a reading's name in its key (no prefix, no unit code)."""
    return set(key.rpartition("__")[2].split("_")) - {
        "normalized",
        "formatter",
        "number",
        "measure",
    }


def without_duplicates(normalized: Readings, formatted: Readings) -> Readings:
    """The formatter's readings that the normalized payload does not show.

    A field is shown once: a formatter reading is dropped when a normalized
    one has its value and its device class or a word (light, battery…), or
    when each side has exactly one reading of a device class.
    """
    shown = {key: describe_reading(key) for key in normalized}
    kept: Readings = {}
    descriptions = {
        key: describe_reading(key, reading.name) for key, reading in formatted.items()
    }
    classes_shown = [d.device_class for d in shown.values() if d and d.device_class]
    classes_formatted = [
        d.device_class for d in descriptions.values() if d and d.device_class
    ]
    for key, reading in formatted.items():
        description = descriptions[key]
        device_class = description.device_class if description else None
        duplicate = False
        for shown_key, shown_description in shown.items():
            if shown_description is None:  # pragma: no cover - normalized keys describe
                continue
            same_kind = (
                device_class is not None
                and device_class == shown_description.device_class
            ) or bool(_words(key) & _words(shown_key))
            if same_kind and _same_value(reading.value, normalized[shown_key].value):
                duplicate = True
                break
        if (
            not duplicate
            and device_class is not None
            and classes_shown.count(device_class) == 1
            and classes_formatted.count(device_class) == 1
        ):
            duplicate = True
        if not duplicate:
            kept[key] = reading
    return kept


def decode_uplink(
    decoder: Decoder,
    f_port: int,
    payload: bytes,
    decoded: Mapping[str, Any] | None,
    normalized: Sequence[Mapping[str, Any]] | None = None,
    *,
    battery_percent: bool = False,
) -> Decoded:
    """Decode with the chosen decoder, or the first that fits for AUTO.

    AUTO prefers the normalized payload (with the formatter's other fields),
    then the formatter's output, Cayenne LPP, the Feather byte and raw.
    battery_percent: the device's normalized battery was seen in percent.
    """
    if decoder is Decoder.NORMALIZED:
        return Decoded(
            decode_normalized(normalized, battery_percent=battery_percent), decoder
        )
    if decoder is not Decoder.AUTO:
        return Decoded(DECODERS[decoder](f_port, payload, decoded), decoder)
    if normalized:
        try:
            readings = decode_normalized(normalized, battery_percent=battery_percent)
        except DecodeError:
            pass
        else:
            try:
                formatted = decode_payload_formatter(f_port, payload, decoded)
            except DecodeError:
                formatted = {}
            readings.update(without_duplicates(readings, formatted))
            return Decoded(readings, Decoder.NORMALIZED)
    for candidate in AUTO_ORDER:
        try:
            return Decoded(DECODERS[candidate](f_port, payload, decoded), candidate)
        except DecodeError:
            continue
    raise DecodeError("no decoder fits")  # pragma: no cover - raw always fits


def decode(
    decoder: Decoder,
    f_port: int,
    payload: bytes,
    decoded: Mapping[str, Any] | None,
    normalized: Sequence[Mapping[str, Any]] | None = None,
) -> Readings:
    """The readings of decode_uplink."""
    return decode_uplink(decoder, f_port, payload, decoded, normalized).readings


# Keys are at most a prefix and a slug long and names at most MAX_TEXT_LENGTH.
@lru_cache(maxsize=4096)
def describe_reading(key: str, name: str | None = None) -> ReadingDescription | None:
    """What the reading with this key is; None for keys no decoder makes.

    name is the readable name of a payload formatter field (from the uplink
    or from the entity registry); without it one is made from the key.
    """
    for describe in _DESCRIBERS:
        if (description := describe(key)) is not None:
            return description
    return describe_formatter(key, name)
