"""Base entity of a TTS gateway, and the helper that adds entities as they appear.

A gateway entity follows its own gateway in the store: an event for one
gateway touches only that gateway's entities. It writes its state only when
what it shows changed (state_writes.WriteOnChange, shared with end devices).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .identifiers import entity_unique_id
from .runtime import TTSConfigEntry, TTSRuntimeData
from .state_writes import WriteOnChange
from .store import GatewayData


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
        self.async_write_ha_state()

    @property
    def gateway_data(self) -> GatewayData | None:
        """The gateway's latest data, None once it is no longer monitored."""
        return self.runtime.store.get(self.gateway_id)

    @property
    def available(self) -> bool:
        """Available while a source delivers and the key may read the gateway."""
        return self.runtime.store.available(self.gateway_id)


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
