"""Gateways on the map: a stationary GPS tracker per gateway with a location.

The location is the one the gateway list gives (``antennas[].location``, see
``tts/antennas.py``), read at every poll. A gateway gets its tracker when the
list first shows a location for it; when the list no longer does (the
location was removed in TTS, or the key may no longer see it), the tracker is
removed, so the map shows no stale position. It comes back with the location.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

# The package exports these (implicitly, for the type checker); the modules
# that define them differ between Home Assistant versions.
from homeassistant.components.device_tracker import (  # type: ignore[attr-defined]
    SourceType,
    TrackerEntity,
    TrackerEntityDescription,
)
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .entity import GatewayEntity, GatewayEntityDescription
from .runtime import TTSConfigEntry, TTSRuntimeData
from .tts import AntennaLocation


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
