"""Connectivity and silence of a TTS gateway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .end_device_coverage import COVERAGE_BINARY_SENSORS
from .end_device_entities import async_add_end_device_entities
from .end_device_fair_use import FAIR_USE_BINARY_SENSORS
from .entity import GatewayEntity, GatewayEntityDescription, async_add_gateway_entities
from .runtime import TTSConfigEntry
from .store import GatewayData
from .tts import ConnectionState

# Read-only coordinator platform: no update concurrency to limit.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class GatewayBinarySensorEntityDescription(
    GatewayEntityDescription, BinarySensorEntityDescription
):
    """Describes a gateway binary sensor."""

    is_on_fn: Callable[[GatewayData], bool]


BINARY_SENSORS: tuple[GatewayBinarySensorEntityDescription, ...] = (
    GatewayBinarySensorEntityDescription(
        key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        is_on_fn=lambda data: data.connection.state is ConnectionState.CONNECTED,
    ),
)


@dataclass(frozen=True, kw_only=True)
class GatewaySilenceEntityDescription(
    GatewayEntityDescription, BinarySensorEntityDescription
):
    """Describes the silence binary sensor (its state comes from the monitor)."""


# Disconnected, or connected without an uplink for longer than the threshold.
SILENT_DESCRIPTION = GatewaySilenceEntityDescription(
    key="silent",
    translation_key="silent",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the binary sensors of every monitored gateway and end device."""
    async_add_gateway_entities(
        entry, async_add_entities, BINARY_SENSORS, GatewayBinarySensor
    )
    async_add_gateway_entities(
        entry, async_add_entities, (SILENT_DESCRIPTION,), GatewaySilentBinarySensor
    )
    async_add_end_device_entities(
        hass,
        entry,
        Platform.BINARY_SENSOR,
        async_add_entities,
        by_key=COVERAGE_BINARY_SENSORS | FAIR_USE_BINARY_SENSORS,
    )


class GatewayBinarySensor(GatewayEntity, BinarySensorEntity):
    """A binary sensor of a gateway."""

    entity_description: GatewayBinarySensorEntityDescription

    @property
    def is_on(self) -> bool | None:
        """Whether the gateway is connected, from the latest poll."""
        data = self.gateway_data
        return None if data is None else self.entity_description.is_on_fn(data)

    def _state_source(self) -> object:
        return self.is_on


class GatewaySilentBinarySensor(GatewayEntity, BinarySensorEntity):
    """On while the gateway is disconnected or hears no uplinks."""

    entity_description: GatewaySilenceEntityDescription

    async def async_added_to_hass(self) -> None:
        """Follow the gateway's silence as well as its data."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.silence.async_subscribe_state(
                self.gateway_id, self._handle_gateway_update
            )
        )

    @property
    def is_on(self) -> bool | None:
        """Whether the gateway is silent."""
        return self.runtime.silence.is_silent(self.gateway_id)

    @property
    def extra_state_attributes(self) -> dict[str, StateType]:
        """Why the gateway is silent, and after how long without uplinks."""
        silence = self.runtime.silence
        return {
            "reason": silence.reason(self.gateway_id),
            "threshold": silence.threshold(self.gateway_id).total_seconds() / 60,
        }
