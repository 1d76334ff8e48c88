"""Sensors: a gateway's traffic, timestamps, link quality and end devices heard.

The account's counts come from ``fleet``, the end devices' sensors from
``end_device_sensor``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Self

from homeassistant.components.sensor import SensorEntity
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_call_later, async_track_point_in_utc_time
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.util import dt as dt_util

from .const import SUBENTRY_APPLICATION
from .end_device_coverage import (
    END_DEVICES_ONLY_HERE,
    MAX_LISTED_NAMES,
    GatewayOnlyHereEntityDescription,
)
from .end_device_sensor import end_device_sensor
from .end_devices import device_key_text
from .end_devices.coverage import CoverageIndex
from .end_devices.heard import HeardIndex
from .end_devices.state import DeviceKey
from .entity import (
    GatewayEntity,
    async_add_end_device_entities,
    async_add_gateway_entities,
    due_entities,
)
from .fleet import async_add_fleet_entities
from .gateway_sensor_descriptions import (
    END_DEVICES_HEARD,
    SENSORS,
    TIMESTAMP_WRITE_INTERVAL,
    GatewaySensorEntityDescription,
    SensorValue,
)
from .runtime import TTSConfigEntry, TTSRuntimeData
from .store import GatewayData
from .timers import KeyedTimers
from .tts import ConnectionState

# Read-only coordinator platform: no update concurrency to limit.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TTSConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the sensors of the account, every monitored gateway and end device."""
    async_add_fleet_entities(hass, entry, async_add_entities)
    # End devices are heard through applications; the entry reloads when one
    # is added or the last one removed.
    if any(
        subentry.subentry_type == SUBENTRY_APPLICATION
        for subentry in entry.subentries.values()
    ):
        async_add_gateway_entities(
            hass, entry, async_add_entities, _gateway_sensors_with_end_devices
        )
    else:
        _remove_heard_sensors(hass, entry)
        async_add_gateway_entities(hass, entry, async_add_entities, _gateway_sensors)
    async_add_end_device_entities(
        hass, entry, Platform.SENSOR, async_add_entities, end_device_sensor
    )


def _remove_heard_sensors(hass: HomeAssistant, entry: TTSConfigEntry) -> None:
    """Remove End devices heard (and only here) sensors left from applications."""
    registry = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if entity.domain == Platform.SENSOR and entity.unique_id.endswith(
            (f"/{END_DEVICES_HEARD}", f"/{END_DEVICES_ONLY_HERE.key}")
        ):
            registry.async_remove(entity.entity_id)


_GATEWAY_ONLY_SENSORS = tuple(d for d in SENSORS if d.key != END_DEVICES_HEARD)


def _gateway_sensors(
    runtime: TTSRuntimeData, gateway_id: str, data: GatewayData
) -> list[Entity]:
    return due_entities(runtime, gateway_id, data, _GATEWAY_ONLY_SENSORS, _sensor)


def _gateway_sensors_with_end_devices(
    runtime: TTSRuntimeData, gateway_id: str, data: GatewayData
) -> list[Entity]:
    return [
        *due_entities(runtime, gateway_id, data, SENSORS, _sensor),
        GatewayOnlyHereSensor(runtime, gateway_id, END_DEVICES_ONLY_HERE),
    ]


def _sensor(
    runtime: TTSRuntimeData,
    gateway_id: str,
    description: GatewaySensorEntityDescription,
) -> Entity:
    if description.key == END_DEVICES_HEARD:
        return GatewayEndDevicesHeardSensor(runtime, gateway_id, description)
    return GatewaySensor(runtime, gateway_id, description)


def _availability(signature: object) -> object:
    """The availability part of an entity's signature."""
    return signature[0] if isinstance(signature, tuple) else None


