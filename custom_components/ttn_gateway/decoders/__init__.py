"""Payload decoders: the registry of decoders and of what their readings mean.

Each decoder (one module each) is a pure function of the FPort, the payload
bytes and the payload formatter's output. It returns readings keyed by a
stable key, or raises DecodeError when the payload is not in its format. A
reading's key alone says what it is (``describe_reading``), so the entities
of a device can be rebuilt from the entity registry after a restart, before
any uplink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
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
from .payload_formatter import (
    MAX_FORMATTER_DEPTH,
    MAX_FORMATTER_READINGS,
    MAX_SLUG_LENGTH,
    MAX_TEXT_LENGTH,
    PARTS_PER_MILLION,
    decode_payload_formatter,
    describe_formatter,
    guess_unit,
)
from .raw import RAW_KEY, decode_raw, describe_raw

__all__ = [
    "DECODERS",
    "FEATHER_FPORT",
    "FEATHER_KEY",
    "LPP_TYPES",
    "MAX_FORMATTER_DEPTH",
    "MAX_FORMATTER_READINGS",
    "MAX_SLUG_LENGTH",
    "MAX_TEXT_LENGTH",
    "PARTS_PER_MILLION",
    "RAW_KEY",
    "DecodeError",
    "Decoder",
    "DecoderFunction",
    "Reading",
    "ReadingDescription",
    "ReadingValue",
    "Readings",
    "decode",
    "decode_cayenne_lpp",
    "decode_feather_m0",
    "decode_payload_formatter",
    "decode_raw",
    "describe_reading",
    "guess_unit",
]

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
_DESCRIBERS: tuple[Callable[[str], ReadingDescription | None], ...] = (
    describe_feather,
    describe_raw,
    describe_lpp,
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
