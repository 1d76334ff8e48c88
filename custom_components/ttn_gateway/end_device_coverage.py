"""Coverage: which gateways reach an end device, and which only one.

Per end device, *Gateways in reach* counts the own gateways that heard it in
the last 24 hours and *No fallback gateway* is a problem while at most one
did. Per gateway, *End devices only this gateway hears* lists the devices
that lose their coverage when it fails. The coverage is saved over a restart
by both end-device entities; Packet Broker traffic shows as another network.
Here: their descriptions and what they share; the entities are in the
sensor and binary_sensor platforms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Self

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import callback
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.util import dt as dt_util

from .end_devices import EndDevice, EndDeviceManager
from .end_devices.coverage import CoverageIndex
from .entity import EndDeviceEntity, GatewayEntityDescription
from .store import GatewayStore
from .timers import KeyedTimers

# Names an attribute lists; a count says how many more there are.
MAX_LISTED_NAMES: Final = 50

GATEWAYS_IN_REACH = SensorEntityDescription(
    key="gateways_in_reach",
    translation_key="gateways_in_reach",
    state_class=SensorStateClass.MEASUREMENT,
)
NO_FALLBACK_GATEWAY = BinarySensorEntityDescription(
    key="no_fallback_gateway",
    translation_key="no_fallback_gateway",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


@dataclass(frozen=True, kw_only=True)
class GatewayOnlyHereEntityDescription(
    GatewayEntityDescription, SensorEntityDescription
):
    """Describes the sensor of the end devices only one gateway hears."""


END_DEVICES_ONLY_HERE = GatewayOnlyHereEntityDescription(
    key="end_devices_only_here",
    translation_key="end_devices_only_here",
    state_class=SensorStateClass.MEASUREMENT,
)


@dataclass
class CoverageStoredData(ExtraStoredData):
    """The gateways that heard a device within the window, kept over a restart."""

    heard: dict[str, datetime]

    def as_dict(self) -> dict[str, Any]:
        """Return a dict to store: gateway ID (or packetbroker) -> when."""
        return {"heard": {key: when.isoformat() for key, when in self.heard.items()}}

    @classmethod
    def from_dict(cls, restored: dict[str, Any]) -> Self:
        """Read what as_dict stored; unusable entries are left out."""
        heard: dict[str, datetime] = {}
        stored = restored.get("heard")
        for gateway_id, when in (stored if isinstance(stored, dict) else {}).items():
            moment = dt_util.parse_datetime(when) if isinstance(when, str) else None
            if isinstance(gateway_id, str) and moment is not None and moment.tzinfo:
                heard[gateway_id] = moment
        return cls(heard)


class EndDeviceCoverageEntity(EndDeviceEntity, RestoreEntity):
    """An end-device entity made from the coverage index; saves the coverage."""

    def __init__(
        self,
        manager: EndDeviceManager,
        device: EndDevice,
        description: EntityDescription,
        store: GatewayStore,
    ) -> None:
        """Initialise; store names the entry's own gateways."""
        super().__init__(manager, device, description)
        self._store = store
        self._expiry: KeyedTimers[str] = KeyedTimers(manager.hass)

    @property
    def _index(self) -> CoverageIndex:
        return self.manager.intake.coverage

    @property
    def extra_restore_state_data(self) -> CoverageStoredData:
        """Save the gateways that heard the device within the window."""
        return CoverageStoredData(self._index.heard(self.device.key, dt_util.utcnow()))

    async def async_added_to_hass(self) -> None:
        """Take back the saved coverage (the index keeps newer entries)."""
        if (extra := await self.async_get_last_extra_data()) is not None:
            now = dt_util.utcnow()
            heard = CoverageStoredData.from_dict(extra.as_dict()).heard
            self._index.restore(
                self.device.key,
                {key: when for key, when in heard.items() if when <= now},
            )
        await super().async_added_to_hass()
        self.async_on_remove(
            self._index.follow_device(self.device.key, self.async_handle_device_update)
        )
        self.async_on_remove(self._expiry.cancel_all)

    def _take_device_state(self) -> None:
        now = dt_util.utcnow()
        heard = self._index.heard(self.device.key, now)
        self._take_coverage(heard)
        expiry = self._index.expires_at(self.device.key, now)
        if expiry is None:
            self._expiry.cancel("expiry")
        else:
            self._expiry.schedule_by("expiry", expiry, self._async_expired)

    @callback
    def _async_expired(self, _now: datetime) -> None:
        self.async_handle_device_update()

    def _take_coverage(self, heard: dict[str, datetime]) -> None:
        raise NotImplementedError
