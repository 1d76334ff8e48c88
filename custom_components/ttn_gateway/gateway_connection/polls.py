"""Merging a poll into a gateway's connection (rules 1 to 3 in the package)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ..tts import ConnectionState, GatewayConnection, GatewayConnectionStats
from .stats import merge_same_connection
from .tracker import CONNECT_SLACK, ConnectionTracker


def merge_poll(
    tracker: ConnectionTracker, polled: GatewayConnection, *, pushed_during_poll: bool
) -> None:
    """Merge a poll's connection into the tracker's, by the package's rules."""
    known = tracker.connection
    if (
        polled.state is ConnectionState.NO_RIGHTS
        or known.state is ConnectionState.NO_RIGHTS
        or known.stats is None
    ):
        tracker.start(polled, None)
        return
    stats = polled.stats
    if (
        polled.state is ConnectionState.CONNECTED
        and stats is not None
        and stats.connected_at is not None
    ):
        _merge_polled_connection(
            tracker, polled, known.stats, stats, stats.connected_at, pushed_during_poll
        )
    elif (
        polled.state is ConnectionState.DISCONNECTED
        and stats is not None
        and stats.disconnected_at is not None
    ):
        _merge_polled_end(tracker, polled, known.stats, stats.disconnected_at)
    elif not pushed_during_poll:
        tracker.start(polled, None)


def _merge_polled_connection(
    tracker: ConnectionTracker,
    polled: GatewayConnection,
    known_stats: GatewayConnectionStats,
    stats: GatewayConnectionStats,
    started: datetime,
    pushed_during_poll: bool,
) -> None:
    known = tracker.connection
    if tracker.is_current(started, None):
        merged = merge_same_connection(stats, known_stats)
        tracker.connection = replace(polled, stats=merged)
        tracker.approximate = False
        return
    if known.state is ConnectionState.CONNECTED:
        if not tracker.is_older(started, None):
            tracker.start(polled, None)
        return  # else: a registry still on an older connection
    ended_at = known_stats.disconnected_at
    if ended_at is None or started > ended_at:
        tracker.start(polled, None)  # connected again since
    elif tracker.ended_start is not None:
        if started > tracker.ended_start:
            # Started before another connection's end: that one was superseded.
            tracker.start(polled, None)
    elif not pushed_during_poll:
        tracker.start(polled, None)


def _merge_polled_end(
    tracker: ConnectionTracker,
    polled: GatewayConnection,
    known_stats: GatewayConnectionStats,
    ended_at: datetime,
) -> None:
    if tracker.connection.state is ConnectionState.CONNECTED:
        started = tracker.connected_at or tracker.alive_at
        if started is not None and ended_at <= started:
            return  # the end of a connection before the current one
        if (
            tracker.superseded_end is not None
            and abs(ended_at - tracker.superseded_end) <= CONNECT_SLACK
        ):
            return  # the superseded connection's end, written late
        tracker.start(polled, None)
        return
    known_end = known_stats.disconnected_at
    if known_end is not None and ended_at < known_end:
        return  # an earlier end
    if known_end == ended_at:
        tracker.connection = polled
        return
    tracker.start(polled, None)
