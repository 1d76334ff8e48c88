"""Base entity of a TTS gateway, and the helper that adds entities as they appear."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import GatewayData, TTSConfigEntry, TTSCoordinator
from .tts import ConnectionState


@dataclass(frozen=True, kw_only=True)
class GatewayEntityDescription(EntityDescription):
    """Describes an entity of a gateway."""

    # Whether the gateway gets this entity (checked on every update).
    exists_fn: Callable[[GatewayData], bool] = lambda _: True


class GatewayEntity(CoordinatorEntity[TTSCoordinator]):
    """An entity that belongs to one gateway."""

    _attr_has_entity_name = True
    entity_description: GatewayEntityDescription

    def __init__(
        self,
        coordinator: TTSCoordinator,
        gateway_id: str,
        description: GatewayEntityDescription,
    ) -> None:
        """Initialise the entity for a gateway known to the coordinator."""
        super().__init__(coordinator)
        self.entity_description = description
        self.gateway_id = gateway_id
        device_id = coordinator.device_identifier(gateway_id)
        self._attr_unique_id = f"{device_id}_{description.key}"
        self._attr_device_info = coordinator.device_info(
            coordinator.data[gateway_id].gateway
        )

    _written: tuple[bool, object, Mapping[str, Any] | None] | None = None

    def _state_source(self) -> object:
        """What the state is made from; platforms return their raw value.

        Cheaper than `state`, which formats the value on every call.
        """
        return self.state

    async def async_added_to_hass(self) -> None:
        """Remember the state written when the entity was added."""
        await super().async_added_to_hass()
        self._written = self._signature()

    def _signature(self) -> tuple[bool, object, Mapping[str, Any] | None]:
        """What a state write would show: availability, state and attributes."""
        return (self.available, self._state_source(), self.extra_state_attributes)

    @callback
    def _handle_coordinator_update(self) -> None:
        """Write the state only when it changed: most polls change nothing."""
        current = self._signature()
        if current != self._written:
            self._written = current
            self.async_write_ha_state()

    @property
    def gateway_data(self) -> GatewayData | None:
        """The gateway's latest data, None once it is no longer monitored."""
        return self.coordinator.data.get(self.gateway_id)

    @property
    def available(self) -> bool:
        """Unavailable when TTS cannot be reached or may not be asked."""
        data = self.gateway_data
        return (
            super().available
            and data is not None
            and data.connection.state is not ConnectionState.NO_RIGHTS
        )


def async_add_gateway_entities[DescriptionT: GatewayEntityDescription](
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    descriptions: Iterable[DescriptionT],
    entity_factory: Callable[[TTSCoordinator, str, DescriptionT], Entity],
) -> None:
    """Add each gateway's entities now and whenever new ones become due."""
    coordinator = entry.runtime_data.coordinator
    descriptions = tuple(descriptions)
    known: set[tuple[str, str]] = set()

    @callback
    def add_new_entities() -> None:
        data = coordinator.data
        # Forget removed gateways so they get entities again if they return.
        known.difference_update({item for item in known if item[0] not in data})
        new_entities: list[Entity] = []
        for gateway_id, gateway in data.items():
            for description in descriptions:
                if (gateway_id, description.key) in known or not description.exists_fn(
                    gateway
                ):
                    continue
                known.add((gateway_id, description.key))
                new_entities.append(
                    entity_factory(coordinator, gateway_id, description)
                )
        if new_entities:
            async_add_entities(new_entities)

    add_new_entities()
    entry.async_on_unload(coordinator.async_add_listener(add_new_entities))
