"""Fair use entities of an end device on The Things Network.

*Airtime today* and *Downlinks today* count from 00:00 UTC and reset at UTC
midnight; *Fair use exceeded* is a problem while either is over the Fair Use
Policy's daily limit (``end_devices.airtime``). Each entity saves both
figures, so that they survive a restart even with the figures disabled.
Here: their descriptions and what they share; the entities are in the
sensor and binary_sensor platforms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Self

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import callback
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.util import dt as dt_util

from .end_devices import EndDevice, EndDeviceManager
from .end_devices.airtime import (
    FairUse,
)
from .entity import EndDeviceEntity
from .timers import KeyedTimers

AIRTIME_TODAY = SensorEntityDescription(
    key="airtime_today",
    translation_key="airtime_today",
    device_class=SensorDeviceClass.DURATION,
    native_unit_of_measurement=UnitOfTime.SECONDS,
    state_class=SensorStateClass.TOTAL_INCREASING,
    suggested_display_precision=1,
    entity_category=EntityCategory.DIAGNOSTIC,
    entity_registry_enabled_default=False,
)
DOWNLINKS_TODAY = SensorEntityDescription(
    key="downlinks_today",
    translation_key="downlinks_today",
    state_class=SensorStateClass.TOTAL_INCREASING,
    entity_category=EntityCategory.DIAGNOSTIC,
    entity_registry_enabled_default=False,
)
FAIR_USE_EXCEEDED = BinarySensorEntityDescription(
    key="fair_use_exceeded",
    translation_key="fair_use_exceeded",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


def _today() -> date:
    return dt_util.utcnow().date()


@dataclass
class FairUseStoredData(ExtraStoredData):
    """A device's figures of one UTC day, kept over a restart."""

    day: date
    airtime: float
    downlinks: int

    def as_dict(self) -> dict[str, Any]:
        """Return a dict to store."""
        return {
            "day": self.day.isoformat(),
            "airtime": self.airtime,
            "downlinks": self.downlinks,
        }

    @classmethod
    def from_dict(cls, restored: dict[str, Any]) -> Self | None:
        """Read what as_dict stored; None when it is unusable."""
        day, airtime, downlinks = (
            restored.get("day"),
            restored.get("airtime"),
            restored.get("downlinks"),
        )
        try:
            parsed = date.fromisoformat(day) if isinstance(day, str) else None
        except ValueError:
            parsed = None
        if (
            parsed is None
            or isinstance(airtime, bool)
            or not isinstance(airtime, int | float)
            or isinstance(downlinks, bool)
            or not isinstance(downlinks, int)
        ):
            return None
        return cls(parsed, float(airtime), downlinks)


class FairUseEntity(EndDeviceEntity, RestoreEntity):
    """An end-device entity made from the day's fair use figures."""

    def __init__(
        self,
        manager: EndDeviceManager,
        device: EndDevice,
        description: EntityDescription,
    ) -> None:
        """Initialise; a timer resets the figures at UTC midnight."""
        super().__init__(manager, device, description)
        self._midnight: KeyedTimers[str] = KeyedTimers(manager.hass)

    @property
    def _fair_use(self) -> FairUse:
        return self.manager.intake.fair_use

    @property
    def extra_restore_state_data(self) -> FairUseStoredData:
        """Save today's figures."""
        today, key = _today(), self.device.key
        return FairUseStoredData(
            today,
            self._fair_use.airtime(key, today),
            self._fair_use.downlinks(key, today),
        )

    async def async_added_to_hass(self) -> None:
        """Take back today's figures (once per device), then follow them."""
        if (
            (extra := await self.async_get_last_extra_data()) is not None
            and (stored := FairUseStoredData.from_dict(extra.as_dict())) is not None
            and stored.day == _today()
        ):
            self._fair_use.restore(
                self.device.key,
                stored.day,
                airtime=stored.airtime,
                downlinks=stored.downlinks,
            )
        await super().async_added_to_hass()
        self.async_on_remove(
            self._fair_use.follow(self.device.key, self.async_handle_device_update)
        )
        self.async_on_remove(self._midnight.cancel_all)

    def _take_device_state(self) -> None:
        today = _today()
        self._take_figures(today)
        midnight = datetime.combine(today + timedelta(days=1), time(), dt_util.UTC)
        self._midnight.schedule("midnight", midnight, self._async_new_day)

    @callback
    def _async_new_day(self, _now: datetime) -> None:
        self.async_handle_device_update()

    def _take_figures(self, today: date) -> None:
        raise NotImplementedError
