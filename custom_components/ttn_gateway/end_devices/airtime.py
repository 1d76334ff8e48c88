"""Uplink airtime and downlinks of each end device today (UTC), for fair use.

The Things Network's Fair Use Policy allows each device 30 seconds of uplink
airtime and 10 downlinks per 24 hours
(https://www.thethingsnetwork.org/docs/lorawan/duty-cycle/; the forum's
"Fair Use Policy explained", t/1300). The figures count per UTC day (from
00:00 UTC, not a sliding 24 hours: a day one can name, and no per-uplink
history to keep), so they reset at UTC midnight; an uplink or downlink of an
earlier day that arrives late does not count towards today. Downlinks are the
``down/sent`` events TTS reports to the application.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from .state import DeviceKey

# The Fair Use Policy's daily limits per device.
FAIR_USE_AIRTIME_SECONDS = 30.0
FAIR_USE_DOWNLINKS = 10
# Downlinks remembered per device to count one delivered twice only once.
_SEEN_DOWNLINKS = 32

type FairUseListener = Callable[[], None]
# What makes a sent downlink the same as another: frame counter and time.
type DownlinkFingerprint = tuple[int | None, datetime | None]


@dataclass
class DeviceDay:
    """What one device used on one UTC day."""

    day: date
    airtime: float = 0.0
    downlinks: int = 0
    seen: deque[DownlinkFingerprint] = field(
        default_factory=lambda: deque(maxlen=_SEEN_DOWNLINKS)
    )
    # Whether what was saved before a restart was taken back (once).
    restored: bool = False


class FairUse:
    """Per device: uplink airtime and downlinks sent on the current UTC day."""

    def __init__(self) -> None:
        """Start empty."""
        self._days: dict[DeviceKey, DeviceDay] = {}
        self._listeners: dict[DeviceKey, list[FairUseListener]] = {}

    def follow(
        self, device: DeviceKey, listener: FairUseListener
    ) -> Callable[[], None]:
        """Call listener when the device's figures change; returns the undo."""
        self._listeners.setdefault(device, []).append(listener)

        def unfollow() -> None:
            found = self._listeners.get(device, [])
            if listener in found:
                found.remove(listener)
            if not found:
                self._listeners.pop(device, None)

        return unfollow

    def _today(self, device: DeviceKey, day: date) -> DeviceDay | None:
        """The device's figures of day; None for a day before the current one."""
        current = self._days.get(device)
        if current is not None and current.day > day:
            return None
        if current is None or current.day < day:
            current = self._days[device] = DeviceDay(day)
        return current

    def _notify(self, device: DeviceKey) -> None:
        for listener in list(self._listeners.get(device, ())):
            listener()

    def add_uplink(
        self, device: DeviceKey, airtime: float | None, at: datetime
    ) -> None:
        """An uplink of the device used airtime (seconds) at a UTC moment."""
        if airtime is None or airtime <= 0:
            return
        if (today := self._today(device, at.date())) is None:
            return
        today.airtime += airtime
        self._notify(device)

    def add_downlink(
        self, device: DeviceKey, fingerprint: DownlinkFingerprint, at: datetime
    ) -> None:
        """TTS sent a downlink to the device (a repeat of one counted is not)."""
        if (today := self._today(device, at.date())) is None or (
            fingerprint in today.seen
        ):
            return
        today.seen.append(fingerprint)
        today.downlinks += 1
        self._notify(device)

    def restore(
        self, device: DeviceKey, day: date, *, airtime: float = 0.0, downlinks: int = 0
    ) -> None:
        """Take back the figures saved before a restart, adding to what came since.

        Only the first restore of a day counts: several entities save them.
        """
        if (today := self._today(device, day)) is None or today.restored:
            return
        today.restored = True
        today.airtime += max(0.0, airtime)
        today.downlinks += max(0, downlinks)
        self._notify(device)

    def airtime(self, device: DeviceKey, day: date) -> float:
        """Seconds of uplink airtime the device used on day."""
        current = self._days.get(device)
        return current.airtime if current is not None and current.day == day else 0.0

    def downlinks(self, device: DeviceKey, day: date) -> int:
        """Downlinks TTS sent to the device on day."""
        current = self._days.get(device)
        return current.downlinks if current is not None and current.day == day else 0

    def exceeded(self, device: DeviceKey, day: date) -> bool:
        """Whether the device used more than the Fair Use Policy allows on day."""
        return (
            self.airtime(device, day) > FAIR_USE_AIRTIME_SECONDS
            or self.downlinks(device, day) > FAIR_USE_DOWNLINKS
        )
