"""Coverage entities: which gateways reach an end device, and which only one.

Per end device, *Gateways in reach* counts the own gateways that heard it in
the last 24 hours and *No fallback gateway* is a problem while at most one
did. Per gateway, *End devices only this gateway hears* lists the devices
that lose their coverage when it fails. The coverage is saved over a restart
by both end-device entities; Packet Broker traffic shows as another network.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Self

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import callback
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.util import dt as dt_util

from .end_device_entities import EndDeviceEntity, EntityFactory
from .end_devices import EndDevice, EndDeviceManager, device_key_text
from .end_devices.coverage import CoverageIndex
from .entity import GatewayEntity, GatewayEntityDescription
from .runtime import TTSRuntimeData
from .store import GatewayStore
from .timers import KeyedTimers
from .tts import PACKET_BROKER

# Names an attribute lists; a count says how many more there are.
MAX_LISTED_NAMES: Final = 50

GATEWAYS_IN_REACH = SensorEntityDescription(
    key="gateways_in_reach",
    translation_key="gateways_in_reach",
    state_class=SensorStateClass.MEASUREMENT,
)
NO_FALLBACK_GATEWAY = BinarySensorEntityDescription(
    key="no_fallback_gateway",
    translation_key="no_fallback_gateway",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


@dataclass(frozen=True, kw_only=True)
class GatewayOnlyHereEntityDescription(
    GatewayEntityDescription, SensorEntityDescription
):
    """Describes the sensor of the end devices only one gateway hears."""


END_DEVICES_ONLY_HERE = GatewayOnlyHereEntityDescription(
    key="end_devices_only_here",
    translation_key="end_devices_only_here",
    state_class=SensorStateClass.MEASUREMENT,
)


@dataclass
class CoverageStoredData(ExtraStoredData):
    """The gateways that heard a device within the window, kept over a restart."""

    heard: dict[str, datetime]

    def as_dict(self) -> dict[str, Any]:
        """Return a dict to store: gateway ID (or packetbroker) -> when."""
        return {"heard": {key: when.isoformat() for key, when in self.heard.items()}}

    @classmethod
    def from_dict(cls, restored: dict[str, Any]) -> Self:
        """Read what as_dict stored; unusable entries are left out."""
        heard: dict[str, datetime] = {}
        stored = restored.get("heard")
        for gateway_id, when in (stored if isinstance(stored, dict) else {}).items():
            moment = dt_util.parse_datetime(when) if isinstance(when, str) else None
            if isinstance(gateway_id, str) and moment is not None and moment.tzinfo:
                heard[gateway_id] = moment
        return cls(heard)


class _EndDeviceCoverageEntity(EndDeviceEntity, RestoreEntity):
    """An end-device entity made from the coverage index; saves the coverage."""

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
        self._expiry: KeyedTimers[str] = KeyedTimers(manager.hass)

    @property
    def _index(self) -> CoverageIndex:
        return self.manager.intake.coverage

    @property
    def extra_restore_state_data(self) -> CoverageStoredData:
        """Save the gateways that heard the device within the window."""
        return CoverageStoredData(self._index.heard(self.device.key, dt_util.utcnow()))

    async def async_added_to_hass(self) -> None:
        """Take back the saved coverage (the index keeps newer entries)."""
        if (extra := await self.async_get_last_extra_data()) is not None:
            now = dt_util.utcnow()
            heard = CoverageStoredData.from_dict(extra.as_dict()).heard
            self._index.restore(
                self.device.key,
                {key: when for key, when in heard.items() if when <= now},
            )
        await super().async_added_to_hass()
        self.async_on_remove(
            self._index.follow_device(self.device.key, self.async_handle_device_update)
        )
        self.async_on_remove(self._expiry.cancel_all)

    def _take_device_state(self) -> None:
        now = dt_util.utcnow()
        heard = self._index.heard(self.device.key, now)
        self._take_coverage(heard)
        expiry = self._index.expires_at(self.device.key, now)
        if expiry is None:
            self._expiry.cancel("expiry")
        else:
            self._expiry.schedule("expiry", expiry, self._async_expired)

    @callback
    def _async_expired(self, _now: datetime) -> None:
        self.async_handle_device_update()

    def _take_coverage(self, heard: dict[str, datetime]) -> None:
        raise NotImplementedError


class GatewaysInReachSensor(_EndDeviceCoverageEntity, SensorEntity):
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


class NoFallbackGatewayBinarySensor(_EndDeviceCoverageEntity, BinarySensorEntity):
    """On while at most one own gateway heard the device in the last 24 hours.

    Unknown while nothing heard it in that window (the Online sensor tells).
    Packet Broker traffic is no fallback: it is another network's gateway.
    """

    def _signature(self) -> Hashable:
        return (self.available, self._attr_is_on)

    def _take_coverage(self, heard: dict[str, datetime]) -> None:
        own = len(set(heard) - {PACKET_BROKER})
        self._attr_is_on = None if not heard else own < 2  # noqa: PLR2004


class GatewayOnlyHereSensor(GatewayEntity, SensorEntity):
    """How many end devices no other own gateway heard in the last 24 hours."""

    entity_description: GatewayOnlyHereEntityDescription

    _count: int = 0
    _names: tuple[str, ...] = ()

    def __init__(
        self,
        runtime: TTSRuntimeData,
        gateway_id: str,
        description: GatewayOnlyHereEntityDescription,
    ) -> None:
        """Initialise for a monitored gateway."""
        super().__init__(runtime, gateway_id, description)
        self._expiry: KeyedTimers[str] = KeyedTimers(runtime.coordinator.hass)

    @property
    def _index(self) -> CoverageIndex:
        return self.runtime.end_devices.intake.coverage

    async def async_added_to_hass(self) -> None:
        """Follow the gateway in the coverage index."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self._index.follow_gateway(self.gateway_id, self._async_recount)
        )
        self.async_on_remove(self._expiry.cancel_all)
        self._recount()

    def _recount(self) -> None:
        now = dt_util.utcnow()
        devices = self.runtime.end_devices.devices
        # Devices deleted since (in TTS or by the user) no longer count.
        only = [
            key
            for key in self._index.only_heard_by(self.gateway_id, now)
            if key in devices
        ]
        self._count = len(only)
        self._names = tuple(
            sorted(devices[key].tts_name or device_key_text(key) for key in only)
        )
        expiry = self._index.gateway_expires_at(self.gateway_id, now)
        if expiry is None:
            self._expiry.cancel("expiry")
        else:
            self._expiry.schedule("expiry", expiry, self._async_expired)

    @callback
    def _async_recount(self) -> None:
        self._recount()
        self.async_write_if_changed()

    @callback
    def _async_expired(self, _now: datetime) -> None:
        self._async_recount()

    def _state_source(self) -> object:
        return self._count

    @property
    def native_value(self) -> int:
        """How many end devices only this gateway heard within the window."""
        return self._count

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The first MAX_LISTED_NAMES names, sorted, and how many are left out."""
        return {
            "end_devices_only_here": list(self._names[:MAX_LISTED_NAMES]),
            "end_devices_only_here_not_listed": max(0, self._count - MAX_LISTED_NAMES),
        }


def _gateways_in_reach(
    manager: EndDeviceManager, device: EndDevice, _key: str, store: GatewayStore
) -> Entity:
    return GatewaysInReachSensor(manager, device, GATEWAYS_IN_REACH, store)


def _no_fallback_gateway(
    manager: EndDeviceManager, device: EndDevice, _key: str, store: GatewayStore
) -> Entity:
    return NoFallbackGatewayBinarySensor(manager, device, NO_FALLBACK_GATEWAY, store)


COVERAGE_SENSORS: dict[str, EntityFactory] = {GATEWAYS_IN_REACH.key: _gateways_in_reach}
COVERAGE_BINARY_SENSORS: dict[str, EntityFactory] = {
    NO_FALLBACK_GATEWAY.key: _no_fallback_gateway
}
