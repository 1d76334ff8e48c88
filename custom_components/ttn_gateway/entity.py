"""Base entities of a TTS gateway and of an end device, and how they are added.

A gateway entity follows its own gateway in the store: an event for one
gateway touches only that gateway's entities. An end-device entity restores
its last state after a restart and then follows the device's uplinks. Both
write their state only when what they show changed
(state_writes.WriteOnChange).

Entities appear through Home Assistant's dispatcher: each platform adds the
entities of what exists at its setup, then those its signal announces
(``SIGNAL_NEW_GATEWAY_ENTITIES``, ``SIGNAL_NEW_END_DEVICE_ENTITIES``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import (
    async_dispatcher_connect,
    async_dispatcher_send,
)
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import SIGNAL_NEW_END_DEVICE_ENTITIES, SIGNAL_NEW_GATEWAY_ENTITIES
from .end_devices import EndDevice, EndDeviceManager
from .identifiers import entity_unique_id
from .runtime import TTSConfigEntry, TTSRuntimeData
from .state_writes import WriteOnChange
from .store import GatewayData, GatewayStore


@dataclass(frozen=True, kw_only=True)
class GatewayEntityDescription(EntityDescription):
    """Describes an entity of a gateway."""

    # Whether the gateway gets this entity; checked with each signal for the
    # gateway, so it may read only what `gateway_features` follows.
    exists_fn: Callable[[GatewayData], bool] = lambda _: True


class GatewayEntity(WriteOnChange):
    """An entity that belongs to one gateway."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: GatewayEntityDescription

    def __init__(
        self,
        runtime: TTSRuntimeData,
        gateway_id: str,
        description: GatewayEntityDescription,
    ) -> None:
        """Initialise the entity for a gateway known to the store."""
        self.runtime = runtime
        self.entity_description = description
        self.gateway_id = gateway_id
        coordinator = runtime.coordinator
        device_id = coordinator.device_identifier(gateway_id)
        self._attr_unique_id = entity_unique_id(device_id, description.key)

    @property
    def device_info(self) -> DeviceInfo | None:
        """The gateway's device, with the names known when it is registered."""
        data = self.runtime.store.get(self.gateway_id)
        return (
            None if data is None else self.runtime.coordinator.device_info(data.gateway)
        )

    def _state_source(self) -> object:
        """What the state is made from; platforms return their raw value.

        Cheaper than `state`, which formats the value on every call.
        """
        return self.state

    def _signature(self) -> object:
        """What a state write would show: availability, state and attributes."""
        return (self.available, self._state_source(), self.extra_state_attributes)

    async def async_added_to_hass(self) -> None:
        """Follow the gateway in the store."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.store.async_subscribe_gateway(
                self.gateway_id, self._handle_gateway_update
            )
        )

    async def async_update(self) -> None:
        """Ask for a poll (the update_entity action)."""
        await self.runtime.coordinator.async_request_refresh()

    @callback
    def _handle_gateway_update(self) -> None:
        """Write the state only when it changed: most updates change nothing."""
        current = self._signature()
        if current != self._written_signature:
            self._write(current)

    def _write(self, signature: object) -> None:
        """Write a changed state; platforms may hold some writes back."""
        self.async_write_signature(signature)

    @property
    def gateway_data(self) -> GatewayData | None:
        """The gateway's latest data, None once it is no longer monitored."""
        return self.runtime.store.get(self.gateway_id)

    @property
    def available(self) -> bool:
        """Available while a source delivers and the key may read the gateway."""
        return self.runtime.store.available(self.gateway_id)


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
        # Removed (by the user, say): the next uplink adds it again.
        self.device.announced = -1

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


class NewEntities:
    """The entities one platform added for an entry: each is added once.

    A signal may come twice, or announce what was added before; an entity
    that is removed (its device went, or the user deleted it) is forgotten,
    so that the next signal brings it back.
    """

    def __init__(
        self, entry: ConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
    ) -> None:
        """Nothing added yet."""
        self._entry = entry
        self._async_add_entities = async_add_entities
        self._unique_ids: set[str] = set()

    def has(self, unique_id: str) -> bool:
        """Whether the entity with this unique ID was added and is not removed."""
        return unique_id in self._unique_ids

    @callback
    def add(self, entities: Iterable[Entity], subentry_id: str | None = None) -> None:
        """Add the entities not added yet, to the sub-entry if one is given."""
        # Signals still come while the platforms unload: entities added then
        # would outlive them and hold their unique IDs against the next setup.
        if self._entry.state is ConfigEntryState.UNLOAD_IN_PROGRESS:
            return
        new: list[Entity] = []
        for entity in entities:
            unique_id = str(entity.unique_id)
            if unique_id in self._unique_ids:
                continue
            self._unique_ids.add(unique_id)
            entity.async_on_remove(partial(self._unique_ids.discard, unique_id))
            new.append(entity)
        if new:
            self._async_add_entities(new, config_subentry_id=subentry_id)


