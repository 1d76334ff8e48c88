"""Gateways and their Gateway Server connection stats, as TTS's JSON has them.

``GET /api/v3/gateways`` (Identity Server) and ``GatewayConnectionStats`` of
lorawan-stack ``api/ttn/lorawan/v3/gatewayserver.proto``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .antennas import AntennaLocation
from .primitives import (
    VersionIds,
    as_list,
    as_mapping,
    is_object,
    parse_count,
    parse_duration,
    parse_float,
    parse_str,
    parse_timestamp,
    parse_uint,
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
    # Where its antenna is, when the listing shows it (see antennas.py).
    location: AntennaLocation | None = None

    @classmethod
    def from_json(cls, data: object) -> Gateway | None:
        """Parse one entry of ``GET /api/v3/gateways``; None without an id."""
        raw = as_mapping(data)
        ids = as_mapping(raw.get("ids"))
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
                for plan in as_list(raw.get("frequency_plan_ids"))
                if isinstance(plan, str)
            ),
            status_public=raw.get("status_public") is True,
            location_public=raw.get("location_public") is True,
            location=AntennaLocation.from_antennas(raw.get("antennas")),
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
        raw = as_mapping(data)
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
        raw = as_mapping(data)
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
        raw = as_mapping(data)
        metrics: dict[str, float] = {}
        for key, value in as_mapping(raw.get("metrics")).items():
            if (number := parse_float(value)) is not None:
                metrics[key] = number
        return cls(
            time=parse_timestamp(raw.get("time")),
            boot_time=parse_timestamp(raw.get("boot_time")),
            versions={
                key: value
                for key, value in as_mapping(raw.get("versions")).items()
                if isinstance(value, str)
            },
            metrics=metrics,
            ip=tuple(ip for ip in as_list(raw.get("ip")) if isinstance(ip, str)),
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
        raw = as_mapping(data)
        status = raw.get("last_status")
        return cls(
            connected_at=parse_timestamp(raw.get("connected_at")),
            disconnected_at=parse_timestamp(raw.get("disconnected_at")),
            protocol=parse_str(raw.get("protocol")),
            last_status_received_at=parse_timestamp(raw.get("last_status_received_at")),
            last_status=(
                GatewayStatus.from_json(status) if is_object(status) else None
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
                for band in as_list(raw.get("sub_bands"))
                if is_object(band)
            ),
            remote_ip=parse_str(
                as_mapping(raw.get("gateway_remote_address")).get("ip")
            ),
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
