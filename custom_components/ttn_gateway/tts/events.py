"""Messages of the events stream (lorawan-stack ``events.proto``: ``Event``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
import json
from typing import Final

from .gateways import GatewayConnectionStats, GatewayStatus
from .primitives import as_list, as_mapping, parse_str, parse_timestamp, parse_uint


class EventName(StrEnum):
    """Names of the TTS events this project streams."""

    STREAM_START = "events.stream.start"
    GATEWAY_CONNECT = "gs.gateway.connect"
    GATEWAY_DISCONNECT = "gs.gateway.disconnect"
    GATEWAY_CONNECTION_STATS = "gs.gateway.connection.stats"
    GATEWAY_STATUS = "gs.status.receive"
    GATEWAY_UPLINK = "gs.up.receive"


# The gateway events streamed with any key that may read gateway status;
# GATEWAY_UPLINK needs the traffic right as well.
GATEWAY_EVENT_NAMES: Final = (
    EventName.GATEWAY_CONNECT,
    EventName.GATEWAY_DISCONNECT,
    EventName.GATEWAY_CONNECTION_STATS,
    EventName.GATEWAY_STATUS,
)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of ``POST /api/v3/events``, with the data this project uses."""

    name: str
    time: datetime | None
    gateway_ids: tuple[str, ...] = ()
    # Connection stats events carry GatewayConnectionStats; connect events
    # do in newer TTS versions, without data in older ones (None).
    stats: GatewayConnectionStats | None = None
    # Status events carry the gateway's GatewayStatus.
    status: GatewayStatus | None = None
    # Disconnect events carry the reason as ErrorDetails ("namespace:name").
    reason: str | None = None
    # The Gateway Server's id of the connection the event belongs to (the
    # "gs:conn:<ULID>" correlation id): tells a superseded connection's late
    # events from the current connection's.
    connection_id: str | None = None

    @classmethod
    def from_json(cls, data: object) -> StreamEvent | None:
        """Parse the ``result`` of a stream message; None without a name."""
        raw = as_mapping(data)
        if (name := parse_str(raw.get("name"))) is None:
            return None
        gateway_ids = tuple(
            gateway_id
            for identifier in as_list(raw.get("identifiers"))
            if (
                gateway_id := parse_str(
                    as_mapping(as_mapping(identifier).get("gateway_ids")).get(
                        "gateway_id"
                    )
                )
            )
            is not None
        )
        payload = as_mapping(raw.get("data"))
        stats = status = reason = None
        if name in (EventName.GATEWAY_CONNECT, EventName.GATEWAY_CONNECTION_STATS):
            # TTS publishes the connect without data (lorawan-stack
            # pkg/gatewayserver/observability.go, registerGatewayConnect).
            if payload.keys() - {"@type"}:
                stats = GatewayConnectionStats.from_json(payload)
        elif name == EventName.GATEWAY_STATUS:
            status = GatewayStatus.from_json(payload)
        elif name == EventName.GATEWAY_DISCONNECT:
            reason = _error_label(payload)
        return cls(
            name=name,
            time=parse_timestamp(raw.get("time")),
            gateway_ids=gateway_ids,
            stats=stats,
            status=status,
            reason=reason,
            connection_id=_connection_id(raw.get("correlation_ids")),
        )


CONNECTION_CORRELATION_PREFIX = "gs:conn:"


def _connection_id(correlation_ids: object) -> str | None:
    """The ``gs:conn:`` correlation id of an event, if it has one."""
    for item in as_list(correlation_ids):
        if type(item) is str and item.startswith(CONNECTION_CORRELATION_PREFIX):
            return item
    return None


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error TTS sent inside the events stream, just before ending it."""

    code: int | None
    label: str | None

    @classmethod
    def from_json(cls, data: object) -> StreamError:
        """Parse the ``error`` of a stream message (a ``google.rpc.Status``)."""
        raw = as_mapping(data)
        details = as_list(raw.get("details"))
        return cls(
            code=parse_uint(raw.get("code")),
            label=_error_label(details[0]) if details else None,
        )


def _error_label(data: object) -> str | None:
    """``namespace:name`` of an ``ErrorDetails`` object."""
    raw = as_mapping(data)
    if (name := parse_str(raw.get("name"))) is None:
        return None
    namespace = parse_str(raw.get("namespace"))
    return f"{namespace}:{name}" if namespace else name


def parse_stream_message(line: bytes) -> StreamEvent | StreamError | None:
    """Parse one message of the events stream; None for anything unusable."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        # RecursionError: a deeply nested line is garbage, not a reason to stop.
        return None
    if not isinstance(message, Mapping):
        return None
    if "error" in message:
        return StreamError.from_json(message["error"])
    return StreamEvent.from_json(message.get("result"))
