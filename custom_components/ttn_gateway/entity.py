"""Base entities of a TTS gateway and of an end device, and how they are added.

A gateway entity follows its own gateway in the store: an event for one
gateway touches only that gateway's entities. An end-device entity restores
its last state after a restart and then follows the device's uplinks. Both
write their state only when what they show changed
(state_writes.WriteOnChange).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .end_devices import EndDevice, EndDeviceManager
from .identifiers import entity_unique_id
from .runtime import TTSConfigEntry, TTSRuntimeData
from .state_writes import WriteOnChange
from .store import GatewayData, GatewayStore


@dataclass(frozen=True, kw_only=True)
class GatewayEntityDescription(EntityDescription):
    """Describes an entity of a gateway."""

    # Whether the gateway gets this entity (checked when its data changes).
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


def async_add_gateway_entities[DescriptionT: GatewayEntityDescription](
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    descriptions: Iterable[DescriptionT],
    entity_factory: Callable[[TTSRuntimeData, str, DescriptionT], Entity],
) -> None:
    """Add each gateway's entities now and whenever new ones become due.

    The gateway set is checked when it changes; a gateway still missing some
    entities (status metrics appear with the first status that has them) is
    checked when its own data changes, and only it.
    """
    runtime = entry.runtime_data
    store = runtime.store
    all_descriptions = tuple(descriptions)
    added: dict[str, set[str]] = {}
    watching: dict[str, CALLBACK_TYPE] = {}

    @callback
    def add_for(gateway_id: str) -> None:
        data = store.get(gateway_id)
        if data is None:
            return
        keys = added.setdefault(gateway_id, set())
        new_entities: list[Entity] = []
        for description in all_descriptions:
            if description.key in keys or not description.exists_fn(data):
                continue
            keys.add(description.key)
            new_entities.append(entity_factory(runtime, gateway_id, description))
        if len(keys) == len(all_descriptions) and gateway_id in watching:
            watching.pop(gateway_id)()
        elif len(keys) < len(all_descriptions) and gateway_id not in watching:
            watching[gateway_id] = store.async_subscribe_gateway(
                gateway_id, lambda: add_for(gateway_id)
            )
        if new_entities:
            async_add_entities(new_entities)

    @callback
    def sync_gateways() -> None:
        current = store.gateway_ids
        # Forget removed gateways so they get entities again if they return.
        for gateway_id in [item for item in added if item not in current]:
            del added[gateway_id]
            if (unsubscribe := watching.pop(gateway_id, None)) is not None:
                unsubscribe()
        for gateway_id in current:
            if gateway_id not in added:
                add_for(gateway_id)

    @callback
    def stop_watching() -> None:
        for unsubscribe in watching.values():
            unsubscribe()
        watching.clear()

    sync_gateways()
    entry.async_on_unload(store.async_subscribe_gateway_set(sync_gateways))
    entry.async_on_unload(stop_watching)


type EntityFactory = Callable[
    [EndDeviceManager, EndDevice, str, GatewayStore], Entity | None
]


def async_add_end_device_entities(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    platform: Platform,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: EntityFactory,
) -> None:
    """Add end devices' entities of a platform, now and as devices appear.

    factory makes an entity from its key.
    """
    manager = entry.runtime_data.end_devices
    store = entry.runtime_data.store

    @callback
    def add(device: EndDevice, keys: Iterable[str], subentry_id: str | None) -> None:
        entities = [
            entity
            for key in keys
            if (entity := factory(manager, device, key, store)) is not None
        ]
        if entities:
            async_add_entities(entities, config_subentry_id=subentry_id)

    manager.async_register_platform(platform, add)
