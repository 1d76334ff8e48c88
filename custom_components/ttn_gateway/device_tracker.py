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
from functools import partial
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
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .const import DOMAIN
from .end_devices import EndDevice, EndDeviceManager
from .end_devices.registry import LOCATION_KEY
from .entity import (
    EndDeviceEntity,
    GatewayEntity,
    GatewayEntityDescription,
    async_add_end_device_entities,
)
from .runtime import TTSConfigEntry, TTSRuntimeData
from .store import GatewayStore
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
    async_add_gateway_trackers(hass, entry, async_add_entities)
    async_add_end_device_entities(
        hass, entry, Platform.DEVICE_TRACKER, async_add_entities, _tracker_entity
    )


@dataclass(frozen=True, kw_only=True)
class GatewayTrackerEntityDescription(
    GatewayEntityDescription, TrackerEntityDescription
):
    """Describes the tracker of a gateway."""


# Named after its gateway, as a device's main feature is.
GATEWAY_LOCATION = GatewayTrackerEntityDescription(key="location", name=None)


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
def async_add_gateway_trackers(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Give gateways with a location a tracker; remove it when the location goes."""
    runtime = entry.runtime_data
    store = runtime.store
    trackers: dict[str, GatewayTracker] = {}
    watching: dict[str, CALLBACK_TYPE] = {}

    @callback
    def check(gateway_id: str) -> None:
        data = store.get(gateway_id)
        located = data is not None and data.gateway.location is not None
        tracker = trackers.get(gateway_id)
        if located and tracker is None:
            trackers[gateway_id] = _new_tracker(runtime, gateway_id)
            async_add_entities([trackers[gateway_id]])
        elif not located and tracker is not None:
            del trackers[gateway_id]
            _remove(hass, tracker)

    @callback
    def sync_gateways() -> None:
        current = store.gateway_ids
        for gateway_id in [item for item in watching if item not in current]:
            watching.pop(gateway_id)()
            # The device goes with its entities; nothing else to remove.
            trackers.pop(gateway_id, None)
        for gateway_id in current - watching.keys():
            watching[gateway_id] = store.async_subscribe_gateway(
                gateway_id, partial(check, gateway_id)
            )
            check(gateway_id)

    @callback
    def stop_watching() -> None:
        for unsubscribe in watching.values():
            unsubscribe()
        watching.clear()

    sync_gateways()
    entry.async_on_unload(store.async_subscribe_gateway_set(sync_gateways))
    entry.async_on_unload(stop_watching)


def _new_tracker(runtime: TTSRuntimeData, gateway_id: str) -> GatewayTracker:
    return GatewayTracker(runtime, gateway_id, GATEWAY_LOCATION)


def _remove(hass: HomeAssistant, tracker: GatewayTracker) -> None:
    """Remove a tracker through its registry entry, which removes the entity."""
    registry = er.async_get(hass)
    if entity_id := registry.async_get_entity_id(
        Platform.DEVICE_TRACKER, DOMAIN, str(tracker.unique_id)
    ):
        registry.async_remove(entity_id)
