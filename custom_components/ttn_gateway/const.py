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
