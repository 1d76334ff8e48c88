"""A gateway's connection: telling connections apart, and pushed events.

It applies the merge rules the README states (*How data is updated*).

What TTS does (lorawan-stack ``pkg/gatewayserver/gatewayserver.go``):
``Connect`` puts a new ``gs:conn:<ULID>`` correlation id on the context of the
connection, and the connect, the disconnect, the uplink and the status
events of that connection are published with it. ``connected_at`` is the
``Connection``'s connect time (``io.NewConnection``), taken before the connect
event is published. The connect event carries no data in
``observability.go`` (``registerGatewayConnect``); newer versions hand it the
first ``GatewayConnectionStats``: both are handled.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

from ..tts import (
    ConnectionState,
    EventName,
    GatewayConnection,
    GatewayConnectionStats,
    StreamEvent,
)
from .stats import UNKNOWN_COUNTERS, merge_same_connection, newer

# How long before its connect event a connection may have started: TTS
# disconnects the gateway's previous connection on that instance and waits
# for it between the two (``GatewayServer.Connect``).
CONNECT_SLACK: Final = timedelta(seconds=30)
# Ids of ended connections remembered per gateway.
ENDED_KEPT: Final = 8


@dataclass(slots=True)
class ConnectionTracker:
    """A gateway's merged connection and what the rules remember of it."""

    connection: GatewayConnection
    # The gs:conn id of the current connection, once an event named it.
    connection_id: str | None = None
    # True while ``connected_at`` is a data-less connect event's time: the
    # connection started at most CONNECT_SLACK earlier.
    approximate: bool = False
    # Connections whose disconnect was seen.
    ended: deque[str] = field(default_factory=lambda: deque(maxlen=ENDED_KEPT))
    # The gs:conn id of the disconnect that ended the gateway's connection,
    # and when that connection had started, where known.
    ended_id: str | None = None
    ended_start: datetime | None = None
    # When a superseded connection ended: its Gateway Server writes that
    # moment into the stats registry too (``updateConnStats``), so a poll may
    # show it while the newer connection lives.
    superseded_end: datetime | None = None
    # When traffic proved a connection of unknown start alive.
    alive_at: datetime | None = None

    @property
    def connected_at(self) -> datetime | None:
        """When the current connection started; None when not connected."""
        stats = self.connection.stats
        if self.connection.state is not ConnectionState.CONNECTED or stats is None:
            return None
        return stats.connected_at

    # --- telling connections apart -------------------------------------------

    def _ids_differ(self, connection_id: str | None) -> bool:
        return (
            connection_id is not None
            and self.connection_id is not None
            and connection_id != self.connection_id
        )

    def is_current(self, connected_at: datetime, connection_id: str | None) -> bool:
        """Whether a connection that started then is the current one."""
        if self.connection.state is not ConnectionState.CONNECTED:
            return False
        if self._ids_differ(connection_id):
            return False
        same_id = connection_id is not None and connection_id == self.connection_id
        known = self.connected_at
        if known is None:
            return same_id
        if self.approximate:
            return same_id or known - CONNECT_SLACK <= connected_at <= known
        return connected_at == known

    def is_older(self, connected_at: datetime, connection_id: str | None) -> bool:
        """Whether a connection that started then predates the current one."""
        known = self.connected_at
        if known is None or connected_at > known:
            return False
        if not self.approximate:
            return connected_at < known
        return self._ids_differ(connection_id) or connected_at < known - CONNECT_SLACK

    def _alive_after_end(self, connection_id: str | None) -> bool:
        """Whether an event's connection is another than the one that ended."""
        return (
            connection_id is not None
            and self.ended_id is not None
            and connection_id != self.ended_id
            and connection_id not in self.ended
        )

    def start(
        self,
        connection: GatewayConnection,
        connection_id: str | None,
        *,
        approximate: bool = False,
    ) -> None:
        """Take ``connection`` as a new connection, forgetting the ended one."""
        self.connection = connection
        self.connection_id = connection_id
        self.approximate = approximate
        self.ended_id = self.ended_start = self.alive_at = None

    # --- events ----------------------------------------------------------------

    def apply_event(self, event: StreamEvent) -> bool:
        """Apply a pushed event; whether the connection changed."""
        if self.connection.state is ConnectionState.NO_RIGHTS:
            return False
        name, connection_id, stats = event.name, event.connection_id, event.stats
        if name == EventName.GATEWAY_DISCONNECT:
            return self._end(event.time, connection_id)
        if stats is not None and name in (
            EventName.GATEWAY_CONNECT,
            EventName.GATEWAY_CONNECTION_STATS,
        ):
            if stats.connected_at is not None:
                return self._stats(
                    stats,
                    stats.connected_at,
                    connection_id,
                    connect=name == EventName.GATEWAY_CONNECT,
                )
            if stats.disconnected_at is not None:
                # TTS sends stats with only disconnected_at when a gateway leaves.
                return self._end(stats.disconnected_at, connection_id)
        if event.time is None:
            return False
        if name == EventName.GATEWAY_CONNECT:
            return self._connect(event.time, connection_id)
        if name in (EventName.GATEWAY_UPLINK, EventName.GATEWAY_STATUS):
            return self._traffic(event, event.time, connection_id)
        return False

    def _end(self, at: datetime | None, connection_id: str | None) -> bool:
        """A disconnect of the connection ``connection_id`` at ``at``."""
        if connection_id is not None and connection_id not in self.ended:
            self.ended.append(connection_id)
        if at is None:
            return False
        connection, stats = self.connection, self.connection.stats
        if stats is None:
            # Never connected as far as we know: the counters are unknown, not 0.
            self.connection = GatewayConnection(
                ConnectionState.DISCONNECTED,
                replace(UNKNOWN_COUNTERS, disconnected_at=at),
            )
            self.ended_id, self.ended_start = connection_id, None
            return True
        if connection.state is ConnectionState.CONNECTED:
            ours = connection_id is not None and connection_id == self.connection_id
            if self._ids_differ(connection_id):
                # TTS opens a gateway's new connection before another Gateway
                # Server closes the superseded one.
                self.superseded_end = newer(self.superseded_end, at)
                return False
            if (
                connection_id is None
                and self.superseded_end is not None
                and abs(at - self.superseded_end) <= CONNECT_SLACK
            ):
                return False  # that end again, told without its id
            if not ours and stats.connected_at is not None and at < stats.connected_at:
                return False  # the end of an earlier connection
            self.connection = GatewayConnection(
                ConnectionState.DISCONNECTED,
                replace(stats, connected_at=None, disconnected_at=at),
            )
            self.ended_id = connection_id
            self.ended_start = stats.connected_at if ours else None
            self.connection_id, self.approximate = None, False
            return True
        if stats.disconnected_at is not None and at <= stats.disconnected_at:
            return False  # already known
        self.connection = replace(connection, stats=replace(stats, disconnected_at=at))
        self.ended_id = connection_id
        return True

    def _stats(
        self,
        new: GatewayConnectionStats,
        started: datetime,
        connection_id: str | None,
        *,
        connect: bool,
    ) -> bool:
        """Stats of the connection that started at ``started``."""
        if connection_id is not None and connection_id in self.ended:
            return False  # late stats of a connection that has ended
        connection, stats = self.connection, self.connection.stats
        if stats is not None and self.is_current(started, connection_id):
            if connection_id is not None:
                self.connection_id = connection_id
            if connect:
                # A connect carries no counters: it only makes the start exact.
                if not self.approximate:
                    return False
                merged = replace(
                    stats, connected_at=started, protocol=stats.protocol or new.protocol
                )
            else:
                merged = merge_same_connection(new, stats)
            self.approximate = False
            if merged == stats:
                return False
            self.connection = replace(connection, stats=merged)
            return True
        if self.is_older(started, connection_id):
            return False
        if (
            connection.state is ConnectionState.DISCONNECTED
            and stats is not None
            and not self._alive_after_end(connection_id)
            and (
                (stats.disconnected_at is not None and started <= stats.disconnected_at)
                or (self.ended_start is not None and started <= self.ended_start)
            )
        ):
            return False  # a connection that has ended since
        self.start(GatewayConnection.from_stats(new), connection_id)
        return True

    def _connect(self, at: datetime, connection_id: str | None) -> bool:
        """A connect without data: connected since about ``at``."""
        if connection_id is not None and connection_id in self.ended:
            return False  # the connect of a connection that has ended since
        connection, stats = self.connection, self.connection.stats
        known = self.connected_at
        if connection.state is ConnectionState.CONNECTED and stats is not None:
            if connection_id is not None and connection_id == self.connection_id:
                return False  # told twice
            if known is not None and at <= known:
                return False  # an earlier connection
            if (
                known is not None
                and self.connection_id is None
                and not self.approximate
                and at - known <= CONNECT_SLACK
            ):
                # The connect of the connection a poll told of: learn its id.
                self.connection_id = connection_id
                return False
        elif (
            connection.state is ConnectionState.DISCONNECTED
            and stats is not None
            and not self._alive_after_end(connection_id)
            and stats.disconnected_at is not None
            and at <= stats.disconnected_at
        ):
            return False  # a connection that has ended since
        self.start(
            GatewayConnection(
                ConnectionState.CONNECTED, GatewayConnectionStats(connected_at=at)
            ),
            connection_id,
            approximate=True,
        )
        return True

    def _traffic(
        self, event: StreamEvent, at: datetime, connection_id: str | None
    ) -> bool:
        """An uplink or a status: the connection is alive."""
        connection, stats = self.connection, self.connection.stats
        revived = False
        if connection.state is ConnectionState.CONNECTED and stats is not None:
            if self._ids_differ(connection_id):
                return False  # traffic of a superseded connection
        elif connection.state is ConnectionState.DISCONNECTED and self._alive_after_end(
            connection_id
        ):
            # Traffic of another connection than the one that ended: that one
            # lives, since an unknown moment and with unknown counters.
            stats, revived = UNKNOWN_COUNTERS, True
            self.start(
                GatewayConnection(ConnectionState.CONNECTED, stats), connection_id
            )
            self.alive_at = at
        else:
            return False
        if event.name == EventName.GATEWAY_STATUS:
            if event.status is None or (
                stats.last_status_received_at is not None
                and at <= stats.last_status_received_at
            ):
                return revived
            stats = replace(stats, last_status=event.status, last_status_received_at=at)
        else:
            if (
                stats.last_uplink_received_at is not None
                and at <= stats.last_uplink_received_at
            ):
                return revived
            stats = replace(stats, last_uplink_received_at=at)
        self.connection = replace(self.connection, stats=stats)
        return True
