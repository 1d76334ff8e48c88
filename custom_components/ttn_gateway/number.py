"""Per-gateway silence threshold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntityDescription,
    NumberExtraStoredData,
    NumberMode,
    RestoreNumber,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import MAX_SILENCE_THRESHOLD, MIN_SILENCE_THRESHOLD
from .entity import GatewayEntity, GatewayEntityDescription, async_add_gateway_entities
from .runtime import TTSConfigEntry, TTSRuntimeData

# Nothing here talks to TTS.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class GatewayNumberEntityDescription(GatewayEntityDescription, NumberEntityDescription):
    """Describes a gateway number."""


SILENCE_THRESHOLD_DESCRIPTION = GatewayNumberEntityDescription(
    key="silence_threshold",
    translation_key="silence_threshold",
    device_class=NumberDeviceClass.DURATION,
    entity_category=EntityCategory.CONFIG,
    native_min_value=MIN_SILENCE_THRESHOLD,
    native_max_value=MAX_SILENCE_THRESHOLD,
    native_step=1,
    native_unit_of_measurement=UnitOfTime.MINUTES,
    mode=NumberMode.BOX,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the silence threshold of every monitored gateway."""
    async_add_gateway_entities(hass, entry, async_add_entities, _gateway_entities)


def _gateway_entities(
    runtime: TTSRuntimeData, gateway_id: str, _data: object
) -> list[GatewaySilenceThreshold]:
    return [GatewaySilenceThreshold(runtime, gateway_id, SILENCE_THRESHOLD_DESCRIPTION)]


class GatewaySilenceThreshold(GatewayEntity, RestoreNumber):
    """Minutes without an uplink before the gateway counts as silent.

    Follows the integration option until set here; only a value set here is
    restored after a restart.
    """

    entity_description: GatewayNumberEntityDescription

    async def async_added_to_hass(self) -> None:
        """Restore the gateway's own threshold."""
        await super().async_added_to_hass()
        last = await self.async_get_last_number_data()
        if last is not None and last.native_value is not None:
            self.runtime.silence.async_set_override(
                self.gateway_id, timedelta(minutes=last.native_value)
            )
        self.async_on_remove(
            self.runtime.silence.async_subscribe_state(
                self.gateway_id, self._handle_gateway_update
            )
        )

    @property
    def available(self) -> bool:
        """A setting: available while the gateway is monitored."""
        return self.gateway_data is not None

    @property
    def native_value(self) -> float:
        """The threshold in minutes."""
        threshold = self.runtime.silence.threshold(self.gateway_id)
        return threshold.total_seconds() / 60

    async def async_set_native_value(self, value: float) -> None:
        """Give the gateway its own threshold."""
        self.runtime.silence.async_set_override(
            self.gateway_id, timedelta(minutes=value)
        )

    @property
    def extra_restore_state_data(self) -> NumberExtraStoredData:
        """Store only a threshold set here (None while following the option)."""
        override = self.runtime.silence.override(self.gateway_id)
        data = super().extra_restore_state_data
        data.native_value = None if override is None else override.total_seconds() / 60
        return data
