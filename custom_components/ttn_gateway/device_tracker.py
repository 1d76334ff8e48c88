"""Where gateways and end devices are: GPS trackers on Home Assistant's map.

A gateway's location is the one the gateway list gives (``antennas[].location``,
see ``tts/antennas.py``), read at every poll. A gateway gets its tracker when the
list first shows a location for it; when the list no longer does (the
location was removed in TTS, or the key may no longer see it), the tracker is
removed, so the map shows no stale position. It comes back with the location.

A device gets its tracker with the first uplink that gives coordinates (a
Cayenne LPP GPS record, payload formatter fields latitude and longitude, or
TTS's ``locations``); the tracker keeps the last position until another one
comes, and after a restart shows the position saved before it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

# The package exports both (implicitly, for the type checker); the modules
# that define them differ between Home Assistant versions.
from homeassistant.components.device_tracker import (  # type: ignore[attr-defined]
    SourceType,
    TrackerEntity,
    TrackerEntityDescription,
)
from homeassistant.const import (
    ATTR_GPS_ACCURACY,
    ATTR_LATITUDE,
    ATTR_LONGITUDE,
    Platform,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .end_devices import EndDevice, EndDeviceManager
from .end_devices.registry import LOCATION_KEY
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
from .tts import AntennaLocation

# Entities follow pushed uplinks: no update concurrency to limit.
PARALLEL_UPDATES = 0

# Named after its device, as a device's main feature is.
LOCATION = EntityDescription(key=LOCATION_KEY, name=None)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class EndDeviceTracker(EndDeviceEntity, TrackerEntity, RestoreEntity):
    """The position an end device's uplinks give."""

    _attr_source_type = SourceType.GPS

    async def _async_restore(self) -> None:
        if (last := await self.async_get_last_state()) is None:
            return
        latitude = _number(last.attributes.get(ATTR_LATITUDE))
        longitude = _number(last.attributes.get(ATTR_LONGITUDE))
        if latitude is None or longitude is None:
            return
        self._attr_latitude, self._attr_longitude = latitude, longitude
        self._attr_location_accuracy = (
            _number(last.attributes.get(ATTR_GPS_ACCURACY)) or 0.0
        )

    def _signature(self) -> Hashable:
        return (
            self.available,
            self._attr_latitude,
            self._attr_longitude,
            self._attr_location_accuracy,
        )

    def _take_device_state(self) -> None:
        if (location := self.device.location) is None:
            return
        self._attr_latitude = location.latitude
        self._attr_longitude = location.longitude
        self._attr_location_accuracy = (
            0.0 if location.accuracy is None else location.accuracy
        )


def _tracker_entity(
    manager: EndDeviceManager, device: EndDevice, key: str, _store: GatewayStore
) -> Entity | None:
    if key != LOCATION_KEY:
        return None
    return EndDeviceTracker(manager, device, LOCATION)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the trackers of gateways and end devices that have a position."""
    async_add_gateway_entities(hass, entry, async_add_entities, _gateway_trackers)
    async_add_end_device_entities(
        hass, entry, Platform.DEVICE_TRACKER, async_add_entities, _tracker_entity
    )


@dataclass(frozen=True, kw_only=True)
class GatewayTrackerEntityDescription(
    GatewayEntityDescription, TrackerEntityDescription
):
    """Describes the tracker of a gateway."""


# Named after its gateway, as a device's main feature is.
GATEWAY_LOCATION = GatewayTrackerEntityDescription(
    key="location",
    name=None,
    exists_fn=lambda data: data.gateway.location is not None,
)


def _gateway_trackers(
    runtime: TTSRuntimeData, gateway_id: str, data: GatewayData
) -> list[Entity]:
    return due_entities(runtime, gateway_id, data, (GATEWAY_LOCATION,), GatewayTracker)


class GatewayTracker(GatewayEntity, TrackerEntity):
    """Where a gateway's antenna is, as TTS's gateway registry has it."""

    _attr_source_type = SourceType.GPS
    entity_description: GatewayTrackerEntityDescription

    @property
    def _location(self) -> AntennaLocation | None:
        data = self.gateway_data
        return None if data is None else data.gateway.location

    @property
    def available(self) -> bool:
        """Available while the list is read; the key's status rights do not matter."""
        store = self.runtime.store
        return store.fresh and store.is_listed(self.gateway_id)

    @property
    def latitude(self) -> float | None:
        """Latitude of the antenna."""
        return None if (location := self._location) is None else location.latitude

    @property
    def longitude(self) -> float | None:
        """Longitude of the antenna."""
        return None if (location := self._location) is None else location.longitude

    @property
    def location_accuracy(self) -> float:
        """Accuracy TTS has for the location, in metres; 0 when unknown."""
        return 0.0 if (location := self._location) is None else location.accuracy

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Altitude in metres, and where TTS got the location from."""
        location = self._location
        if location is None:
            return {}
        return {"altitude": location.altitude, "source": location.source}

    def _state_source(self) -> object:
        return (self.latitude, self.longitude, self.location_accuracy)

    @callback
    def _handle_gateway_update(self) -> None:
        """Go when the list no longer gives a location; it comes back with one."""
        data = self.gateway_data
        if data is None or data.gateway.location is not None:
            super()._handle_gateway_update()
            return
        # Through the registry entry, which removes the entity; the device
        # tracker platform's next signal for the gateway adds it again.
        registry = er.async_get(self.hass)
        if registry.async_get(self.entity_id) is not None:
            registry.async_remove(self.entity_id)
