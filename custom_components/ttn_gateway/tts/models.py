"""Typed models of the TTS v3 JSON, and the one place that parses it.

TTS JSON follows protobuf conventions: 64-bit integers are strings, zero and
empty fields are omitted, timestamps are RFC 3339 with up to nine fractional
digits, durations are strings like ``"0.056s"``, and enums are strings except
in the batch stats endpoint, which writes them as numbers. Every parser here
accepts all of these forms, ignores unknown fields and turns a field of the
wrong type into "absent" rather than failing the whole object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
import json
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


def _is_object(value: object) -> bool:
    # JSON objects are dicts: the exact check spares the slow ABC check.
    return type(value) is dict or isinstance(value, Mapping)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if _is_object(value) else _EMPTY  # type: ignore[return-value]


def _list(value: object) -> list[Any]:
    return value if type(value) is list else []


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
        raw = _mapping(data)
        return cls(
            brand_id=parse_str(raw.get("brand_id")),
            model_id=parse_str(raw.get("model_id")),
            hardware_version=parse_str(raw.get("hardware_version")),
            firmware_version=parse_str(raw.get("firmware_version")),
        )


@dataclass(frozen=True, slots=True)
class Gateway:
    """A gateway as the Identity Server lists it."""

    gateway_id: str
    eui: str | None = None
    name: str | None = None
    description: str | None = None
    version_ids: VersionIds = field(default_factory=VersionIds)
    gateway_server_address: str | None = None
    frequency_plan_ids: tuple[str, ...] = ()
    status_public: bool = False
    location_public: bool = False

    @classmethod
    def from_json(cls, data: object) -> Gateway | None:
        """Parse one entry of ``GET /api/v3/gateways``; None without an id."""
        raw = _mapping(data)
        ids = _mapping(raw.get("ids"))
        if (gateway_id := parse_str(ids.get("gateway_id"))) is None:
            return None
        return cls(
            gateway_id=gateway_id,
            eui=parse_str(ids.get("eui")),
            name=parse_str(raw.get("name")),
            description=parse_str(raw.get("description")),
            version_ids=VersionIds.from_json(raw.get("version_ids")),
            gateway_server_address=parse_str(raw.get("gateway_server_address")),
            frequency_plan_ids=tuple(
                plan
                for plan in _list(raw.get("frequency_plan_ids"))
                if isinstance(plan, str)
            ),
            status_public=raw.get("status_public") is True,
            location_public=raw.get("location_public") is True,
        )


@dataclass(frozen=True, slots=True)
class RoundTripTimes:
    """Downlink round-trip times, in seconds."""

    min: float
    max: float
    median: float
    count: int

    @classmethod
    def from_json(cls, data: object) -> RoundTripTimes | None:
        """Parse ``round_trip_times``; None when no median is given."""
        raw = _mapping(data)
        if (median := parse_duration(raw.get("median"))) is None:
            return None
        low = parse_duration(raw.get("min"))
        high = parse_duration(raw.get("max"))
        return cls(
            min=median if low is None else low,
            max=median if high is None else high,
            median=median,
            count=parse_uint(raw.get("count")) or 0,
        )


@dataclass(frozen=True, slots=True)
class SubBand:
    """Downlink duty-cycle use of one frequency sub-band (fractions, 0 to 1)."""

    min_frequency: int
    max_frequency: int
    downlink_utilization_limit: float
    downlink_utilization: float

    @classmethod
    def from_json(cls, data: object) -> SubBand:
        """Parse one entry of ``sub_bands``."""
        raw = _mapping(data)
        return cls(
            min_frequency=parse_uint(raw.get("min_frequency")) or 0,
            max_frequency=parse_uint(raw.get("max_frequency")) or 0,
            downlink_utilization_limit=parse_float(
                raw.get("downlink_utilization_limit")
            )
            or 0.0,
            downlink_utilization=parse_float(raw.get("downlink_utilization")) or 0.0,
        )


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """The last status message the gateway itself sent."""

    time: datetime | None = None
    boot_time: datetime | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    ip: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> GatewayStatus:
        """Parse ``last_status``."""
        raw = _mapping(data)
        metrics: dict[str, float] = {}
        for key, value in _mapping(raw.get("metrics")).items():
            if (number := parse_float(value)) is not None:
                metrics[key] = number
        return cls(
            time=parse_timestamp(raw.get("time")),
            boot_time=parse_timestamp(raw.get("boot_time")),
            versions={
                key: value
                for key, value in _mapping(raw.get("versions")).items()
                if isinstance(value, str)
            },
            metrics=metrics,
            ip=tuple(ip for ip in _list(raw.get("ip")) if isinstance(ip, str)),
        )


@dataclass(frozen=True, slots=True)
class GatewayConnectionStats:
    """What the Gateway Server knows of a gateway's connection."""

    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    protocol: str | None = None
    last_status_received_at: datetime | None = None
    last_status: GatewayStatus | None = None
    last_uplink_received_at: datetime | None = None
    uplink_count: int | None = 0
    last_downlink_received_at: datetime | None = None
    downlink_count: int | None = 0
    last_tx_acknowledgment_received_at: datetime | None = None
    tx_acknowledgment_count: int | None = 0
    round_trip_times: RoundTripTimes | None = None
    sub_bands: tuple[SubBand, ...] = ()
    remote_ip: str | None = None

    @classmethod
    def from_json(cls, data: object) -> GatewayConnectionStats:
        """Parse a ``GatewayConnectionStats`` object (single or batch form)."""
        raw = _mapping(data)
        status = raw.get("last_status")
        return cls(
            connected_at=parse_timestamp(raw.get("connected_at")),
            disconnected_at=parse_timestamp(raw.get("disconnected_at")),
            protocol=parse_str(raw.get("protocol")),
            last_status_received_at=parse_timestamp(raw.get("last_status_received_at")),
            last_status=(
                GatewayStatus.from_json(status) if _is_object(status) else None
            ),
            last_uplink_received_at=parse_timestamp(raw.get("last_uplink_received_at")),
            uplink_count=parse_count(raw.get("uplink_count")),
            last_downlink_received_at=parse_timestamp(
                raw.get("last_downlink_received_at")
            ),
            downlink_count=parse_count(raw.get("downlink_count")),
            last_tx_acknowledgment_received_at=parse_timestamp(
                raw.get("last_tx_acknowledgment_received_at")
            ),
            tx_acknowledgment_count=parse_count(raw.get("tx_acknowledgment_count")),
            round_trip_times=RoundTripTimes.from_json(raw.get("round_trip_times")),
            sub_bands=tuple(
                SubBand.from_json(band)
                for band in _list(raw.get("sub_bands"))
                if _is_object(band)
            ),
            remote_ip=parse_str(_mapping(raw.get("gateway_remote_address")).get("ip")),
        )

    @property
    def last_seen(self) -> datetime | None:
        """Latest moment the Gateway Server heard from (or lost) the gateway."""
        moments = [
            moment
            for moment in (
                self.connected_at,
                self.disconnected_at,
                self.last_status_received_at,
                self.last_uplink_received_at,
                self.last_downlink_received_at,
                self.last_tx_acknowledgment_received_at,
            )
            if moment is not None
        ]
        return max(moments, default=None)

    @property
    def downlink_utilization_percent(self) -> float | None:
        """Duty-cycle use of the busiest sub-band, in percent of its limit.

        None (unknown) when the gateway reports no sub-band with a limit.
        """
        return max(
            (
                band.downlink_utilization / band.downlink_utilization_limit * 100
                for band in self.sub_bands
                if band.downlink_utilization_limit > 0
            ),
            default=None,
        )


