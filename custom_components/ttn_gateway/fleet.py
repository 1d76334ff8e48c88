"""The account's device: gateways connected and silent, end devices silent.

The counts follow what the gateways' and end devices' own entities show, as
each changes (an event, a silence timer, an uplink), not only at polls: the
end devices' Silent sensors decide (their threshold, timer and restored
state), so the count is read from their states. The README's account table
says what each count means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import DOMAIN as BINARY_SENSOR_DOMAIN
from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EVENT_STATE_CHANGED, STATE_ON
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .end_device_descriptions import SILENT
from .identifiers import (
    account_id,
    account_identifier,
    end_device_key,
    entity_unique_id,
)
from .runtime import TTSConfigEntry, TTSRuntimeData
from .tts import ConnectionState


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """What the fleet sensors show."""

    monitored: int
    connected: int
    silent: int
    known: int
    silent_end_devices: int


class FleetWatcher:
    """Keeps the counts of one entry, and tells the sensors when they change.

    Gateways are counted one by one as each changes, so a busy gateway's
    uplinks cost one look at that gateway, not at the whole fleet.
    """

    def __init__(
        self, hass: HomeAssistant, entry: TTSConfigEntry, runtime: TTSRuntimeData
    ) -> None:
        """Watch nothing yet; `async_start` begins."""
        self._hass = hass
        self._entry = entry
        self._runtime = runtime
        self._connected: set[str] = set()
        self._silent: set[str] = set()
        self._watching: dict[str, list[CALLBACK_TYPE]] = {}
        # The end devices' Silent sensors, by entity ID, and those on.
        self._silent_sensors: set[str] = set()
        self._silent_end_devices: set[str] = set()
        self._listeners: list[Callable[[], None]] = []
        self.counts = self._count()

    @property
    def gateways_available(self) -> bool:
        """Whether the gateways' state can be trusted (some source delivers)."""
        return self._runtime.store.fresh

    @callback
    def async_subscribe(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call listener when a count or the availability may have changed."""
        self._listeners.append(listener)

        @callback
        def unsubscribe() -> None:
            self._listeners.remove(listener)

        return unsubscribe

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Follow the gateways, their silence and the end devices' Silent sensors."""
        store = self._runtime.store
        removers = [
            store.async_subscribe_gateway_set(self._async_sync_gateways),
            store.async_subscribe_health(self._async_changed),
            self._hass.bus.async_listen(
                er.EVENT_ENTITY_REGISTRY_UPDATED, self._async_registry_updated
            ),
            self._hass.bus.async_listen(
                EVENT_STATE_CHANGED,
                self._async_silent_sensor_changed,
                event_filter=self._is_silent_sensor,
            ),
        ]
        self._async_sync_gateways()
        self._async_find_silent_sensors()

        @callback
        def stop() -> None:
            for remove in removers:
                remove()
            for unsubscribes in self._watching.values():
                for unsubscribe in unsubscribes:
                    unsubscribe()
            self._watching.clear()

        return stop

    # -- Gateways --------------------------------------------------------------

    @callback
    def _async_sync_gateways(self) -> None:
        store, silence = self._runtime.store, self._runtime.silence
        current = store.gateway_ids
        for gateway_id in [item for item in self._watching if item not in current]:
            for unsubscribe in self._watching.pop(gateway_id):
                unsubscribe()
            self._connected.discard(gateway_id)
            self._silent.discard(gateway_id)
        for gateway_id in current - self._watching.keys():
            update = self._gateway_updater(gateway_id)
            self._watching[gateway_id] = [
                store.async_subscribe_gateway(gateway_id, update),
                silence.async_subscribe_state(gateway_id, update),
            ]
            self._take_gateway(gateway_id)
        self._async_changed()

    def _gateway_updater(self, gateway_id: str) -> Callable[[], None]:
        @callback
        def update() -> None:
            if self._take_gateway(gateway_id):
                self._async_changed()

        return update

    def _take_gateway(self, gateway_id: str) -> bool:
        """Count one gateway again; whether its part changed."""
        data = self._runtime.store.get(gateway_id)
        connected = (
            data is not None and data.connection.state is ConnectionState.CONNECTED
        )
        silent = self._runtime.silence.is_silent(gateway_id) is True
        changed = _put(self._connected, gateway_id, connected)
        return _put(self._silent, gateway_id, silent) or changed

    # -- End devices -------------------------------------------------------------

    @callback
    def _is_silent_sensor(self, event_data: Any) -> bool:
        return event_data.get("entity_id") in self._silent_sensors

    @callback
    def _async_silent_sensor_changed(self, event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        new_state = event.data.get("new_state")
        on = new_state is not None and new_state.state == STATE_ON
        if _put(self._silent_end_devices, entity_id, on):
            self._async_changed()

    @callback
    def _async_registry_updated(self, event: Event[Any]) -> None:
        """Follow Silent sensors as they are added, removed or renamed."""
        entity_id = event.data.get("entity_id")
        action = event.data.get("action")
        if action == "create":
            entry = er.async_get(self._hass).async_get(entity_id)
            if entry is not None and self._is_silent_entry(entry):
                self._silent_sensors.add(entry.entity_id)
                self._async_changed()
        elif action == "remove":
            if entity_id in self._silent_sensors:
                self._silent_sensors.discard(entity_id)
                self._silent_end_devices.discard(entity_id)
                self._async_changed()
        elif event.data.get("old_entity_id") in self._silent_sensors:
            self._async_find_silent_sensors()

    def _is_silent_entry(self, entry: er.RegistryEntry) -> bool:
        account = account_id(self._entry)
        return (
            entry.config_entry_id == self._entry.entry_id
            and entry.platform == DOMAIN
            and entry.domain == BINARY_SENSOR_DOMAIN
            and entry.unique_id.endswith(f"/{SILENT.key}")
            and end_device_key(account, entry.unique_id.rpartition("/")[0]) is not None
        )

    @callback
    def _async_find_silent_sensors(self) -> None:
        registry = er.async_get(self._hass)
        self._silent_sensors = {
            entry.entity_id
            for entry in er.async_entries_for_config_entry(
                registry, self._entry.entry_id
            )
            if self._is_silent_entry(entry)
        }
        self._silent_end_devices = {
            entity_id
            for entity_id in self._silent_sensors
            if (state := self._hass.states.get(entity_id)) is not None
            and state.state == STATE_ON
        }
        self._async_changed()

    # -- Counts ----------------------------------------------------------------

    def _count(self) -> FleetCounts:
        return FleetCounts(
            monitored=len(self._runtime.store.gateway_ids),
            connected=len(self._connected),
            silent=len(self._silent),
            known=len(self._runtime.end_devices.devices),
            silent_end_devices=len(self._silent_end_devices),
        )

    @callback
    def _async_changed(self) -> None:
        self.counts = self._count()
        for listener in list(self._listeners):
            listener()


def _put(members: set[str], member: str, present: bool) -> bool:
    """Add or discard member; whether that changed the set."""
    if present == (member in members):
        return False
    if present:
        members.add(member)
    else:
        members.discard(member)
    return True


@dataclass(frozen=True, kw_only=True)
class FleetSensorEntityDescription(SensorEntityDescription):
    """Describes a count of the fleet."""

    value_fn: Callable[[FleetCounts], int]
    attributes_fn: Callable[[FleetCounts], dict[str, int]] = lambda _: {}
    # Whether the count is of gateways (unavailable while TTS cannot be read).
    # End devices count while their Silent sensors are on: one that cannot be
    # heard (its application's connection is down) is unavailable, not silent.
    gateways: bool = True


END_DEVICES_SILENT = "end_devices_silent"
FLEET_SENSORS: tuple[FleetSensorEntityDescription, ...] = (
    FleetSensorEntityDescription(
        key="gateways_connected",
        translation_key="gateways_connected",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda counts: counts.connected,
        attributes_fn=lambda counts: {"monitored": counts.monitored},
    ),
    FleetSensorEntityDescription(
        key="gateways_silent",
        translation_key="gateways_silent",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda counts: counts.silent,
    ),
    FleetSensorEntityDescription(
        key=END_DEVICES_SILENT,
        translation_key=END_DEVICES_SILENT,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda counts: counts.silent_end_devices,
        attributes_fn=lambda counts: {"known": counts.known},
        gateways=False,
    ),
)


def account_device_info(entry: TTSConfigEntry) -> DeviceInfo:
    """The account's own device, named after the entry (owner and server)."""
    server = entry.runtime_data.client.server
    return DeviceInfo(
        identifiers={(DOMAIN, account_identifier(account_id(entry)))},
        name=entry.title,
        manufacturer="The Things Stack",
        model="Account",
        entry_type=DeviceEntryType.SERVICE,
        configuration_url=f"{server.url}/console",
    )


class FleetSensor(SensorEntity):
    """One count of the account's gateways or end devices."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: FleetSensorEntityDescription

    def __init__(
        self,
        entry: TTSConfigEntry,
        watcher: FleetWatcher,
        description: FleetSensorEntityDescription,
    ) -> None:
        """Initialise a count of the entry's fleet."""
        self.entity_description = description
        self._watcher = watcher
        self._attr_unique_id = entity_unique_id(
            account_identifier(account_id(entry)), description.key
        )
        self._attr_device_info = account_device_info(entry)
        self._written: tuple[object, ...] | None = None

    def _signature(self) -> tuple[object, ...]:
        return (self.available, self.native_value, self.extra_state_attributes)

    async def async_added_to_hass(self) -> None:
        """Follow the counts."""
        await super().async_added_to_hass()
        self.async_on_remove(self._watcher.async_subscribe(self._async_counts))
        self._written = self._signature()

    @callback
    def _async_counts(self) -> None:
        if (signature := self._signature()) != self._written:
            self._written = signature
            self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """Gateway counts are unavailable while TTS cannot be read."""
        return not self.entity_description.gateways or (
            self._watcher.gateways_available
        )

    @property
    def native_value(self) -> int:
        """The count."""
        return self.entity_description.value_fn(self._watcher.counts)

    @property
    def extra_state_attributes(self) -> dict[str, int]:
        """What the count is out of."""
        return self.entity_description.attributes_fn(self._watcher.counts)


@callback
def async_add_fleet_entities(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the fleet sensors to the account's device.

    *End devices silent* exists while the entry has applications (adding or
    removing one reloads the entry).
    """
    watcher = FleetWatcher(hass, entry, entry.runtime_data)
    entry.async_on_unload(watcher.async_start())
    with_end_devices = bool(entry.runtime_data.end_devices.applications)
    descriptions = [
        description
        for description in FLEET_SENSORS
        if description.gateways or with_end_devices
    ]
    if not with_end_devices:
        _remove_entity(hass, entry, END_DEVICES_SILENT)
    async_add_entities(
        FleetSensor(entry, watcher, description) for description in descriptions
    )


def _remove_entity(hass: HomeAssistant, entry: TTSConfigEntry, key: str) -> None:
    """Remove a fleet sensor the entry no longer has from the registry."""
    registry = er.async_get(hass)
    unique_id = entity_unique_id(account_identifier(account_id(entry)), key)
    if entity_id := registry.async_get_entity_id("sensor", DOMAIN, unique_id):
        registry.async_remove(entity_id)
