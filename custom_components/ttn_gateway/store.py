"""The merged state of every monitored gateway: where poll and push meet.

The coordinator feeds the store each poll, the events stream each event; the
entities, the silence monitor and the streams subscribe to what they need:
one gateway's changes, the set of gateways, or the health of the sources.
Neither source touches the other. The merge rules (also in the README):

1. A poll is the truth, except that a connect or disconnect that arrived by
   push while the poll was in flight is kept (the poll may predate it),
   unless the poll shows a newer connection.
2. For the same connection (equal ``connected_at``), counters keep the larger
   value and timestamps the newer one, whichever source brought them. A new
   connection starts them afresh.
3. An event older than what is known changes nothing. A disconnect event of
   a connection other than the current one (the ``gs:conn`` correlation id)
   does not turn a connected gateway off: TTS opens a gateway's new
   connection before it closes the superseded one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from homeassistant.core import CALLBACK_TYPE, callback

from .const import LOGGER
from .tts import (
    ConnectionState,
    EventName,
    Gateway,
    GatewayConnection,
    GatewayConnectionStats,
    StreamEvent,
)

type Listener = Callable[[], None]

# Counters and timestamps that never go back within one connection.
_COUNTERS: Final = ("uplink_count", "downlink_count", "tx_acknowledgment_count")
_TIMESTAMPS: Final = (
    "last_uplink_received_at",
    "last_downlink_received_at",
    "last_tx_acknowledgment_received_at",
)


@dataclass(frozen=True, slots=True)
class GatewayData:
    """A monitored gateway and its merged connection state."""

    gateway: Gateway
    connection: GatewayConnection


@dataclass(slots=True)
class _Tracked:
    """A gateway's state and what the merge rules need to remember of it."""

    data: GatewayData
    # The gs:conn id of the connection in `data`, when an event named it.
    connection_id: str | None = None
    # Sequence number of the last connect or disconnect applied by push.
    pushed_seq: int = 0
    # False while the gateway is missing from the listing (pending removal).
    listed: bool = True


def _newer[T: (int, datetime)](first: T | None, second: T | None) -> T | None:
    """The larger of two values, None counting as unknown."""
    if first is None:
        return second
    if second is None:
        return first
    return first if first >= second else second


def merge_same_connection(
    base: GatewayConnectionStats, other: GatewayConnectionStats
) -> GatewayConnectionStats:
    """``base`` with counters and timestamps that never go back from ``other``.

    Both describe the same connection; ``base`` is the source that arrived
    last, and keeps its other fields (round-trip times, sub-bands, protocol).
    """
    changes: dict[str, object] = {}
    for name in (*_COUNTERS, *_TIMESTAMPS):
        mine, theirs = getattr(base, name), getattr(other, name)
        merged = _newer(mine, theirs)
        if merged != mine:
            changes[name] = merged
    if (
        other.last_status is not None
        and other.last_status_received_at is not None
        and (
            base.last_status_received_at is None
            or other.last_status_received_at > base.last_status_received_at
        )
    ):
        changes["last_status"] = other.last_status
        changes["last_status_received_at"] = other.last_status_received_at
    return replace(base, **changes) if changes else base  # type: ignore[arg-type]


def _same_connection(
    first: GatewayConnectionStats | None, second: GatewayConnectionStats | None
) -> bool:
    return (
        first is not None
        and second is not None
        and first.connected_at is not None
        and first.connected_at == second.connected_at
    )


def _connected_at(connection: GatewayConnection) -> datetime | None:
    return None if connection.stats is None else connection.stats.connected_at


def _known_since(stats: GatewayConnectionStats | None) -> datetime | None:
    if stats is None:
        return None
    return stats.connected_at or stats.disconnected_at


def merge_poll(
    known: GatewayConnection, polled: GatewayConnection, *, pushed_during_poll: bool
) -> GatewayConnection:
    """The connection after a poll, by rules 1 and 2."""
    if polled.state is ConnectionState.NO_RIGHTS:
        return polled
    if (
        polled.stats is not None
        and known.stats is not None
        and _same_connection(polled.stats, known.stats)
    ):
        return replace(polled, stats=merge_same_connection(polled.stats, known.stats))
    if pushed_during_poll:
        polled_since = _known_since(polled.stats)
        known_since = _known_since(known.stats)
        if (
            polled_since is None
            or known_since is None
            or polled_since <= known_since
            or polled.state is not ConnectionState.CONNECTED
        ):
            return known
    return polled


