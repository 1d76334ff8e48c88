"""Connection and silence events of a TTS gateway, for automations."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import GatewayEntity, GatewayEntityDescription, async_add_gateway_entities
from .runtime import TTSConfigEntry, TTSRuntimeData
from .silence import GatewayEventType

# Read-only: events come from the silence monitor.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class GatewayEventEntityDescription(GatewayEntityDescription, EventEntityDescription):
    """Describes a gateway event entity."""


STATUS_EVENT_DESCRIPTION = GatewayEventEntityDescription(
    key="status_event",
    translation_key="status_event",
    event_types=[event_type.value for event_type in GatewayEventType],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the event entity of every monitored gateway."""
    async_add_gateway_entities(hass, entry, async_add_entities, _gateway_entities)


def _gateway_entities(
    runtime: TTSRuntimeData, gateway_id: str, _data: object
) -> list[GatewayStatusEvent]:
    return [GatewayStatusEvent(runtime, gateway_id, STATUS_EVENT_DESCRIPTION)]


class GatewayStatusEvent(GatewayEntity, EventEntity):
    """Fires when the gateway connects, disconnects, goes silent or recovers."""

    entity_description: GatewayEventEntityDescription

    async def async_added_to_hass(self) -> None:
        """Subscribe to the gateway's transitions."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.silence.async_subscribe(
                self.gateway_id, self._async_handle_event
            )
        )

    @callback
    def _async_handle_event(
        self, event_type: GatewayEventType, attributes: dict[str, str]
    ) -> None:
        self._trigger_event(event_type, attributes)
        self.async_write_ha_state()
