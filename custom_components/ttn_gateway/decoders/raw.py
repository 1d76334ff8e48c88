"""The raw decoder: the payload as uppercase hex, for anything else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import EntityCategory

from .base import Decoder, Reading, ReadingDescription, Readings

RAW_KEY = "raw_payload"
# A state holds at most 255 characters: 127 bytes in hex. LoRaWAN payloads
# reach 242 bytes; longer ones show their first 126 bytes and an ellipsis.
MAX_RAW_BYTES = 127


def decode_raw(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """The payload as uppercase hex; nothing for an empty payload."""
    if not payload:
        return {}
    if len(payload) > MAX_RAW_BYTES:
        return {RAW_KEY: Reading(payload[: MAX_RAW_BYTES - 1].hex().upper() + "…")}
    return {RAW_KEY: Reading(payload.hex().upper())}


def describe_raw(key: str) -> ReadingDescription | None:
    """The raw payload sensor (diagnostic); None for other keys."""
    if key != RAW_KEY:
        return None
    return ReadingDescription(
        key=key,
        decoder=Decoder.RAW,
        translation_key="raw_payload",
        entity_category=EntityCategory.DIAGNOSTIC,
    )
