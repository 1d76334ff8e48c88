"""Entities of an end device: decoded readings, radio figures and online state.

The sensor and binary_sensor platforms call ``async_add_end_device_entities``
next to their gateway entities. Entities restore their last state after a
restart and then follow the device's uplinks, writing only when a value
changed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.sensor import RestoreSensor, SensorDeviceClass
from homeassistant.const import STATE_ON, Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.util import dt as dt_util

from .decoders import describe_reading
from .end_device_descriptions import (
    BATTERY,
    BEST_GATEWAY,
    DECODER,
    LAST_DOWNLINK,
    ONLINE,
    RADIO_SENSORS,
    EndDeviceBinarySensorEntityDescription,
    EndDeviceSensorEntityDescription,
    reading_binary_sensor_description,
    reading_sensor_description,
)
from .end_devices import EndDevice, EndDeviceManager
from .identifiers import entity_unique_id
from .runtime import TTSConfigEntry
from .state_writes import WriteOnChange
from .store import GatewayStore
from .tts import PACKET_BROKER, RxMetadata


class EndDeviceEntity(WriteOnChange, Entity):
    """An entity of one end device, fed by the end device manager."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        manager: EndDeviceManager,
        device: EndDevice,
        description: EntityDescription,
    ) -> None:
        """Initialise the entity of a device the manager knows."""
        self.entity_description = description
        self.manager = manager
        self.device = device
        self._attr_unique_id = entity_unique_id(device.identifier, description.key)

    @property
    def device_info(self) -> DeviceInfo:
        """The device, with the names known when it is registered."""
        return self.manager.device_names.readable(self.device.device_info())

    @property
    def available(self) -> bool:
        """Unavailable while the device's uplinks cannot arrive.

        That is while its application's direct connection is down, or while
        Home Assistant's MQTT integration is not loaded.
        """
        return self.manager.receiving_for(self.device)

    async def async_added_to_hass(self) -> None:
        """Restore the last state unless an uplink is there, then follow it."""
        await super().async_added_to_hass()
        if self.device.uplink is None:
            await self._async_restore()
        self._take_device_state()
        self.device.listeners.append(self)
        self.async_on_remove(self._detach)

    @callback
    def _detach(self) -> None:
        self.device.listeners.remove(self)
        # Entities the user deletes come back with the next uplink.
        for created in self.device.created.values():
            created.discard(self.entity_description.key)

    async def _async_restore(self) -> None:
        """Take the state saved before the restart."""

    def _take_device_state(self) -> None:
        """Take the device's latest values."""
        raise NotImplementedError

    @callback
    def async_handle_device_update(self) -> None:
        """Write the state if the latest uplink (or availability) changed it."""
        self._take_device_state()
        self.async_write_if_changed()


class EndDeviceSensor(EndDeviceEntity, RestoreSensor):
    """A sensor of an end device."""

    entity_description: EndDeviceSensorEntityDescription

    async def _async_restore(self) -> None:
        last = await self.async_get_last_sensor_data()
        value = None if last is None else last.native_value
        if self.device_class == SensorDeviceClass.TIMESTAMP and not isinstance(
            value, datetime
        ):
            # The stored value is unusable; the state string still says when.
            state = await self.async_get_last_state()
            value = None if state is None else dt_util.parse_datetime(state.state)
        self._attr_native_value = value

    def _signature(self) -> Hashable:
        value = self._attr_native_value
        return (self.available, type(value), value)

    def _take_device_state(self) -> None:
        if self.device.uplink is None:
            return
        value = self.entity_description.value_fn(self.device)
        if value is None and self.entity_description.keep_last:
            return
        self._attr_native_value = value


class EndDeviceLastDownlinkSensor(EndDeviceSensor):
    """What TTS said last of a downlink to the device, with its details."""

    def _signature(self) -> Hashable:
        return (super()._signature(), tuple(self._attr_extra_state_attributes.items()))

    async def _async_restore(self) -> None:
        await super()._async_restore()
        if (state := await self.async_get_last_state()) is not None:
            self._attr_extra_state_attributes = {
                key: state.attributes.get(key) for key in _DOWNLINK_ATTRIBUTES
            }

    def _take_device_state(self) -> None:
        if (event := self.device.last_downlink) is None:
            self._attr_extra_state_attributes = dict.fromkeys(_DOWNLINK_ATTRIBUTES)
            return
        self._attr_native_value = event.status.value
        self._attr_extra_state_attributes = {
            "f_port": event.f_port,
            "frame_counter": event.f_cnt,
            "received_at": None
            if event.received_at is None
            else event.received_at.isoformat(),
            "error": event.error,
        }


