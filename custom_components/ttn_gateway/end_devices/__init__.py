"""End devices: TTS uplinks received through Home Assistant's MQTT integration.

The manager ties the parts together: ``subscription`` follows MQTT's config
entry, ``intake`` turns messages into device updates within the caps,
``state`` holds what is known of each device, and ``registry`` keeps this
entry's own registry entries in order. Entities (``end_device_entities``)
follow the devices and write their state only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.util import dt as dt_util

from ..const import (
    CONF_APPLICATIONS,
    CONF_DECODERS,
    CONF_END_DEVICES,
    CONF_MAX_END_DEVICES,
    CONF_OFFLINE_THRESHOLD,
    CONF_SERVER,
    CONF_UPLINK_TOPIC,
    DEFAULT_MAX_END_DEVICES,
    DEFAULT_UPLINK_TOPIC,
    DOMAIN,
    ISSUE_END_DEVICE_CAP,
    ISSUE_END_DEVICE_ENTITY_CAP,
    LOGGER,
    MIN_OFFLINE_THRESHOLD,
    OFFLINE_INTERVALS,
    UNKNOWN_INTERVAL_OFFLINE_THRESHOLD,
)
from ..decoders import Decoder, describe_reading
from ..identifiers import account_id, end_device_identifier
from ..timers import KeyedTimers
from ..tts import TTSServer
from .intake import (
    MAX_ENTITIES_PER_DEVICE,
    MAX_MESSAGE_BYTES,
    Cap,
    Intake,
    IntakeSettings,
    MessageCounters,
)
from .registry import (
    STATIC_ENTITY_KEYS,
    async_load_known_devices,
    async_update_device,
    device_key_text,
    end_device_key,
    is_end_device,
)
from .state import DeviceKey, EndDevice, EndDeviceListener
from .subscription import UplinkSubscription

if TYPE_CHECKING:
    from homeassistant.components.mqtt import ReceiveMessage


__all__ = [
    "MAX_ENTITIES_PER_DEVICE",
    "MAX_MESSAGE_BYTES",
    "DeviceKey",
    "EndDevice",
    "EndDeviceListener",
    "EndDeviceManager",
    "MessageCounters",
    "device_key_text",
    "end_device_diagnostics",
    "end_device_identifier",
    "end_device_key",
    "is_end_device",
]

# Adds the entities of one platform for a device: (device, entity keys).
type EntityAdder = Callable[[EndDevice, Iterable[str]], None]

_CAP_ISSUES = {
    Cap.DEVICES: ISSUE_END_DEVICE_CAP,
    Cap.ENTITIES: ISSUE_END_DEVICE_ENTITY_CAP,
}


class EndDeviceManager:
    """Receives the uplinks of one config entry's end devices."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Read the options; nothing is subscribed yet."""
        self.hass = hass
        self.entry = entry
        options = entry.options
        self.enabled: bool = options.get(CONF_END_DEVICES, True)
        self.topic: str = options.get(CONF_UPLINK_TOPIC, DEFAULT_UPLINK_TOPIC)
        minutes = options.get(CONF_OFFLINE_THRESHOLD)
        self.silence_threshold_option = timedelta(minutes=minutes) if minutes else None
        self.decoders: dict[str, Decoder] = {
            device: Decoder(decoder)
            for device, decoder in options.get(CONF_DECODERS, {}).items()
            if decoder in Decoder.__members__.values()
        }
        self.max_devices: int = int(
            options.get(CONF_MAX_END_DEVICES, DEFAULT_MAX_END_DEVICES)
        )
        self.applications = frozenset(options.get(CONF_APPLICATIONS) or ())
        self.devices: dict[DeviceKey, EndDevice] = {}
        self.silence_timers: KeyedTimers[DeviceKey] = KeyedTimers(hass)
        server = TTSServer(entry.data[CONF_SERVER])
        self.intake = Intake(
            IntakeSettings(
                max_devices=self.max_devices,
                applications=self.applications,
                decoders=self.decoders,
            ),
            self.devices,
            self._new_device,
            server.gateway_server_url,
        )
        self.subscription = UplinkSubscription(
            hass, entry, self.topic, self._async_handle_message, self._notify_all
        )
        self._adders: dict[Platform, EntityAdder] = {}

    @property
    def counters(self) -> MessageCounters:
        """What happened to the messages received."""
        return self.intake.counters

    @property
    def receiving(self) -> bool:
        """Whether uplinks can arrive: monitoring on and MQTT loaded."""
        return self.subscription.available

    @property
    def issue_id(self) -> str:
        """ID of this entry's repair issue about MQTT."""
        return self.subscription.issue_id

    def key_of(self, device: dr.DeviceEntry) -> DeviceKey | None:
        """The end device a registry device stands for; None for gateways."""
        return end_device_key(account_id(self.entry), device)

    def silence_threshold(self, device: EndDevice) -> timedelta:
        """How long a device may be silent before it counts as offline."""
        if self.silence_threshold_option is not None:
            return self.silence_threshold_option
        if (interval := device.uplink_interval) is None:
            return UNKNOWN_INTERVAL_OFFLINE_THRESHOLD
        return max(
            MIN_OFFLINE_THRESHOLD, timedelta(seconds=interval * OFFLINE_INTERVALS)
        )

    # -- Setup ---------------------------------------------------------------

    @callback
    def async_load_known_devices(self) -> None:
        """Recreate the devices seen before from the registries (within the cap)."""

        def known(key: DeviceKey) -> EndDevice | None:
            if len(self.devices) >= self.max_devices:
                return None
            return self._new_device(key)

        async_load_known_devices(
            self.hass, self.entry.entry_id, account_id(self.entry), self.enabled, known
        )

    def _new_device(self, key: DeviceKey) -> EndDevice:
        device = EndDevice(
            key=key,
            identifier=end_device_identifier(account_id(self.entry), key),
            decoder=self.decoders.get(device_key_text(key), Decoder.AUTO),
        )
        for platform, entity_key in STATIC_ENTITY_KEYS:
            device.wanted[platform].add(entity_key)
        self.devices[key] = device
        return device

    @callback
    def async_register_platform(self, platform: Platform, adder: EntityAdder) -> None:
        """Let a platform add entities; it gets those of known devices now."""
        self._adders[platform] = adder
        for device in self.devices.values():
            self._add_missing(device, platform)

    def _add_missing(self, device: EndDevice, platform: Platform) -> None:
        if (adder := self._adders.get(platform)) is None:
            return
        if missing := device.wanted[platform] - device.created[platform]:
            device.created[platform].update(missing)
            adder(device, sorted(missing))

    async def async_setup(self) -> None:
        """Start following MQTT's config entry; never waits for MQTT.

        Without MQTT a repair issue says what to do, and the known devices'
        entities are unavailable until MQTT is loaded.
        """
        for issue in (self.issue_id, *self._cap_issue_ids()):
            ir.async_delete_issue(self.hass, DOMAIN, issue)
        if self.enabled:
            self.subscription.async_start()

    @callback
    def async_stop(self) -> None:
        """Unsubscribe and stop the timers; the entry is unloading."""
        self.subscription.async_stop()
        self.silence_timers.cancel_all()

    @callback
    def async_forget(self, device_entry: dr.DeviceEntry) -> None:
        """Forget a device the user deleted, until it sends again."""
        if (key := self.key_of(device_entry)) is not None:
            self.devices.pop(key, None)
            self.silence_timers.cancel(key)

    @callback
    def _notify_all(self) -> None:
        """Availability changed: every entity writes its state if it changed."""
        for device in self.devices.values():
            for listener in list(device.listeners):
                listener.async_handle_device_update()

    # -- Messages ------------------------------------------------------------

    @callback
    def _async_handle_message(self, msg: ReceiveMessage) -> None:
        """Take one MQTT message; never raises."""
        try:
            device = self.intake.take(msg.topic, msg.payload, dt_util.utcnow())
            if self.intake.has_cap_hits:
                self._raise_cap_issues()
            if device is not None:
                self._async_device_updated(device)
        except Exception:  # noqa: BLE001 - one bad uplink must not stop the rest
            self.counters.dropped += 1
            self.counters.drop_reasons["error"] += 1
            LOGGER.exception("Error handling an uplink on %.200s", msg.topic)

    def _async_device_updated(self, device: EndDevice) -> None:
        had_entities = any(device.created.values())
        if device.info_changed:
            device.info_changed = False
            if had_entities:
                self._update_device_registry(device)
        for platform in self._adders:
            self._add_missing(device, platform)
        for listener in device.listeners:
            listener.async_handle_device_update()

    def _update_device_registry(self, device: EndDevice) -> None:
        async_update_device(self.hass, self.entry.entry_id, device)

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
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=issue,
                translation_placeholders={
                    "title": self.entry.title,
                    "max_devices": str(self.max_devices),
                    "max_entities": str(MAX_ENTITIES_PER_DEVICE),
                },
            )


