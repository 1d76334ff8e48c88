"""The simulated TTS deployment: every API semantic, in one synchronous class.

`Simulator.handle(request)` answers one HTTP request the way TTS v3 does
(bearer auth with TTS-format keys, ``auth_info``, the gateway list with field
masks, pagination and ``X-Total-Count``, single and batch connection stats,
the events stream, TTS error bodies and ``X-Rate-Limit-*`` headers). It does
no I/O: the aiohttp server (`server.py`) and the test suite's client mocker
both feed requests into it and carry out what the response says (send it,
wait first, hang, or drop the connection).
"""

from __future__ import annotations

import base64
from collections import Counter as CountingDict, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
import copy
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
import json
import math
import random
import re
import time
from typing import Any, Final, Protocol
from urllib.parse import unquote

from . import device_repository, tts_json
from .devices import EndDevice, application_up, uplink_topic
from .fleet import (
    MAX_EVENTS_PER_ADVANCE,
    NO_RIGHTS,
    NOT_CONNECTED,
    PROTOCOL_UDP,
    STATS_EVENT_INTERVAL,
    STATUS_INTERVAL,
    Clock,
    SimGateway,
)
from .storage import UplinkStorage

API_PREFIX: Final = "/api/v3"
ORIGIN: Final = "tts-simulator.local"
TENANT_CONTEXT: Final = {"tenant-id": "CgN0dG4="}
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
MAX_BATCH: Final = 100
EVENTS_KEPT: Final = 5000
# Key of a stored "event" that is a raw stream line (garbage for the tests).
RAW_LINE: Final = "_raw_line"
# Lines that are not events, as a broken proxy or server might send them.
STREAM_GARBAGE: Final = {
    "malformed": b'{"result": {"name": "gs.gateway.disconnect", "time": ',
    "huge-counter": (
        b'{"result": {"name": "gs.gateway.connection.stats", "time":'
        b' "2025-03-14T10:00:00Z", "identifiers": [], "data": {"uplink_count": "'
        + b"9" * 5000
        + b'"}}}'
    ),
    "nested": b'{"result": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "binary": b"\x00\xff\xfe not json",
}
# Enum values that the batch endpoint writes as numbers (plain protojson).
LOCATION_SOURCES: Final = {
    "SOURCE_UNKNOWN": 0,
    "SOURCE_GPS": 1,
    "SOURCE_REGISTRY": 3,
    "SOURCE_IP_GEOLOCATION": 4,
}
# Fields any caller may see of a gateway (pkg/ttnpb/public.go).
PUBLIC_GATEWAY_FIELDS: Final = frozenset(
    {
        "name",
        "description",
        "frequency_plan_id",
        "frequency_plan_ids",
        "status_public",
        "location_public",
        "lrfhss",
        "contacts",
    }
)
ALWAYS_LISTED: Final = ("ids", "created_at", "updated_at")


def _field(item: object, *path: str) -> str:
    """A string field of a registry record; "" if absent (tests store odd ones)."""
    for key in path:
        item = item.get(key) if isinstance(item, Mapping) else None
    return item if isinstance(item, str) else ""


ORDERS: Final[dict[str, Callable[[object], str]]] = {
    "gateway_id": lambda item: _field(item, "ids", "gateway_id"),
    "gateway_eui": lambda item: _field(item, "ids", "eui"),
    "name": lambda item: _field(item, "name"),
    "created_at": lambda item: _field(item, "created_at"),
}
GATEWAY_EVENT_NAMES: Final = (
    "gs.gateway.connect",
    "gs.gateway.connection.stats",
    "gs.gateway.disconnect",
    "gs.status.receive",
    "gs.up.receive",
    "gs.down.send",
    "gs.txack.receive",
)
STATUS_VISIBILITY: Final = ("RIGHT_GATEWAY_LINK", "RIGHT_GATEWAY_STATUS_READ")
TRAFFIC_VISIBILITY: Final = ("RIGHT_GATEWAY_TRAFFIC_READ",)
DEFAULT_RIGHTS: Final = (
    "RIGHT_USER_GATEWAYS_LIST",
    "RIGHT_GATEWAY_INFO",
    "RIGHT_GATEWAY_STATUS_READ",
    "RIGHT_GATEWAY_LOCATION_READ",
    "RIGHT_GATEWAY_TRAFFIC_READ",
)


class Endpoint(StrEnum):
    """The API calls the simulator serves; faults and counts are per endpoint."""

    AUTH_INFO = "auth_info"
    GATEWAYS = "gateways"
    BATCH = "batch"
    SINGLE = "single"
    EVENTS = "events"
    APPLICATION = "application"
    END_DEVICES = "end_devices"
    DOWNLINK = "downlink"
    STORAGE = "storage"
    MQTT_INFO = "mqtt_info"
    DEVICE_REPOSITORY = "device_repository"


class Action(StrEnum):
    """What the transport does with a response."""

    RESPOND = "respond"
    HANG = "hang"  # never answer: the client times out
    DROP = "drop"  # close the connection without an answer
    CUT = "cut"  # send the status, headers and part of the body, then close


class ReconnectOrder(StrEnum):
    """The order a gateway's reconnect reaches the events stream in.

    TTS ids every connection (``gs:conn:<ULID>``, lorawan-stack
    ``pkg/gatewayserver/gatewayserver.go``, ``Connect``); how the superseded
    connection's end and the new connection's events interleave depends on
    which Gateway Server holds each.
    """

    # One server: ``Connect`` disconnects the gateway's connection and waits
    # for its tasks (its disconnect and last stats) before the new connect.
    ONE_SERVER = "one-server"
    # A cluster: the new connection's connect and first stats, then another
    # server's late end of the old one (an expired UDP connection).
    CLUSTER = "cluster"
    # As CLUSTER, with the new connection's first stats only after the end.
    CLUSTER_STATS_AFTER_END = "cluster-stats-after-end"
    # As CLUSTER, with the connect delivered after the old one's later end.
    CLUSTER_CONNECT_AFTER_END = "cluster-connect-after-end"


class FaultKind(StrEnum):
    """Injectable failures."""

    STATUS = "status"  # an HTTP status, with a TTS error body unless given one
    SLOW = "slow"  # the normal answer, `delay` seconds late
    TIMEOUT = "timeout"
    DROP = "drop"
    MALFORMED = "malformed"  # 200 with a truncated JSON body
    CUT = "cut"  # the normal answer, cut off mid-body by a dropped connection


@dataclass
class Fault:
    """One injected failure, used by the next request to its endpoint."""

    kind: FaultKind
    status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    retry_after: float | None = None
    # For DROP and TIMEOUT: the error an in-process client should see.
    error: BaseException | None = None


@dataclass(frozen=True)
class Request:
    """One HTTP request; header names are matched case-insensitively."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    # The host the request was sent to; on a cloud, which cluster answers.
    host: str = ""

    def header(self, name: str) -> str | None:
        """A header's value, or None."""
        name = name.lower()
        for key, value in self.headers.items():
            if key.lower() == name:
                return value
        return None


@dataclass
class Response:
    """What to answer, and how."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "application/json"}
    )
    delay: float = 0.0
    action: Action = Action.RESPOND
    error: BaseException | None = None
    events: EventSubscription | None = None

    def json(self) -> Any:
        """The body as JSON (tests)."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class MqttMessage:
    """An uplink to publish on the MQTT broker."""

    topic: str
    payload: bytes


class LiveStats(Protocol):
    """Something that renders a gateway's connection stats at a time."""

    def connection_stats(self, now: float) -> dict[str, Any] | int:
        """Stats JSON, or NOT_CONNECTED / NO_RIGHTS."""


StatsSource = dict[str, Any] | int | LiveStats


@dataclass
class _Caller:
    key_id: str
    rights: frozenset[str]
    owner_type: str  # user, organization, or another entity kind
    owner_id: str

    def has(self, right: str) -> bool:
        if right in self.rights or "RIGHT_ALL" in self.rights:
            return True
        # lorawan-stack api/ttn/lorawan/v3/rights.proto: the link rights.
        if right in _IMPLIED_BY_LINK and _IMPLIED_BY_LINK[right] in self.rights:
            return True
        group = right.split("_")[1]  # RIGHT_GATEWAY_INFO -> GATEWAY
        return f"RIGHT_{group}_ALL" in self.rights


# Rights a link right implies (lorawan-stack api/ttn/lorawan/v3/rights.proto).
_IMPLIED_BY_LINK = {
    "RIGHT_GATEWAY_INFO": "RIGHT_GATEWAY_LINK",
    "RIGHT_APPLICATION_INFO": "RIGHT_APPLICATION_LINK",
    "RIGHT_APPLICATION_TRAFFIC_READ": "RIGHT_APPLICATION_LINK",
    "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE": "RIGHT_APPLICATION_LINK",
}