_DOWNLINK_ATTRIBUTES = ("f_port", "frame_counter", "received_at", "error")
_DECODER_ATTRIBUTES = ("chosen", "warnings", "formatter_failed")


class EndDeviceDecoderSensor(EndDeviceSensor):
    """The decoder of the latest uplink, with the formatter's warnings.

    ``formatter_failed``: the uplink came without the formatter's output
    (TTS forwards an uplink undecoded when its formatter fails), so the
    readings are the previous ones.
    """

    _attr_extra_state_attributes: dict[str, Any]

    def __init__(
        self,
        manager: EndDeviceManager,
        device: EndDevice,
        description: EntityDescription,
    ) -> None:
        """Initialise with no warnings known."""
        super().__init__(manager, device, description)
        self._attr_extra_state_attributes = dict.fromkeys(_DECODER_ATTRIBUTES)

    def _signature(self) -> Hashable:
        return (super()._signature(), repr(self._attr_extra_state_attributes))

    async def _async_restore(self) -> None:
        await super()._async_restore()
        if (state := await self.async_get_last_state()) is not None:
            self._attr_extra_state_attributes = {
                key: state.attributes.get(key) for key in _DECODER_ATTRIBUTES
            }

    def _take_device_state(self) -> None:
        if self.device.uplink is None:
            self._attr_extra_state_attributes["chosen"] = self.device.decoder.value
            return
        super()._take_device_state()
        self._attr_extra_state_attributes = {
            "chosen": self.device.decoder.value,
            "warnings": list(self.device.warnings),
            "formatter_failed": self.device.formatter_failed,
        }


_BEST_GATEWAY_ATTRIBUTES = ("gateway_id", "rssi", "snr", "gateway_count")


class EndDeviceBestGatewaySensor(EndDeviceSensor):
    """The gateway that heard the latest uplink loudest.

    Its name when it is one of the entry's gateways (and the name follows
    renames), its ID otherwise, ``packetbroker`` for traffic Packet Broker
    forwarded from another network.
    """

    _attr_extra_state_attributes: dict[str, Any]

    def __init__(
        self,
        manager: EndDeviceManager,
        device: EndDevice,
        description: EntityDescription,
        store: GatewayStore,
    ) -> None:
        """Initialise; store names the entry's own gateways."""
        super().__init__(manager, device, description)
        self._store = store
        self._attr_extra_state_attributes = dict.fromkeys(_BEST_GATEWAY_ATTRIBUTES)
        self._followed: str | None = None
        self._unfollow: CALLBACK_TYPE | None = None

    def _signature(self) -> Hashable:
        return (super()._signature(), tuple(self._attr_extra_state_attributes.items()))

    async def _async_restore(self) -> None:
        await super()._async_restore()
        if (state := await self.async_get_last_state()) is not None:
            self._attr_extra_state_attributes = {
                key: state.attributes.get(key) for key in _BEST_GATEWAY_ATTRIBUTES
            }

    def _name_of(self, rx: RxMetadata) -> str | None:
        if rx.via_packet_broker:
            return PACKET_BROKER
        if rx.gateway_id is None:
            return None
        data = self._store.get(rx.gateway_id)
        name = None if data is None else data.gateway.name
        return name or rx.gateway_id

    def _take_restored(self) -> None:
        """Until an uplink comes, a restored gateway of the entry keeps its name."""
        gateway_id = self._attr_extra_state_attributes.get("gateway_id")
        if not isinstance(gateway_id, str) or self._attr_native_value == PACKET_BROKER:
            return
        if (data := self._store.get(gateway_id)) is not None:
            self._attr_native_value = data.gateway.name or gateway_id
        self._follow(gateway_id)

    def _follow(self, gateway_id: str | None) -> None:
        """Follow the best gateway in the store, so that its renames show."""
        if gateway_id == self._followed:
            return
        self._stop_following()
        self._followed = gateway_id
        if gateway_id is not None:
            self._unfollow = self._store.async_subscribe_gateway(
                gateway_id, self.async_handle_device_update
            )

    @callback
    def _stop_following(self) -> None:
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None
        self._followed = None

    async def async_will_remove_from_hass(self) -> None:
        """Stop following the gateway."""
        self._stop_following()
        await super().async_will_remove_from_hass()

    def _take_device_state(self) -> None:
        uplink = self.device.uplink
        if uplink is None or (best := uplink.best_rx) is None:
            self._take_restored()
            return
        self._attr_native_value = self._name_of(best)
        self._attr_extra_state_attributes = {
            "gateway_id": best.gateway_id,
            "rssi": best.rssi,
            "snr": best.snr,
            "gateway_count": len(uplink.rx_metadata),
        }
        self._follow(None if best.via_packet_broker else best.gateway_id)


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
class OnlineStoredData(ExtraStoredData):
    """The timing an online sensor needs after a restart."""

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


