"""End devices: TTS uplinks received through Home Assistant's MQTT integration.

The manager subscribes to the uplink topic, parses each message once, drops
repeats, decodes the payload and hands the result to the device's entities,
which write their state only when it changed. Devices are known by
(application ID, device ID); their entities are created on the first uplink,
or at setup from the registries for devices seen before a restart.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import re
from statistics import median
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.components import mqtt
from homeassistant.const import EVENT_COMPONENT_LOADED, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.util import dt as dt_util
from homeassistant.util.json import json_loads

from .const import (
    CONF_DECODERS,
    CONF_END_DEVICES,
    CONF_OFFLINE_THRESHOLD,
    CONF_UPLINK_TOPIC,
    DEFAULT_UPLINK_TOPIC,
    DOMAIN,
    ISSUE_MQTT_NOT_SET_UP,
    LOGGER,
    MIN_OFFLINE_THRESHOLD,
    OFFLINE_INTERVALS,
    UNKNOWN_INTERVAL_OFFLINE_THRESHOLD,
)
from .decoders import DecodeError, Decoder, Readings, decode, describe_reading
from .tts.models import VersionIds
from .tts.uplink import Uplink, UplinkError, parse_application_up

if TYPE_CHECKING:
    from homeassistant.components.mqtt import ReceiveMessage

    from .coordinator import TTSConfigEntry

# Larger MQTT messages are not TTS uplinks (those are a few kB).
MAX_MESSAGE_BYTES = 1_000_000
# Uplinks remembered per device to recognise a repeat.
DEDUP_WINDOW = 16
# Uplink intervals remembered per device; the median is used.
INTERVAL_WINDOW = 8
# Uplinks closer together than this are not an interval (retries, bursts).
MIN_INTERVAL = timedelta(seconds=1)

type DeviceKey = tuple[str, str]


_IDENTIFIER = re.compile(r"^(.+)_device_([a-z0-9-]+)_([a-z0-9-]+)$")


def end_device_identifier(entry_id: str, key: DeviceKey) -> str:
    """Device registry identifier of an end device."""
    return f"{entry_id}_device_{key[0]}_{key[1]}"


def end_device_key(entry_id: str, device: dr.DeviceEntry) -> DeviceKey | None:
    """The end device a registry device stands for; None for gateways."""
    for domain, identifier in device.identifiers:
        if (
            domain == DOMAIN
            and (match := _IDENTIFIER.match(identifier))
            and match.group(1) == entry_id
        ):
            return match.group(2), match.group(3)
    return None


def is_end_device(entry_id: str, device: dr.DeviceEntry) -> bool:
    """Whether a registry device of the entry is an end device."""
    return end_device_key(entry_id, device) is not None


def device_key_text(key: DeviceKey) -> str:
    """``application-id/device-id``, as the options and diagnostics show it."""
    return f"{key[0]}/{key[1]}"


class EndDeviceListener(Protocol):
    """An entity that follows an end device."""

    def async_handle_device_update(self) -> None:
        """Take the device's latest uplink."""

    def async_write_ha_state(self) -> None:
        """Write the state (availability changed)."""


# Adds the entities of one platform for a device: (device, entity keys).
type EntityAdder = Callable[["EndDevice", Iterable[str]], None]


