"""Gateway silence: disconnected, or connected but deaf for too long.

A gateway is silent when it is not connected, or when it is connected but has
received no uplink for longer than its threshold (counted from the connection
when it has had none since). Basic Station gateways send no periodic status,
so status messages are not a sign of life here.

The monitor keeps each gateway's state, fires the transitions to the event
entities, and sets a timer for the moment a quiet gateway turns silent, so
the state flips on time between polls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .const import CONF_SILENCE_THRESHOLD, DEFAULT_SILENCE_THRESHOLD
from .tts import ConnectionState

if TYPE_CHECKING:
    from .coordinator import GatewayData, TTSCoordinator


class SilenceReason(StrEnum):
    """Why a gateway is silent."""

    DISCONNECTED = "disconnected"
    NO_UPLINK = "no_uplink"


class GatewayEventType(StrEnum):
    """What the event entity of a gateway reports."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    SILENT = "silent"
    RECOVERED = "recovered"


type GatewayEventListener = Callable[[GatewayEventType, dict[str, str]], None]


@dataclass(frozen=True, slots=True)
class _GatewayState:
    connected: bool
    reason: SilenceReason | None


class SilenceMonitor:
    """Tracks the silence of every monitored gateway of one config entry."""

    def __init__(self, hass: HomeAssistant, coordinator: TTSCoordinator) -> None:
        """Read the default threshold from the entry's options."""
        self._hass = hass
        self._coordinator = coordinator
        self.default_threshold = timedelta(
            minutes=coordinator.config_entry.options.get(
                CONF_SILENCE_THRESHOLD, DEFAULT_SILENCE_THRESHOLD
            )
        )
        self._overrides: dict[str, timedelta] = {}
        self._states: dict[str, _GatewayState] = {}
        self._timers: dict[str, tuple[datetime, CALLBACK_TYPE]] = {}
        self._listeners: dict[str, list[GatewayEventListener]] = {}
        self._started = False

    def threshold(self, gateway_id: str) -> timedelta:
        """How long the gateway may go without an uplink."""
        return self._overrides.get(gateway_id, self.default_threshold)

    def override(self, gateway_id: str) -> timedelta | None:
        """The gateway's own threshold, None while it follows the default."""
        return self._overrides.get(gateway_id)

    def reason(self, gateway_id: str) -> SilenceReason | None:
        """Why the gateway is silent; None when it is not (or not known)."""
        state = self._states.get(gateway_id)
        return None if state is None else state.reason

    def is_silent(self, gateway_id: str) -> bool | None:
        """Whether the gateway is silent; None when not known."""
        state = self._states.get(gateway_id)
        return None if state is None else state.reason is not None

    @callback
    def async_set_override(self, gateway_id: str, threshold: timedelta | None) -> None:
        """Give a gateway its own threshold (None: follow the default)."""
        if threshold is None:
            self._overrides.pop(gateway_id, None)
        else:
            self._overrides[gateway_id] = threshold
        if self._started:
            self._coordinator.async_update_listeners()

    @callback
    def async_subscribe(
        self, gateway_id: str, listener: GatewayEventListener
    ) -> CALLBACK_TYPE:
        """Call listener with each event of a gateway; returns the unsubscribe."""
        listeners = self._listeners.setdefault(gateway_id, [])
        listeners.append(listener)

        @callback
        def unsubscribe() -> None:
            listeners.remove(listener)

        return unsubscribe

    @callback
    def async_attach(self) -> CALLBACK_TYPE:
        """Listen to the coordinator ahead of the entities; returns the detach.

        Nothing is evaluated until async_start, so that the thresholds that
        entities restore count from the first evaluation on.
        """
        remove_listener = self._coordinator.async_add_listener(self._async_evaluate)

        @callback
        def detach() -> None:
            remove_listener()
            for _, cancel in self._timers.values():
                cancel()
            self._timers.clear()

        return detach

    @callback
    def async_start(self) -> None:
        """Take every gateway's current state, without firing events."""
        self._started = True
        self._coordinator.async_update_listeners()

    def _silence(
        self, gateway_id: str, data: GatewayData, now: datetime
    ) -> tuple[SilenceReason | None, datetime | None]:
        """The gateway's silence now, and when it turns silent if it is quiet."""
        stats = data.connection.stats
        if data.connection.state is not ConnectionState.CONNECTED or stats is None:
            return SilenceReason.DISCONNECTED, None
        heard = [
            moment
            for moment in (stats.last_uplink_received_at, stats.connected_at)
            if moment is not None
        ]
        deaf_at = max(heard, default=now) + self.threshold(gateway_id)
        if now >= deaf_at:
            return SilenceReason.NO_UPLINK, None
        return None, deaf_at

    @callback
    def _async_evaluate(self) -> None:
        # Without a successful poll the data may be stale: keep the states
        # (the entities are unavailable) and fire nothing until it returns.
        if not self._started or not self._coordinator.last_update_success:
            return
        now = dt_util.utcnow()
        data = self._coordinator.data
        for gateway_id in [item for item in self._states if item not in data]:
            self._forget(gateway_id)
        for gateway_id, gateway in data.items():
            if gateway.connection.state is ConnectionState.NO_RIGHTS:
                self._forget(gateway_id)
                continue
            reason, turns_silent_at = self._silence(gateway_id, gateway, now)
            self._schedule(gateway_id, turns_silent_at)
            state = _GatewayState(
                connected=gateway.connection.state is ConnectionState.CONNECTED,
                reason=reason,
            )
            before = self._states.get(gateway_id)
            self._states[gateway_id] = state
            if before is None:
                continue
            if state.connected != before.connected:
                self._fire(
                    gateway_id,
                    GatewayEventType.CONNECTED
                    if state.connected
                    else GatewayEventType.DISCONNECTED,
                    {},
                )
            if reason is not None and before.reason is None:
                self._fire(gateway_id, GatewayEventType.SILENT, {"reason": reason})
            elif reason is None and before.reason is not None:
                self._fire(gateway_id, GatewayEventType.RECOVERED, {})

    def _forget(self, gateway_id: str) -> None:
        self._states.pop(gateway_id, None)
        self._schedule(gateway_id, None)

    def _schedule(self, gateway_id: str, when: datetime | None) -> None:
        """Set the gateway's timer for when (none: no timer)."""
        current = self._timers.get(gateway_id)
        if current is not None and current[0] == when:
            return
        if current is not None:
            current[1]()
            del self._timers[gateway_id]
        if when is None:
            return

        @callback
        def turn_silent(_now: datetime) -> None:
            self._timers.pop(gateway_id, None)
            self._coordinator.async_update_listeners()

        self._timers[gateway_id] = (
            when,
            async_track_point_in_utc_time(self._hass, turn_silent, when),
        )

    def _fire(
        self, gateway_id: str, event_type: GatewayEventType, data: dict[str, str]
    ) -> None:
        for listener in list(self._listeners.get(gateway_id, ())):
            listener(event_type, data)
