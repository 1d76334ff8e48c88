"""Binary sensors: a gateway's connectivity and silence; an end device's state.

An end device has *Silent*, *No fallback gateway*, on The Things Network
*Fair use exceeded*, and a binary sensor per decoded on/off reading.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Self

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import STATE_ON, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .decoders import describe_reading
from .end_device_coverage import NO_FALLBACK_GATEWAY, EndDeviceCoverageEntity
from .end_device_descriptions import (
    SILENT,
    EndDeviceBinarySensorEntityDescription,
    reading_binary_sensor_description,
)
from .end_device_fair_use import FAIR_USE_EXCEEDED, FairUseEntity
from .end_devices import EndDevice, EndDeviceManager
from .end_devices.airtime import FAIR_USE_AIRTIME_SECONDS, FAIR_USE_DOWNLINKS
from .entity import (
    EndDeviceEntity,
    GatewayEntity,
    GatewayEntityDescription,
    async_add_end_device_entities,
    async_add_gateway_entities,
    due_entities,
)
from .runtime import TTSConfigEntry, TTSRuntimeData
from .store import GatewayData, GatewayStore
from .tts import PACKET_BROKER, ConnectionState

# Read-only coordinator platform: no update concurrency to limit.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class GatewayBinarySensorEntityDescription(
    GatewayEntityDescription, BinarySensorEntityDescription
):
    """Describes a gateway binary sensor."""

    is_on_fn: Callable[[GatewayData], bool]


BINARY_SENSORS: tuple[GatewayBinarySensorEntityDescription, ...] = (
    GatewayBinarySensorEntityDescription(
        key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        is_on_fn=lambda data: data.connection.state is ConnectionState.CONNECTED,
    ),
)


@dataclass(frozen=True, kw_only=True)
class GatewaySilenceEntityDescription(
    GatewayEntityDescription, BinarySensorEntityDescription
):
    """Describes the silence binary sensor (its state comes from the monitor)."""


# Disconnected, or connected without an uplink for longer than the threshold.
SILENT_DESCRIPTION = GatewaySilenceEntityDescription(
    key="silent",
    translation_key="silent",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the binary sensors of every monitored gateway and end device."""
    async_add_gateway_entities(hass, entry, async_add_entities, _gateway_entities)
    async_add_end_device_entities(
        hass, entry, Platform.BINARY_SENSOR, async_add_entities, _end_device_entity
    )


def _gateway_entities(
    runtime: TTSRuntimeData, gateway_id: str, data: GatewayData
) -> list[Entity]:
    return [
        *due_entities(runtime, gateway_id, data, BINARY_SENSORS, GatewayBinarySensor),
        GatewaySilentBinarySensor(runtime, gateway_id, SILENT_DESCRIPTION),
    ]


class GatewayBinarySensor(GatewayEntity, BinarySensorEntity):
    """A binary sensor of a gateway."""

    entity_description: GatewayBinarySensorEntityDescription

    @property
    def is_on(self) -> bool | None:
        """Whether the gateway is connected, from the latest poll."""
        data = self.gateway_data
        return None if data is None else self.entity_description.is_on_fn(data)

    def _state_source(self) -> object:
        return self.is_on