class GatewaySensor(GatewayEntity, SensorEntity):
    """A sensor of a gateway."""

    entity_description: GatewaySensorEntityDescription
    _written_at: datetime | None = None
    _written_state: ConnectionState | None = None
    _pending_write: CALLBACK_TYPE | None = None

    def _connection_state(self) -> ConnectionState | None:
        data = self.gateway_data
        return None if data is None else data.connection.state

    def _write(self, signature: object) -> None:
        """Write now, or for a busy timestamp at most once per interval."""
        if self.entity_description.rate_limited:
            now = dt_util.utcnow()
            state = self._connection_state()
            due = (
                None
                if self._written_at is None
                else self._written_at + TIMESTAMP_WRITE_INTERVAL
            )
            if (
                due is not None
                and now < due
                and state is self._written_state
                and _availability(signature) == _availability(self._written_signature)
            ):
                if self._pending_write is None:
                    self._pending_write = async_call_later(
                        self.hass, due - now, self._async_write_pending
                    )
                return
            self._cancel_pending()
            self._written_at = now
            self._written_state = state
        super()._write(signature)

    @callback
    def _async_write_pending(self, _now: datetime) -> None:
        self._pending_write = None
        self._written_at = dt_util.utcnow()
        self._written_state = self._connection_state()
        self.async_write_if_changed()

    def _cancel_pending(self) -> None:
        if self._pending_write is not None:
            self._pending_write()
            self._pending_write = None

    async def async_will_remove_from_hass(self) -> None:
        """Drop a pending write."""
        self._cancel_pending()
        await super().async_will_remove_from_hass()

    @property
    def native_value(self) -> SensorValue:
        """The sensor's value from the latest poll."""
        data = self.gateway_data
        return None if data is None else self.entity_description.value_fn(data)

    def _state_source(self) -> object:
        return self.native_value


# Names the End devices heard sensor lists; the count covers all of them.
MAX_HEARD_NAMES: Final = 50


@dataclass
class HeardStoredData(ExtraStoredData):
    """The end devices a gateway heard, kept over a restart."""

    heard: dict[DeviceKey, datetime]

    def as_dict(self) -> dict[str, Any]:
        """Return a dict to store: ``application/device`` -> when."""
        return {
            "heard": {
                device_key_text(key): when.isoformat()
                for key, when in self.heard.items()
            }
        }

    @classmethod
    def from_dict(cls, restored: dict[str, Any]) -> Self:
        """Read what as_dict stored; unusable entries are left out."""
        heard: dict[DeviceKey, datetime] = {}
        stored = restored.get("heard")
        for text, when in (stored if isinstance(stored, dict) else {}).items():
            application, _, device = str(text).partition("/")
            moment = dt_util.parse_datetime(when) if isinstance(when, str) else None
            if application and device and moment is not None and moment.tzinfo:
                heard[(application, device)] = moment
        return cls(heard)