# Diagnostics keep the shape of a reading but not where a device is.
REDACTED = "**REDACTED**"


def _reading_for_diagnostics(key: str, value: Any) -> Any:
    description = describe_reading(key)
    return REDACTED if description is not None and description.location else value


def end_device_diagnostics(manager: EndDeviceManager) -> dict[str, Any]:
    """What the manager receives and knows, for the diagnostics download."""
    counters = manager.counters
    return {
        "enabled": manager.enabled,
        "topic": manager.topic,
        "receiving": manager.receiving,
        "subscribed": manager.subscription.subscribed,
        "max_devices": manager.max_devices,
        "max_entities_per_device": MAX_ENTITIES_PER_DEVICE,
        "applications": sorted(manager.applications),
        "silence_threshold_minutes": (
            None
            if manager.silence_threshold_option is None
            else manager.silence_threshold_option.total_seconds() / 60
        ),
        "decoders": {
            device: str(decoder) for device, decoder in manager.decoders.items()
        },
        "messages": {
            "received": counters.received,
            "uplinks": counters.uplinks,
            "repeats": counters.repeats,
            "older": counters.older,
            "ignored": counters.ignored,
            "dropped": counters.dropped,
            "undecodable": counters.undecodable,
            "over_device_cap": counters.over_device_cap,
            "over_entity_cap": counters.over_entity_cap,
            "drop_reasons": dict(counters.drop_reasons),
        },
        "devices": {
            device_key_text(key): {
                "decoder": str(device.decoder),
                "last_seen": device.last_seen,
                "uplink_interval_seconds": device.uplink_interval,
                "silence_threshold_seconds": manager.silence_threshold(
                    device
                ).total_seconds(),
                "f_port": None if device.uplink is None else device.uplink.f_port,
                "f_cnt": None if device.uplink is None else device.uplink.f_cnt,
                "readings": {
                    reading_key: _reading_for_diagnostics(reading_key, reading.value)
                    for reading_key, reading in device.readings.items()
                },
                "entities": {
                    str(platform): sorted(keys)
                    for platform, keys in device.wanted.items()
                },
            }
            for key, device in manager.devices.items()
        },
    }
