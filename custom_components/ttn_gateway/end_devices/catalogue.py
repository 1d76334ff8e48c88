"""An application's device list: names and models before the first uplink.

With the key's right to read devices, the application's end devices are
listed at setup (in the background) and then every hour. The manager
applies each complete list: new devices appear, renamed ones follow, and
those deleted in TTS are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval

from ..const import DEVICE_LIST_INTERVAL, LOGGER
from ..tts import TTSClient, TTSError, TTSPermissionError
from ..tts.models import EndDeviceInfo
from .applications import ApplicationConfig


class DeviceCatalogue:
    """Lists one application's end devices now and every hour."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        config: ApplicationConfig,
        client: TTSClient,
        apply: Callable[[ApplicationConfig, list[EndDeviceInfo]], None],
    ) -> None:
        """Nothing is listed until async_start."""
        self.hass = hass
        self.entry = entry
        self.config = config
        self.client = client
        self._apply = apply
        self.listed: int | None = None
        self.last_error: str | None = None
        self._stop_timer: CALLBACK_TYPE | None = None

    @callback
    def async_start(self) -> None:
        """List now in the background, then every hour."""
        self.entry.async_create_background_task(
            self.hass, self.async_refresh(), f"ttn_gateway {self.config.title} devices"
        )
        self._stop_timer = async_track_time_interval(
            self.hass, self._async_tick, DEVICE_LIST_INTERVAL
        )

    @callback
    def async_stop(self) -> None:
        """Stop listing."""
        if self._stop_timer is not None:
            self._stop_timer()
            self._stop_timer = None

    @callback
    def _async_tick(self, _now: datetime) -> None:
        self.entry.async_create_background_task(
            self.hass, self.async_refresh(), f"ttn_gateway {self.config.title} devices"
        )

    async def async_refresh(self) -> None:
        """List the devices and apply the list; a failure keeps what is known."""
        if self.config.application_id is None:  # pragma: no cover - not started
            return
        try:
            devices = await self.client.list_end_devices(self.config.application_id)
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
        self.listed = len(devices)
        self._apply(self.config, devices)
