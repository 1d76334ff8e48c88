"""Manufacturer and model as the Device Repository names them.

TTS gives a gateway's and an end device's ``version_ids`` as Device
Repository ids (``rakwireless``, ``rak7248``). The device registry shows the
names (``RAKwireless Technology Co.``) once TTS told them: until then, and
when TTS has none, the ids. Lookups run in the background, never in the way of
setup; a learnt name rewrites the devices that use it. A lookup that failed
is tried again an hour later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.event import async_track_time_interval

from .tts import DR_ID, MAX_LOOKUPS, DeviceRepositoryNames, NameKey, TTSClient

# How often failed lookups are checked for being due again.
RETRY_CHECK_INTERVAL: Final = timedelta(minutes=10)


class DeviceNames:
    """Readable manufacturer and model names for one entry's devices."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, client: TTSClient
    ) -> None:
        """Nothing is looked up until a device asks."""
        self.hass = hass
        self.entry = entry
        self.names = DeviceRepositoryNames(client)
        self._pending: set[NameKey] = set()
        # Every brand and model asked for, to try failed lookups again.
        self._seen: set[tuple[str, str | None]] = set()
        self._listeners: list[Callable[[], None]] = []

    @callback
    def async_add_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call listener when a name was learnt; returns the removal."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def readable(self, info: DeviceInfo) -> DeviceInfo:
        """The device info with names for the ids it has, as far as known."""
        brand_id = info.get("manufacturer")
        model_id = info.get("model")
        if brand_id is None:
            return info
        if len(self._seen) < MAX_LOOKUPS and DR_ID.fullmatch(brand_id):
            self._seen.add((brand_id, model_id))
        self._look_up(brand_id, model_id)
        named = DeviceInfo(**info)
        named["manufacturer"] = self.names.manufacturer(brand_id)
        if model_id is not None:
            named["model"] = self.names.model(brand_id, model_id)
        return named

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Try failed lookups again once due (an hour on); returns the stop."""
        return async_track_time_interval(
            self.hass, self._async_retry_due, RETRY_CHECK_INTERVAL
        )

    @callback
    def _async_retry_due(self, _now: datetime) -> None:
        for brand_id, model_id in self._seen:
            self._look_up(brand_id, model_id)

    def _look_up(self, brand_id: str, model_id: str | None) -> None:
        for key in self.names.wanted(brand_id, model_id):
            if key not in self._pending:
                self._pending.add(key)
                # Not eager: a learnt name never rewrites devices from
                # inside the call that builds one's info.
                self.entry.async_create_background_task(
                    self.hass,
                    self._async_look_up(key),
                    f"ttn_gateway names {key}",
                    eager_start=False,
                )

    async def _async_look_up(self, key: NameKey) -> None:
        try:
            learnt = await self.names.async_look_up(key)
        finally:
            self._pending.discard(key)
        if learnt:
            for listener in list(self._listeners):
                listener()