@dataclass(eq=False)
class EndDevice:
    """What is known of one end device: its latest uplink and timing."""

    key: DeviceKey
    identifier: str
    decoder: Decoder = Decoder.AUTO
    uplink: Uplink | None = None
    # Readings of the latest uplink only.
    readings: Readings = field(default_factory=dict)
    last_seen: datetime | None = None
    intervals: deque[float] = field(
        default_factory=lambda: deque(maxlen=INTERVAL_WINDOW)
    )
    recent: deque[tuple[int, bytes]] = field(
        default_factory=lambda: deque(maxlen=DEDUP_WINDOW)
    )
    version_ids: VersionIds | None = None
    console_url: str | None = None
    # Entity keys per platform that should exist, and that the platform made.
    wanted: dict[Platform, set[str]] = field(
        default_factory=lambda: {Platform.SENSOR: set(), Platform.BINARY_SENSOR: set()}
    )
    created: dict[Platform, set[str]] = field(
        default_factory=lambda: {Platform.SENSOR: set(), Platform.BINARY_SENSOR: set()}
    )
    # Readable names of payload formatter fields, by reading key.
    names: dict[str, str] = field(default_factory=dict)
    listeners: list[EndDeviceListener] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The device's name in Home Assistant: its TTS device ID."""
        return self.key[1]

    @property
    def uplink_interval(self) -> float | None:
        """Median seconds between the device's recent uplinks."""
        return median(self.intervals) if self.intervals else None

    def is_repeat(self, uplink: Uplink) -> bool:
        """Whether this uplink (frame counter and payload) was seen lately."""
        return (
            not uplink.simulated and (uplink.f_cnt, uplink.frm_payload) in self.recent
        )

    def apply(self, uplink: Uplink, readings: Readings, now: datetime) -> None:
        """Take a new uplink."""
        seen = uplink.received_at or now
        if self.last_seen is not None:
            interval = seen - self.last_seen
            if interval >= MIN_INTERVAL:
                self.intervals.append(interval.total_seconds())
        if self.last_seen is None or seen > self.last_seen:
            self.last_seen = seen
        if not uplink.simulated:
            self.recent.append((uplink.f_cnt, uplink.frm_payload))
        self.uplink = uplink
        self.readings = readings

    def restore(self, last_seen: datetime | None, interval: float | None) -> None:
        """Take the timing saved before a restart, unless an uplink came first."""
        if self.last_seen is None and last_seen is not None:
            self.last_seen = last_seen
        if not self.intervals and interval is not None and interval > 0:
            self.intervals.append(interval)

    def device_info(self) -> DeviceInfo:
        """Device registry information; only what is known is set."""
        info = DeviceInfo(identifiers={(DOMAIN, self.identifier)}, name=self.name)
        if (versions := self.version_ids) is not None:
            info["manufacturer"] = versions.brand_id
            info["model"] = versions.model_id
            info["hw_version"] = versions.hardware_version
            info["sw_version"] = versions.firmware_version
        if self.uplink is not None and self.uplink.ids.dev_eui:
            info["serial_number"] = self.uplink.ids.dev_eui
        if self.console_url:
            info["configuration_url"] = self.console_url
        return info


@dataclass
class MessageCounters:
    """What happened to the messages received (shown in diagnostics)."""

    received: int = 0
    uplinks: int = 0
    repeats: int = 0
    ignored: int = 0
    dropped: int = 0
    undecodable: int = 0
    drop_reasons: Counter[str] = field(default_factory=Counter)


# Static entities every end device has: (platform, key).
STATIC_ENTITY_KEYS: tuple[tuple[Platform, str], ...] = (
    (Platform.SENSOR, "rssi"),
    (Platform.SENSOR, "snr"),
    (Platform.SENSOR, "spreading_factor"),
    (Platform.SENSOR, "frequency"),
    (Platform.SENSOR, "frame_counter"),
    (Platform.SENSOR, "gateway_count"),
    (Platform.SENSOR, "airtime"),
    (Platform.SENSOR, "last_seen"),
    (Platform.BINARY_SENSOR, "online"),
)
_STATIC_KEYS = frozenset(STATIC_ENTITY_KEYS)


