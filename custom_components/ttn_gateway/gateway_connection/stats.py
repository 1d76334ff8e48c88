"""One connection's stats: counters and timestamps never go back."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Final

from ..tts import GatewayConnectionStats

# Counters and timestamps that never go back within one connection.
_COUNTERS: Final = ("uplink_count", "downlink_count", "tx_acknowledgment_count")
_TIMESTAMPS: Final = (
    "last_uplink_received_at",
    "last_downlink_received_at",
    "last_tx_acknowledgment_received_at",
)
UNKNOWN_COUNTERS: Final = GatewayConnectionStats(
    uplink_count=None, downlink_count=None, tx_acknowledgment_count=None
)


def newer[T: (int, datetime)](first: T | None, second: T | None) -> T | None:
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
        merged = newer(mine, theirs)
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
