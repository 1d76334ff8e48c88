"""What one gateway's connection is, from polls and pushed events.

``tracker`` tells connections apart and applies events, ``polls`` merges a
poll, ``stats`` keeps one connection's counters from going back. The merge
rules are the README's (*How data is updated*): connections only move
forward; within one, counters keep the larger value and timestamps the newer;
a poll that cannot be compared is the truth, but for a connect or disconnect
pushed while it was in flight.
"""

from .polls import merge_poll
from .tracker import ConnectionTracker

__all__ = ["ConnectionTracker", "merge_poll"]
