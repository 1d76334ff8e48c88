"""The end devices within the cap: TTS's lists fill it, devices that send win.

The manager keeps at most ``max_devices`` devices. A listed device that
never sent gives way to one that sends; a device the user deleted stays
away until it sends again; uplinks over a cap raise a repair issue.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from ..const import DOMAIN, ISSUE_END_DEVICE_CAP, ISSUE_END_DEVICE_ENTITY_CAP, LOGGER
from ..identifiers import account_id, end_device_identifier
from ..issues import async_create_issue
from ..timers import KeyedTimers
from ..tts import EndDeviceInfo
from .applications import ApplicationConfig
from .intake import MAX_ENTITIES_PER_DEVICE, Cap, Intake
from .registry import DeletedDevices, async_remove_device, device_key_text
from .state import DeviceKey, EndDevice

_CAP_ISSUES = {
    Cap.DEVICES: ISSUE_END_DEVICE_CAP,
    Cap.ENTITIES: ISSUE_END_DEVICE_ENTITY_CAP,
}


class CappedDevices(ABC):
    """The manager's devices under the cap, and the lists that fill it."""

    hass: HomeAssistant
    entry: ConfigEntry
    max_devices: int
    devices: dict[DeviceKey, EndDevice]
    _silent: dict[DeviceKey, None]
    _forgotten: DeletedDevices
    _listed_only: dict[DeviceKey, EndDeviceInfo]
    silence_timers: KeyedTimers[DeviceKey]
    intake: Intake

    @abstractmethod
    def _new_device(self, key: DeviceKey) -> EndDevice:
        """Add a device to ``devices``."""

    @abstractmethod
    def _async_device_updated(self, device: EndDevice) -> None:
        """Bring the device's entities and registry entry up to date."""

    def listed_keys(self, application_id: str) -> set[DeviceKey]:
        """The devices of an application known now."""
        return {key for key in self.devices if key[0] == application_id}

    @callback
    def async_apply_listing(
        self, config: ApplicationConfig, listed: Collection[EndDeviceInfo]
    ) -> None:
        """Take the devices of an application's list from TTS.

        Listed devices appear with their TTS name and model while there is
        room under the cap (they give way to devices that send); renamed ones
        follow. A device the user deleted stays away until it sends again.
        """
        for key in [
            key for key in self._listed_only if key[0] == config.application_id
        ]:
            del self._listed_only[key]
        for info in listed:
            key = (info.application_id, info.device_id)
            if config.application_id != info.application_id:
                continue
            device = self.devices.get(key)
            if device is None:
                if key in self._forgotten.keys or len(self.devices) >= self.max_devices:
                    # It appears with its first uplink (if there is room).
                    self._listed_only[key] = info
                    continue
                device = self._new_device(key)
                self._silent[key] = None
            take_listed(device, info)
            self._async_device_updated(device)

    @callback
    def async_remove_deleted(self, key: DeviceKey) -> None:
        """Remove a device deleted in TTS, with its registry device."""
        self._remove(key)

    def _remove(self, key: DeviceKey) -> None:
        self.devices.pop(key, None)
        self._silent.pop(key, None)
        self.silence_timers.cancel(key)
        async_remove_device(
            self.hass,
            self.entry.entry_id,
            end_device_identifier(account_id(self.entry), key),
        )

    def _make_room(self) -> bool:
        """Room for a device that sends: a listed device that never sent goes."""
        while self._silent:
            key, _ = self._silent.popitem()
            device = self.devices.get(key)
            if device is None or device.last_seen is not None:
                continue  # gone, or it has sent since
            LOGGER.info(
                "End device %s, listed but silent, makes room for one that sends "
                "(maximum end devices: %d)",
                device_key_text(key),
                self.max_devices,
            )
            self._remove(key)
            self._listed_only[key] = EndDeviceInfo(
                key[0], key[1], name=device.tts_name, version_ids=device.version_ids
            )
            return True
        return False

    def _cap_issue_ids(self) -> tuple[str, ...]:
        return tuple(f"{issue}_{self.entry.entry_id}" for issue in _CAP_ISSUES.values())

    def _raise_cap_issues(self) -> None:
        for cap in self.intake.take_cap_hits():
            issue = _CAP_ISSUES[cap]
            issue_id = f"{issue}_{self.entry.entry_id}"
            if ir.async_get(self.hass).async_get_issue(DOMAIN, issue_id):
                continue
            LOGGER.warning(
                "End devices of %s: uplinks over the %s cap are dropped",
                self.entry.title,
                cap,
            )
            async_create_issue(
                self.hass,
                issue_id,
                fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=issue,
                placeholders={
                    "title": self.entry.title,
                    "max_devices": str(self.max_devices),
                    "max_entities": str(MAX_ENTITIES_PER_DEVICE),
                },
            )


def take_listed(device: EndDevice, info: EndDeviceInfo) -> None:
    """A device's name and model as the application's list gives them."""
    changed = device.tts_name != (info.name or None)
    device.tts_name = info.name or None
    if info.version_ids is not None and device.version_ids != info.version_ids:
        device.version_ids = info.version_ids
        changed = True
    if changed:
        device.info_changed = True
