"""Keyed point-in-time timers: at most one pending timer per key.

Silence timers of gateways and end devices use this one mechanism: scheduling
a key again replaces its earlier timer, and everything is cancelled at once
when the owner goes away.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time


class KeyedTimers[K: Hashable]:
    """Point-in-time timers by key; all methods run in the event loop."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Start with no timers."""
        self._hass = hass
        self._cancels: dict[K, CALLBACK_TYPE] = {}
        # What each pending timer does when: the same again keeps it.
        self._pending: dict[K, tuple[datetime, Callable[[datetime], None]]] = {}

    def __contains__(self, key: object) -> bool:
        """Whether a timer is pending for the key."""
        return key in self._cancels

    def __len__(self) -> int:
        """How many timers are pending."""
        return len(self._cancels)

    @callback
    def schedule(
        self, key: K, when: datetime, action: Callable[[datetime], None]
    ) -> None:
        """Call action(now) at when; replaces the key's pending timer."""
        if key in self._cancels and self._pending[key] == (when, action):
            return
        self.cancel(key)

        @callback
        def fire(now: datetime) -> None:
            self._cancels.pop(key, None)
            self._pending.pop(key, None)
            action(now)

        self._cancels[key] = async_track_point_in_utc_time(self._hass, fire, when)
        self._pending[key] = (when, action)

    @callback
    def schedule_by(
        self, key: K, when: datetime, action: Callable[[datetime], None]
    ) -> None:
        """Call action(now) at when or before: an earlier pending timer stays.

        For an action that checks the time and schedules again: a moment
        that moves later with every uplink costs no new timer each time.
        """
        if key in self._cancels:
            pending_when, pending_action = self._pending[key]
            if pending_action == action and pending_when <= when:
                return
        self.schedule(key, when, action)

    @callback
    def cancel(self, key: K) -> None:
        """Cancel the key's pending timer, if any."""
        if (cancel := self._cancels.pop(key, None)) is not None:
            del self._pending[key]
            cancel()

    @callback
    def cancel_all(self) -> None:
        """Cancel every pending timer."""
        cancels, self._cancels = self._cancels, {}
        self._pending.clear()
        for cancel in cancels.values():
            cancel()
