"""The raw decoder: the payload as uppercase hex, for anything else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import EntityCategory

from .base import Decoder, Reading, ReadingDescription, Readings

RAW_KEY = "raw_payload"


def decode_raw(
    f_port: int, payload: bytes, decoded: Mapping[str, Any] | None
) -> Readings:
    """The payload as uppercase hex; nothing for an empty payload."""
    return {RAW_KEY: Reading(payload.hex().upper())} if payload else {}


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