class GatewaySilentBinarySensor(GatewayEntity, BinarySensorEntity):
    """On while the gateway is disconnected or hears no uplinks."""

    entity_description: GatewaySilenceEntityDescription

    async def async_added_to_hass(self) -> None:
        """Follow the gateway's silence as well as its data."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.silence.async_subscribe_state(
                self.gateway_id, self._handle_gateway_update
            )
        )

    @property
    def is_on(self) -> bool | None:
        """Whether the gateway is silent."""
        return self.runtime.silence.is_silent(self.gateway_id)

    @property
    def extra_state_attributes(self) -> dict[str, StateType]:
        """Why the gateway is silent, and after how long without uplinks."""
        silence = self.runtime.silence
        return {
            "reason": silence.reason(self.gateway_id),
            "threshold": silence.threshold(self.gateway_id).total_seconds() / 60,
        }


class EndDeviceBinarySensor(EndDeviceEntity, BinarySensorEntity, RestoreEntity):
    """A decoded on/off reading of an end device."""

    entity_description: EndDeviceBinarySensorEntityDescription

    async def _async_restore(self) -> None:
        if (last := await self.async_get_last_state()) is not None:
            self._attr_is_on = last.state == STATE_ON

    def _signature(self) -> Hashable:
        return (self.available, self._attr_is_on)

    def _take_device_state(self) -> None:
        value = self.entity_description.is_on_fn(self.device)
        if value is not None:
            self._attr_is_on = value


@dataclass
class SilenceStoredData(ExtraStoredData):
    """The timing a Silent sensor needs after a restart."""

    last_seen: datetime | None
    uplink_interval: float | None

    def as_dict(self) -> dict[str, Any]:
        """Return a dict to store."""
        return {
            "last_seen": None if self.last_seen is None else self.last_seen.isoformat(),
            "uplink_interval": self.uplink_interval,
        }

    @classmethod
    def from_dict(cls, restored: dict[str, Any]) -> Self:
        """Read what as_dict stored; anything unusable counts as unknown."""
        last_seen = restored.get("last_seen")
        interval = restored.get("uplink_interval")
        return cls(
            last_seen=dt_util.parse_datetime(last_seen)
            if isinstance(last_seen, str)
            else None,
            uplink_interval=float(interval)
            if isinstance(interval, int | float) and not isinstance(interval, bool)
            else None,
        )


class EndDeviceSilentBinarySensor(EndDeviceEntity, BinarySensorEntity, RestoreEntity):
    """On once the device sent no uplink for longer than its silence threshold.

    Attribute ``threshold``: that threshold in minutes, the option's or the
    automatic one, as on a gateway's Silent sensor.
    """

    _threshold: int | None = None

    @property
    def extra_restore_state_data(self) -> SilenceStoredData:
        """Save when the device was last seen and how often it sends."""
        return SilenceStoredData(self.device.last_seen, self.device.uplink_interval)

    @property
    def extra_state_attributes(self) -> dict[str, int | None]:
        """The minutes without an uplink after which the device is silent."""
        return {"threshold": self._threshold}

    async def async_added_to_hass(self) -> None:
        """Take the saved timing also when an uplink came first.

        A catch-up after a restart may bring the last uplink seen before it
        again: that gives no interval, and the saved one keeps the threshold.
        """
        await super().async_added_to_hass()
        if self.device.uplink is not None:
            await self._async_restore()
            self._take_device_state()

    async def _async_restore(self) -> None:
        if (extra := await self.async_get_last_extra_data()) is not None:
            stored = SilenceStoredData.from_dict(extra.as_dict())
            self.device.restore(stored.last_seen, stored.uplink_interval)

    async def async_will_remove_from_hass(self) -> None:
        """Stop the silence timer."""
        self.manager.silence_timers.cancel(self.device.key)
        await super().async_will_remove_from_hass()

    def _signature(self) -> Hashable:
        return (self.available, self._attr_is_on, self._threshold)

    def _take_device_state(self) -> None:
        timers = self.manager.silence_timers
        threshold = self.manager.silence_threshold(self.device)
        self._threshold = round(threshold.total_seconds() / 60)
        last_seen = self.device.last_seen
        if last_seen is None:
            timers.cancel(self.device.key)
            return
        silent_at = last_seen + threshold
        self._attr_is_on = dt_util.utcnow() >= silent_at
        if not self._attr_is_on:
            timers.schedule_by(self.device.key, silent_at, self._async_silence_reached)
        else:
            timers.cancel(self.device.key)

    @callback
    def _async_silence_reached(self, now: datetime) -> None:
        self.async_handle_device_update()


class NoFallbackGatewayBinarySensor(EndDeviceCoverageEntity, BinarySensorEntity):
    """On while at most one own gateway heard the device in the last 24 hours.

    Unknown while nothing heard it in that window (the Silent sensor tells).
    Packet Broker traffic is no fallback: it is another network's gateway.
    """

    def _signature(self) -> Hashable:
        return (self.available, self._attr_is_on)

    def _take_coverage(self, heard: dict[str, datetime]) -> None:
        own = len(set(heard) - {PACKET_BROKER})
        self._attr_is_on = None if not heard else own < 2  # noqa: PLR2004


class FairUseExceededBinarySensor(FairUseEntity, BinarySensorEntity):
    """On while the device is over a daily limit of TTN's Fair Use Policy."""

    _attr_is_on = False
    _figures: tuple[float, int] = (0.0, 0)

    def _signature(self) -> Hashable:
        return (self.available, self._attr_is_on, self._figures)

    def _take_figures(self, today: date) -> None:
        key = self.device.key
        self._figures = (
            round(self._fair_use.airtime(key, today), 3),
            self._fair_use.downlinks(key, today),
        )
        self._attr_is_on = self._fair_use.exceeded(key, today)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Today's figures and the limits they are held against."""
        airtime, downlinks = self._figures
        return {
            "airtime_today": airtime,
            "airtime_limit": FAIR_USE_AIRTIME_SECONDS,
            "downlinks_today": downlinks,
            "downlinks_limit": FAIR_USE_DOWNLINKS,
        }


def _end_device_entity(
    manager: EndDeviceManager, device: EndDevice, key: str, store: GatewayStore
) -> Entity | None:
    """The binary sensor of one of a device's entity keys; None if none has it."""
    if key == SILENT.key:
        return EndDeviceSilentBinarySensor(manager, device, SILENT)
    if key == NO_FALLBACK_GATEWAY.key:
        return NoFallbackGatewayBinarySensor(
            manager, device, NO_FALLBACK_GATEWAY, store
        )
    if key == FAIR_USE_EXCEEDED.key:
        return FairUseExceededBinarySensor(manager, device, FAIR_USE_EXCEEDED)
    reading = describe_reading(key, device.names.get(key))
    if reading is None or not reading.binary:
        return None
    return EndDeviceBinarySensor(
        manager, device, reading_binary_sensor_description(reading)
    )
