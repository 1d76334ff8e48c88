"""Downlinks: what is sent to an end device, and what TTS says became of it.

A downlink (``ApplicationDownlink``) carries an FPort from 1 to 223 (0 is
MAC commands, 224 and up are reserved) and either bytes (``frm_payload``,
base64 in JSON) or an object that the device's downlink payload formatter
in TTS encodes (``decoded_payload``; without a downlink formatter TTS
queues an empty payload, ``encodeAndEncrypt`` in
``pkg/applicationserver/payload.go``). TTS reports its progress on the
``down/queued``, ``down/sent``, ``down/ack``, ``down/nack``, ``down/failed``
and ``down/invalidated`` topics (``pkg/applicationserver/io/mqtt/topics/v3.go``),
as an ``ApplicationUp`` carrying the matching field.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
import json
import re
from typing import Any, Final

from .primitives import parse_str, parse_timestamp
from .uplink import EndDeviceIds, UplinkError

MIN_DOWNLINK_F_PORT: Final = 1
MAX_DOWNLINK_F_PORT: Final = 223
# The largest LoRaWAN FRMPayload (the data rate may allow less).
MAX_DOWNLINK_BYTES: Final = 242
# An object for the downlink formatter, as compact JSON: the bytes it encodes
# to fit in 242, so anything larger is a mistake, not a downlink.
MAX_DECODED_PAYLOAD_BYTES: Final = 4096
# Error texts from TTS are shown to the user, cut to this length.
MAX_ERROR_TEXT: Final = 200
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_SEPARATORS = re.compile(r"[\s:]")


class Priority(StrEnum):
    """A downlink's priority in the device's queue (TTS's names)."""

    LOWEST = "LOWEST"
    LOW = "LOW"
    BELOW_NORMAL = "BELOW_NORMAL"
    NORMAL = "NORMAL"
    ABOVE_NORMAL = "ABOVE_NORMAL"
    HIGH = "HIGH"
    HIGHEST = "HIGHEST"


class DownlinkError(ValueError):
    """A downlink that cannot be sent; ``reason`` says why, for the user."""

    def __init__(self, reason: str, message: str) -> None:
        """Say why: a reason code and a text that is safe to show."""
        super().__init__(message)
        self.reason = reason


def parse_payload(text: str) -> bytes:
    """Bytes written as hex or base64.

    Hex is tried first: a text of hex digit pairs (spaces and colons between
    them are ignored, case does not matter) is hex. So ``"0102"`` is the two
    bytes 01 02, never the base64 of three other bytes; write base64 with
    its padding or letters beyond F to be read as base64.
    """
    compact = _SEPARATORS.sub("", text)
    if not compact:
        raise DownlinkError("empty_payload", "the payload is empty")
    if _HEX.match(compact):
        return bytes.fromhex(compact)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as err:
        raise DownlinkError(
            "invalid_payload", "the payload is neither hex nor base64"
        ) from err


@dataclass(frozen=True, slots=True)
class Downlink:
    """One downlink message for an end device."""

    f_port: int
    frm_payload: bytes | None = None
    decoded_payload: Mapping[str, Any] | None = None
    confirmed: bool = False
    priority: Priority = Priority.NORMAL

    def __post_init__(self) -> None:
        """Refuse what TTS would refuse, before anything is sent."""
        if (
            isinstance(self.f_port, bool)
            or not isinstance(self.f_port, int)
            or not MIN_DOWNLINK_F_PORT <= self.f_port <= MAX_DOWNLINK_F_PORT
        ):
            raise DownlinkError(
                "invalid_f_port",
                f"FPort {self.f_port} is not from {MIN_DOWNLINK_F_PORT} "
                f"to {MAX_DOWNLINK_F_PORT}",
            )
        if (self.frm_payload is None) == (self.decoded_payload is None):
            raise DownlinkError(
                "payload_and_object", "give either a payload or an object"
            )
        if self.frm_payload is not None and len(self.frm_payload) > MAX_DOWNLINK_BYTES:
            raise DownlinkError(
                "payload_too_long",
                f"{len(self.frm_payload)} bytes, at most {MAX_DOWNLINK_BYTES}",
            )
        if self.decoded_payload is not None:
            _check_decoded_payload(self.decoded_payload)

    def to_json(self) -> dict[str, Any]:
        """The ``ApplicationDownlink`` JSON of TTS."""
        data: dict[str, Any] = {
            "f_port": self.f_port,
            "priority": self.priority.value,
            "confirmed": self.confirmed,
        }
        if self.frm_payload is not None:
            data["frm_payload"] = base64.b64encode(self.frm_payload).decode()
        else:
            data["decoded_payload"] = dict(self.decoded_payload or {})
        return data


def _check_decoded_payload(decoded: Mapping[str, Any]) -> None:
    """Refuse an object that is no JSON or larger than the bound."""
    try:
        text = json.dumps(dict(decoded), separators=(",", ":"), allow_nan=False)
        size = len(text.encode())
    except (TypeError, ValueError, RecursionError) as err:
        raise DownlinkError(
            "invalid_decoded_payload", "the object cannot be written as JSON"
        ) from err
    if size > MAX_DECODED_PAYLOAD_BYTES:
        raise DownlinkError(
            "decoded_payload_too_large",
            f"{size} bytes of JSON, at most {MAX_DECODED_PAYLOAD_BYTES}",
        )


def downlink_request_json(downlinks: Sequence[Downlink]) -> dict[str, Any]:
    """The body of a push or replace: ``{"downlinks": [...]}``."""
    return {"downlinks": [downlink.to_json() for downlink in downlinks]}


class DownlinkStatus(StrEnum):
    """What became of a downlink."""

    QUEUED = "queued"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    NACKED = "nacked"
    FAILED = "failed"
    # TTS dropped the queue (a rejoin, a new session): the downlinks are gone.
    INVALIDATED = "invalidated"


# ApplicationUp fields of downlink events, and what each says.
_EVENT_FIELDS: Final = {
    "downlink_queued": DownlinkStatus.QUEUED,
    "downlink_sent": DownlinkStatus.SENT,
    "downlink_ack": DownlinkStatus.ACKNOWLEDGED,
    "downlink_nack": DownlinkStatus.NACKED,
    "downlink_failed": DownlinkStatus.FAILED,
    "downlink_queue_invalidated": DownlinkStatus.INVALIDATED,
}


@dataclass(frozen=True, slots=True)
class DownlinkEvent:
    """TTS's word on one downlink of a device."""

    application_id: str
    device_id: str
    status: DownlinkStatus
    f_port: int | None
    f_cnt: int | None
    received_at: datetime | None
    error: str | None


def _small_uint(value: object, maximum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= maximum else None


def _error_text(error: object) -> str | None:
    """A short text of a TTS error object (``ErrorDetails``)."""
    if not isinstance(error, Mapping):
        return None
    text = parse_str(error.get("message_format")) or parse_str(error.get("name"))
    return None if text is None else text[:MAX_ERROR_TEXT]


def parse_downlink_event(data: object) -> DownlinkEvent | None:
    """A downlink event of an ``ApplicationUp``; None for other messages.

    Raises UplinkError when the message names a downlink event but is unusable.
    """
    if not isinstance(data, Mapping):
        raise UplinkError("the message is not a JSON object")
    found = [name for name in _EVENT_FIELDS if name in data]
    if not found:
        return None
    name = found[0]
    ids = EndDeviceIds.from_json(data.get("end_device_ids"))
    body = data[name]
    if not isinstance(body, Mapping):
        raise UplinkError(f"{name} is not an object")
    error = None
    downlink: Mapping[str, Any] = body
    if name == "downlink_failed":
        inner = body.get("downlink")
        downlink = inner if isinstance(inner, Mapping) else {}
        error = _error_text(body.get("error")) or "failed"
    elif name == "downlink_queue_invalidated":
        # ApplicationInvalidatedDownlinks: the downlinks that were dropped.
        dropped = body.get("downlinks")
        first = dropped[0] if isinstance(dropped, list) and dropped else None
        downlink = first if isinstance(first, Mapping) else {}
    return DownlinkEvent(
        application_id=ids.application_id,
        device_id=ids.device_id,
        status=_EVENT_FIELDS[name],
        f_port=_small_uint(downlink.get("f_port"), 255),
        f_cnt=_small_uint(downlink.get("f_cnt"), 2**32 - 1),
        received_at=parse_timestamp(data.get("received_at")),
        error=error,
    )
