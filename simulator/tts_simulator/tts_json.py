"""How TTS writes JSON: timestamps, durations, 64-bit integers, errors, ids.

The rules are those of the TTS marshaller: 64-bit integers are strings, zero
and empty fields are omitted, timestamps are RFC 3339 UTC with ``Z`` and
nanoseconds, durations are ``"<seconds>s"``. Error bodies are
``google.rpc.Status`` objects carrying one ``ErrorDetails``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from http import HTTPStatus
import json
import random
from typing import Any, Final

# gRPC code -> HTTP status, as grpc-gateway and pkg/errors/http.go map them.
HTTP_STATUS_OF_CODE: Final = {
    3: HTTPStatus.BAD_REQUEST,
    5: HTTPStatus.NOT_FOUND,
    7: HTTPStatus.FORBIDDEN,
    8: HTTPStatus.TOO_MANY_REQUESTS,
    9: HTTPStatus.BAD_REQUEST,
    13: HTTPStatus.INTERNAL_SERVER_ERROR,
    14: HTTPStatus.SERVICE_UNAVAILABLE,
    16: HTTPStatus.UNAUTHORIZED,
}
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_B32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def timestamp(seconds: float) -> str:
    """An epoch time as TTS writes a Timestamp: UTC, ``Z``, nanoseconds."""
    whole = int(seconds // 1)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if not nanos:
        return f"{text}Z"
    return f"{text}.{nanos:09d}Z"


def duration(seconds: float) -> str:
    """Seconds as a protobuf Duration string, e.g. ``"0.056213964s"``."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def uint64(value: int) -> str:
    """A uint64 or int64 as TTS writes it: a decimal string."""
    return str(int(value))


def dumps(data: Any) -> bytes:
    """Compact JSON, as TTS sends it."""
    return json.dumps(data, separators=(",", ":")).encode()


def correlation_id(rng: random.Random) -> str:
    """A hex UUID without dashes, as pkg/errors makes them."""
    return f"{rng.getrandbits(128):032x}"


def ulid(seconds: float, rng: random.Random) -> str:
    """A ULID: 48 bits of milliseconds, 80 random bits, Crockford base32."""
    value = (int(seconds * 1000) << 80) | rng.getrandbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def api_key(rng: random.Random) -> str:
    """A TTS-format API key: ``NNSXS.<39-char id>.<52-char secret>``."""
    key_id = "".join(rng.choice(_B32) for _ in range(39))
    secret = "".join(rng.choice(_B32) for _ in range(52))
    return f"NNSXS.{key_id}.{secret}"


def error_body(
    code: int,
    namespace: str,
    name: str,
    message_format: str,
    *,
    attributes: dict[str, Any] | None = None,
    cause: dict[str, Any] | None = None,
    rng: random.Random,
) -> dict[str, Any]:
    """A TTS error: ``{"code", "message", "details": [ErrorDetails]}``."""
    formatted = message_format
    for key, value in (attributes or {}).items():
        formatted = formatted.replace(f"{{{key}}}", str(value))
    details: dict[str, Any] = {
        "@type": "type.googleapis.com/ttn.lorawan.v3.ErrorDetails",
        "namespace": namespace,
        "name": name,
        "message_format": message_format,
    }
    if attributes:
        details["attributes"] = attributes
    details["correlation_id"] = correlation_id(rng)
    if cause:
        details["cause"] = cause
    details["code"] = code
    return {
        "code": code,
        "message": f"error:{namespace}:{name} ({formatted})",
        "details": [details],
    }


def b64(data: bytes) -> str:
    """Bytes as TTS writes them (base64), except EUIs and addresses."""
    return base64.b64encode(data).decode()
