"""Constants of the TTN Gateway integration."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "ttn_gateway"
LOGGER = logging.getLogger(__package__)

CONF_SERVER: Final = "server"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_MONITOR_ALL: Final = "monitor_all"
CONF_GATEWAYS: Final = "gateways"

DEFAULT_SERVER: Final = "eu1"
DEFAULT_SCAN_INTERVAL: Final = timedelta(seconds=60)
MIN_SCAN_INTERVAL: Final = timedelta(seconds=30)
MAX_SCAN_INTERVAL: Final = timedelta(hours=1)

ISSUE_MISSING_GATEWAY_RIGHTS: Final = "missing_gateway_rights"

CONF_SILENCE_THRESHOLD: Final = "silence_threshold"
# Minutes without an uplink after which a connected gateway counts as silent.
DEFAULT_SILENCE_THRESHOLD: Final = 30
MIN_SILENCE_THRESHOLD: Final = 5
MAX_SILENCE_THRESHOLD: Final = 1440

# Poll interval while the events stream is healthy (never shorter than the
# user's interval): polls then only refresh the counters.
RELAXED_SCAN_INTERVAL: Final = timedelta(minutes=5)