class EndDeviceManager:
    """Receives the uplinks of one config entry's end devices."""

    def __init__(self, hass: HomeAssistant, entry: TTSConfigEntry) -> None:
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
        self.devices: dict[DeviceKey, EndDevice] = {}
        self.counters = MessageCounters()
        # True while uplinks can arrive: MQTT is set up and subscribed.
        self.receiving = False
        self._adders: dict[Platform, EntityAdder] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._stop_waiting: Callable[[], None] | None = None
        self._stopped = False

    @property
    def issue_id(self) -> str:
        """ID of this entry's repair issue about MQTT."""
        return f"{ISSUE_MQTT_NOT_SET_UP}_{self.entry.entry_id}"

    def key_of(self, device: dr.DeviceEntry) -> DeviceKey | None:
        """The end device a registry device stands for; None for gateways."""
        return end_device_key(self.entry.entry_id, device)

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
        """Recreate the devices seen before from the registries.

        With end-device monitoring off they are removed instead. With a decoder
        chosen for a device, entities of other decoders are removed.
        """
        device_registry = dr.async_get(self.hass)
        entity_registry = er.async_get(self.hass)
        for device_entry in dr.async_entries_for_config_entry(
            device_registry, self.entry.entry_id
        ):
            if (key := self.key_of(device_entry)) is None:
                continue
            if not self.enabled:
                LOGGER.debug("Removing end device %s: monitoring is off", key[1])
                device_registry.async_remove_device(device_entry.id)
                continue
            device = self._new_device(key)
            prefix = f"{device.identifier}_"
            for entity_entry in er.async_entries_for_device(
                entity_registry, device_entry.id, include_disabled_entities=True
            ):
                # Helpers and other integrations' entities linked to the
                # device are not ours to keep or remove.
                if (
                    entity_entry.config_entry_id != self.entry.entry_id
                    or entity_entry.platform != DOMAIN
                ):
                    continue
                entity_key = entity_entry.unique_id.removeprefix(prefix)
                platform = Platform(entity_entry.domain)
                if self._keeps(device, platform, entity_key):
                    device.wanted[platform].add(entity_key)
                    if entity_entry.original_name:
                        device.names[entity_key] = entity_entry.original_name
                else:
                    entity_registry.async_remove(entity_entry.entity_id)

    def _keeps(self, device: EndDevice, platform: Platform, key: str) -> bool:
        """Whether a registry entity still belongs to the device."""
        if (platform, key) in _STATIC_KEYS:
            return True
        description = describe_reading(key)
        return (
            description is not None
            and (Platform.BINARY_SENSOR if description.binary else Platform.SENSOR)
            is platform
            and device.decoder in (Decoder.AUTO, description.decoder)
        )

    def _new_device(self, key: DeviceKey) -> EndDevice:
        device = EndDevice(
            key=key,
            identifier=end_device_identifier(self.entry.entry_id, key),
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
        """Check for MQTT before the platforms add entities.

        Without MQTT a repair issue says what to do, and the known devices'
        entities are unavailable until MQTT is set up.
        """
        if not self.enabled:
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        elif await self._async_mqtt_available():
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
            self.receiving = True
        else:
            self._raise_mqtt_issue()

    async def async_start(self) -> None:
        """Subscribe to uplinks, once the platforms can add entities."""
        if self.receiving:
            await self._async_subscribe()

    def _raise_mqtt_issue(self) -> None:
        LOGGER.warning(
            "End devices of %s need Home Assistant's MQTT integration, which is "
            "not set up",
            self.entry.title,
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self.issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_MQTT_NOT_SET_UP,
            translation_placeholders={"title": self.entry.title, "topic": self.topic},
        )
        if "mqtt" in self.hass.config.components:
            return

        @callback
        def mqtt_loaded(event: Event[Any]) -> None:
            self._stop_listening()
            self.entry.async_create_task(
                self.hass, self._async_mqtt_loaded(), "ttn_gateway mqtt loaded"
            )

        self._stop_waiting = self.hass.bus.async_listen(
            EVENT_COMPONENT_LOADED,
            mqtt_loaded,
            event_filter=callback(lambda data: data["component"] == "mqtt"),
        )

    def _stop_listening(self) -> None:
        if self._stop_waiting is not None:
            self._stop_waiting()
            self._stop_waiting = None

    async def _async_mqtt_available(self) -> bool:
        # MQTT's own check trips over a removed entry whose client is still
        # connected; only an enabled entry counts.
        return self.hass.config_entries.async_has_entries(
            mqtt.DOMAIN, include_disabled=False, include_ignore=False
        ) and await mqtt.async_wait_for_mqtt_client(self.hass)

    async def _async_mqtt_loaded(self) -> None:
        """MQTT was set up after this entry: start receiving."""
        if self._stopped or not await self._async_mqtt_available():
            return
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        self.receiving = True
        await self._async_subscribe()
        for device in self.devices.values():
            for listener in device.listeners:
                listener.async_write_ha_state()

    async def _async_subscribe(self) -> None:
        self._unsubscribe = await mqtt.async_subscribe(
            self.hass, self.topic, self._async_handle_message, qos=0, encoding=None
        )
        LOGGER.debug("Receiving uplinks on %s", self.topic)

    @callback
    def async_stop(self) -> None:
        """Unsubscribe; the entry is unloading."""
        self._stopped = True
        self._stop_listening()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.receiving = False
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)

    @callback
    def async_forget(self, device_entry: dr.DeviceEntry) -> None:
        """Forget a device the user deleted, until it sends again."""
        if (key := self.key_of(device_entry)) is not None:
            self.devices.pop(key, None)

    # -- Messages ------------------------------------------------------------

    def _drop(self, topic: str, reason: str) -> None:
        self.counters.dropped += 1
        self.counters.drop_reasons[reason.split(":", 1)[0]] += 1
        LOGGER.debug("Dropped the message on %s: %s", topic, reason)

    @callback
    def _async_handle_message(self, msg: ReceiveMessage) -> None:
        """Take one MQTT message; never raises."""
        self.counters.received += 1
        payload = msg.payload
        if len(payload) > MAX_MESSAGE_BYTES:
            self._drop(msg.topic, f"message larger than {MAX_MESSAGE_BYTES} bytes")
            return
        try:
            uplink = parse_application_up(json_loads(payload))
        except UplinkError as err:
            self._drop(msg.topic, str(err))
            return
        except ValueError as err:
            self._drop(msg.topic, f"not JSON: {err}")
            return
        if uplink is None:
            self.counters.ignored += 1
            return
        try:
            self._async_take_uplink(uplink)
        except Exception:  # noqa: BLE001 - one bad uplink must not stop the rest
            self.counters.dropped += 1
            self.counters.drop_reasons["error"] += 1
            LOGGER.exception("Error handling an uplink on %s", msg.topic)

    def _async_take_uplink(self, uplink: Uplink) -> None:
        key = (uplink.ids.application_id, uplink.ids.device_id)
        if (device := self.devices.get(key)) is None:
            device = self._new_device(key)
            LOGGER.debug("New end device %s", device_key_text(key))
        elif device.is_repeat(uplink):
            self.counters.repeats += 1
            return
        self.counters.uplinks += 1
        try:
            readings = decode(
                device.decoder,
                uplink.f_port,
                uplink.frm_payload,
                uplink.decoded_payload,
            )
        except DecodeError as err:
            self.counters.undecodable += 1
            LOGGER.debug(
                "Uplink %s of %s does not fit decoder %s: %s",
                uplink.f_cnt,
                device_key_text(key),
                device.decoder,
                err,
            )
            readings = {}
        device.apply(uplink, readings, dt_util.utcnow())
        self._update_device_registry(device, uplink)
        for reading_key, reading in readings.items():
            platform = (
                Platform.BINARY_SENSOR
                if isinstance(reading.value, bool)
                else Platform.SENSOR
            )
            if reading_key not in device.wanted[platform]:
                device.wanted[platform].add(reading_key)
                if reading.name:
                    device.names[reading_key] = reading.name
        for platform in self._adders:
            self._add_missing(device, platform)
        for listener in device.listeners:
            listener.async_handle_device_update()

    def _update_device_registry(self, device: EndDevice, uplink: Uplink) -> None:
        """Keep model and Console link as the uplinks tell them."""
        console_url = (
            f"https://{uplink.cluster_address}/console/applications/"
            f"{device.key[0]}/devices/{device.key[1]}"
            if uplink.cluster_address
            else None
        )
        version_ids = uplink.version_ids or device.version_ids
        console_url = console_url or device.console_url
        if version_ids == device.version_ids and console_url == device.console_url:
            return
        device.version_ids, device.console_url = version_ids, console_url
        if device.created[Platform.SENSOR] or device.created[Platform.BINARY_SENSOR]:
            dr.async_get(self.hass).async_get_or_create(
                config_entry_id=self.entry.entry_id, **device.device_info()
            )


def end_device_diagnostics(manager: EndDeviceManager) -> dict[str, Any]:
    """What the manager receives and knows, for the diagnostics download."""
    counters = manager.counters
    return {
        "enabled": manager.enabled,
        "topic": manager.topic,
        "receiving": manager.receiving,
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
            "ignored": counters.ignored,
            "dropped": counters.dropped,
            "undecodable": counters.undecodable,
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
                    reading_key: reading.value
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