class EndDeviceOnlineBinarySensor(EndDeviceEntity, BinarySensorEntity, RestoreEntity):
    """On while the device sent an uplink within its silence threshold."""

    @property
    def extra_restore_state_data(self) -> OnlineStoredData:
        """Save when the device was last seen and how often it sends."""
        return OnlineStoredData(self.device.last_seen, self.device.uplink_interval)

    async def _async_restore(self) -> None:
        if (extra := await self.async_get_last_extra_data()) is not None:
            stored = OnlineStoredData.from_dict(extra.as_dict())
            self.device.restore(stored.last_seen, stored.uplink_interval)

    async def async_will_remove_from_hass(self) -> None:
        """Stop the silence timer."""
        self.manager.silence_timers.cancel(self.device.key)
        await super().async_will_remove_from_hass()

    def _signature(self) -> Hashable:
        return (self.available, self._attr_is_on)

    def _take_device_state(self) -> None:
        timers = self.manager.silence_timers
        last_seen = self.device.last_seen
        if last_seen is None:
            timers.cancel(self.device.key)
            return
        silent_at = last_seen + self.manager.silence_threshold(self.device)
        self._attr_is_on = dt_util.utcnow() < silent_at
        if self._attr_is_on:
            timers.schedule(self.device.key, silent_at, self._async_silence_reached)
        else:
            timers.cancel(self.device.key)

    @callback
    def _async_silence_reached(self, now: datetime) -> None:
        self.async_handle_device_update()


def _sensor_entity(
    manager: EndDeviceManager, device: EndDevice, key: str, store: GatewayStore
) -> Entity | None:
    if key == LAST_DOWNLINK.key:
        return EndDeviceLastDownlinkSensor(manager, device, LAST_DOWNLINK)
    if key == BEST_GATEWAY.key:
        return EndDeviceBestGatewaySensor(manager, device, BEST_GATEWAY, store)
    if key == BATTERY.key:
        return EndDeviceSensor(manager, device, BATTERY)
    if key == DECODER.key:
        return EndDeviceDecoderSensor(manager, device, DECODER)
    description: EndDeviceSensorEntityDescription | None = RADIO_SENSORS.get(key)
    if description is None:
        reading = describe_reading(key, device.names.get(key))
        if reading is None or reading.binary:
            return None
        description = reading_sensor_description(reading)
    return EndDeviceSensor(manager, device, description)


def _binary_sensor_entity(
    manager: EndDeviceManager, device: EndDevice, key: str, _store: GatewayStore
) -> Entity | None:
    if key == ONLINE.key:
        return EndDeviceOnlineBinarySensor(manager, device, ONLINE)
    reading = describe_reading(key, device.names.get(key))
    if reading is None or not reading.binary:
        return None
    return EndDeviceBinarySensor(
        manager, device, reading_binary_sensor_description(reading)
    )


type EntityFactory = Callable[
    [EndDeviceManager, EndDevice, str, GatewayStore], Entity | None
]
_FACTORIES: dict[Platform, EntityFactory] = {
    Platform.SENSOR: _sensor_entity,
    Platform.BINARY_SENSOR: _binary_sensor_entity,
}


def async_add_end_device_entities(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    platform: Platform,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: EntityFactory | None = None,
    by_key: Mapping[str, EntityFactory] | None = None,
) -> None:
    """Add end devices' entities of a platform, now and as devices appear.

    factory makes an entity from its key; by default the platform's own.
    by_key names the factories of particular keys (made elsewhere).
    """
    manager = entry.runtime_data.end_devices
    store = entry.runtime_data.store
    factory = factory or _FACTORIES[platform]
    by_key = by_key or {}

    @callback
    def add(device: EndDevice, keys: Iterable[str], subentry_id: str | None) -> None:
        entities = [
            entity
            for key in keys
            if (entity := by_key.get(key, factory)(manager, device, key, store))
            is not None
        ]
        if entities:
            async_add_entities(entities, config_subentry_id=subentry_id)

    manager.async_register_platform(platform, add)
