"""The sensor platform's end-device sensors: readings, radio figures, coverage, fair use.

Each restores its last state after a restart and then follows the device's
uplinks (``entity.EndDeviceEntity``); ``end_device_sensor`` makes the sensor
of an entity key.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import date, datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
)
from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.util import dt as dt_util

from .decoders import describe_reading
from .end_device_coverage import (
    GATEWAYS_IN_REACH,
    MAX_LISTED_NAMES,
    EndDeviceCoverageEntity,
)
from .end_device_descriptions import (
    BATTERY,
    BEST_GATEWAY,
    DECODER,
    LAST_DOWNLINK,
    RADIO_SENSORS,
    EndDeviceSensorEntityDescription,
    reading_sensor_description,
)
from .end_device_fair_use import AIRTIME_TODAY, DOWNLINKS_TODAY, FairUseEntity
from .end_devices import EndDevice, EndDeviceManager
from .entity import EndDeviceEntity
from .store import GatewayStore
from .tts import PACKET_BROKER, RxMetadata

_DOWNLINK_ATTRIBUTES = ("f_port", "frame_counter", "received_at", "error")
_DECODER_ATTRIBUTES = ("chosen", "warnings", "formatter_failed")
_BEST_GATEWAY_ATTRIBUTES = ("gateway_id", "rssi", "snr", "gateway_count")


class EndDeviceSensor(EndDeviceEntity, RestoreSensor):
    """A sensor of an end device."""

    entity_description: EndDeviceSensorEntityDescription
    # The attributes taken back from the last state after a restart.
    _restored_attributes: tuple[str, ...] = ()

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
        if (
            self._restored_attributes
            and (state := await self.async_get_last_state()) is not None
        ):
            self._attr_extra_state_attributes = {
                key: state.attributes.get(key) for key in self._restored_attributes
            }

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

    _attr_extra_state_attributes: dict[str, Any]
    _restored_attributes = _DOWNLINK_ATTRIBUTES

    def __init__(
        self,
        manager: EndDeviceManager,
        device: EndDevice,
        description: EntityDescription,
    ) -> None:
        """Initialise with no downlink known."""
        super().__init__(manager, device, description)
        self._attr_extra_state_attributes = dict.fromkeys(_DOWNLINK_ATTRIBUTES)

    def _signature(self) -> Hashable:
        return (super()._signature(), tuple(self._attr_extra_state_attributes.items()))

    def _take_device_state(self) -> None:
        # No downlink event since the start: the restored details stay.
        if (event := self.device.last_downlink) is None:
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


class EndDeviceDecoderSensor(EndDeviceSensor):
    """The decoder of the latest uplink, with the formatter's warnings.

    ``formatter_failed``: the uplink came without the formatter's output
    (TTS forwards an uplink undecoded when its formatter fails), so the
    readings are the previous ones.
    """

    _attr_extra_state_attributes: dict[str, Any]
    _restored_attributes = _DECODER_ATTRIBUTES

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


class EndDeviceBestGatewaySensor(EndDeviceSensor):
    """The gateway that heard the latest uplink loudest.

    Its name when it is one of the entry's gateways (and the name follows
    renames), its ID otherwise, ``packetbroker`` for traffic Packet Broker
    forwarded from another network.
    """

    _attr_extra_state_attributes: dict[str, Any]
    _restored_attributes = _BEST_GATEWAY_ATTRIBUTES

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


class GatewaysInReachSensor(EndDeviceCoverageEntity, SensorEntity):
    """How many own gateways heard the device in the last 24 hours, and which."""

    _attr_native_value: int = 0
    _names: tuple[str, ...] = ()
    _other_networks: bool = False

    def _signature(self) -> Hashable:
        return (
            self.available,
            self._attr_native_value,
            self._names,
            self._other_networks,
        )

    def _name_of(self, gateway_id: str) -> str:
        data = self._store.get(gateway_id)
        return (None if data is None else data.gateway.name) or gateway_id

    def _take_coverage(self, heard: dict[str, datetime]) -> None:
        own = [gateway_id for gateway_id in heard if gateway_id != PACKET_BROKER]
        self._attr_native_value = len(own)
        self._names = tuple(sorted(self._name_of(gateway_id) for gateway_id in own))
        self._other_networks = PACKET_BROKER in heard

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The gateways' names (at most MAX_LISTED_NAMES) and Packet Broker."""
        return {
            "gateways": list(self._names[:MAX_LISTED_NAMES]),
            "gateways_not_listed": max(0, len(self._names) - MAX_LISTED_NAMES),
            "other_networks": self._other_networks,
        }


class AirtimeTodaySensor(FairUseEntity, SensorEntity):
    """Seconds of uplink airtime the device used since 00:00 UTC."""

    _attr_native_value: float = 0.0

    def _signature(self) -> Hashable:
        return (self.available, self._attr_native_value)

    def _take_figures(self, today: date) -> None:
        self._attr_native_value = round(
            self._fair_use.airtime(self.device.key, today), 6
        )


class DownlinksTodaySensor(FairUseEntity, SensorEntity):
    """Downlinks TTS sent to the device since 00:00 UTC."""

    _attr_native_value: int = 0

    def _signature(self) -> Hashable:
        return (self.available, self._attr_native_value)

    def _take_figures(self, today: date) -> None:
        self._attr_native_value = self._fair_use.downlinks(self.device.key, today)


def end_device_sensor(
    manager: EndDeviceManager, device: EndDevice, key: str, store: GatewayStore
) -> Entity | None:
    """The sensor of one of a device's entity keys; None if no sensor has it."""
    if key == LAST_DOWNLINK.key:
        return EndDeviceLastDownlinkSensor(manager, device, LAST_DOWNLINK)
    if key == BEST_GATEWAY.key:
        return EndDeviceBestGatewaySensor(manager, device, BEST_GATEWAY, store)
    if key == BATTERY.key:
        return EndDeviceSensor(manager, device, BATTERY)
    if key == DECODER.key:
        return EndDeviceDecoderSensor(manager, device, DECODER)
    if key == GATEWAYS_IN_REACH.key:
        return GatewaysInReachSensor(manager, device, GATEWAYS_IN_REACH, store)
    if key == AIRTIME_TODAY.key:
        return AirtimeTodaySensor(manager, device, AIRTIME_TODAY)
    if key == DOWNLINKS_TODAY.key:
        return DownlinksTodaySensor(manager, device, DOWNLINKS_TODAY)
    description: EndDeviceSensorEntityDescription | None = RADIO_SENSORS.get(key)
    if description is None:
        reading = describe_reading(key, device.names.get(key))
        if reading is None or reading.binary:
            return None
        description = reading_sensor_description(reading)
    return EndDeviceSensor(manager, device, description)
