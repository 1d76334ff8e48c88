"""The merged state of every monitored gateway: where poll and push meet.

The coordinator feeds the store each poll, the events stream each event; the
entities, the silence monitor and the streams subscribe to what they need:
one gateway's changes, the set of gateways, or the health of the sources.
Neither source touches the other. How one gateway's connection is merged is
the business of `gateway_connection`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from homeassistant.core import CALLBACK_TYPE, callback

from .const import LOGGER
from .gateway_connection import ConnectionTracker, merge_poll
from .tts import ConnectionState, Gateway, GatewayConnection, StreamEvent

type Listener = Callable[[], None]


@dataclass(frozen=True, slots=True)
class GatewayData:
    """A monitored gateway and its merged connection state."""

    gateway: Gateway
    connection: GatewayConnection


@dataclass(slots=True)
class _Tracked:
    """A gateway and what the store remembers of it."""

    gateway: Gateway
    tracker: ConnectionTracker
    # Sequence number of the last connect or disconnect applied by push.
    pushed_seq: int = 0
    # False while the gateway is missing from the listing (pending removal).
    listed: bool = True
    # The last `data`: every entity of the gateway reads it on each change.
    _data: GatewayData | None = field(default=None, repr=False, compare=False)

    @property
    def data(self) -> GatewayData:
        data, connection = self._data, self.tracker.connection
        if (
            data is None
            or data.gateway is not self.gateway
            or (data.connection is not connection)
        ):
            data = self._data = GatewayData(self.gateway, connection)
        return data


class GatewayStore:
    """Owns the merged state of the monitored gateways of one config entry."""

    def __init__(self) -> None:
        """Start empty; the first poll fills the store."""
        self._gateways: dict[str, _Tracked] = {}
        # Counts pushed connection-state changes, to tell which polls were
        # in flight when one arrived.
        self._seq = 0
        self._gateway_listeners: dict[str, list[Listener]] = {}
        self._set_listeners: list[Listener] = []
        self._health_listeners: list[Listener] = []
        self.poll_ok = False
        self.push_healthy = False

    # --- reading -----------------------------------------------------------

    @property
    def gateway_ids(self) -> frozenset[str]:
        """The monitored gateways."""
        return frozenset(self._gateways)

    def get(self, gateway_id: str) -> GatewayData | None:
        """A gateway's merged data; None when it is not monitored."""
        tracked = self._gateways.get(gateway_id)
        return None if tracked is None else tracked.data

    def snapshot(self) -> dict[str, GatewayData]:
        """Every monitored gateway's data."""
        return {
            gateway_id: tracked.data for gateway_id, tracked in self._gateways.items()
        }

    def is_listed(self, gateway_id: str) -> bool:
        """False while the gateway is missing from the listing."""
        tracked = self._gateways.get(gateway_id)
        return tracked is not None and tracked.listed

    @property
    def fresh(self) -> bool:
        """Whether some source is delivering: the last poll or the stream."""
        return self.poll_ok or self.push_healthy

    def available(self, gateway_id: str) -> bool:
        """Whether the gateway's state can be trusted now."""
        tracked = self._gateways.get(gateway_id)
        return (
            tracked is not None
            and tracked.listed
            and self.fresh
            and tracked.data.connection.state is not ConnectionState.NO_RIGHTS
        )

    # --- feeding -------------------------------------------------------------

    def begin_poll(self) -> int:
        """Mark the start of a poll; pass the result to `async_apply_poll`."""
        return self._seq

    @callback
    def async_apply_poll(
        self,
        started: int,
        polled: Mapping[str, GatewayData],
        unlisted: Iterable[str] = (),
    ) -> None:
        """Merge a poll's result; gateways neither polled nor unlisted are dropped.

        ``unlisted`` gateways keep their last state, marked as not listed,
        until the coordinator decides they are gone.
        """
        changed: list[str] = []
        unlisted = set(unlisted)
        gone = [
            gateway_id
            for gateway_id in self._gateways
            if gateway_id not in polled and gateway_id not in unlisted
        ]
        for gateway_id in gone:
            del self._gateways[gateway_id]
        added = False
        for gateway_id in unlisted:
            if (tracked := self._gateways.get(gateway_id)) is not None and (
                tracked.listed
            ):
                tracked.listed = False
                changed.append(gateway_id)
        for gateway_id, data in polled.items():
            tracked = self._gateways.get(gateway_id)
            if tracked is None:
                self._gateways[gateway_id] = _Tracked(
                    data.gateway, ConnectionTracker(data.connection)
                )
                added = True
                continue
            before = tracked.data
            merge_poll(
                tracked.tracker,
                data.connection,
                pushed_during_poll=tracked.pushed_seq > started,
            )
            tracked.gateway = data.gateway
            if tracked.data != before or not tracked.listed:
                tracked.listed = True
                changed.append(gateway_id)
        if gone or added:
            self._notify(self._set_listeners)
        for gateway_id in changed:
            self._notify_gateway(gateway_id)

    @callback
    def async_apply_event(self, event: StreamEvent) -> list[str]:
        """Apply a pushed event; return the gateways it changed."""
        changed: list[str] = []
        for gateway_id in event.gateway_ids:
            if (tracked := self._gateways.get(gateway_id)) is None:
                continue
            before = tracked.tracker.connection
            before_since = tracked.tracker.connected_at
            if not tracked.tracker.apply_event(event):
                continue
            after = tracked.tracker.connection
            if (
                after.state is not before.state
                or tracked.tracker.connected_at != before_since
            ):
                self._seq += 1
                tracked.pushed_seq = self._seq
            changed.append(gateway_id)
        for gateway_id in changed:
            self._notify_gateway(gateway_id)
        return changed

    @callback
    def async_set_poll_ok(self, ok: bool) -> None:
        """Record whether the last poll succeeded."""
        if ok != self.poll_ok:
            self._set_health(poll_ok=ok, push_healthy=self.push_healthy)

    @callback
    def async_set_push_healthy(self, healthy: bool) -> None:
        """Record whether every events stream is open and delivering."""
        if healthy != self.push_healthy:
            self._set_health(poll_ok=self.poll_ok, push_healthy=healthy)

    def _set_health(self, *, poll_ok: bool, push_healthy: bool) -> None:
        was_fresh = self.fresh
        self.poll_ok, self.push_healthy = poll_ok, push_healthy
        self._notify(self._health_listeners)
        if self.fresh != was_fresh:
            # Availability of every gateway follows.
            for gateway_id in list(self._gateways):
                self._notify_gateway(gateway_id)

    # --- subscribing -------------------------------------------------------

    @callback
    def async_subscribe_gateway(
        self, gateway_id: str, listener: Listener
    ) -> CALLBACK_TYPE:
        """Call ``listener`` when one gateway's data or availability changes."""
        return _subscribe(self._gateway_listeners.setdefault(gateway_id, []), listener)

    @callback
    def async_subscribe_gateway_set(self, listener: Listener) -> CALLBACK_TYPE:
        """Call ``listener`` when gateways are added or removed."""
        return _subscribe(self._set_listeners, listener)

    @callback
    def async_subscribe_health(self, listener: Listener) -> CALLBACK_TYPE:
        """Call ``listener`` when the poll or the push health changes."""
        return _subscribe(self._health_listeners, listener)

    def _notify_gateway(self, gateway_id: str) -> None:
        if listeners := self._gateway_listeners.get(gateway_id):
            self._notify(listeners)

    @staticmethod
    def _notify(listeners: list[Listener]) -> None:
        for listener in list(listeners):
            try:
                listener()
            except Exception:  # noqa: BLE001
                # One broken listener must not keep the others stale.
                LOGGER.exception("Error in a gateway state listener")


def _subscribe(listeners: list[Listener], listener: Listener) -> CALLBACK_TYPE:
    listeners.append(listener)

    @callback
    def unsubscribe() -> None:
        listeners.remove(listener)

    return unsubscribe
