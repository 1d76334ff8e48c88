"""A typed asyncio client for The Things Stack v3 HTTP API.

This package has no Home Assistant imports; it takes an injected aiohttp session.
"""

from .antennas import AntennaLocation
from .client import BATCH_SIZE, STREAM_IDLE_TIMEOUT_SECONDS, TTSClient
from .errors import (
    TTSAuthenticationError,
    TTSConnectionError,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
    TTSStreamIdleError,
)
from .models import (
    AuthInfo,
    ConnectionState,
    EventName,
    Gateway,
    GatewayConnection,
    GatewayConnectionStats,
    GatewayStatus,
    KeyOwnerType,
    Right,
    RoundTripTimes,
    StreamError,
    StreamEvent,
    SubBand,
    VersionIds,
)
from .servers import TTN_CLUSTERS, InvalidServerError, TTSServer

__all__ = [
    "BATCH_SIZE",
    "STREAM_IDLE_TIMEOUT_SECONDS",
    "TTN_CLUSTERS",
    "AntennaLocation",
    "AuthInfo",
    "ConnectionState",
    "EventName",
    "Gateway",
    "GatewayConnection",
    "GatewayConnectionStats",
    "GatewayStatus",
    "InvalidServerError",
    "KeyOwnerType",
    "Right",
    "RoundTripTimes",
    "StreamError",
    "StreamEvent",
    "SubBand",
    "TTSAuthenticationError",
    "TTSClient",
    "TTSConnectionError",
    "TTSError",
    "TTSNotFoundError",
    "TTSPermissionError",
    "TTSRateLimitError",
    "TTSServer",
    "TTSStreamIdleError",
    "VersionIds",
]
