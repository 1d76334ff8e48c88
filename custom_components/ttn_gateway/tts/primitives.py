"""Parsing primitives of TTS's JSON: identifiers, timestamps, durations, numbers.

TTS JSON follows protobuf conventions (lorawan-stack ``pkg/jsonpb``): 64-bit
integers are strings, zero and empty fields are omitted, timestamps are RFC
3339 with up to nine fractional digits, durations are strings like
``"0.056s"``, and enums are strings except in the batch stats endpoint, which
writes them as numbers. Every parser of the package accepts all of these
forms, ignores unknown fields and turns a field of the wrong type into
"absent" rather than failing the whole object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
import math
import re
from types import MappingProxyType
from typing import Any

_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?"
    r"(Z|z|[+-]\d{2}:\d{2})$"
)
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)s$")


# TTS identifiers: lowercase letters, digits and single dashes, 3 to 36 long.
IDENTIFIER = re.compile(r"^[a-z0-9](?:-?[a-z0-9]){2,35}$")


def parse_timestamp(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp with up to nine fractional digits."""
    if not isinstance(value, str) or not (match := _TIMESTAMP.match(value)):
        return None
    date, time, fraction, offset = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.fromisoformat(f"{date}T{time}.{micros}{offset}")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def parse_duration(value: object) -> float | None:
    """Parse a protobuf duration such as ``"0.056213964s"`` into seconds."""
    if not isinstance(value, str) or not (match := _DURATION.match(value)):
        return None
    return float(match.group(1))


# A uint64 has at most 20 decimal digits; anything longer is malformed (and
# int() of a very long digit string is slow, or refused above 4,300 digits).
UINT64_MAX_DIGITS = 20
UINT64_MAX = 2**64 - 1


def parse_uint(value: object) -> int | None:
    """Parse an unsigned 64-bit integer written as a JSON string or number."""
    # Exact type checks: faster than isinstance, and a bool is not a number.
    if type(value) is str:
        if len(value) > UINT64_MAX_DIGITS or not value.isascii():
            return None
        if not value.isdecimal() or (number := int(value)) > UINT64_MAX:
            return None
        return number
    if type(value) is int:
        return value if 0 <= value <= UINT64_MAX else None
    return None


def parse_count(value: object) -> int | None:
    """Parse a counter: absent means 0 (protobuf omits zeros), unreadable None.

    A counter that cannot be read is unknown rather than 0, so a bad value
    never looks like a reset of a ``total_increasing`` sensor.
    """
    return 0 if value is None else parse_uint(value)


def parse_float(value: object) -> float | None:
    """Parse a finite JSON number (not a bool) into a float.

    Python's JSON reader accepts ``NaN`` and ``Infinity``; they are not values.
    """
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def parse_str(value: object) -> str | None:
    """Return a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def is_object(value: object) -> bool:
    """Whether a JSON value is an object."""
    # JSON objects are dicts: the exact check spares the slow ABC check.
    return type(value) is dict or isinstance(value, Mapping)


def as_mapping(value: object) -> Mapping[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if is_object(value) else _EMPTY  # type: ignore[return-value]


def as_list(value: object) -> list[Any]:
    """A JSON list, or an empty one for anything else."""
    return value if type(value) is list else []


def format_timestamp(moment: datetime) -> str:
    """Write a timestamp the way TTS reads it (RFC 3339, UTC, microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class VersionIds:
    """The device repository identifiers of a gateway."""

    brand_id: str | None = None
    model_id: str | None = None
    hardware_version: str | None = None
    firmware_version: str | None = None

    @classmethod
    def from_json(cls, data: object) -> VersionIds:
        """Parse ``version_ids``."""
        raw = as_mapping(data)
        return cls(
            brand_id=parse_str(raw.get("brand_id")),
            model_id=parse_str(raw.get("model_id")),
            hardware_version=parse_str(raw.get("hardware_version")),
            firmware_version=parse_str(raw.get("firmware_version")),
        )