def apply_field_mask(data: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """Keep only the (possibly nested, dot-separated) paths of an object."""
    result: dict[str, Any] = {}
    nested: defaultdict[str, list[str]] = defaultdict(list)
    for path in paths:
        head, _, rest = path.strip().partition(".")
        if head not in data:
            continue
        if rest:
            nested[head].append(rest)
        else:
            # Shared, not copied: answers are serialised right away.
            result[head] = data[head]
    for head, rest_paths in nested.items():
        if (
            head not in result
            and isinstance(data[head], Mapping)
            and (sub := apply_field_mask(data[head], rest_paths))
        ):
            result[head] = sub
    return {key: result[key] for key in data if key in result}


def batch_encoding(stats: Mapping[str, Any]) -> dict[str, Any]:
    """Batch entries are plain protojson: enums become numbers."""
    encoded = dict(stats)
    status = encoded.get("last_status")
    locations = status.get("antenna_locations") if isinstance(status, dict) else None
    if isinstance(status, dict) and isinstance(locations, list):
        # Copy only what changes; the rest is shared with the stored stats.
        encoded["last_status"] = {
            **status,
            "antenna_locations": [
                {**location, "source": LOCATION_SOURCES.get(location["source"], 0)}
                if isinstance(location, dict)
                and isinstance(location.get("source"), str)
                else location
                for location in locations
            ],
        }
    return encoded


def public_safe(item: Mapping[str, Any]) -> dict[str, Any]:
    """A gateway as a caller without RIGHT_GATEWAY_INFO sees it."""
    safe = {
        key: value
        for key, value in item.items()
        if key in ALWAYS_LISTED or key in PUBLIC_GATEWAY_FIELDS
    }
    if item.get("status_public") and "gateway_server_address" in item:
        safe["gateway_server_address"] = item["gateway_server_address"]
    if item.get("location_public") and "antennas" in item:
        safe["antennas"] = item["antennas"]
    return {key: safe[key] for key in item if key in safe}


class RateLimiter:
    """Fixed one-minute windows per limiter key, with TTS's headers."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}

    def check(self, key: str, now: float) -> tuple[bool, dict[str, str]]:
        """Count one request; return whether it may pass and the headers."""
        window = math.floor(now / 60)
        start, used = self._windows.get(key, (window, 0))
        if start != window:
            used = 0
        reset = max(1, math.ceil((window + 1) * 60 - now))
        allowed = used < self.per_minute
        if allowed:
            used += 1
        self._windows[key] = (window, used)
        headers = {
            "X-Rate-Limit-Limit": str(self.per_minute),
            "X-Rate-Limit-Available": str(self.per_minute - used),
            "X-Rate-Limit-Reset": str(reset),
        }
        if not allowed:
            headers["X-Rate-Limit-Retry"] = str(reset)
        return allowed, headers


class EventSubscription:
    """One open ``POST /api/v3/events`` stream."""

    def __init__(
        self,
        simulator: Simulator,
        api_key: str,
        gateway_ids: frozenset[str],
        matches: Callable[[str], bool],
        delimiter: bytes,
        cursor: int,
    ) -> None:
        self._simulator = simulator
        self._api_key = api_key
        self.gateway_ids = gateway_ids
        self._matches = matches
        self.delimiter = delimiter
        self.cursor = cursor
        self.closed = False

    def wants(self, event: Mapping[str, Any], rights: Callable[[str], bool]) -> bool:
        """Whether the event is for this stream and visible to its key."""
        if not self._matches(event["name"]):
            return False
        ids = {
            identifier.get("gateway_ids", {}).get("gateway_id")
            for identifier in event.get("identifiers", [])
        }
        if not ids & self.gateway_ids:
            return False
        visible = event.get("visibility", {}).get("rights", [])
        return not visible or any(rights(right) for right in visible)

    def poll(self) -> bytes:
        """Frames of the events published since the last poll."""
        if self.closed:
            return b""
        caller = self._simulator.caller_of(self._api_key)
        if caller is None:
            # The key was revoked: TTS ends the stream with an in-band error.
            self.closed = True
            body = self._simulator.error_unauthenticated()
            return tts_json.dumps({"error": body}) + self.delimiter
        frames = []
        for seq, event in self._simulator.events_since(self.cursor):
            self.cursor = seq
            if RAW_LINE in event:
                frames.append(event[RAW_LINE] + self.delimiter)
            elif self.wants(event, caller.has):
                frames.append(tts_json.dumps({"result": event}) + self.delimiter)
        return b"".join(frames)


# Every right of an application key the integration can use.
APPLICATION_RIGHTS: tuple[str, ...] = (
    "RIGHT_APPLICATION_INFO",
    "RIGHT_APPLICATION_DEVICES_READ",
    "RIGHT_APPLICATION_TRAFFIC_READ",
    "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE",
)
# What TTS's device repository says of the simulated devices.
DEVICE_NAMES: dict[str, tuple[str, dict[str, str]]] = {
    "feather-m0": (
        "Feather M0 on the balcony",
        {
            "brand_id": "adafruit",
            "model_id": "feather-m0-lora",
            "band_id": "EU_863_870",
        },
    ),
    "lpp-climate-sensor": (
        "Climate sensor",
        {"brand_id": "elsys", "model_id": "ers", "band_id": "EU_863_870"},
    ),
    "soil-sensor": (
        "Soil sensor",
        {"brand_id": "dragino", "model_id": "lse01", "band_id": "EU_863_870"},
    ),
    # vendor/elsys/ems-desk.yaml in TheThingsNetwork/lorawan-devices.
    "office-desk-sensor": (
        "Office desk sensor",
        {"brand_id": "elsys", "model_id": "ems-desk", "band_id": "EU_863_870"},
    ),
}
_APPLICATION_PATH = re.compile(r"/api/v3/applications/([^/]+)")
_DEVICES_PATH = re.compile(r"/api/v3/applications/([^/]+)/devices")
_DOWNLINK_PATH = re.compile(
    r"/api/v3/as/applications/([^/]+)/devices/([^/]+)/down/(push|replace)"
)
# ApplicationUpStorage.GetStoredApplicationUp's application binding.
_STORAGE_PATH = re.compile(r"/api/v3/as/applications/([^/]+)/packages/storage/([^/]*)")
_MQTT_INFO_PATH = re.compile(r"/api/v3/as/applications/([^/]+)/mqtt-connection-info")


@dataclass
class SimApplication:
    """The simulated application and its API key."""

    application_id: str
    name: str
    api_key: str
    rights: list[str]
    tenant: str

    @property
    def key_id(self) -> str:
        """The public part of the key."""
        parts = self.api_key.split(".")
        return parts[1] if len(parts) == 3 else ""


class Simulator:
    """A TTS deployment with one user's API key, its gateways and their stats.

    `gateways` holds the registry records as the Identity Server stores them
    (all fields); `stats` maps a gateway id to its stats JSON, to
    NOT_CONNECTED (404) or NO_RIGHTS (403), or to a live `SimGateway`. A
    registered gateway without an entry has never connected; an id that is
    neither registered nor in `stats` is unknown (403, as TTS answers).
    """

    def __init__(
        self,
        *,
        api_key: str,
        clock: Clock = time.time,
        seed: int = 1,
        user_id: str = "jdoe",
        rights: Iterable[str] = DEFAULT_RIGHTS,
        rate_limit_per_minute: int | None = None,
        application_id: str = "home-sensors",
        tenant: str = "ttn",
        cluster: str = "eu1",
        application_key: str | None = None,
    ) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.api_key = api_key
        key_id = api_key.split(".")[1] if api_key.count(".") == 2 else api_key
        created = tts_json.timestamp(clock() - 30 * 86400)
        self.auth_info: dict[str, Any] = {
            "api_key": {
                "api_key": {
                    "id": key_id,
                    "name": "home-assistant",
                    "rights": list(rights),
                    "created_at": created,
                    "updated_at": created,
                },
                "entity_ids": {"user_ids": {"user_id": user_id}},
            }
        }
        # Registry records; any JSON value is served as is, so tests can store
        # malformed ones.
        self.gateways: list[Any] = []
        self.stats: dict[str, StatsSource] = {}
        self.fleet: dict[str, SimGateway] = {}
        self.devices: list[EndDevice] = []
        # Paused devices send nothing, as if switched off.
        self.devices_paused = False
        # Fault switches of the device list (see _list_end_devices).
        self.device_list_total = True
        self.device_list_shifting = False
        self.device_list_extra: list[Any] = []
        self._device_list_shifted = 0
        self.application_id = application_id
        self.tenant = tenant
        self.application = SimApplication(
            application_id=application_id,
            name="Home sensors",
            api_key=application_key
            or tts_json.api_key(random.Random(f"application-{seed}")),
            rights=list(APPLICATION_RIGHTS),
            tenant=tenant,
        )
        # The application's Storage Integration: what it was sent, kept.
        self.storage = UplinkStorage(self.rng)
        # Downlinks taken over HTTP or MQTT, and who is told of each.
        self.downlinks: list[dict[str, Any]] = []
        self.downlink_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.cluster = cluster
        # The cluster whose Application Server serves the application's
        # devices: what their ``application_server_address`` names. On TTN
        # and TTS Cloud any cluster, whatever the account's (docs:
        # concepts/ttn/addresses, "You can use any cluster with your account").
        self.application_cluster = cluster
        # The application's own ``application_server_address``
        # (application.proto field 13, "where end devices for this
        # application should be registered"); empty, so left out, unless set.
        self.application_server_address: str | None = None
        # What ``mqtt-connection-info`` answers: the Application Server's
        # configured public addresses (``as.mqtt.public-address`` and
        # ``public-tls-address``). The cloud's hosts on a cloud tenant, else
        # TTS's defaults, ``localhost:1883`` and ``localhost:8883``
        # (lorawan-stack cmd/ttn-lw-stack/commands/config.go,
        # DefaultApplicationServerConfig). None: the route is not served.
        host = (
            f"{cluster}.cloud.thethings.network"
            if tenant == "ttn"
            else f"{tenant}.{cluster}.cloud.thethings.industries"
            if tenant
            else "localhost"
        )
        self.mqtt_public_address: str | None = f"{host}:1883"
        self.mqtt_public_tls_address: str | None = f"{host}:8883"
        self.faults: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self.request_counts: CountingDict[str] = CountingDict()
        self.rate_limiter = (
            RateLimiter(rate_limit_per_minute) if rate_limit_per_minute else None
        )
        self._events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=EVENTS_KEPT)
        self._event_seq = 0
        # Events published later: (due time, event), e.g. late disconnects.
        self._deferred: list[tuple[float, dict[str, Any]]] = []
        # Whether gs.gateway.connect carries the first stats (newer TTS hands
        # them to registerGatewayConnect) or no data (observability.go).
        self.connect_event_data = False
        # Whether stats events carry the gs:conn id: updateConnStats publishes
        # with the connection's context values (io.Server.FromRequestContext
        # keeps them); False covers a TTS that drops them.
        self.stats_carry_ids = True
        # Gateways the key has no right on at all: TTS refuses to stream them.
        self.events_refused: set[str] = set()
        self.subscriptions: list[EventSubscription] = []
        self._advanced_at = clock()
        self.subscribers: list[Callable[[], None]] = []

    # --- the fleet ---------------------------------------------------------

    def add_gateway(self, gateway: SimGateway) -> None:
        """Register a live gateway."""
        if gateway.connected and not gateway.connection_id:
            start = gateway.connected_at or self.clock()
            gateway.connection_id = f"gs:conn:{tts_json.ulid(start, self.rng)}"
        self.fleet[gateway.gateway_id] = gateway
        self.gateways.append(gateway.record())
        self.stats[gateway.gateway_id] = gateway

    def remove_gateway(self, gateway_id: str) -> None:
        """Delete a gateway from the registry."""
        self.fleet.pop(gateway_id, None)
        self.stats.pop(gateway_id, None)
        self.gateways = [
            item
            for item in self.gateways
            if _field(item, "ids", "gateway_id") != gateway_id
        ]

    def live(self, gateway_id: str) -> SimGateway:
        """A live gateway by id; KeyError if there is none."""
        return self.fleet[gateway_id]

    def disconnect(self, gateway_id: str) -> None:
        """The gateway loses its connection."""
        gateway, now = self.live(gateway_id), self.clock()
        if not gateway.connected:
            return
        gateway.disconnect(now)
        for event in self._connection_end(gateway, gateway.connection_id, now):
            self.publish(event)

    def _connection_end(
        self,
        gateway: SimGateway,
        connection_id: str,
        at: float,
        error: tuple[str, str, str, int] = (
            "pkg/gatewayserver/io/udp",
            "connection_expired",
            "connection expired",
            2,  # errors.Define: Unknown (pkg/gatewayserver/io/udp)
        ),
    ) -> list[dict[str, Any]]:
        """The end of a connection: its disconnect, then its last stats.

        gatewayserver.go: handleUpstream publishes the disconnect with the
        error that ended the connection as ErrorDetails (observability.go,
        registerGatewayDisconnect); updateConnStats then publishes stats
        with connected_at nil and disconnected_at.
        """
        namespace, name, message, code = error
        disconnect = self._event_body(
            gateway,
            "gs.gateway.disconnect",
            {
                "@type": "type.googleapis.com/ttn.lorawan.v3.ErrorDetails",
                "namespace": namespace,
                "name": name,
                "message_format": message,
                "correlation_id": tts_json.correlation_id(self.rng),
                "code": code,
            },
            at,
            STATUS_VISIBILITY,
            connection_id,
        )
        stats = {
            "@type": "type.googleapis.com/ttn.lorawan.v3.GatewayConnectionStats",
            "disconnected_at": tts_json.timestamp(at),
        }
        return [disconnect, self._stats_body(gateway, stats, at, connection_id)]

    def connect(self, gateway_id: str) -> None:
        """The gateway (re)connects; TTS restarts its stats."""
        gateway, now = self.live(gateway_id), self.clock()
        if gateway.connected:
            return
        for event in self._open_connection(gateway, now):
            self.publish(event)

    def _open_connection(self, gateway: SimGateway, now: float) -> list[dict[str, Any]]:
        """A new connection: its connect, then its first stats.

        gatewayserver.go, Connect: a new gs:conn id on the connection's
        context; io.NewConnection takes connected_at, just before the connect
        event. updateConnStats publishes the first stats right after.
        """
        gateway.connect(now)
        gateway.connection_id = f"gs:conn:{tts_json.ulid(now, self.rng)}"
        gateway.quiet = False
        stats = gateway.connection_stats(now)
        if not isinstance(stats, dict):
            return []
        data: dict[str, Any] | None = None
        if self.connect_event_data:
            data = {
                "@type": "type.googleapis.com/ttn.lorawan.v3.GatewayConnectionStats",
                **{
                    key: stats[key]
                    for key in ("connected_at", "protocol", "gateway_remote_address")
                    if key in stats
                },
            }
        at = now + 0.0003  # the event follows connected_at
        connect = self._event_body(
            gateway,
            "gs.gateway.connect",
            data,
            at,
            STATUS_VISIBILITY,
            gateway.connection_id,
        )
        first = {
            "@type": "type.googleapis.com/ttn.lorawan.v3.GatewayConnectionStats",
            **stats,
        }
        return [connect, self._stats_body(gateway, first, at, gateway.connection_id)]

    def reconnect(
        self,
        gateway_id: str,
        late_disconnect: float = 5.0,
        order: ReconnectOrder = ReconnectOrder.CLUSTER,
    ) -> None:
        """The gateway opens a new connection; the old one ends (`ReconnectOrder`).

        In the cluster orders the superseded connection's end comes
        ``late_disconnect`` seconds after the new connection's connect.
        """
        gateway, now = self.live(gateway_id), self.clock()
        if not gateway.connected:
            self.connect(gateway_id)
            return
        old_connection = gateway.connection_id
        if order is ReconnectOrder.ONE_SERVER:
            gateway.disconnect(now)
            ended = self._connection_end(
                gateway,
                old_connection,
                now,
                (  # errNewConnection: errors.DefineAborted (gatewayserver.go)
                    "pkg/gatewayserver",
                    "new_connection",
                    "new connection from same gateway",
                    10,
                ),
            )
            for event in [*ended, *self._open_connection(gateway, now + 0.001)]:
                self.publish(event)
            return
        opened = self._open_connection(gateway, now)
        end_at = now + late_disconnect
        ended = self._connection_end(gateway, old_connection, end_at)
        if not opened:  # the key may not read this gateway's status
            self._deferred.extend((end_at, event) for event in ended)
            return
        connect, first_stats = opened
        if order is ReconnectOrder.CLUSTER_CONNECT_AFTER_END:
            self._deferred.extend((end_at, event) for event in ended)
            self._deferred.append((end_at + 0.5, connect))
            self._deferred.append((end_at + 0.5, first_stats))
            return
        self.publish(connect)
        if order is ReconnectOrder.CLUSTER_STATS_AFTER_END:
            self._deferred.extend((end_at, event) for event in ended)
            self._deferred.append((end_at + 0.5, first_stats))
            return
        self.publish(first_stats)
        self._deferred.extend((end_at, event) for event in ended)

    def publish_uplinks(self, count: int) -> None:
        """Publish ``count`` uplink events, round-robin over connected gateways."""
        gateways = [gateway for gateway in self.fleet.values() if gateway.connected]
        now = self.clock()
        for index in range(count):
            gateway = gateways[index % len(gateways)]
            at = now + index / 1000
            self._gateway_event(
                gateway,
                "gs.up.receive",
                self._uplink_data(gateway, at),
                at,
                TRAFFIC_VISIBILITY,
            )

    def set_stats_lag(self, gateway_id: str, seconds: float) -> None:
        """Answer the gateway's stats ``seconds`` behind its events."""
        self.live(gateway_id).stats_lag = max(0.0, seconds)

    def set_events_refused(self, gateway_id: str, refused: bool) -> None:
        """Take (or give back) every right of the key on the gateway's events."""
        if refused:
            self.events_refused.add(gateway_id)
        else:
            self.events_refused.discard(gateway_id)

    def drop_streams(self) -> None:
        """End every open events stream, as a restarting server or proxy does."""
        for subscription in self.subscriptions:
            subscription.closed = True
        self.subscriptions = []
        for notify in self.subscribers:
            notify()

    def send_stream_garbage(self, kind: str) -> None:
        """Write a line that is no event to every open stream."""
        self._event_seq += 1
        self._events.append((self._event_seq, {RAW_LINE: STREAM_GARBAGE[kind]}))
        for notify in self.subscribers:
            notify()

    def set_quiet(self, gateway_id: str, quiet: bool = True) -> None:
        """Connected, but no uplinks are heard (or they are again)."""
        self.live(gateway_id).set_quiet(self.clock(), quiet)

    def set_status_readable(self, gateway_id: str, readable: bool) -> None:
        """Grant or take the key's RIGHT_GATEWAY_STATUS_READ on one gateway."""
        self.live(gateway_id).status_readable = readable

    def rename(self, gateway_id: str, name: str) -> None:
        """Rename a gateway in the registry."""
        gateway = self.live(gateway_id)
        gateway.name = name
        gateway.updated_at = self.clock()
        for index, item in enumerate(self.gateways):
            if _field(item, "ids", "gateway_id") == gateway_id:
                self.gateways[index] = gateway.record()

    def move(self, gateway_id: str, latitude: float | None, longitude: float) -> None:
        """Set (or, with no latitude, remove) a gateway's antenna location."""
        gateway = self.live(gateway_id)
        gateway.latitude, gateway.longitude = latitude, longitude
        gateway.updated_at = self.clock()
        for index, item in enumerate(self.gateways):
            if _field(item, "ids", "gateway_id") == gateway_id:
                self.gateways[index] = gateway.record()

    def pause_devices(self, paused: bool = True) -> None:
        """Stop the end devices sending, or let them send again."""
        self.devices_paused = paused
        if not paused:
            now = self.clock()
            for device in self.devices:
                # Send once now if an uplink fell due while paused, not a burst.
                device.next_uplink_at = max(device.next_uplink_at, now)

    def advance(self) -> list[MqttMessage]:
        """Bring the fleet to now: publish due events, return due device uplinks."""
        now = self.clock()
        since, self._advanced_at = self._advanced_at, now
        if now <= since:
            return []
        if self._deferred:
            due = [item for item in self._deferred if item[0] <= now]
            self._deferred = [item for item in self._deferred if item[0] > now]
            for _, event in sorted(due, key=lambda item: item[0]):
                self.publish(event)
        for gateway in self.fleet.values():
            if gateway.connected:
                self._periodic_events(gateway, since, now)
        messages: list[MqttMessage] = []
        for device in [] if self.devices_paused else self.devices:
            # After a long pause, send one uplink rather than a burst.
            if now - device.next_uplink_at > 10 * device.interval:
                device.next_uplink_at = now
            while device.next_uplink_at <= now:
                at = device.next_uplink_at
                device.next_uplink_at += device.interval
                if message := self._device_uplink(device, at):
                    messages.append(message)
        return messages

    def _device_uplink(self, device: EndDevice, now: float) -> MqttMessage | None:
        hearing = sorted(
            (g for g in self.fleet.values() if g.connected and not g.quiet),
            key=lambda g: g.gateway_id,
        )
        device.f_cnt += 1
        if not hearing:
            return None  # nobody heard it: lost, as on air
        if device.single_gateway:
            receivers = hearing[:1]
        else:
            # Several gateways often hear one uplink; TTS lists each.
            count = min(len(hearing), self.rng.choice((1, 2, 2, 3)))
            receivers = self.rng.sample(hearing[: max(count, 3)], count)
        for gateway in receivers:
            gateway.hear_uplink(now)
        payload = device.payload(self.rng, now)
        body = application_up(
            device,
            payload,
            now,
            receivers,
            self.rng,
            application_id=self.application_id,
            tenant=self.tenant,
            cluster=self.cluster,
        )
        topic = uplink_topic(self.application_id, self.tenant, device.device_id)
        self.storage.keep(body)
        return MqttMessage(topic, tts_json.dumps(body))

    # --- events ------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        """Store an event for the open streams."""
        self._event_seq += 1
        self._events.append((self._event_seq, event))
        for notify in self.subscribers:
            notify()

    def events_since(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        """Stored events after sequence number `seq`."""
        return [(number, event) for number, event in self._events if number > seq]

    def _gateway_event(
        self,
        gateway: SimGateway,
        name: str,
        data: dict[str, Any] | None,
        now: float,
        visibility: tuple[str, ...] = STATUS_VISIBILITY,
    ) -> None:
        self.publish(
            self._event_body(
                gateway, name, data, now, visibility, gateway.connection_id
            )
        )

    def _event_body(
        self,
        gateway: SimGateway,
        name: str,
        data: dict[str, Any] | None,
        now: float,
        visibility: tuple[str, ...],
        connection_id: str,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "name": name,
            "time": tts_json.timestamp(now),
            "identifiers": [
                {"gateway_ids": {"gateway_id": gateway.gateway_id, "eui": gateway.eui}}
            ],
        }
        if data is not None:
            event["data"] = data
        if connection_id:
            event["correlation_ids"] = [connection_id]
        event["origin"] = ORIGIN
        event["context"] = TENANT_CONTEXT
        event["visibility"] = {"rights": list(visibility)}
        event["unique_id"] = tts_json.ulid(now, self.rng)
        return event

    def _stats_event(self, gateway: SimGateway, now: float) -> None:
        stats = gateway.connection_stats(now)
        if isinstance(stats, dict):
            data = {
                "@type": "type.googleapis.com/ttn.lorawan.v3.GatewayConnectionStats",
                **stats,
            }
            self.publish(self._stats_body(gateway, data, now, gateway.connection_id))

    def _stats_body(
        self, gateway: SimGateway, data: dict[str, Any], now: float, connection_id: str
    ) -> dict[str, Any]:
        """A gs.gateway.connection.stats event (gatewayserver.go, updateConnStats)."""
        return self._event_body(
            gateway,
            "gs.gateway.connection.stats",
            data,
            now,
            STATUS_VISIBILITY,
            connection_id if self.stats_carry_ids else "",
        )

    def _periodic_events(self, gateway: SimGateway, since: float, now: float) -> None:
        uplinks = gateway.uplinks.count(now, not gateway.quiet) - gateway.uplinks.count(
            since, not gateway.quiet
        )
        for index in range(min(uplinks, MAX_EVENTS_PER_ADVANCE)):
            at = now - index * gateway.uplink_interval
            self._gateway_event(
                gateway,
                "gs.up.receive",
                self._uplink_data(gateway, at),
                at,
                TRAFFIC_VISIBILITY,
            )
        if gateway.protocol == PROTOCOL_UDP and math.floor(
            now / STATUS_INTERVAL
        ) != math.floor(since / STATUS_INTERVAL):
            stats = gateway.connection_stats(now)
            if isinstance(stats, dict) and "last_status" in stats:
                data = {
                    "@type": "type.googleapis.com/ttn.lorawan.v3.GatewayStatus",
                    **stats["last_status"],
                }
                self._gateway_event(gateway, "gs.status.receive", data, now)
        if math.floor(now / STATS_EVENT_INTERVAL) != math.floor(
            since / STATS_EVENT_INTERVAL
        ):
            self._stats_event(gateway, now)

    def _uplink_data(self, gateway: SimGateway, at: float) -> dict[str, Any]:
        rssi = self.rng.randint(-118, -62)
        return {
            "@type": "type.googleapis.com/ttn.lorawan.v3.GatewayUplinkMessage",
            "message": {
                "raw_payload": tts_json.b64(self.rng.randbytes(16)),
                "settings": {
                    "data_rate": {
                        "lora": {
                            "bandwidth": 125000,
                            "spreading_factor": 7,
                            "coding_rate": "4/5",
                        }
                    },
                    "frequency": "868100000",
                    "timestamp": int(at * 1_000_000) % 2**32,
                    "time": tts_json.timestamp(at),
                },
                "rx_metadata": [
                    {
                        "gateway_ids": {
                            "gateway_id": gateway.gateway_id,
                            "eui": gateway.eui,
                        },
                        "time": tts_json.timestamp(at),
                        "timestamp": int(at * 1_000_000) % 2**32,
                        "rssi": rssi,
                        "channel_rssi": rssi,
                        "snr": round(self.rng.uniform(-7.5, 10.5), 2),
                        "received_at": tts_json.timestamp(at + 0.02),
                    }
                ],
                "received_at": tts_json.timestamp(at + 0.02),
            },
            "band_id": "EU_863_870",
        }

    # --- faults ------------------------------------------------------------

    def inject(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        """Fail the next `times` requests to an endpoint (or "*" for any)."""
        for _ in range(times):
            self.faults[endpoint].append(copy.copy(fault))

    def _take_fault(self, endpoint: str) -> Fault | None:
        for name in (endpoint, "*"):
            if self.faults[name]:
                return self.faults[name].popleft()
        return None

    def _fault_response(
        self, fault: Fault, endpoint: str, request: Request
    ) -> Response | None:
        if fault.kind is FaultKind.TIMEOUT:
            return Response(0, action=Action.HANG, error=fault.error)
        if fault.kind is FaultKind.DROP:
            return Response(0, action=Action.DROP, error=fault.error)
        if fault.kind is FaultKind.MALFORMED:
            return Response(HTTPStatus.OK, b'{"gateways":[{"ids":{"gateway_id":"')
        if fault.kind in (FaultKind.SLOW, FaultKind.CUT):
            return None
        headers = {"Content-Type": "application/json"}
        if fault.retry_after is not None:
            headers.update(
                {
                    "X-Rate-Limit-Limit": "60",
                    "X-Rate-Limit-Available": "0",
                    "X-Rate-Limit-Reset": str(math.ceil(fault.retry_after)),
                    "X-Rate-Limit-Retry": str(math.ceil(fault.retry_after)),
                }
            )
        headers.update(fault.headers)
        if fault.raw is not None:
            body = fault.raw
        elif fault.body is not None:
            body = tts_json.dumps(fault.body)
        else:
            error = self._default_error(fault.status, endpoint, request)
            body = tts_json.dumps(error) if error is not None else b""
        return Response(fault.status, body, headers)

    def _default_error(
        self, status: int, endpoint: str, request: Request
    ) -> dict[str, Any] | None:
        gateway = self._path_gateway(request.path) or "eui-b827ebfffe8db887"
        if status == HTTPStatus.UNAUTHORIZED:
            return self._api_key_not_found(self.auth_info_key_id())
        if status == HTTPStatus.FORBIDDEN:
            return self._insufficient_gateway_rights(gateway)
        if status == HTTPStatus.NOT_FOUND:
            return self._not_connected(gateway)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return self._rate_limited(f"grpc:method:{endpoint}", 60)
        if status == HTTPStatus.INTERNAL_SERVER_ERROR:
            return tts_json.error_body(
                13, "pkg/rpcserver", "internal", "internal error", rng=self.rng
            )
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            return tts_json.error_body(
                14,
                "pkg/rpcserver",
                "unavailable",
                "service unavailable",
                rng=self.rng,
            )
        return None

    # --- errors ------------------------------------------------------------

    def _error(self, body: dict[str, Any], headers: dict[str, str]) -> Response:
        status = tts_json.HTTP_STATUS_OF_CODE.get(body["code"], 500)
        if status == HTTPStatus.UNAUTHORIZED:
            headers = {**headers, "WWW-Authenticate": body["message"]}
        return Response(status, tts_json.dumps(body), headers)

    def error_unauthenticated(self) -> dict[str, Any]:
        """401 for a call without credentials where TTS needs them."""
        return tts_json.error_body(
            16,
            "pkg/rpcmetadata",
            "unauthenticated",
            "the context is not authenticated",
            rng=self.rng,
        )

    def _api_key_not_found(self, key_id: str) -> dict[str, Any]:
        return tts_json.error_body(
            16,
            "pkg/identityserver",
            "api_key_not_found",
            "API key not found",
            cause={
                "namespace": "pkg/identityserver/store",
                "name": "api_key_not_found",
                "message_format": "api key with id `{api_key_id}` not found",
                "attributes": {"api_key_id": key_id},
                "correlation_id": tts_json.correlation_id(self.rng),
                "code": 5,
            },
            rng=self.rng,
        )

    def _insufficient_gateway_rights(self, gateway_id: str) -> dict[str, Any]:
        return tts_json.error_body(
            7,
            "pkg/auth/rights",
            "insufficient_gateway_rights",
            "insufficient rights for gateway `{uid}`",
            attributes={"missing": ["RIGHT_GATEWAY_STATUS_READ"], "uid": gateway_id},
            rng=self.rng,
        )

    def _no_gateway_rights(self, gateway_id: str) -> dict[str, Any]:
        return tts_json.error_body(
            7,
            "pkg/auth/rights",
            "no_gateway_rights",
            "no rights for gateway `{uid}`",
            attributes={"uid": gateway_id},
            rng=self.rng,
        )

    def _not_connected(self, gateway_id: str) -> dict[str, Any]:
        return tts_json.error_body(
            5,
            "pkg/gatewayserver",
            "not_connected",
            "gateway `{gateway_uid}` not connected",
            attributes={"gateway_uid": gateway_id},
            cause={
                "namespace": "pkg/redis",
                "name": "not_found",
                "message_format": "entity not found",
                "correlation_id": tts_json.correlation_id(self.rng),
                "code": 5,
            },
            rng=self.rng,
        )

    def _rate_limited(self, key: str, rate: int) -> dict[str, Any]:
        return tts_json.error_body(
            8,
            "pkg/ratelimit",
            "rate_limit_exceeded",
            "rate limit of `{rate}` accesses per minute exceeded for resource `{key}`",
            attributes={"key": key, "rate": rate},
            rng=self.rng,
        )

    def _validation(self, field_name: str, reason: str) -> dict[str, Any]:
        return tts_json.error_body(
            3,
            "pkg/errors",
            "validation",
            "invalid `{field}`: {reason}",
            attributes={"field": field_name, "reason": reason},
            rng=self.rng,
        )

    # --- applications ------------------------------------------------------

    def record_downlink(
        self,
        application_id: str,
        device_id: str,
        *,
        replace: bool,
        downlinks: list[dict[str, Any]],
        via: str,
    ) -> dict[str, Any]:
        """Keep a downlink TTS took, and tell the listeners (the MQTT side)."""
        record = {
            "application_id": application_id,
            "device_id": device_id,
            "replace": replace,
            "downlinks": downlinks,
            "via": via,
            "at": tts_json.timestamp(self.clock()),
        }
        self.downlinks.append(record)
        for listener in list(self.downlink_listeners):
            listener(record)
        return record

    def set_application(
        self, *, api_key: str | None = None, rights: Iterable[str] | None = None
    ) -> None:
        """Give the application a new key, or other rights."""
        if api_key is not None:
            self.application.api_key = api_key
        if rights is not None:
            self.application.rights = list(rights)

    def application_auth_info(self) -> dict[str, Any]:
        """``GET /auth_info`` with the application's key."""
        app = self.application
        return {
            "api_key": {
                "api_key": {
                    "id": app.key_id,
                    "name": "home-assistant",
                    "rights": list(app.rights),
                },
                "entity_ids": {
                    "application_ids": {"application_id": app.application_id}
                },
            }
        }

    def _no_application_rights(self, application_id: str) -> dict[str, Any]:
        return tts_json.error_body(
            7,
            "pkg/auth/rights",
            "no_application_rights",
            "no rights for application `{uid}`",
            attributes={"uid": application_id},
            rng=self.rng,
        )

    def _application_access(
        self, caller: _Caller, application_id: str, right: str, headers: dict[str, str]
    ) -> Response | None:
        """403 unless the caller may use the right on the application."""
        app = self.application
        if caller.owner_type == "application" and caller.owner_id != application_id:
            return self._error(self._no_application_rights(application_id), headers)
        if application_id != app.application_id:
            return self._error(self._no_application_rights(application_id), headers)
        if not caller.has(right):
            return self._error(
                tts_json.error_body(
                    7,
                    "pkg/auth/rights",
                    "insufficient_application_rights",
                    "insufficient rights for application `{uid}`",
                    attributes={"missing": [right], "uid": application_id},
                    rng=self.rng,
                ),
                headers,
            )
        return None

    def _get_application(
        self, request: Request, caller: _Caller, headers: dict[str, str]
    ) -> Response:
        match = _APPLICATION_PATH.fullmatch(request.path)
        application_id = unquote(match.group(1)) if match else ""
        if denied := self._application_access(
            caller, application_id, "RIGHT_APPLICATION_INFO", headers
        ):
            return denied
        created = tts_json.timestamp(self.clock() - 60 * 86400)
        record = {
            "ids": {"application_id": application_id},
            "created_at": created,
            "updated_at": created,
            "name": self.application.name,
        }
        if self.application_server_address:
            record["application_server_address"] = self.application_server_address
        fields = request.query.get("field_mask", "")
        body = apply_field_mask(record, fields.split(",")) if fields else record
        body["ids"] = record["ids"]
        return Response(HTTPStatus.OK, tts_json.dumps(body), headers)

    def _list_end_devices(
        self, request: Request, caller: _Caller, headers: dict[str, str]
    ) -> Response:
        """``GET /applications/{id}/devices`` as the Identity Server answers it.

        Ordered by device ID and cut with LIMIT and OFFSET, the total counted
        on every request and sent as ``X-Total-Count``
        (lorawan-stack ``pkg/identityserver/end_device_registry.go``
        listEndDevices, ``bunstore/end_device_store.go`` listEndDevicesBy,
        ``store/pagination.go``; the header is mapped by
        ``pkg/rpcserver/rpcserver.go``). A page past the end is ``{}``.

        Fault switches: ``device_list_total = False`` leaves the header out
        (TTS always sets it; a proxy in front of a self-hosted server may
        not pass it on). ``device_list_shifting`` answers as if the first
        device was deleted before every other request and created again
        before the next: offset pages of a list that changes while it is
        read skip or repeat a device, and the total changes. ``device_list_extra`` items (any JSON value)
        are listed first, as TTS never would: unreadable items.
        """
        match = _DEVICES_PATH.fullmatch(request.path)
        application_id = unquote(match.group(1)) if match else ""
        if denied := self._application_access(
            caller, application_id, "RIGHT_APPLICATION_DEVICES_READ", headers
        ):
            return denied
        created = tts_json.timestamp(self.clock() - 30 * 86400)
        records: list[Any] = list(self.device_list_extra)
        for device in sorted(self.devices, key=lambda device: device.device_id):
            name, version_ids = DEVICE_NAMES.get(device.device_id, ("", {}))
            record: dict[str, Any] = {
                "ids": {
                    "device_id": device.device_id,
                    "application_ids": {"application_id": application_id},
                    "dev_eui": device.dev_eui,
                    "join_eui": device.join_eui,
                },
                "created_at": created,
                "updated_at": created,
            }
            if name:
                record["name"] = name
                record["version_ids"] = version_ids
            if address := self._cluster_host(self.application_cluster):
                # end_device.proto: the servers the device is registered on,
                # "host:port" with the port optional; stored in the Entity
                # Registry. Empty (left out) on a self-hosted deployment, as
                # for a device registered without addresses.
                record["network_server_address"] = address
                record["application_server_address"] = address
                record["join_server_address"] = address
            records.append(record)
        if self.device_list_shifting:
            # The first device is gone at every other request.
            records = records[self._device_list_shifted % 2 :]
            self._device_list_shifted += 1
        try:
            # limit 0 (or none) is the default page size; page 0 is page 1.
            limit = int(request.query.get("limit") or DEFAULT_PAGE_SIZE)
            page = max(1, int(request.query.get("page") or 1))
        except ValueError:
            return self._error(self._validation("limit", "not a number"), headers)
        if not 0 <= limit <= MAX_PAGE_SIZE:
            return self._error(
                self._validation("limit", "value must be less than or equal to 1000"),
                headers,
            )
        limit = limit or DEFAULT_PAGE_SIZE
        fields = [f for f in request.query.get("field_mask", "").split(",") if f]
        items = [
            {**apply_field_mask(record, fields), "ids": record["ids"]}
            if fields and isinstance(record, Mapping) and "ids" in record
            else record
            for record in records[(page - 1) * limit : page * limit]
        ]
        if self.device_list_total:
            headers = {**headers, "X-Total-Count": str(len(records))}
        body = {"end_devices": items} if items else {}
        return Response(HTTPStatus.OK, tts_json.dumps(body), headers)

    def _stored_messages(
        self, request: Request, caller: _Caller, headers: dict[str, str]
    ) -> Response:
        """Stored uplinks; RIGHT_APPLICATION_TRAFFIC_READ, as the docs require."""
        match = _STORAGE_PATH.fullmatch(request.path)
        application_id = unquote(match.group(1)) if match else ""
        if denied := self._application_access(
            caller, application_id, "RIGHT_APPLICATION_TRAFFIC_READ", headers
        ):
            return denied
        if not self._serves_application(request.host):
            # Each cluster's Storage Integration keeps what its Application
            # Server received: none of this application's uplinks, an empty
            # stream (as for a query that selects nothing).
            return Response(HTTPStatus.OK, b"", headers)
        status, body, answer_headers = self.storage.answer(
            unquote(match.group(2)) if match else "",
            request.query,
            request.header("Accept"),
            self.clock(),
        )
        return Response(status, body, {**headers, **answer_headers})

    def _push_downlink(
        self, request: Request, caller: _Caller, headers: dict[str, str]
    ) -> Response:
        match = _DOWNLINK_PATH.fullmatch(request.path)
        if match is None:  # pragma: no cover - routed by the same pattern
            return Response(HTTPStatus.NOT_FOUND)
        application_id, device_id, operation = (
            unquote(match.group(1)),
            unquote(match.group(2)),
            match.group(3),
        )
        if denied := self._application_access(
            caller, application_id, "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE", headers
        ):
            return denied
        # Another cluster's Application Server has no record of the device.
        if device_id not in {
            device.device_id for device in self.devices
        } or not self._serves_application(request.host):
            return self._error(
                tts_json.error_body(
                    5,
                    "pkg/registry",
                    "device_not_found",
                    "device `{device_uid}` not found",
                    attributes={"device_uid": f"{application_id}.{device_id}"},
                    rng=self.rng,
                ),
                headers,
            )
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = None
        downlinks = body.get("downlinks") if isinstance(body, dict) else None
        if not isinstance(downlinks, list) or not downlinks:
            return self._error(self._validation("downlinks", "missing"), headers)
        for downlink in downlinks:
            if reason := _invalid_downlink(downlink):
                return self._error(self._validation(*reason), headers)
        self.record_downlink(
            application_id,
            device_id,
            replace=operation == "replace",
            downlinks=downlinks,
            via="http",
        )
        return Response(HTTPStatus.OK, b"{}", headers)

    def _mqtt_connection_info(
        self, request: Request, caller: _Caller, headers: dict[str, str]
    ) -> Response:
        """``GET /as/applications/{id}/mqtt-connection-info``.

        As lorawan-stack pkg/applicationserver/io/grpc/grpc.go
        (GetMQTTConnectionInfo) answers: RIGHT_APPLICATION_INFO needed, the
        configured public addresses, and the application's unique ID as
        username (``app@tenant`` on a multi-tenant deployment).
        """
        match = _MQTT_INFO_PATH.fullmatch(request.path)
        application_id = unquote(match.group(1)) if match else ""
        if denied := self._application_access(
            caller, application_id, "RIGHT_APPLICATION_INFO", headers
        ):
            return denied
        if self.mqtt_public_address is None and self.mqtt_public_tls_address is None:
            return Response(
                HTTPStatus.NOT_FOUND,
                tts_json.dumps({"code": 5, "message": "Not Found", "details": []}),
            )
        body: dict[str, str] = {
            "username": f"{application_id}@{self.tenant}"
            if self.tenant
            else application_id
        }
        public, public_tls = self.mqtt_public_address, self.mqtt_public_tls_address
        if (other := self._other_cluster(request.host)) is not None:
            # Every cluster's Application Server answers its own configured
            # public addresses (grpc.go GetMQTTConnectionInfo,
            # ``as.mqtt.public-address``); the cloud's ports 1883 and 8883.
            public, public_tls = f"{other}:1883", f"{other}:8883"
        # Empty strings are left out of TTS's JSON, as for every proto field.
        if public:
            body["public_address"] = public
        if public_tls:
            body["public_tls_address"] = public_tls
        return Response(HTTPStatus.OK, tts_json.dumps(body), headers)

    def _cluster_host(self, cluster: str) -> str | None:
        """A cluster's address on this cloud and tenant; None when self-hosted.

        docs: concepts/ttn/addresses (``<cluster>.cloud.thethings.network``)
        and cloud/addresses (``<tenant>.<cluster>.cloud.thethings.industries``).
        """
        if self.tenant == "ttn":
            return f"{cluster}.cloud.thethings.network"
        if self.tenant:
            return f"{self.tenant}.{cluster}.cloud.thethings.industries"
        return None

    def _serves_application(self, host: str) -> bool:
        """Whether the cluster asked is the one the application's devices use.

        With the devices on the account's cluster, any host is (the demo
        server's is no cluster); else only that cluster's host.
        """
        if self.application_cluster == self.cluster:
            return True
        return host == self._cluster_host(self.application_cluster)

    def _other_cluster(self, host: str) -> str | None:
        """The host when it is another cluster of this cloud than ``cluster``."""
        if not host or host == self._cluster_host(self.cluster):
            return None
        for suffix in (".cloud.thethings.network", ".cloud.thethings.industries"):
            cluster = host.removesuffix(suffix).rsplit(".", 1)[-1]
            if host.endswith(suffix) and host == self._cluster_host(cluster):
                return host
        return None

    # --- authentication ----------------------------------------------------

    def auth_info_key_id(self) -> str:
        """The id of the account's API key."""
        parts = self.api_key.split(".")
        return parts[1] if len(parts) == 3 else ""

    def caller_of(self, api_key: str) -> _Caller | None:
        """Who a key belongs to, or None if it is not (any more) valid."""
        if api_key != self.api_key:
            return None
        info = self.auth_info.get("api_key", {})
        owner = info.get("entity_ids", {})
        owner_type, owner_id = "none", ""
        for kind, container in owner.items():
            owner_type = kind.removesuffix("_ids")
            owner_id = next(iter(container.values()), "") if container else ""
        rights = frozenset(info.get("api_key", {}).get("rights", []))
        return _Caller(self.auth_info_key_id(), rights, owner_type, owner_id)

    def _authenticate(self, request: Request) -> _Caller | Response | None:
        """The caller, None without credentials, or the error response."""
        header = request.header("Authorization")
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        headers = {"Content-Type": "application/json"}
        if scheme.lower() != "bearer":
            return self._error(
                tts_json.error_body(
                    16,
                    "pkg/identityserver",
                    "unsupported_authorization",
                    "unsupported authorization method",
                    rng=self.rng,
                ),
                headers,
            )
        parts = token.strip().split(".")
        if len(parts) != 3 or not all(parts) or parts[0] != "NNSXS":
            return self._error(
                tts_json.error_body(
                    3, "pkg/auth", "token", "invalid token", rng=self.rng
                ),
                headers,
            )
        app = self.application
        if parts[1] == app.key_id and app.key_id:
            if token.strip() != app.api_key:
                return self._error(
                    tts_json.error_body(
                        16,
                        "pkg/identityserver",
                        "invalid_authorization",
                        "invalid authorization",
                        rng=self.rng,
                    ),
                    headers,
                )
            return _Caller(
                app.key_id, frozenset(app.rights), "application", app.application_id
            )
        if parts[1] != self.auth_info_key_id():
            return self._error(self._api_key_not_found(parts[1]), headers)
        caller = self.caller_of(token.strip())
        if caller is None:
            return self._error(
                tts_json.error_body(
                    16,
                    "pkg/identityserver",
                    "invalid_authorization",
                    "invalid authorization",
                    rng=self.rng,
                ),
                headers,
            )
        return caller

    # --- routing -----------------------------------------------------------

    @staticmethod
    def _path_gateway(path: str) -> str | None:
        match = re.fullmatch(r"/api/v3/gs/gateways/([^/]+)/connection/stats", path)
        return unquote(match.group(1)) if match else None

    @classmethod
    def endpoint_of(cls, method: str, path: str) -> Endpoint | None:
        """Which API call a request is, or None."""
        if method == "GET" and path == f"{API_PREFIX}/auth_info":
            return Endpoint.AUTH_INFO
        if method == "GET" and path == f"{API_PREFIX}/gateways":
            return Endpoint.GATEWAYS
        if method == "POST" and path == f"{API_PREFIX}/gs/gateways/connection/stats":
            return Endpoint.BATCH
        if method == "GET" and cls._path_gateway(path) is not None:
            return Endpoint.SINGLE
        if method == "POST" and path == f"{API_PREFIX}/events":
            return Endpoint.EVENTS
        if method == "GET" and _APPLICATION_PATH.fullmatch(path):
            return Endpoint.APPLICATION
        if method == "GET" and _DEVICES_PATH.fullmatch(path):
            return Endpoint.END_DEVICES
        if method == "POST" and _DOWNLINK_PATH.fullmatch(path):
            return Endpoint.DOWNLINK
        if method == "GET" and _STORAGE_PATH.fullmatch(path):
            return Endpoint.STORAGE
        if method == "GET" and _MQTT_INFO_PATH.fullmatch(path):
            return Endpoint.MQTT_INFO
        if method == "GET" and device_repository.DR_PATH.fullmatch(path):
            return Endpoint.DEVICE_REPOSITORY
        return None

    def handle(self, request: Request) -> Response:
        """Answer one request."""
        endpoint = self.endpoint_of(request.method, request.path)
        if endpoint is None:
            return Response(
                HTTPStatus.NOT_FOUND,
                tts_json.dumps({"code": 5, "message": "Not Found", "details": []}),
            )
        self.request_counts[endpoint] += 1
        caller = self._authenticate(request)
        if isinstance(caller, Response):
            return caller
        fault = self._take_fault(endpoint)
        if fault is not None and (
            response := self._fault_response(fault, endpoint, request)
        ):
            return response

        headers = {"Content-Type": "application/json"}
        if self.rate_limiter is not None and caller is not None:
            entity = self._path_gateway(request.path) or ""
            allowed, limit_headers = self.rate_limiter.check(
                f"{endpoint}:{entity}:token:{caller.key_id}", self.clock()
            )
            headers.update(limit_headers)
            if not allowed:
                key = f"grpc:method:{endpoint}:gateway:{entity}:token:{caller.key_id}"
                body = self._rate_limited(key, self.rate_limiter.per_minute)
                return self._error(body, headers)

        if endpoint is Endpoint.AUTH_INFO:
            if caller is not None and caller.owner_type == "application":
                body = self.application_auth_info()
            else:
                body = self.auth_info if caller is not None else {}
            response = Response(HTTPStatus.OK, tts_json.dumps(body), headers)
        elif endpoint is Endpoint.GATEWAYS:
            response = self._list(request, caller, headers)
        elif caller is None:
            response = self._error(self.error_unauthenticated(), headers)
        elif endpoint is Endpoint.BATCH:
            response = self._batch(request, caller, headers)
        elif endpoint is Endpoint.SINGLE:
            response = self._single(request, caller, headers)
        elif endpoint is Endpoint.APPLICATION:
            response = self._get_application(request, caller, headers)
        elif endpoint is Endpoint.END_DEVICES:
            response = self._list_end_devices(request, caller, headers)
        elif endpoint is Endpoint.DOWNLINK:
            response = self._push_downlink(request, caller, headers)
        elif endpoint is Endpoint.STORAGE:
            response = self._stored_messages(request, caller, headers)
        elif endpoint is Endpoint.MQTT_INFO:
            response = self._mqtt_connection_info(request, caller, headers)
        elif endpoint is Endpoint.DEVICE_REPOSITORY:
            status, body = device_repository.answer(
                request.path, request.query.get("field_mask", ""), self.rng
            )
            response = Response(status, tts_json.dumps(body), headers)
        else:
            response = self._stream(request, caller, headers)
        if fault is not None and fault.kind is FaultKind.CUT:
            response.action, response.error = Action.CUT, fault.error
        elif fault is not None:  # a slow answer
            response.delay = fault.delay
        return response

    # --- Identity Server ---------------------------------------------------

    def _list(
        self, request: Request, caller: _Caller | None, headers: dict[str, str]
    ) -> Response:
        list_right = {
            "user": "RIGHT_USER_GATEWAYS_LIST",
            "organization": "RIGHT_ORGANIZATION_GATEWAYS_LIST",
        }
        if caller is None or caller.owner_type not in list_right:
            # Not a user or organization: nothing to list.
            return Response(HTTPStatus.OK, b"{}", headers)
        if not caller.has(right := list_right[caller.owner_type]):
            return self._error(
                tts_json.error_body(
                    7,
                    "pkg/auth/rights",
                    f"insufficient_{caller.owner_type}_rights",
                    f"insufficient rights for {caller.owner_type} `{{uid}}`",
                    attributes={"missing": [right], "uid": caller.owner_id},
                    rng=self.rng,
                ),
                headers,
            )
        try:
            limit = int(request.query.get("limit") or DEFAULT_PAGE_SIZE)
            page = int(request.query.get("page") or 1)
        except ValueError:
            return self._error(self._validation("limit", "not a number"), headers)
        if not 0 <= limit <= MAX_PAGE_SIZE:
            return self._error(
                self._validation("limit", "value must be less than or equal to 1000"),
                headers,
            )
        limit = limit or DEFAULT_PAGE_SIZE
        page = max(page, 1)
        order = request.query.get("order") or "gateway_id"
        sort_key = ORDERS.get(order.removeprefix("-"))
        if sort_key is None:
            return self._error(self._validation("order", "unknown order"), headers)
        items = sorted(self.gateways, key=sort_key, reverse=order.startswith("-"))
        selected = items[(page - 1) * limit : page * limit]
        mask = [p for p in (request.query.get("field_mask") or "").split(",") if p]
        if "frequency_plan_ids" in mask:
            mask.append("frequency_plan_id")
        listed = []
        for item in selected:
            if not isinstance(item, Mapping):
                listed.append(item)
                continue
            shown = item if caller.has("RIGHT_GATEWAY_INFO") else public_safe(item)
            listed.append(apply_field_mask(shown, [*ALWAYS_LISTED, *mask]))
        headers["X-Total-Count"] = str(len(items))
        body = {"gateways": listed} if listed else {}
        return Response(HTTPStatus.OK, tts_json.dumps(body), headers)

    # --- Gateway Server ----------------------------------------------------

    def _is_registered(self, gateway_id: str) -> bool:
        return any(
            _field(item, "ids", "gateway_id") == gateway_id for item in self.gateways
        )

    def _status_public(self, gateway_id: str) -> bool:
        return any(
            _field(item, "ids", "gateway_id") == gateway_id
            and isinstance(item, Mapping)
            and item.get("status_public")
            for item in self.gateways
        )

    def stats_of(self, gateway_id: str) -> dict[str, Any] | int:
        """A gateway's stats JSON now, or NOT_CONNECTED / NO_RIGHTS."""
        source = self.stats.get(gateway_id)
        if source is None:
            return NOT_CONNECTED if self._is_registered(gateway_id) else NO_RIGHTS
        if isinstance(source, dict | int):
            return source
        return source.connection_stats(self.clock())

    def _single(
        self, request: Request, caller: _Caller, headers: dict[str, str]
    ) -> Response:
        gateway_id = self._path_gateway(request.path) or ""
        registered = gateway_id in self.stats or self._is_registered(gateway_id)
        if not registered:
            return self._error(self._no_gateway_rights(gateway_id), headers)
        stats = self.stats_of(gateway_id)
        may_read = caller.has("RIGHT_GATEWAY_STATUS_READ") or self._status_public(
            gateway_id
        )
        if stats == NO_RIGHTS or not may_read:
            return self._error(self._insufficient_gateway_rights(gateway_id), headers)
        if not isinstance(stats, dict):
            return self._error(self._not_connected(gateway_id), headers)
        return Response(HTTPStatus.OK, tts_json.dumps(stats), headers)

    def _batch(
        self, request: Request, caller: _Caller, headers: dict[str, str]
    ) -> Response:
        if caller.owner_type not in ("user", "organization"):
            return self._error(
                tts_json.error_body(
                    7,
                    "pkg/identityserver",
                    "neither_user_nor_organization",
                    "caller is neither a user nor an organization",
                    rng=self.rng,
                ),
                headers,
            )
        try:
            data = json.loads(request.body or b"{}")
            ids = [str(item["gateway_id"]) for item in data.get("gateway_ids", [])]
        except (ValueError, TypeError, KeyError, AttributeError):
            return self._error(
                tts_json.error_body(
                    3,
                    "pkg/jsonpb",
                    "unmarshal",
                    "could not unmarshal the request body",
                    rng=self.rng,
                ),
                headers,
            )
        if not 1 <= len(ids) <= MAX_BATCH:
            return self._error(
                self._validation(
                    "gateway_ids", "value must contain between 1 and 100 items"
                ),
                headers,
            )
        mask = data.get("field_mask")
        paths = mask.get("paths") if isinstance(mask, dict) else mask
        if isinstance(paths, str):
            paths = [path for path in paths.split(",") if path]
        insufficient = tts_json.error_body(
            7,
            "pkg/identityserver",
            "insufficient_rights",
            "insufficient rights",
            rng=self.rng,
        )
        if not caller.has("RIGHT_GATEWAY_STATUS_READ"):
            return self._error(insufficient, headers)
        entries: dict[str, Any] = {}
        for gateway_id in ids:
            registered = gateway_id in self.stats or self._is_registered(gateway_id)
            stats = self.stats_of(gateway_id)
            if not registered or (
                stats == NO_RIGHTS and not self._status_public(gateway_id)
            ):
                return self._error(insufficient, headers)
            if isinstance(stats, dict):
                entry = apply_field_mask(stats, paths) if paths else stats
                entries[gateway_id] = batch_encoding(entry)
        body = {"entries": entries} if entries else {}
        return Response(HTTPStatus.OK, tts_json.dumps(body), headers)

    # --- events ------------------------------------------------------------

    def _stream(
        self, request: Request, caller: _Caller, headers: dict[str, str]
    ) -> Response:
        try:
            data = json.loads(request.body or b"{}")
            identifiers = list(data.get("identifiers") or [])
            names = [str(name) for name in data.get("names") or []]
            tail = int(data.get("tail") or 0)
        except (ValueError, TypeError, AttributeError):
            return self._error(self._validation("body", "invalid JSON"), headers)
        if not identifiers:
            return self._error(
                tts_json.error_body(
                    3,
                    "pkg/events/grpc",
                    "no_identifiers",
                    "no identifiers",
                    rng=self.rng,
                ),
                headers,
            )
        gateway_ids = set()
        registered = {_field(item, "ids", "gateway_id") for item in self.gateways}
        for identifier in identifiers:
            gateway_id = (identifier.get("gateway_ids") or {}).get("gateway_id", "")
            if gateway_id not in registered or gateway_id in self.events_refused:
                return self._error(self._no_gateway_rights(gateway_id), headers)
            gateway_ids.add(gateway_id)
        resolved: list[str] = []
        for name in names:
            if len(name) > 1 and name.startswith("/") and name.endswith("/"):
                pattern = re.compile(name[1:-1])
                found = [n for n in GATEWAY_EVENT_NAMES if pattern.search(n)]
                if not found:
                    return self._error(
                        tts_json.error_body(
                            3,
                            "pkg/events",
                            "no_matching_events",
                            "no matching events for regexp `{regexp}`",
                            attributes={"regexp": name[1:-1]},
                            rng=self.rng,
                        ),
                        headers,
                    )
                resolved.extend(found)
            elif name in GATEWAY_EVENT_NAMES:
                resolved.append(name)
            else:
                return self._error(
                    tts_json.error_body(
                        3,
                        "pkg/events",
                        "unknown_event_name",
                        "unknown event `{name}`",
                        attributes={"name": name},
                        rng=self.rng,
                    ),
                    headers,
                )
        wanted = frozenset(resolved)
        event_stream = (request.header("Accept") or "").startswith("text/event-stream")
        delimiter = b"\n\n" if event_stream else b"\n"
        headers["Content-Type"] = (
            "text/event-stream" if event_stream else "application/json"
        )
        now = self.clock()
        start: dict[str, Any] = {
            "name": "events.stream.start",
            "time": tts_json.timestamp(now),
            "identifiers": identifiers,
        }
        if names:
            start["data"] = {
                "@type": "type.googleapis.com/google.protobuf.Value",
                "value": sorted(wanted),
            }
        start["correlation_ids"] = [
            f"rpc:/ttn.lorawan.v3.Events/Stream:{tts_json.ulid(now, self.rng)}"
        ]
        start["origin"] = ORIGIN
        start["unique_id"] = tts_json.ulid(now, self.rng)
        subscription = EventSubscription(
            self,
            self.api_key,
            frozenset(gateway_ids),
            (lambda name: name in wanted) if names else (lambda _name: True),
            delimiter,
            self._event_seq,
        )
        self.subscriptions = [
            item for item in self.subscriptions if not item.closed
        ] + [subscription]
        body = tts_json.dumps({"result": start}) + delimiter
        if tail or data.get("after"):
            after = str(data.get("after") or "")
            history = [
                event
                for _, event in self.events_since(0)
                if RAW_LINE not in event
                and subscription.wants(event, caller.has)
                and event["time"] > after
            ]
            for event in history[-tail:] if tail else history:
                body += tts_json.dumps({"result": event}) + delimiter
        return Response(HTTPStatus.OK, body, headers, events=subscription)


def _invalid_downlink(downlink: object) -> tuple[str, str] | None:
    """(field, reason) of a downlink TTS would refuse; None if it is fine."""
    if not isinstance(downlink, dict):
        return "downlinks", "not an object"
    f_port = downlink.get("f_port")
    if (
        isinstance(f_port, bool)
        or not isinstance(f_port, int)
        or not 1 <= f_port <= 223
    ):
        return "f_port", "must be from 1 to 223"
    payload = downlink.get("frm_payload")
    decoded = downlink.get("decoded_payload")
    if (payload is None) == (decoded is None):
        return "frm_payload", "give frm_payload or decoded_payload"
    if payload is not None:
        try:
            base64.b64decode(payload, validate=True)
        except (ValueError, TypeError):
            return "frm_payload", "not base64"
    elif not isinstance(decoded, dict):
        return "decoded_payload", "not an object"
    return None
