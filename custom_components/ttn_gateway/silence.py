"""Gateway silence: disconnected, or connected but deaf for too long.

A gateway is silent when it is not connected, or when it is connected but has
received no uplink for longer than its threshold (counted from the connection
when it has had none since). Basic Station gateways send no periodic status,
so status messages are not a sign of life here.

The monitor subscribes to each watched gateway in the store, keeps its
state, fires the transitions to the event entities, and owns a timer per
quiet gateway for the moment it turns silent, so the state flips on time
between polls and events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.util import dt as dt_util

from .store import GatewayData, GatewayStore
from .timers import KeyedTimers
from .tts import ConnectionState


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

    def __init__(
        self, hass: HomeAssistant, store: GatewayStore, default_threshold: timedelta
    ) -> None:
        """Watch the store's gateways with a default threshold."""
        self._hass = hass
        self._store = store
        self.default_threshold = default_threshold
        self._overrides: dict[str, timedelta] = {}
        self._states: dict[str, _GatewayState] = {}
        self._timers: KeyedTimers[str] = KeyedTimers(hass)
        # When each pending timer fires.
        self._due: dict[str, datetime] = {}
        self._event_listeners: dict[str, list[GatewayEventListener]] = {}
        self._state_listeners: dict[str, list[Callable[[], None]]] = {}
        self._watching: dict[str, CALLBACK_TYPE] = {}
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

    @property
    def silent_gateways(self) -> list[str]:
        """The gateways that are silent now."""
        return sorted(
            gateway_id
            for gateway_id, state in self._states.items()
            if state.reason is not None
        )

    @callback
    def async_set_override(self, gateway_id: str, threshold: timedelta | None) -> None:
        """Give a gateway its own threshold (None: follow the default)."""
        if threshold is None:
            self._overrides.pop(gateway_id, None)
        else:
            self._overrides[gateway_id] = threshold
        if self._started:
            self._async_evaluate(gateway_id)
        self._notify_state(gateway_id)

    @callback
    def async_subscribe(
        self, gateway_id: str, listener: GatewayEventListener
    ) -> CALLBACK_TYPE:
        """Call listener with each transition of a gateway; returns the unsubscribe."""
        return _subscribe(self._event_listeners, gateway_id, listener)

    @callback
    def async_subscribe_state(
        self, gateway_id: str, listener: Callable[[], None]
    ) -> CALLBACK_TYPE:
        """Call listener when a gateway's silence or threshold changes."""
        return _subscribe(self._state_listeners, gateway_id, listener)

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Take every gateway's current state, without firing; returns the stop.

        Called after the entities restored their thresholds, so that those
        count from the first evaluation on.
        """
        self._started = True
        remove_set_listener = self._store.async_subscribe_gateway_set(
            self._async_sync_gateways
        )
        self._async_sync_gateways()

        @callback
        def stop() -> None:
            remove_set_listener()
            for unsubscribe in self._watching.values():
                unsubscribe()
            self._watching.clear()
            self._timers.cancel_all()
            self._due.clear()

        return stop

    @callback
    def _async_sync_gateways(self) -> None:
        """Watch new gateways and forget removed ones."""
        current = self._store.gateway_ids
        for gateway_id in [item for item in self._watching if item not in current]:
            self._watching.pop(gateway_id)()
            self._forget(gateway_id)
        for gateway_id in current:
            if gateway_id not in self._watching:
                self._watching[gateway_id] = self._store.async_subscribe_gateway(
                    gateway_id, self._evaluator(gateway_id)
                )
                self._async_evaluate(gateway_id)

    def _evaluator(self, gateway_id: str) -> Callable[[], None]:
        @callback
        def evaluate() -> None:
            self._async_evaluate(gateway_id)

        return evaluate

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
    def _async_evaluate(self, gateway_id: str) -> None:
        data = self._store.get(gateway_id)
        if data is None:
            self._forget(gateway_id)
            return
        if data.connection.state is ConnectionState.NO_RIGHTS:
            self._forget(gateway_id)
            self._notify_state(gateway_id)
            return
        # While no source delivers the data may be stale: keep the state (the
        # entities are unavailable) and fire nothing until it returns.
        if not self._store.available(gateway_id):
            return
        reason, turns_silent_at = self._silence(gateway_id, data, dt_util.utcnow())
        self._schedule(gateway_id, turns_silent_at)
        state = _GatewayState(
            connected=data.connection.state is ConnectionState.CONNECTED,
            reason=reason,
        )
        before = self._states.get(gateway_id)
        if state == before:
            return
        self._states[gateway_id] = state
        self._notify_state(gateway_id)
        if before is None:
            return
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
        """Set the gateway's timer for when (none: no timer).

        A timer due before ``when`` is kept: it re-evaluates and moves on.
        Every uplink of a busy gateway moves the moment, so this spares a
        timer per uplink.
        """
        current = self._due.get(gateway_id)
        if current is not None and when is not None and current <= when:
            return
        if when is None:
            self._due.pop(gateway_id, None)
            self._timers.cancel(gateway_id)
            return

        @callback
        def turn_silent(_now: datetime) -> None:
            self._due.pop(gateway_id, None)
            self._async_evaluate(gateway_id)

        self._due[gateway_id] = when
        self._timers.schedule(gateway_id, when, turn_silent)

    def _fire(
        self, gateway_id: str, event_type: GatewayEventType, data: dict[str, str]
    ) -> None:
        for listener in list(self._event_listeners.get(gateway_id, ())):
            listener(event_type, data)

    def _notify_state(self, gateway_id: str) -> None:
        for listener in list(self._state_listeners.get(gateway_id, ())):
            listener()


def _subscribe[ListenerT](
    registry: dict[str, list[ListenerT]], gateway_id: str, listener: ListenerT
) -> CALLBACK_TYPE:
    listeners = registry.setdefault(gateway_id, [])
    listeners.append(listener)

    @callback
    def unsubscribe() -> None:
        listeners.remove(listener)

    return unsubscribe
