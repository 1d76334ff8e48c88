"""What one gateway's connection is, from polls and pushed events.

``tracker`` tells connections apart and applies events, ``polls`` merges a
poll, ``stats`` keeps one connection's counters from going back.

The merge rules (also in the README):

1. Connections only move forward. Events name their connection by its
   ``gs:conn`` correlation id; polls and id-less events by when it started
   (``connected_at``). Nothing of an older connection, polled or pushed,
   replaces a newer one, and the end of a superseded connection does not end
   the current one.
2. Within one connection, counters keep the larger value and timestamps the
   newer one, whichever source brought them. A new connection starts them
   afresh.
3. A poll that cannot be compared (no timestamps) is the truth, except that
   a connect or disconnect pushed while it was in flight is kept.
"""

from .polls import merge_poll
from .tracker import ConnectionTracker

__all__ = ["ConnectionTracker", "merge_poll"]