def gateway_features(data: GatewayData) -> tuple[frozenset[str], bool]:
    """What of a gateway's data can give it entities it did not have.

    The metrics of its last status message and whether it has a location.
    """
    stats = data.connection.stats
    status = None if stats is None else stats.last_status
    metrics = frozenset() if status is None else frozenset(status.metrics)
    return (metrics, data.gateway.location is not None)


@callback
def async_announce_gateways(
    hass: HomeAssistant, entry: ConfigEntry, store: GatewayStore
) -> CALLBACK_TYPE:
    """Send the entry's gateway signal for a gateway that may have new entities.

    When the gateway is first monitored (or again after it was removed), and
    when its features (``gateway_features``) change. Returns the stop.
    """
    signal = SIGNAL_NEW_GATEWAY_ENTITIES.format(entry.entry_id)
    features: dict[str, tuple[frozenset[str], bool]] = {}
    watching: dict[str, CALLBACK_TYPE] = {}

    @callback
    def check(gateway_id: str) -> None:
        if (data := store.get(gateway_id)) is None:
            return
        current = gateway_features(data)
        if features.get(gateway_id) != current:
            features[gateway_id] = current
            async_dispatcher_send(hass, signal, gateway_id)

    @callback
    def sync_gateways() -> None:
        current = store.gateway_ids
        for gateway_id in [item for item in watching if item not in current]:
            watching.pop(gateway_id)()
            features.pop(gateway_id, None)
        for gateway_id in current - watching.keys():
            watching[gateway_id] = store.async_subscribe_gateway(
                gateway_id, partial(check, gateway_id)
            )
            check(gateway_id)

    unsubscribe_set = store.async_subscribe_gateway_set(sync_gateways)
    sync_gateways()

    @callback
    def stop() -> None:
        unsubscribe_set()
        for unsubscribe in watching.values():
            unsubscribe()
        watching.clear()

    return stop


def due_entities[DescriptionT: GatewayEntityDescription](
    runtime: TTSRuntimeData,
    gateway_id: str,
    data: GatewayData,
    descriptions: Iterable[DescriptionT],
    entity_factory: Callable[[TTSRuntimeData, str, DescriptionT], Entity],
) -> list[Entity]:
    """The entities of the descriptions the gateway's data has a value for."""
    return [
        entity_factory(runtime, gateway_id, description)
        for description in descriptions
        if description.exists_fn(data)
    ]


type GatewayEntities = Callable[[TTSRuntimeData, str, GatewayData], Sequence[Entity]]


@callback
def async_add_gateway_entities(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_of: GatewayEntities,
) -> None:
    """Add the gateways' entities of a platform: now, and as signals announce them.

    entities_of gives a gateway's entities for its data (those it has now).
    """
    runtime = entry.runtime_data
    added = NewEntities(entry, async_add_entities)

    @callback
    def add(gateway_id: str) -> None:
        if (data := runtime.store.get(gateway_id)) is not None:
            added.add(entities_of(runtime, gateway_id, data))

    for gateway_id in runtime.store.gateway_ids:
        add(gateway_id)
    entry.async_on_unload(
        async_dispatcher_connect(
            hass, SIGNAL_NEW_GATEWAY_ENTITIES.format(entry.entry_id), add
        )
    )


type EndDeviceEntityFactory = Callable[
    [EndDeviceManager, EndDevice, str, GatewayStore], Entity | None
]


@callback
def async_add_end_device_entities(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    platform: Platform,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: EndDeviceEntityFactory,
) -> None:
    """Add the end devices' entities of a platform: now, and as signals announce them.

    Those of the devices known at setup (restored from the registries), then
    those of each device the manager announces, in its application's
    sub-entry. factory makes an entity from its key.
    """
    manager = entry.runtime_data.end_devices
    store = entry.runtime_data.store
    added = NewEntities(entry, async_add_entities)

    @callback
    def add(device: EndDevice) -> None:
        entities = [
            entity
            for key in sorted(device.entity_keys[platform])
            if not added.has(entity_unique_id(device.identifier, key))
            and (entity := factory(manager, device, key, store)) is not None
        ]
        if entities:
            added.add(entities, manager.subentry_of(device.key))

    for device in list(manager.devices.values()):
        add(device)
    entry.async_on_unload(
        async_dispatcher_connect(
            hass, SIGNAL_NEW_END_DEVICE_ENTITIES.format(entry.entry_id), add
        )
    )
