"""The Storage Integration of the simulated application.

It keeps the ``ApplicationUp`` messages the simulator published (the newest
``STORED_KEPT``) and answers ``GET /api/v3/as/applications/{app}/packages/
storage/{type}``, ``ApplicationUpStorage.GetStoredApplicationUp`` (lorawan-stack
``api/ttn/lorawan/v3/applicationserver_integrations_storage.proto``; docs:
integrations/storage/retrieve). The storage itself is closed source (The
Things Industries), so what the public sources leave open is chosen and said
where it is done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
import random
import re
from typing import Any, Final

from . import tts_json

# Messages kept; the real storage keeps 30 days (TTS Cloud) or 24 hours (TTN).
STORED_KEPT: Final = 10_000
# GetStoredApplicationUpRequest.type's validate.rules ``in`` list.
STORED_TYPES: Final = frozenset(
    {
        "",
        "uplink_message",
        "uplink_normalized",
        "join_accept",
        "downlink_ack",
        "downlink_nack",
        "downlink_sent",
        "downlink_failed",
        "downlink_queued",
        "downlink_queue_invalidated",
        "location_solved",
        "service_data",
    }
)
# GetStoredApplicationUpRequest.order's validate.rules ``in`` list.
STORED_ORDERS: Final = frozenset({"", "received_at", "-received_at"})
_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)$")
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}

type Answer = tuple[int, bytes, dict[str, str]]


def parse_time(value: object) -> float | None:
    """An RFC 3339 timestamp (as TTS writes or reads it) in epoch seconds."""
    if not isinstance(value, str) or not (match := _TIMESTAMP.match(value)):
        return None
    date, clock, fraction, offset = match.groups()
    offset = "+00:00" if offset == "Z" else offset
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}{offset}")
    except ValueError:
        return None
    return moment.astimezone(UTC).timestamp() + float(f"0.{fraction or 0}")


def _received_at(message: Mapping[str, Any]) -> float | None:
    """When the Application Server received a message (its top-level time)."""
    uplink = message.get("uplink_message")
    return parse_time(message.get("received_at")) or (
        parse_time(uplink.get("received_at")) if isinstance(uplink, Mapping) else None
    )


class UplinkStorage:
    """Stored ``ApplicationUp`` messages, and the answers TTS gives for them."""

    def __init__(self, rng: random.Random, kept: int = STORED_KEPT) -> None:
        """Enabled and empty."""
        self.rng = rng
        self.enabled = True
        self.messages: deque[tuple[float, dict[str, Any]]] = deque(maxlen=kept)

    def keep(self, message: dict[str, Any]) -> None:
        """Store a message the application received (if enabled, as TTS does)."""
        if not self.enabled or (at := _received_at(message)) is None:
            return
        self.messages.append((at, message))

    def answer(
        self,
        message_type: str,
        query: Mapping[str, str],
        accept: str | None,
        now: float,
    ) -> Answer:
        """Stream the stored messages a query selects."""
        json_headers = {"Content-Type": "application/json"}
        if not self.enabled:
            # Without the integration nothing serves the route: grpc-gateway's
            # routing error (runtime.DefaultRoutingErrorHandler, NotFound). What
            # TTS answers for an application without the package is not public.
            not_found = {"code": 5, "message": "Not Found", "details": []}
            return HTTPStatus.NOT_FOUND, tts_json.dumps(not_found), json_headers
        error = self._invalid(message_type, query)
        if error is not None:
            return HTTPStatus.BAD_REQUEST, tts_json.dumps(error), json_headers
        selected = self._select(message_type, query, now)
        # TTS's marshaller for text/event-stream ends each message with two
        # newlines, the JSON one with one (pkg/jsonpb/ttn.go TTNEventStream;
        # grpc-gateway runtime/handler.go ForwardResponseStream writes
        # {"result": message} and the delimiter).
        event_stream = accept is not None and "text/event-stream" in accept
        delimiter = b"\n\n" if event_stream else b"\n"
        body = b"".join(
            tts_json.dumps({"result": message}) + delimiter for message in selected
        )
        content_type = "text/event-stream" if event_stream else "application/json"
        return HTTPStatus.OK, body, {"Content-Type": content_type}

    def _invalid(
        self, message_type: str, query: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """TTS's validation error for a request it refuses, or None."""
        checks = (
            ("type", message_type in STORED_TYPES),
            ("order", query.get("order", "") in STORED_ORDERS),
            ("limit", query.get("limit", "0").isdecimal()),
            ("after", "after" not in query or parse_time(query["after"]) is not None),
            (
                "before",
                "before" not in query or parse_time(query["before"]) is not None,
            ),
            ("last", "last" not in query or _DURATION.match(query["last"]) is not None),
            # "Cannot be used in conjunction with after and before" (the .proto).
            ("last", not ("last" in query and ("after" in query or "before" in query))),
        )
        for field_name, valid in checks:
            if not valid:
                return tts_json.error_body(
                    3,
                    "pkg/errors",
                    "validation",
                    "invalid `{field}`: {reason}",
                    attributes={"field": field_name, "reason": "invalid value"},
                    rng=self.rng,
                )
        return None

    def _select(
        self, message_type: str, query: Mapping[str, str], now: float
    ) -> list[dict[str, Any]]:
        after = parse_time(query.get("after"))
        before = parse_time(query.get("before"))
        if (last := _DURATION.match(query.get("last", ""))) is not None:
            after = now - float(last.group(1)) * _UNITS[last.group(2)]
        f_port = query.get("f_port")
        selected = [
            (at, message)
            for at, message in self.messages
            if (after is None or at > after)
            and (before is None or at < before)
            and (not message_type or message_type in message)
            and (f_port is None or _f_port(message) == f_port)
        ]
        # Default and "received_at": oldest first; "-received_at": newest first.
        selected.sort(
            key=lambda item: item[0], reverse=query.get("order") == "-received_at"
        )
        limit = int(query.get("limit", "0") or 0)
        messages = [message for _, message in selected]
        return messages[:limit] if limit else messages


def _f_port(message: Mapping[str, Any]) -> str:
    uplink = message.get("uplink_message")
    port = uplink.get("f_port", 0) if isinstance(uplink, Mapping) else 0
    return str(port)