class GatewayEndDevicesHeardSensor(GatewaySensor, RestoreEntity):
    """How many end devices the gateway heard in the last 24 hours, and which.

    Counted again when the gateway hears an uplink and when the oldest
    entry leaves the window (one timer per gateway). The devices heard are
    saved over a restart.
    """

    _count: int = 0
    _names: tuple[str, ...] = ()
    _cancel_expiry: CALLBACK_TYPE | None = None
    _expiry_at: datetime | None = None
    _unfollow: Callable[[], None] | None = None

    @property
    def _index(self) -> HeardIndex:
        return self.runtime.end_devices.intake.heard

    async def async_added_to_hass(self) -> None:
        """Follow the gateway in the index; take back what it heard before."""
        # Unfollowed in async_will_remove_from_hass: after the restore data,
        # which the on-remove callbacks would come before, is saved.
        self._unfollow = self._index.follow(self.gateway_id, self._async_recount)
        if (extra := await self.async_get_last_extra_data()) is not None:
            now = dt_util.utcnow()
            for key, when in HeardStoredData.from_dict(extra.as_dict()).heard.items():
                if when <= now:
                    self._index.restore(self.gateway_id, key, when)
        self._recount()
        await super().async_added_to_hass()

    @property
    def extra_restore_state_data(self) -> HeardStoredData:
        """Save the devices heard within the window."""
        return HeardStoredData(self._index.heard_by(self.gateway_id, dt_util.utcnow()))

    async def async_will_remove_from_hass(self) -> None:
        """Stop following the index and the expiry timer."""
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None
        self._cancel_expiry_timer()
        await super().async_will_remove_from_hass()

    def _cancel_expiry_timer(self) -> None:
        if self._cancel_expiry is not None:
            self._cancel_expiry()
            self._cancel_expiry = None
        self._expiry_at = None

    def _recount(self) -> None:
        """Count the devices heard within the window, and time the next expiry."""
        devices = self.runtime.end_devices.devices
        # Devices deleted since (in TTS or by the user) no longer count.
        heard = [
            key
            for key in self._index.heard_by(self.gateway_id, dt_util.utcnow())
            if key in devices
        ]
        self._count = len(heard)
        self._names = tuple(
            sorted(
                (
                    device.tts_name
                    if (device := devices.get(key)) is not None and device.tts_name
                    else device_key_text(key)
                )
                for key in heard
            )
        )
        expiry = self._index.expires_at(self.gateway_id)
        if expiry != self._expiry_at:
            self._cancel_expiry_timer()
            if expiry is not None:
                self._expiry_at = expiry
                self._cancel_expiry = async_track_point_in_utc_time(
                    self.hass, self._async_expired, expiry
                )

    @callback
    def _async_recount(self) -> None:
        self._recount()
        self.async_write_if_changed()

    @callback
    def _async_expired(self, _now: datetime) -> None:
        self._cancel_expiry = None
        self._expiry_at = None
        self._async_recount()

    @property
    def native_value(self) -> int:
        """How many end devices the gateway heard within the window."""
        return self._count

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The first MAX_HEARD_NAMES names, sorted, and how many are left out."""
        return {
            "end_devices": list(self._names[:MAX_HEARD_NAMES]),
            "end_devices_not_listed": max(0, self._count - MAX_HEARD_NAMES),
        }


class GatewayOnlyHereSensor(GatewayEntity, SensorEntity):
    """How many end devices no other own gateway heard in the last 24 hours."""

    entity_description: GatewayOnlyHereEntityDescription

    _count: int = 0
    _names: tuple[str, ...] = ()

    def __init__(
        self,
        runtime: TTSRuntimeData,
        gateway_id: str,
        description: GatewayOnlyHereEntityDescription,
    ) -> None:
        """Initialise for a monitored gateway."""
        super().__init__(runtime, gateway_id, description)
        self._expiry: KeyedTimers[str] = KeyedTimers(runtime.coordinator.hass)

    @property
    def _index(self) -> CoverageIndex:
        return self.runtime.end_devices.intake.coverage

    async def async_added_to_hass(self) -> None:
        """Follow the gateway in the coverage index."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self._index.follow_gateway(self.gateway_id, self._async_recount)
        )
        self.async_on_remove(self._expiry.cancel_all)
        self._recount()

    def _recount(self) -> None:
        now = dt_util.utcnow()
        devices = self.runtime.end_devices.devices
        # Devices deleted since (in TTS or by the user) no longer count.
        only = [
            key
            for key in self._index.only_heard_by(self.gateway_id, now)
            if key in devices
        ]
        self._count = len(only)
        self._names = tuple(
            sorted(devices[key].tts_name or device_key_text(key) for key in only)
        )
        expiry = self._index.gateway_expires_at(self.gateway_id, now)
        if expiry is None:
            self._expiry.cancel("expiry")
        else:
            self._expiry.schedule_by("expiry", expiry, self._async_expired)

    @callback
    def _async_recount(self) -> None:
        self._recount()
        self.async_write_if_changed()

    @callback
    def _async_expired(self, _now: datetime) -> None:
        self._async_recount()

    def _state_source(self) -> object:
        return self._count

    @property
    def native_value(self) -> int:
        """How many end devices only this gateway heard within the window."""
        return self._count

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The first MAX_LISTED_NAMES names, sorted, and how many are left out."""
        return {
            "end_devices_only_here": list(self._names[:MAX_LISTED_NAMES]),
            "end_devices_only_here_not_listed": max(0, self._count - MAX_LISTED_NAMES),
        }
