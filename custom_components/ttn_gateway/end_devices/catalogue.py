"""An application's device list: names and models before the first uplink.

With the key's right to read devices, the application's end devices are
listed at setup (in the background) and then every hour. Listed devices
appear and renamed ones follow. A device is removed only once two complete
listings at least an hour apart lacked it: a listing can miss a device that
exists (an unreadable item, pages that moved while they were read), and one
short answer must not delete a device with its history and customisations.
A device that appeared while a listing was read is not judged by it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from ..const import DEVICE_LIST_INTERVAL, LOGGER
from ..tts import EndDeviceInfo, TTSClient, TTSError, TTSPermissionError
from .applications import ApplicationConfig
from .registry import device_key_text
from .state import DeviceKey


class CatalogueOwner(Protocol):
    """What a catalogue changes: the manager's devices."""

    def listed_keys(self, application_id: str) -> set[DeviceKey]:
        """The devices of an application known now."""

    def async_apply_listing(
        self, config: ApplicationConfig, listed: Collection[EndDeviceInfo]
    ) -> None:
        """Add the listed devices and take their names and models."""

    def async_remove_deleted(self, key: DeviceKey) -> None:
        """Remove a device deleted in TTS, with its registry device."""


class DeviceCatalogue:
    """Lists one application's end devices now and every hour."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        config: ApplicationConfig,
        client: TTSClient,
        owner: CatalogueOwner,
    ) -> None:
        """Nothing is listed until async_start."""
        self.hass = hass
        self.entry = entry
        self.config = config
        self.client = client
        self._owner = owner
        self.listed: int | None = None
        self.complete: bool | None = None
        self.last_error: str | None = None
        # Devices missing from a complete listing: when that listing was due.
        self.missing_since: dict[DeviceKey, datetime] = {}
        self._stop_timer: CALLBACK_TYPE | None = None

    @callback
    def async_start(self) -> None:
        """List now in the background, then every hour."""
        self._start_refresh(dt_util.utcnow())
        self._stop_timer = async_track_time_interval(
            self.hass, self._start_refresh, DEVICE_LIST_INTERVAL
        )

    @callback
    def async_stop(self) -> None:
        """Stop listing."""
        if self._stop_timer is not None:
            self._stop_timer()
            self._stop_timer = None

    @callback
    def _start_refresh(self, due: datetime) -> None:
        self.entry.async_create_background_task(
            self.hass,
            self.async_refresh(due),
            f"ttn_gateway {self.config.title} devices",
        )

    async def async_refresh(self, due: datetime | None = None) -> None:
        """List the devices and apply the list; a failure keeps what is known.

        ``due`` is when the listing was scheduled: listings an interval apart
        are that far apart however long each request took.
        """
        if (application_id := self.config.application_id) is None:  # pragma: no cover
            return
        due = due or dt_util.utcnow()
        known_before = self._owner.listed_keys(application_id)
        try:
            listing = await self.client.list_end_devices(application_id)
        except TTSPermissionError as err:
            if self.last_error is None:
                LOGGER.info(
                    "Cannot list the end devices of %s (%s): they appear with "
                    "their first uplink",
                    self.config.title,
                    err,
                )
            self.last_error = str(err)
            return
        except TTSError as err:
            LOGGER.debug(
                "Listing the end devices of %s failed: %s", self.config.title, err
            )
            self.last_error = str(err)
            return
        self.last_error = None
        self.listed = len(listing.devices)
        self.complete = listing.complete
        self._owner.async_apply_listing(self.config, listing.devices)
        listed = {(info.application_id, info.device_id) for info in listing.devices}
        # Known before and after the request: one made by an uplink meanwhile
        # may be newer than the list.
        missing = known_before & self._owner.listed_keys(application_id) - listed
        for key in self._deleted(missing, complete=listing.complete, due=due):
            LOGGER.info(
                "End device %s was deleted in The Things Stack: removing it",
                device_key_text(key),
            )
            self._owner.async_remove_deleted(key)

    def _deleted(
        self, missing: set[DeviceKey], *, complete: bool, due: datetime
    ) -> list[DeviceKey]:
        """The missing devices that two complete listings an interval apart lacked.

        An incomplete listing removes nothing and starts no count; a device
        listed again, or gone meanwhile, is no longer counted.
        """
        for key in list(self.missing_since):
            if key not in missing:
                del self.missing_since[key]
        if not complete:
            if missing:
                LOGGER.debug(
                    "The device list of %s may be incomplete: keeping %d devices "
                    "missing from it",
                    self.config.title,
                    len(missing),
                )
            return []
        deleted = []
        for key in sorted(missing):
            first = self.missing_since.setdefault(key, due)
            if due - first >= DEVICE_LIST_INTERVAL:
                deleted.append(key)
                del self.missing_since[key]
        return deleted
