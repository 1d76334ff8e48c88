"""A typed asyncio client for The Things Stack v3 HTTP API and MQTT server.

This package has no Home Assistant imports; it takes an injected aiohttp
session. Code outside the package imports only the names listed here.
"""

from .antennas import AntennaLocation
from .applications import Application, EndDeviceInfo, EndDeviceListing
from .client import TTSClient
from .clusters import ClusterDetection, detect_cluster
from .device_repository import DR_ID, MAX_LOOKUPS, DeviceRepositoryNames, NameKey
from .downlink import (
    MAX_DOWNLINK_F_PORT,
    MIN_DOWNLINK_F_PORT,
    Downlink,
    DownlinkError,
    DownlinkEvent,
    DownlinkStatus,
    Priority,
    downlink_request_json,
    parse_downlink_event,
    parse_payload,
)
from .errors import (
    TTSAuthenticationError,
    TTSConnectionError,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
    TTSStorageNotEnabledError,
    TTSStreamIdleError,
)
from .events import GATEWAY_EVENT_NAMES, EventName, StreamError, StreamEvent
from .events_stream import STREAM_IDLE_TIMEOUT_SECONDS
from .gateway_requests import BATCH_SIZE
from .gateways import (
    ConnectionState,
    Gateway,
    GatewayConnection,
    GatewayConnectionStats,
    GatewayStatus,
    RoundTripTimes,
    SubBand,
)
from .mqtt import (
    ApplicationSession,
    MqttConnectionInfo,
    MqttNotAuthorizedError,
    MqttSettings,
    connect_application,
    mqtt_settings,
)
from .primitives import VersionIds
from .right_names import console_rights
from .rights import AuthInfo, KeyOwnerType, Right, implied_by
from .servers import TTN_CLUSTERS, InvalidServerError, TTSServer
from .storage import STORAGE_DOCS_URL, STORED_UPLINKS_MAX
from .uplink import Uplink, UplinkError, is_identifier, parse_application_up
from .uplink_metadata import PACKET_BROKER, Location, RxMetadata

__all__ = [
    "BATCH_SIZE",
    "DR_ID",
    "GATEWAY_EVENT_NAMES",
    "MAX_DOWNLINK_F_PORT",
    "MAX_LOOKUPS",
    "MIN_DOWNLINK_F_PORT",
    "PACKET_BROKER",
    "STORAGE_DOCS_URL",
    "STORED_UPLINKS_MAX",
    "STREAM_IDLE_TIMEOUT_SECONDS",
    "TTN_CLUSTERS",
    "AntennaLocation",
    "Application",
    "ApplicationSession",
    "AuthInfo",
    "ClusterDetection",
    "ConnectionState",
    "DeviceRepositoryNames",
    "Downlink",
    "DownlinkError",
    "DownlinkEvent",
    "DownlinkStatus",
    "EndDeviceInfo",
    "EndDeviceListing",
    "EventName",
    "Gateway",
    "GatewayConnection",
    "GatewayConnectionStats",
    "GatewayStatus",
    "InvalidServerError",
    "KeyOwnerType",
    "Location",
    "MqttConnectionInfo",
    "MqttNotAuthorizedError",
    "MqttSettings",
    "NameKey",
    "Priority",
    "Right",
    "RoundTripTimes",
    "RxMetadata",
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
    "TTSStorageNotEnabledError",
    "TTSStreamIdleError",
    "Uplink",
    "UplinkError",
    "VersionIds",
    "connect_application",
    "console_rights",
    "detect_cluster",
    "downlink_request_json",
    "implied_by",
    "is_identifier",
    "mqtt_settings",
    "parse_application_up",
    "parse_downlink_event",
    "parse_payload",
]
