"""Where gateways and end devices are: GPS trackers on Home Assistant's map.

Gateways get theirs from the gateway list (``gateway_tracker``). An end
device gets a tracker per device whose uplinks give a position.

A device gets its tracker with the first uplink that gives coordinates (a
Cayenne LPP GPS record, payload formatter fields latitude and longitude, or
TTS's ``locations``); the tracker keeps the last position until another one
comes, and after a restart shows the position saved before it.
"""

from __future__ import annotations

from collections.abc import Hashable

# The package exports both (implicitly, for the type checker); the modules
# that define them differ between Home Assistant versions.
from homeassistant.components.device_tracker import (  # type: ignore[attr-defined]
    SourceType,
    TrackerEntity,
)
from homeassistant.const import (
    ATTR_GPS_ACCURACY,
    ATTR_LATITUDE,
    ATTR_LONGITUDE,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .end_device_entities import EndDeviceEntity, async_add_end_device_entities
from .end_devices import EndDevice, EndDeviceManager
from .end_devices.registry import LOCATION_KEY
from .gateway_tracker import async_add_gateway_trackers
from .runtime import TTSConfigEntry
from .store import GatewayStore

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