class ConnectionState(StrEnum):
    """How the Gateway Server sees a gateway."""

    CONNECTED = "connected"
    # Disconnected recently: TTS still has its stats (48 h on TTN).
    DISCONNECTED = "disconnected"
    # No stats at all: never connected, or disconnected long ago.
    NOT_CONNECTED = "not_connected"
    # The key may not read this gateway's status.
    NO_RIGHTS = "no_rights"


@dataclass(frozen=True, slots=True)
class GatewayConnection:
    """The connection state of one gateway, with its stats when TTS has them."""

    state: ConnectionState
    stats: GatewayConnectionStats | None = None

    @classmethod
    def from_stats(cls, stats: GatewayConnectionStats) -> GatewayConnection:
        """Derive the state from stats that TTS returned."""
        state = (
            ConnectionState.CONNECTED
            if stats.connected_at is not None
            else ConnectionState.DISCONNECTED
        )
        return cls(state=state, stats=stats)


class Right(StrEnum):
    """The API key rights this project asks for."""

    USER_GATEWAYS_LIST = "RIGHT_USER_GATEWAYS_LIST"
    ORGANIZATION_GATEWAYS_LIST = "RIGHT_ORGANIZATION_GATEWAYS_LIST"
    GATEWAY_INFO = "RIGHT_GATEWAY_INFO"
    GATEWAY_STATUS_READ = "RIGHT_GATEWAY_STATUS_READ"
    GATEWAY_TRAFFIC_READ = "RIGHT_GATEWAY_TRAFFIC_READ"
    APPLICATION_INFO = "RIGHT_APPLICATION_INFO"
    APPLICATION_DEVICES_READ = "RIGHT_APPLICATION_DEVICES_READ"
    APPLICATION_TRAFFIC_READ = "RIGHT_APPLICATION_TRAFFIC_READ"
    APPLICATION_TRAFFIC_DOWN_WRITE = "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE"


