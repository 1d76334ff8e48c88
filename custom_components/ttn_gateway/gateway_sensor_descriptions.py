"""Entity descriptions of a gateway's sensors.

The activity timestamps change with every uplink: they are diagnostic and
disabled by default, so that Home Assistant's logbook (which lists every
change of a sensor without unit or state class) keeps to connections,
disconnections and silence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfTemperature,
    UnitOfTime,
)

from .entity import GatewayEntityDescription
from .store import GatewayData
from .tts import GatewayConnectionStats

type SensorValue = str | int | float | datetime | None

# A busy gateway's activity timestamps change with every uplink; they are
# written at most this often (silence keeps the exact times).
TIMESTAMP_WRITE_INTERVAL: Final = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class GatewaySensorEntityDescription(GatewayEntityDescription, SensorEntityDescription):
    """Describes a gateway sensor."""

    value_fn: Callable[[GatewayData], SensorValue]
    # Activity timestamps: written at most once per TIMESTAMP_WRITE_INTERVAL
    # while the connection state stays the same.
    rate_limited: bool = False


def _stats_value(
    getter: Callable[[GatewayConnectionStats], SensorValue],
) -> Callable[[GatewayData], SensorValue]:
    """Read a value from the stats; unknown when TTS has no stats."""

    def value(data: GatewayData) -> SensorValue:
        stats = data.connection.stats
        return None if stats is None else getter(stats)

    return value


def _rtt_ms(
    pick: Callable[[float, float, float], float],
) -> Callable[[GatewayData], SensorValue]:
    def value(stats: GatewayConnectionStats) -> SensorValue:
        rtt = stats.round_trip_times
        return (
            None if rtt is None else round(pick(rtt.min, rtt.median, rtt.max) * 1000, 1)
        )

    return _stats_value(value)


def _metric(key: str) -> Callable[[GatewayData], SensorValue]:
    def value(stats: GatewayConnectionStats) -> SensorValue:
        status = stats.last_status
        return None if status is None else status.metrics.get(key)

    return _stats_value(value)


def _has_metric(key: str) -> Callable[[GatewayData], bool]:
    def exists(data: GatewayData) -> bool:
        stats = data.connection.stats
        return (
            stats is not None
            and stats.last_status is not None
            and key in stats.last_status.metrics
        )

    return exists


def _status_metric(
    key: str, translation_key: str, **kwargs: object
) -> GatewaySensorEntityDescription:
    """A metric of the gateway's own status messages (UDP gateways send them).

    Disabled by default: diagnostics a normal user does not need.
    """
    return GatewaySensorEntityDescription(
        key=f"status_{key}",
        translation_key=translation_key,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        state_class=SensorStateClass.MEASUREMENT,
        exists_fn=_has_metric(key),
        value_fn=_metric(key),
        **kwargs,  # type: ignore[arg-type]
    )


# The gateway sensor that counts the end devices heard (with applications only).
END_DEVICES_HEARD: Final = "end_devices_heard"

SENSORS: tuple[GatewaySensorEntityDescription, ...] = (
    GatewaySensorEntityDescription(
        key="uplink_count",
        translation_key="uplink_count",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_stats_value(lambda stats: stats.uplink_count),
    ),
    GatewaySensorEntityDescription(
        key="downlink_count",
        translation_key="downlink_count",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_stats_value(lambda stats: stats.downlink_count),
    ),
    GatewaySensorEntityDescription(
        key="tx_acknowledgment_count",
        translation_key="tx_acknowledgment_count",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_stats_value(lambda stats: stats.tx_acknowledgment_count),
    ),
    GatewaySensorEntityDescription(
        key="last_uplink_received",
        translation_key="last_uplink_received",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_stats_value(lambda stats: stats.last_uplink_received_at),
        rate_limited=True,
    ),
    GatewaySensorEntityDescription(
        key="last_seen",
        translation_key="last_seen",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_stats_value(lambda stats: stats.last_seen),
        rate_limited=True,
    ),
    GatewaySensorEntityDescription(
        key="connected_since",
        translation_key="connected_since",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_stats_value(lambda stats: stats.connected_at),
    ),
    GatewaySensorEntityDescription(
        key="round_trip_time",
        translation_key="round_trip_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=_rtt_ms(lambda _min, median, _max: median),
    ),
    GatewaySensorEntityDescription(
        key="round_trip_time_min",
        translation_key="round_trip_time_min",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
        value_fn=_rtt_ms(lambda low, _median, _max: low),
    ),
    GatewaySensorEntityDescription(
        key="round_trip_time_max",
        translation_key="round_trip_time_max",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
        value_fn=_rtt_ms(lambda _min, _median, high: high),
    ),
    GatewaySensorEntityDescription(
        key="downlink_duty_cycle",
        translation_key="downlink_duty_cycle",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=_stats_value(lambda stats: stats.downlink_utilization_percent),
    ),
    GatewaySensorEntityDescription(
        key="protocol",
        translation_key="protocol",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_stats_value(lambda stats: stats.protocol),
    ),
    GatewaySensorEntityDescription(
        key=END_DEVICES_HEARD,
        translation_key=END_DEVICES_HEARD,
        state_class=SensorStateClass.MEASUREMENT,
        # GatewayEndDevicesHeardSensor counts them: not in the gateway data.
        value_fn=lambda _data: None,
    ),
    _status_metric("rxin", "status_rx_received", suggested_display_precision=0),
    _status_metric("rxok", "status_rx_ok", suggested_display_precision=0),
    _status_metric("txin", "status_tx_received", suggested_display_precision=0),
    _status_metric("txok", "status_tx_emitted", suggested_display_precision=0),
    _status_metric(
        "ackr",
        "status_ack_ratio",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
    ),
    _status_metric(
        "temp",
        "status_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        # HA 2025.6+ would pick 1 for temperatures; the same on older HA.
        suggested_display_precision=1,
    ),
)
