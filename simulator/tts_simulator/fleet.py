"""A fleet of simulated gateways whose connection stats live.

Counters are computed from the clock, not stepped: a connected gateway hears
background traffic every ``uplink_interval`` seconds, and ``count(now)`` is a
division. Changing a gateway (quiet, disconnect, an end-device uplink) first
settles the counters at that instant. So any fleet size answers in constant
time per gateway, and a test with a manual clock gets exact figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
import math
import random
from typing import Any, Final

from . import tts_json

PROTOCOL_UDP: Final = "udp"
PROTOCOL_BASIC_STATION: Final = "semtechws/lbslns"
# TTS keeps the stats of a disconnected gateway this long (Redis TTL).
DISCONNECTED_STATS_TTL: Final = 48 * 3600.0
STATUS_INTERVAL: Final = 30.0
STATS_EVENT_INTERVAL: Final = 60.0
# Catching up after a long pause emits at most this many uplink events.
MAX_EVENTS_PER_ADVANCE: Final = 5
TX_ACK_DELAY: Final = 0.45
TTS_VERSION: Final = "3.32.1"
NOT_CONNECTED: Final = 404
NO_RIGHTS: Final = 403
EU868_SUB_BANDS: Final = (
    (863_000_000, 865_000_000, 0.001),
    (865_000_000, 868_000_000, 0.01),
    (868_000_000, 868_600_000, 0.01),
    (868_700_000, 869_200_000, 0.001),
    (869_400_000, 869_650_000, 0.1),
    (869_700_000, 870_000_000, 0.01),
)
# Air time of one downlink at SF9 and of one RX2 downlink at SF12, in seconds.
RX1_AIRTIME: Final = 0.185
RX2_AIRTIME: Final = 1.155
Clock = Callable[[], float]


class ManualClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: float = 1_741_946_400.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """The current time, in seconds since the epoch."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