class KeyOwnerType(StrEnum):
    """Which kind of entity an API key belongs to."""

    USER = "user"
    ORGANIZATION = "organization"
    GATEWAY = "gateway"
    APPLICATION = "application"
    END_DEVICE = "end_device"
    CLIENT = "client"
    UNKNOWN = "unknown"


_OWNER_KEYS: tuple[tuple[str, str, KeyOwnerType], ...] = (
    ("user_ids", "user_id", KeyOwnerType.USER),
    ("organization_ids", "organization_id", KeyOwnerType.ORGANIZATION),
    ("gateway_ids", "gateway_id", KeyOwnerType.GATEWAY),
    ("application_ids", "application_id", KeyOwnerType.APPLICATION),
    ("device_ids", "device_id", KeyOwnerType.END_DEVICE),
    ("client_ids", "client_id", KeyOwnerType.CLIENT),
)


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """Who an API key belongs to and what it may do."""

    owner_type: KeyOwnerType
    owner_id: str
    rights: frozenset[str]
    key_name: str | None = None

    @classmethod
    def from_json(cls, data: object) -> AuthInfo:
        """Parse ``GET /api/v3/auth_info`` for an API key."""
        api_key = _mapping(_mapping(data).get("api_key"))
        entity_ids = _mapping(api_key.get("entity_ids"))
        key = _mapping(api_key.get("api_key"))
        owner_type, owner_id = KeyOwnerType.UNKNOWN, ""
        for container, id_field, kind in _OWNER_KEYS:
            ids = _mapping(entity_ids.get(container))
            if (value := parse_str(ids.get(id_field))) is not None:
                owner_type, owner_id = kind, value
                break
        return cls(
            owner_type=owner_type,
            owner_id=owner_id,
            rights=frozenset(
                right for right in _list(key.get("rights")) if isinstance(right, str)
            ),
            key_name=parse_str(key.get("name")),
        )

    def grants(self, right: Right) -> bool:
        """Whether the key has a right, directly or through a pseudo-right."""
        return not implied_by(right).isdisjoint(self.rights)

    def missing_rights(self, needed: Iterable[Right]) -> list[Right]:
        """The rights of ``needed`` that the key lacks, in the order given."""
        return [right for right in needed if not self.grants(right)]


# TTS's pseudo-rights and the group of rights each implies: every right whose
# name starts with the prefix (lorawan-stack ``pkg/ttnpb/rights.go``). A
# user's or organization's "all" right covers only that entity's own rights
# (such as listing its gateways), not rights on the gateways themselves.
# ``RIGHT_ALL`` implies every right.
_PSEUDO_RIGHTS: tuple[tuple[str, str], ...] = (
    ("RIGHT_USER_ALL", "RIGHT_USER_"),
    ("RIGHT_ORGANIZATION_ALL", "RIGHT_ORGANIZATION_"),
    ("RIGHT_GATEWAY_ALL", "RIGHT_GATEWAY_"),
    ("RIGHT_APPLICATION_ALL", "RIGHT_APPLICATION_"),
)
# Rights implied by a single ordinary right (lorawan-stack
# ``api/ttn/lorawan/v3/rights.proto``): a gateway's link right implies
# RIGHT_GATEWAY_INFO; an application's link right implies
# RIGHT_APPLICATION_INFO, RIGHT_APPLICATION_TRAFFIC_READ and
# RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE. Keyed by the right implied.
_IMPLIED_BY_RIGHT: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "RIGHT_GATEWAY_INFO": frozenset({"RIGHT_GATEWAY_LINK"}),
        "RIGHT_APPLICATION_INFO": frozenset({"RIGHT_APPLICATION_LINK"}),
        "RIGHT_APPLICATION_TRAFFIC_READ": frozenset({"RIGHT_APPLICATION_LINK"}),
        "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE": frozenset({"RIGHT_APPLICATION_LINK"}),
    }
)


