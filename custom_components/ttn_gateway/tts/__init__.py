"""A typed asyncio client for The Things Stack v3 HTTP API.

This package has no Home Assistant imports; it takes an injected aiohttp session.
"""

from .client import BATCH_SIZE, TTSClient
from .errors import (
    TTSAuthenticationError,
    TTSConnectionError,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
)
from .models import (
    AuthInfo,
    ConnectionState,
    Gateway,
    GatewayConnection,
    GatewayConnectionStats,
    GatewayStatus,
    KeyOwnerType,
    Right,
    RoundTripTimes,
    SubBand,
    VersionIds,
)
from .servers import TTN_CLUSTERS, InvalidServerError, TTSServer

__all__ = [
    "BATCH_SIZE",
    "TTN_CLUSTERS",
    "AuthInfo",
    "ConnectionState",
    "Gateway",
    "GatewayConnection",
    "GatewayConnectionStats",
    "GatewayStatus",
    "InvalidServerError",
    "KeyOwnerType",
    "Right",
    "RoundTripTimes",
    "SubBand",
    "TTSAuthenticationError",
    "TTSClient",
    "TTSConnectionError",
    "TTSError",
    "TTSNotFoundError",
    "TTSPermissionError",
    "TTSRateLimitError",
    "TTSServer",
    "VersionIds",
]