class GatewayState(StrEnum):
    """Whether the Gateway Server has (had) a connection from the gateway."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    NEVER_CONNECTED = "never_connected"


@dataclass
class Counter:
    """Events every `interval` seconds while active, plus added ones."""

    interval: float
    start: float
    base: int = 0
    last: float | None = None

    def _periodic(self, now: float, active: bool) -> int:
        if not active or self.interval <= 0 or now < self.start:
            return 0
        return math.floor((now - self.start) / self.interval)

    def count(self, now: float, active: bool) -> int:
        """Events up to now."""
        return self.base + self._periodic(now, active)

    def last_at(self, now: float, active: bool) -> float | None:
        """Time of the latest event up to now."""
        if n := self._periodic(now, active):
            return self.start + n * self.interval
        return self.last

    def settle(self, now: float, active: bool) -> None:
        """Fold the periodic events into the base and restart the period."""
        self.last = self.last_at(now, active)
        self.base = self.count(now, active)
        self.start = now

    def add(self, now: float, active: bool) -> None:
        """Count one event at `now`."""
        self.settle(now, active)
        self.base += 1
        self.last = now


@dataclass
class SimGateway:
    """One gateway: its registry record and its connection to the Gateway Server."""

    gateway_id: str
    eui: str
    name: str
    created_at: float
    protocol: str = PROTOCOL_UDP
    description: str = ""
    brand_id: str = ""
    model_id: str = ""
    hardware_version: str = ""
    firmware_version: str = ""
    # Where its antenna is; None: no location set in the registry.
    latitude: float | None = 52.37403
    longitude: float = 4.88969
    altitude: int = 12
    # The location comes from the gateway's GPS, through its status messages.
    update_location_from_status: bool = False
    remote_ip: str = "203.0.113.17"
    server_address: str = "eu1.cloud.thethings.network"
    status_public: bool = False
    location_public: bool = False
    uplink_interval: float = 20.0
    downlink_every: int = 12
    temperature: float | None = None
    status_readable: bool = True
    state: GatewayState = GatewayState.NEVER_CONNECTED
    quiet: bool = False
    connected_at: float | None = None
    disconnected_at: float | None = None
    # When the current (or last) connection began; kept after a disconnect.
    session_start: float = 0.0
    # The Gateway Server's "gs:conn:<ULID>" id of the current connection.
    connection_id: str = ""
    # Stats are answered this many seconds behind the events (TTS answers
    # them from a debounced registry).
    stats_lag: float = 0.0
    updated_at: float = 0.0
    uplinks: Counter = field(default_factory=lambda: Counter(0, 0))
    downlinks: Counter = field(default_factory=lambda: Counter(0, 0))
    statuses: Counter = field(default_factory=lambda: Counter(0, 0))

    @property
    def connected(self) -> bool:
        """Whether the gateway is connected now."""
        return self.state is GatewayState.CONNECTED

    @property
    def _hearing(self) -> bool:
        return self.connected and not self.quiet

    def record(self) -> dict[str, Any]:
        """The gateway as the Identity Server stores it (all fields)."""
        item: dict[str, Any] = {
            "ids": {"gateway_id": self.gateway_id, "eui": self.eui},
            "created_at": tts_json.timestamp(self.created_at),
            "updated_at": tts_json.timestamp(self.updated_at or self.created_at),
            "name": self.name,
        }
        if self.description:
            item["description"] = self.description
        versions = {
            "brand_id": self.brand_id,
            "model_id": self.model_id,
            "hardware_version": self.hardware_version,
            "firmware_version": self.firmware_version,
        }
        if versions := {key: value for key, value in versions.items() if value}:
            item["version_ids"] = versions
        item["gateway_server_address"] = self.server_address
        item["frequency_plan_id"] = "EU_863_870_TTN"
        item["frequency_plan_ids"] = ["EU_863_870_TTN"]
        # GatewayAntenna{gain, location, placement} (lorawan-stack
        # api/ttn/lorawan/v3/gateway.proto); the Location message
        # (metadata.proto) is omitted when none is set. With
        # update_location_from_status the Gateway Server writes the status's
        # location into antennas[0] as SOURCE_GPS (pkg/gatewayserver/
        # gatewayserver.go handleLocationUpdates).
        antenna: dict[str, Any] = {"gain": 3, "placement": "OUTDOOR"}
        if self.latitude is not None:
            antenna["location"] = {
                "latitude": self.latitude,
                "longitude": self.longitude,
                "altitude": self.altitude,
                "source": "SOURCE_GPS"
                if self.update_location_from_status
                else "SOURCE_REGISTRY",
            }
        item["antennas"] = [antenna]
        if self.update_location_from_status:
            item["update_location_from_status"] = True
        if self.status_public:
            item["status_public"] = True
        if self.location_public:
            item["location_public"] = True
        return item

    # --- state changes --------------------------------------------------

    def connect(self, now: float) -> None:
        """(Re)connect: TTS overwrites the stats, so every counter restarts."""
        self.state = GatewayState.CONNECTED
        self.connected_at = now
        self.session_start = now
        self.disconnected_at = None
        self.uplinks = Counter(self.uplink_interval, now)
        self.downlinks = Counter(self.uplink_interval * self.downlink_every, now)
        status_interval = STATUS_INTERVAL if self.protocol == PROTOCOL_UDP else 0
        self.statuses = Counter(status_interval, now, base=1, last=now)

    def disconnect(self, now: float) -> None:
        """Disconnect: ``connected_at`` goes, ``disconnected_at`` comes, rest stays."""
        if not self.connected:
            return
        self._settle(now)
        self.state = GatewayState.DISCONNECTED
        self.connected_at = None
        self.disconnected_at = now

    def set_quiet(self, now: float, quiet: bool) -> None:
        """Stay connected but hear no uplinks (or hear them again)."""
        self._settle(now)
        self.quiet = quiet

    def hear_uplink(self, now: float) -> None:
        """Count an uplink of a simulated end device."""
        if self.connected:
            self.uplinks.add(now, self._hearing)

    def _settle(self, now: float) -> None:
        self.uplinks.settle(now, self._hearing)
        self.downlinks.settle(now, self._hearing)
        self.statuses.settle(now, self.connected)

    # --- what the Gateway Server answers ---------------------------------

    def connection_stats(self, now: float) -> dict[str, Any] | int:
        """``GatewayConnectionStats`` as TTS writes it, or 404/403."""
        if not self.status_readable:
            return NO_RIGHTS
        if self.state is GatewayState.NEVER_CONNECTED or (
            self.disconnected_at is not None
            and now - self.disconnected_at > DISCONNECTED_STATS_TTL
        ):
            return NOT_CONNECTED
        # A disconnected gateway's figures stay as they were at the disconnect.
        at = now if self.connected else (self.disconnected_at or now)
        if self.stats_lag and self.connected_at is not None:
            at = max(self.connected_at, at - self.stats_lag)
        hearing = self._hearing
        stats: dict[str, Any] = {}
        if self.connected_at is not None:
            stats["connected_at"] = tts_json.timestamp(self.connected_at)
        if self.disconnected_at is not None:
            stats["disconnected_at"] = tts_json.timestamp(self.disconnected_at)
        stats["protocol"] = self.protocol
        if (status_at := self.statuses.last_at(at, True)) is not None:
            stats["last_status_received_at"] = tts_json.timestamp(status_at + 0.5531)
            stats["last_status"] = self._status(status_at)
        uplink_count = self.uplinks.count(at, hearing)
        if uplink_count:
            last = self.uplinks.last_at(at, hearing) or at
            stats["last_uplink_received_at"] = tts_json.timestamp(last + 0.0945)
            stats["uplink_count"] = tts_json.uint64(uplink_count)
        downlink_count = self.downlinks.count(at, hearing)
        if downlink_count:
            last = self.downlinks.last_at(at, hearing) or at
            stats["last_downlink_received_at"] = tts_json.timestamp(last + 1.0)
            stats["downlink_count"] = tts_json.uint64(downlink_count)
            stats["last_tx_acknowledgment_received_at"] = tts_json.timestamp(
                last + 1.0 + TX_ACK_DELAY
            )
            stats["tx_acknowledgment_count"] = tts_json.uint64(downlink_count)
            stats["round_trip_times"] = {
                "min": tts_json.duration(0.041277519),
                "max": tts_json.duration(0.394113048),
                "median": tts_json.duration(0.056213964 + (downlink_count % 7) / 1000),
                "count": min(downlink_count, 20),
            }
            stats["sub_bands"] = self._sub_bands(downlink_count, at)
        stats["gateway_remote_address"] = {"ip": self.remote_ip}
        return stats

    def _status(self, status_at: float) -> dict[str, Any]:
        if self.protocol != PROTOCOL_UDP:
            # Basics Station: one status, from the version message at connect.
            return {
                "versions": {
                    "station": "2.0.6(rpi/std)",
                    "firmware": self.firmware_version or "1.0.0",
                    "package": "",
                    "platform": "rpi - Firmware 1.0.0 - Protocol 2",
                },
                "advanced": {"model": "rpi", "features": "rmtsh"},
            }
        window_start = status_at - STATUS_INTERVAL
        received = self.uplinks.count(status_at, self._hearing) - self.uplinks.count(
            max(window_start, self.uplinks.start), self._hearing
        )
        sent = self.downlinks.count(status_at, self._hearing) - self.downlinks.count(
            max(window_start, self.downlinks.start), self._hearing
        )
        metrics: dict[str, float] = {
            "rxin": received,
            "rxok": received,
            "rxfw": received,
            "ackr": 100,
            "txin": sent,
            "txok": sent,
        }
        if self.temperature is not None:
            metrics["temp"] = self.temperature
        metrics["lpps"] = 0
        status: dict[str, Any] = {
            "time": tts_json.timestamp(math.floor(status_at)),
            "versions": {
                "ttn-lw-gateway-server": TTS_VERSION,
                "fpga": "31",
                "dsp": "31",
                "hal": "5.0.1",
            },
        }
        if self.latitude is not None:
            # The stat's lati/long/alti (pkg/ttnpb/udp/translation.go); a
            # gateway without coordinates sends none.
            status["antenna_locations"] = [
                {
                    "latitude": self.latitude,
                    "longitude": self.longitude,
                    "altitude": self.altitude,
                    "source": "SOURCE_GPS",
                }
            ]
        status["ip"] = [self.remote_ip]
        status["metrics"] = metrics
        return status

    def _sub_bands(self, downlinks: int, now: float) -> list[dict[str, Any]]:
        # Duty-cycle use over the last hour: RX1 downlinks in the 868.0-868.6
        # band, every fifth downlink in the RX2 band at 869.525 MHz.
        hour = max(min(now - self.session_start, 3600.0), 60.0)
        recent = min(downlinks, math.ceil(hour / (self.uplink_interval * 12)))
        used = {
            2: recent * RX1_AIRTIME / hour,
            4: (recent // 5) * RX2_AIRTIME / hour,
        }
        bands = []
        for index, (low, high, limit) in enumerate(EU868_SUB_BANDS):
            band: dict[str, Any] = {
                "min_frequency": tts_json.uint64(low),
                "max_frequency": tts_json.uint64(high),
                "downlink_utilization_limit": limit,
            }
            if used.get(index):
                band["downlink_utilization"] = round(used[index], 11)
            bands.append(band)
        return bands


# Gateways every demo fleet starts with, then "Gateway 6", "Gateway 7", ...
_NAMED: Final = (
    # id, name, protocol, brand, model, state, quiet, temperature
    (
        "rooftop-gateway",
        "Rooftop gateway",
        PROTOCOL_UDP,
        "rakwireless",
        "rak7248",
        GatewayState.CONNECTED,
        False,
        41.5,
    ),
    (
        "garden-gateway",
        "Garden gateway",
        PROTOCOL_BASIC_STATION,
        "the-things-industries",
        "the-things-indoor-gateway",
        GatewayState.CONNECTED,
        False,
        None,
    ),
    (
        "barn-gateway",
        "Barn gateway",
        PROTOCOL_UDP,
        "kerlink",
        "wirnet-ifemtocell",
        GatewayState.CONNECTED,
        True,
        None,
    ),
    (
        "attic-gateway",
        "Attic gateway",
        PROTOCOL_UDP,
        "dragino",
        "lps8",
        GatewayState.DISCONNECTED,
        False,
        None,
    ),
    (
        "spare-gateway",
        "Spare gateway",
        PROTOCOL_UDP,
        "",
        "",
        GatewayState.NEVER_CONNECTED,
        False,
        None,
    ),
)


def make_fleet(
    count: int, now: float, *, seed: int = 1, server_address: str = ""
) -> list[SimGateway]:
    """Build `count` gateways in a deterministic mix of states.

    The first five are named and cover every case (connected UDP, connected
    Basics Station, quiet, disconnected two hours ago, never connected); the
    rest are mostly connected, some Basics Station, a few disconnected. Every
    gateway but the spare one has an antenna location near Amsterdam.
    """
    rng = random.Random(seed)
    gateways: list[SimGateway] = []
    for index in range(count):
        eui = f"{rng.getrandbits(64):016X}"
        if index < len(_NAMED):
            gateway_id, name, protocol, brand, model, state, quiet, temp = _NAMED[index]
        else:
            gateway_id, name = f"eui-{eui.lower()}", f"Gateway {index + 1}"
            roll = rng.random()
            protocol = PROTOCOL_BASIC_STATION if roll < 0.2 else PROTOCOL_UDP
            brand, model = ("rakwireless", "rak7268") if roll < 0.6 else ("", "")
            state = (
                GatewayState.DISCONNECTED
                if 0.9 <= roll < 0.95
                else GatewayState.NEVER_CONNECTED
                if roll >= 0.95
                else GatewayState.CONNECTED
            )
            quiet, temp = False, None
        gateway = SimGateway(
            gateway_id=gateway_id,
            eui=eui,
            name=name,
            created_at=now - 86400 * (30 + index % 300),
            protocol=protocol,
            brand_id=brand,
            model_id=model,
            hardware_version="1.0" if brand else "",
            firmware_version="4.2.7" if brand else "",
            latitude=round(52.37 + rng.uniform(-0.05, 0.05), 5),
            longitude=round(4.89 + rng.uniform(-0.05, 0.05), 5),
            altitude=rng.randint(2, 40),
            remote_ip=f"198.51.100.{index % 250 + 1}",
            server_address=server_address or "eu1.cloud.thethings.network",
            status_public=index == 0,
            # Only the rooftop gateway's location is public; the spare gateway
            # has none set; the barn gateway's comes from its GPS.
            location_public=index == 0,
            update_location_from_status=gateway_id == "barn-gateway",
            uplink_interval=rng.choice((10.0, 15.0, 20.0, 30.0)),
            temperature=temp,
        )
        if gateway_id == "spare-gateway":
            gateway.latitude = None
        if state is not GatewayState.NEVER_CONNECTED:
            # Connected for a few hours to a few days, so counters are not 0.
            gateway.connect(now - rng.uniform(3 * 3600, 3 * 86400))
            if quiet:
                gateway.set_quiet(now - 600, True)
            if state is GatewayState.DISCONNECTED:
                gateway.disconnect(now - 2 * 3600)
        gateways.append(gateway)
    return gateways
