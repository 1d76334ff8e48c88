"""Device state: what is known of one end device, and how an uplink changes it.

An uplink replaces the readings only when it is not older (by TTS's
``received_at``) than the newest one seen; an uplink whose session, frame
counter and payload were seen lately is a repeat. Timing saved before a
restart is taken back unless an uplink came first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import re
from statistics import median
from typing import Protocol

from homeassistant.const import Platform
from homeassistant.helpers.device_registry import DeviceInfo

from ..const import DOMAIN
from ..decoders import Decoder, Readings
from ..tts import DownlinkEvent, Location, Uplink, VersionIds

# Uplinks remembered per device to recognise a repeat.
DEDUP_WINDOW = 16
# Uplink intervals remembered per device; the median is used.
INTERVAL_WINDOW = 8
# Uplinks closer together than this are not an interval (retries, bursts).
MIN_INTERVAL = timedelta(seconds=1)
# How far ahead of this clock a received_at is believed; later times count
# as this much ahead, so that one message dated in the future cannot hold
# back the real uplinks for longer.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Longest text from a message that reaches the device registry.
MAX_REGISTRY_TEXT = 64
_DEV_EUI = re.compile(r"^[0-9A-Fa-f]{16}$")

# Payload formatter fields that give a position, by what they are.
_FORMATTER_LATITUDE = ("formatter_number_latitude", "formatter_number_lat")
_FORMATTER_LONGITUDE = (
    "formatter_number_longitude",
    "formatter_number_lon",
    "formatter_number_lng",
)
_FORMATTER_ALTITUDE = ("formatter_number_altitude", "formatter_number_alt")
_FORMATTER_ACCURACY = ("formatter_number_accuracy",)
_LPP_LATITUDE = re.compile(r"^lpp_latitude_(\d{1,3})$")

type DeviceKey = tuple[str, str]
# What makes an uplink the same as another: session, frame counter, payload.
type UplinkFingerprint = tuple[str | None, int, bytes]


class EndDeviceListener(Protocol):
    """An entity that follows an end device."""

    def async_handle_device_update(self) -> None:
        """Take the device's latest uplink (or availability) and write if changed."""


def _first(readings: Readings, keys: tuple[str, ...]) -> object:
    return next(
        (found.value for key in keys if (found := readings.get(key)) is not None),
        None,
    )


def reading_location(readings: Readings) -> Location | None:
    """The position among decoded readings, if they give one.

    A Cayenne LPP GPS record, or payload formatter fields latitude/lat with
    longitude/lon/lng (altitude/alt, accuracy optional). The lowest LPP channel wins; a GPS without a fix (0, 0) is no position.
    """
    channels = sorted(
        int(match.group(1))
        for key in readings
        if (match := _LPP_LATITUDE.match(key)) is not None
    )
    for channel in channels:
        lpp = {
            kind: found.value
            for kind in ("latitude", "longitude", "altitude")
            if (found := readings.get(f"lpp_{kind}_{channel}")) is not None
        }
        location = Location.from_values(
            lpp.get("latitude"), lpp.get("longitude"), lpp.get("altitude")
        )
        if location is not None:
            return location
    return Location.from_values(
        _first(readings, _FORMATTER_LATITUDE),
        _first(readings, _FORMATTER_LONGITUDE),
        _first(readings, _FORMATTER_ALTITUDE),
        _first(readings, _FORMATTER_ACCURACY),
    )


def _bounded(text: str | None) -> str | None:
    return None if text is None else text[:MAX_REGISTRY_TEXT]


def _per_platform() -> dict[Platform, set[str]]:
    return {
        Platform.SENSOR: set(),
        Platform.BINARY_SENSOR: set(),
        Platform.DEVICE_TRACKER: set(),
    }


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
    recent: deque[UplinkFingerprint] = field(
        default_factory=lambda: deque(maxlen=DEDUP_WINDOW)
    )
    version_ids: VersionIds | None = None
    console_url: str | None = None
    # The device's name in TTS, from the application's device list.
    tts_name: str | None = None
    # What TTS said last of a downlink to the device.
    last_downlink: DownlinkEvent | None = None
    # The latest position an uplink gave (decoded, else TTS's locations).
    location: Location | None = None
    # The device's entity keys per platform; its entities follow them.
    entity_keys: dict[Platform, set[str]] = field(
        default_factory=lambda: _per_platform()
    )
    # Readable names of payload formatter fields, by reading key.
    names: dict[str, str] = field(default_factory=dict)
    # The decoder that made the readings, and what the formatter said of them.
    decoder_used: Decoder | None = None
    warnings: tuple[str, ...] = ()
    # The latest uplink had no formatter output where earlier ones had: the
    # formatter failed (TTS forwards the uplink undecoded) and the readings
    # are the previous ones.
    formatter_failed: bool = False
    listeners: list[EndDeviceListener] = field(default_factory=list)
    # entity_count when the platforms were last told of the device's entities;
    # -1 until they are, and again once one of its entities is removed.
    announced: int = -1
    # The registry entry needs an update (model or Console link changed).
    info_changed: bool = False

    @property
    def name(self) -> str:
        """The device's name in Home Assistant: its TTS name, else its ID."""
        return self.tts_name or self.key[1]

    @property
    def entity_count(self) -> int:
        """How many entities the device has or will have."""
        return sum(len(keys) for keys in self.entity_keys.values())

    @property
    def uplink_interval(self) -> float | None:
        """Median seconds between the device's recent uplinks."""
        return median(self.intervals) if self.intervals else None

    @staticmethod
    def fingerprint(uplink: Uplink) -> UplinkFingerprint:
        """Session (DevAddr), frame counter and payload of an uplink."""
        return (uplink.ids.dev_addr, uplink.f_cnt, uplink.frm_payload)

    def is_repeat(self, uplink: Uplink) -> bool:
        """Whether this uplink (same session, counter and payload) was seen lately."""
        return not uplink.simulated and self.fingerprint(uplink) in self.recent

    @staticmethod
    def received(uplink: Uplink, now: datetime) -> datetime:
        """When TTS received the uplink, at most MAX_CLOCK_SKEW after now."""
        if uplink.received_at is None:
            return now
        return min(uplink.received_at, now + MAX_CLOCK_SKEW)

    def is_older(self, uplink: Uplink, now: datetime) -> bool:
        """Whether TTS received this uplink before the newest one seen."""
        return self.last_seen is not None and self.received(uplink, now) < (
            self.last_seen
        )

    def apply(self, uplink: Uplink, readings: Readings, now: datetime) -> None:
        """Take a new uplink (not older than the newest one seen)."""
        seen = self.received(uplink, now)
        if self.last_seen is not None:
            interval = seen - self.last_seen
            if interval >= MIN_INTERVAL:
                self.intervals.append(interval.total_seconds())
        if self.last_seen is None or seen > self.last_seen:
            self.last_seen = seen
        if not uplink.simulated:
            self.recent.append(self.fingerprint(uplink))
        self.uplink = uplink
        self.readings = readings
        if (location := reading_location(readings) or uplink.location) is not None:
            self.location = location

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
            info["manufacturer"] = _bounded(versions.brand_id)
            info["model"] = _bounded(versions.model_id)
            info["hw_version"] = _bounded(versions.hardware_version)
            info["sw_version"] = _bounded(versions.firmware_version)
        if (
            self.uplink is not None
            and (dev_eui := self.uplink.ids.dev_eui)
            and _DEV_EUI.match(dev_eui)
        ):
            info["serial_number"] = dev_eui.upper()
        if self.console_url:
            info["configuration_url"] = self.console_url
        return info
