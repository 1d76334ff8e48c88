"""Message intake: validation, caps, de-duplication and decoder dispatch.

``Intake.take`` turns one MQTT message, an uplink or a downlink event, into
a device update, or drops it and counts why. It runs no Home Assistant
machinery (the manager does that with what it returns), so it can be fuzzed
directly. Whatever the message, what it can create is bounded: a message is
at most 64 KiB, the topic's application and device IDs must be the
message's own, the application must be allowed and arrive from the source
its sub-entry chose, at most ``max_devices`` devices and 64 entities per
device are created, and every string that reaches a registry is cut to a
sane length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from homeassistant.const import Platform
from homeassistant.util.json import json_loads

from ..const import LOGGER
from ..decoders import BATTERY_PERCENT, DecodeError, Decoder, Readings, decode_uplink
from ..tts import (
    DownlinkStatus,
    Uplink,
    UplinkError,
    parse_application_up,
    parse_downlink_event,
)
from .airtime import FairUse
from .coverage import CoverageIndex
from .downlinks import track_downlink_event
from .heard import HeardIndex
from .registry import (
    BATTERY_KEY,
    DECODER_KEY,
    LAST_DOWNLINK_KEY,
    LOCATION_KEY,
    device_key_text,
)
from .state import DeviceKey, EndDevice

# An ApplicationUp is a few kB; anything larger is not a TTS uplink.
MAX_MESSAGE_BYTES = 64 * 1024
# Entities of one device, radio figures and Silent sensor included.
MAX_ENTITIES_PER_DEVICE = 64
# Decoders that read TTS's formatter output.
_FORMATTER_DECODERS = (Decoder.NORMALIZED, Decoder.PAYLOAD_FORMATTER)


class Cap(StrEnum):
    """The limits whose excess is reported in a repair issue."""

    DEVICES = "devices"
    ENTITIES = "entities"


@dataclass
class MessageCounters:
    """What happened to the messages received (shown in diagnostics)."""

    received: int = 0
    uplinks: int = 0
    repeats: int = 0
    older: int = 0
    ignored: int = 0
    dropped: int = 0
    undecodable: int = 0
    over_device_cap: int = 0
    over_entity_cap: int = 0
    drop_reasons: Counter[str] = field(default_factory=Counter)
    # (sub-entry ID, application ID): messages of an application that
    # arrived from a source other than the one its sub-entry chose.
    other_source: Counter[tuple[str, str]] = field(default_factory=Counter)


# <app>[@tenant]/devices/<device>/up: the last levels of an uplink topic;
# …/down/<event> has one level more.
_TOPIC_LEVELS = 4


def topic_ids(topic: str) -> DeviceKey | None:
    """(application ID, device ID) of ``…/v3/<app>[@tenant]/devices/<dev>/up``."""
    levels = topic.rsplit("/", _TOPIC_LEVELS)[-_TOPIC_LEVELS:]
    if len(levels) != _TOPIC_LEVELS or levels[1] != "devices" or levels[3] != "up":
        return None
    return levels[0].split("@", 1)[0], levels[2]


def downlink_event_topic_ids(topic: str) -> DeviceKey | None:
    """(application ID, device ID) of ``…/<app>[@tenant]/devices/<dev>/down/<event>``.

    The events are TTS's ``down/queued``, ``sent``, ``ack``, ``nack``,
    ``failed`` and ``invalidated`` (``pkg/applicationserver/io/mqtt/topics/v3.go``);
    ``push`` and ``replace`` are what applications publish, not events.
    """
    levels = topic.rsplit("/", _TOPIC_LEVELS + 1)[-_TOPIC_LEVELS - 1 :]
    if (
        len(levels) != _TOPIC_LEVELS + 1
        or levels[1] != "devices"
        or levels[3] != "down"
        or levels[4] in ("push", "replace")
    ):
        return None
    return levels[0].split("@", 1)[0], levels[2]


@dataclass(frozen=True)
class IntakeSettings:
    """The options the intake applies."""

    max_devices: int
    # Application IDs whose uplinks are taken; empty for all.
    applications: frozenset[str] = frozenset()
    decoders: Mapping[str, Decoder] = field(default_factory=dict)
    # The source (sub-entry ID) an application's messages must come from;
    # None: any source.
    source_of: Callable[[str], str | None] | None = None


class Intake:
    """Takes the uplinks of one config entry's end devices."""

    def __init__(
        self,
        settings: IntakeSettings,
        devices: dict[DeviceKey, EndDevice],
        new_device: Callable[[DeviceKey], EndDevice],
        # The Console's base URL for an application and the cluster that
        # served an uplink.
        console_base: Callable[[str, str | None], str],
        make_room: Callable[[], bool] = lambda: False,
    ) -> None:
        """Take uplinks into devices; new_device makes (and stores) a device.

        At the device cap, make_room may free a place (True) for a device
        that sends.
        """
        self.settings = settings
        self.devices = devices
        self._new_device = new_device
        self._make_room = make_room
        self._console_base = console_base
        self.counters = MessageCounters()
        self.heard = HeardIndex()
        self.coverage = CoverageIndex()
        self.fair_use = FairUse()
        # Caps exceeded since the last call of take_cap_hits.
        self._cap_hits: set[Cap] = set()

    def take_cap_hits(self) -> Collection[Cap]:
        """The caps exceeded since the last call (each once until then)."""
        hits, self._cap_hits = self._cap_hits, set()
        return hits

    @property
    def has_cap_hits(self) -> bool:
        """Whether a cap was exceeded since the last take_cap_hits."""
        return bool(self._cap_hits)

    def _drop(self, topic: str, reason: str) -> None:
        self.counters.dropped += 1
        self.counters.drop_reasons[reason.split(":", 1)[0]] += 1
        LOGGER.debug("Dropped the message on %.200s: %s", topic, reason)

    def _admit(
        self, topic: str, payload: bytes | str, source: str | None
    ) -> tuple[DeviceKey, bool, object] | None:
        """The checks every message passes: (topic's device, is an event, JSON)."""
        self.counters.received += 1
        if len(payload) > MAX_MESSAGE_BYTES:
            self._drop(topic, f"message larger than {MAX_MESSAGE_BYTES} bytes")
            return None
        is_event = False
        if (topic_key := topic_ids(topic)) is None:
            topic_key = downlink_event_topic_ids(topic)
            is_event = True
        if topic_key is None:
            self._drop(topic, "not an uplink topic (…/devices/<device-id>/up)")
            return None
        applications = self.settings.applications
        if applications and topic_key[0] not in applications:
            self._drop(topic, "application not set up")
            return None
        source_of = self.settings.source_of
        if (
            source is not None
            and source_of is not None
            and source_of(topic_key[0]) != source
        ):
            self.counters.other_source[source, topic_key[0]] += 1
            self._drop(topic, "application taken from another source")
            return None
        try:
            return topic_key, is_event, json_loads(payload)
        except ValueError as err:
            self._drop(topic, f"not JSON: {err}")
            return None

    def take(
        self,
        topic: str,
        payload: bytes | str,
        now: datetime,
        source: str | None = None,
    ) -> EndDevice | None:
        """Take one MQTT message from a source; the device it updated, or None.

        The device's ``info_changed`` says whether its registry entry needs
        an update.
        """
        if (admitted := self._admit(topic, payload, source)) is None:
            return None
        topic_key, is_event, data = admitted
        if is_event:
            return self._take_downlink_event(topic, topic_key, data, now)
        try:
            uplink = parse_application_up(data)
        except UplinkError as err:
            self._drop(topic, str(err))
            return None
        if uplink is None:
            self.counters.ignored += 1
            return None
        if (uplink.ids.application_id, uplink.ids.device_id) != topic_key:
            self._drop(topic, "topic and end_device_ids name different devices")
            return None
        return self.take_uplink(uplink, now, topic)

    def take_uplink(
        self, uplink: Uplink, now: datetime, origin: str
    ) -> EndDevice | None:
        """Take a parsed uplink (live, or fetched from TTS's storage).

        Repeats and uplinks older than the device's newest are counted and
        left out; ``origin`` names where it came from in the log.
        """
        key = (uplink.ids.application_id, uplink.ids.device_id)
        if (device := self.devices.get(key)) is None:
            if len(self.devices) >= self.settings.max_devices and not self._make_room():
                self.counters.over_device_cap += 1
                self._cap_hits.add(Cap.DEVICES)
                self._drop(origin, "over the end-device cap")
                return None
            device = self._new_device(key)
            LOGGER.debug("New end device %s", device_key_text(key))
        elif device.is_repeat(uplink):
            self.counters.repeats += 1
            return None
        elif device.is_older(uplink, now):
            self.counters.older += 1
            # Late, yet it was sent: it used airtime and proves coverage.
            self._account(device, uplink, now)
            return None
        self.counters.uplinks += 1
        self._apply(device, uplink, now)
        return device

    def _take_downlink_event(
        self, topic: str, topic_key: DeviceKey, data: object, now: datetime
    ) -> EndDevice | None:
        """A downlink was queued, sent, acknowledged, failed or invalidated."""
        try:
            event = parse_downlink_event(data)
        except UplinkError as err:
            self._drop(topic, f"downlink event: {err}")
            return None
        if event is None:
            self.counters.ignored += 1
            return None
        if (event.application_id, event.device_id) != topic_key:
            self._drop(topic, "topic and end_device_ids name different devices")
            return None
        if (device := self.devices.get(topic_key)) is None:
            # Downlink events create no devices.
            self.counters.ignored += 1
            return None
        if event.status is DownlinkStatus.SENT:
            # Counted before the newest-wins check: a late "sent" was sent.
            self.fair_use.add_downlink(
                device.key,
                (event.f_cnt, event.received_at),
                min(event.received_at or now, now),
            )
        if not track_downlink_event(device, event):
            self.counters.older += 1
            return None
        if device.listeners:
            self._want(device, Platform.SENSOR, LAST_DOWNLINK_KEY)
        return device

    def _decode(self, device: EndDevice, uplink: Uplink) -> Readings:
        """The uplink's readings; the previous ones when its formatter failed."""
        device.warnings = uplink.warnings
        device.formatter_failed = (
            device.decoder_used in _FORMATTER_DECODERS
            and device.decoder in (Decoder.AUTO, *_FORMATTER_DECODERS)
            and bool(uplink.frm_payload)
            and uplink.decoded_payload is None
            and uplink.normalized_payload is None
        )
        if device.formatter_failed:
            LOGGER.debug(
                "Uplink %s of %s has no formatter output; keeping its readings",
                uplink.f_cnt,
                device_key_text(device.key),
            )
            return dict(device.readings)
        try:
            decoded = decode_uplink(
                device.decoder,
                uplink.f_port,
                uplink.frm_payload,
                uplink.decoded_payload,
                uplink.normalized_payload,
                battery_percent=BATTERY_PERCENT.key
                in device.entity_keys[Platform.SENSOR],
            )
        except DecodeError as err:
            self.counters.undecodable += 1
            LOGGER.debug(
                "Uplink %s of %s does not fit decoder %s: %s",
                uplink.f_cnt,
                device_key_text(device.key),
                device.decoder,
                err,
            )
            device.decoder_used = None
            return {}
        device.decoder_used = decoded.decoder
        return decoded.readings

    def _apply(self, device: EndDevice, uplink: Uplink, now: datetime) -> None:
        readings = self._decode(device, uplink)
        self._want(device, Platform.SENSOR, DECODER_KEY)
        for reading_key in list(readings):
            reading = readings[reading_key]
            platform = (
                Platform.BINARY_SENSOR
                if isinstance(reading.value, bool)
                else Platform.SENSOR
            )
            if reading_key in device.entity_keys[platform]:
                continue
            if device.entity_count >= MAX_ENTITIES_PER_DEVICE:
                self.counters.over_entity_cap += 1
                self._cap_hits.add(Cap.ENTITIES)
                del readings[reading_key]
                continue
            device.entity_keys[platform].add(reading_key)
            if reading.name:
                device.names[reading_key] = reading.name
        device.apply(uplink, readings, now)
        if uplink.last_battery_percentage is not None:
            self._want(device, Platform.SENSOR, BATTERY_KEY)
        if device.location is not None:
            self._want(device, Platform.DEVICE_TRACKER, LOCATION_KEY)
        self.heard.record(uplink, device.key, min(device.received(uplink, now), now))
        self._account(device, uplink, now)
        self._update_info(device, uplink)

    def _account(self, device: EndDevice, uplink: Uplink, now: datetime) -> None:
        """The gateways that heard an uplink, and the airtime it used."""
        when = min(device.received(uplink, now), now)
        self.coverage.record(uplink, device.key, when)
        self.fair_use.add_uplink(device.key, uplink.consumed_airtime, when)

    def _want(self, device: EndDevice, platform: Platform, key: str) -> None:
        """Add an entity the uplink gave a value for, within the entity cap."""
        if key in device.entity_keys[platform]:
            return
        if device.entity_count >= MAX_ENTITIES_PER_DEVICE:
            self.counters.over_entity_cap += 1
            self._cap_hits.add(Cap.ENTITIES)
            return
        device.entity_keys[platform].add(key)

    def _update_info(self, device: EndDevice, uplink: Uplink) -> None:
        """Keep model and Console link as the uplinks tell them."""
        console_url = (
            f"{self._console_base(device.key[0], uplink.cluster_address)}"
            "/console/applications/"
            f"{device.key[0]}/devices/{device.key[1]}"
        )
        version_ids = uplink.version_ids or device.version_ids
        if version_ids == device.version_ids and console_url == device.console_url:
            return
        device.version_ids, device.console_url = version_ids, console_url
        device.info_changed = True