def _disconnected(
    tracked: _Tracked, at: datetime, connection_id: str | None
) -> GatewayConnection | None:
    """The connection after a disconnect at ``at``; None when moot."""
    connection = tracked.data.connection
    stats = connection.stats
    if stats is None:
        # Never connected as far as we know: the counters are unknown, not 0.
        return GatewayConnection(
            ConnectionState.DISCONNECTED,
            GatewayConnectionStats(
                disconnected_at=at,
                uplink_count=None,
                downlink_count=None,
                tx_acknowledgment_count=None,
            ),
        )
    if connection.state is ConnectionState.CONNECTED:
        if (
            connection_id is not None
            and tracked.connection_id is not None
            and connection_id != tracked.connection_id
        ):
            return None  # a superseded connection's late disconnect
        if stats.connected_at is not None and at < stats.connected_at:
            return None  # the end of an earlier connection
        return GatewayConnection(
            ConnectionState.DISCONNECTED,
            replace(stats, connected_at=None, disconnected_at=at),
        )
    if stats.disconnected_at is not None and at <= stats.disconnected_at:
        return None  # already known
    return replace(connection, stats=replace(stats, disconnected_at=at))


def _with_stats_event(
    tracked: _Tracked, event: StreamEvent, new: GatewayConnectionStats
) -> GatewayConnection | None:
    connection = tracked.data.connection
    stats = connection.stats
    if new.connected_at is None:
        # TTS sends stats with only disconnected_at when a gateway leaves.
        if new.disconnected_at is None:
            return None
        return _disconnected(tracked, new.disconnected_at, event.connection_id)
    if stats is not None:
        if stats.connected_at is not None:
            if new.connected_at < stats.connected_at:
                return None  # an earlier connection
            if new.connected_at == stats.connected_at:
                if event.name == EventName.GATEWAY_CONNECT:
                    return None  # a repeated connect: it carries no counters
                merged = merge_same_connection(new, stats)
                return None if merged == stats else replace(connection, stats=merged)
        elif (
            stats.disconnected_at is not None
            and new.connected_at <= stats.disconnected_at
        ):
            return None  # a connection that has ended since
    return GatewayConnection.from_stats(new)


def apply_event(tracked: _Tracked, event: StreamEvent) -> GatewayConnection | None:
    """The gateway's connection with an event applied, by rule 3; None if moot."""
    connection = tracked.data.connection
    if connection.state is ConnectionState.NO_RIGHTS:
        return None
    name = event.name
    if event.stats is not None and name in (
        EventName.GATEWAY_CONNECT,
        EventName.GATEWAY_CONNECTION_STATS,
    ):
        return _with_stats_event(tracked, event, event.stats)
    if event.time is None:
        return None
    if name == EventName.GATEWAY_DISCONNECT:
        return _disconnected(tracked, event.time, event.connection_id)
    stats = connection.stats
    if connection.state is not ConnectionState.CONNECTED or stats is None:
        return None
    if (
        event.connection_id is not None
        and tracked.connection_id is not None
        and event.connection_id != tracked.connection_id
    ):
        return None  # traffic of a superseded connection
    if name == EventName.GATEWAY_STATUS and event.status is not None:
        if (
            stats.last_status_received_at is not None
            and event.time <= stats.last_status_received_at
        ):
            return None
        stats = replace(
            stats, last_status=event.status, last_status_received_at=event.time
        )
    elif name == EventName.GATEWAY_UPLINK:
        if (
            stats.last_uplink_received_at is not None
            and event.time <= stats.last_uplink_received_at
        ):
            return None
        stats = replace(stats, last_uplink_received_at=event.time)
    else:
        return None
    return replace(connection, stats=stats)


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
                self._gateways[gateway_id] = _Tracked(data)
                added = True
                continue
            connection = merge_poll(
                tracked.data.connection,
                data.connection,
                pushed_during_poll=tracked.pushed_seq > started,
            )
            if not _same_connection(connection.stats, tracked.data.connection.stats):
                # A connection only a poll has seen: its gs:conn id is unknown.
                tracked.connection_id = None
            updated = GatewayData(gateway=data.gateway, connection=connection)
            if updated != tracked.data or not tracked.listed:
                tracked.data = updated
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
            connection = apply_event(tracked, event)
            before = tracked.data.connection
            result = before if connection is None else connection
            if (
                event.connection_id is not None
                and event.stats is not None
                and event.stats.connected_at is not None
                and result.stats is not None
                and result.stats.connected_at == event.stats.connected_at
            ):
                # The event describes the current connection: remember its id.
                tracked.connection_id = event.connection_id
            if connection is None:
                continue
            if connection.state is not before.state or _connected_at(
                connection
            ) != _connected_at(before):
                self._seq += 1
                tracked.pushed_seq = self._seq
            tracked.data = replace(tracked.data, connection=connection)
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