def implied_by(right: Right) -> frozenset[str]:
    """Every right a key may hold that grants ``right``: itself included."""
    holders = {right.value, "RIGHT_ALL"}
    holders.update(
        pseudo for pseudo, prefix in _PSEUDO_RIGHTS if right.startswith(prefix)
    )
    holders.update(_IMPLIED_BY_RIGHT.get(right.value, ()))
    return frozenset(holders)


def format_timestamp(moment: datetime) -> str:
    """Write a timestamp the way TTS reads it (RFC 3339, UTC, microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventName(StrEnum):
    """Names of the TTS events this project streams."""

    STREAM_START = "events.stream.start"
    GATEWAY_CONNECT = "gs.gateway.connect"
    GATEWAY_DISCONNECT = "gs.gateway.disconnect"
    GATEWAY_CONNECTION_STATS = "gs.gateway.connection.stats"
    GATEWAY_STATUS = "gs.status.receive"
    GATEWAY_UPLINK = "gs.up.receive"


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
        raw = _mapping(data)
        if (name := parse_str(raw.get("name"))) is None:
            return None
        gateway_ids = tuple(
            gateway_id
            for identifier in _list(raw.get("identifiers"))
            if (
                gateway_id := parse_str(
                    _mapping(_mapping(identifier).get("gateway_ids")).get("gateway_id")
                )
            )
            is not None
        )
        payload = _mapping(raw.get("data"))
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
    for item in _list(correlation_ids):
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
        raw = _mapping(data)
        details = _list(raw.get("details"))
        return cls(
            code=parse_uint(raw.get("code")),
            label=_error_label(details[0]) if details else None,
        )


def _error_label(data: object) -> str | None:
    """``namespace:name`` of an ``ErrorDetails`` object."""
    raw = _mapping(data)
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


@dataclass(frozen=True, slots=True)
class Application:
    """A TTS application as the Identity Server describes it."""

    application_id: str
    name: str | None = None
    description: str | None = None

    @classmethod
    def from_json(cls, data: object, application_id: str) -> Application:
        """Parse ``GET /applications/{id}``; the ID asked for when none is given."""
        raw = _mapping(data)
        ids = _mapping(raw.get("ids"))
        return cls(
            application_id=parse_str(ids.get("application_id")) or application_id,
            name=_bounded_name(raw.get("name")),
            description=_bounded_name(raw.get("description")),
        )


@dataclass(frozen=True, slots=True)
class EndDeviceInfo:
    """An end device as the application's device list names it."""

    application_id: str
    device_id: str
    name: str | None = None
    description: str | None = None
    dev_eui: str | None = None
    version_ids: VersionIds | None = None

    @classmethod
    def from_json(cls, data: object) -> EndDeviceInfo | None:
        """Parse one item of ``GET /applications/{id}/devices``; None if unusable."""
        raw = _mapping(data)
        ids = _mapping(raw.get("ids"))
        application_ids = _mapping(ids.get("application_ids"))
        application_id = parse_str(application_ids.get("application_id"))
        device_id = parse_str(ids.get("device_id"))
        if not (
            application_id
            and device_id
            and IDENTIFIER.match(application_id)
            and IDENTIFIER.match(device_id)
        ):
            return None
        version_ids = raw.get("version_ids")
        return cls(
            application_id=application_id,
            device_id=device_id,
            name=_bounded_name(raw.get("name")),
            description=_bounded_name(raw.get("description")),
            dev_eui=parse_str(ids.get("dev_eui")),
            version_ids=(
                VersionIds.from_json(version_ids)
                if isinstance(version_ids, Mapping)
                else None
            ),
        )


# Names and descriptions shown in Home Assistant are cut to this length.
MAX_NAME_LENGTH = 255


def _bounded_name(value: object) -> str | None:
    text = parse_str(value)
    if text is None or not text.strip():
        return None
    return text.strip()[:MAX_NAME_LENGTH]
