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
ISSUE_NO_EVENT_RIGHTS: Final = "no_event_rights"

CONF_SILENCE_THRESHOLD: Final = "silence_threshold"
# Minutes without an uplink after which a connected gateway counts as silent.
DEFAULT_SILENCE_THRESHOLD: Final = 30
MIN_SILENCE_THRESHOLD: Final = 5
MAX_SILENCE_THRESHOLD: Final = 1440

# Poll interval while the events stream is healthy (never shorter than the
# user's interval): polls then only refresh the counters.
RELAXED_SCAN_INTERVAL: Final = timedelta(minutes=5)

# End devices over MQTT.
CONF_END_DEVICES: Final = "end_devices"
CONF_UPLINK_TOPIC: Final = "uplink_topic"
CONF_END_DEVICE_SILENCE_THRESHOLD: Final = "end_device_silence_threshold"
CONF_DECODERS: Final = "decoders"

DEFAULT_UPLINK_TOPIC: Final = "v3/+/devices/+/up"
# Without a threshold option a device is silent (its Silent sensor on) after
# this many of its observed uplink intervals, but never sooner than the minimum.
SILENCE_INTERVALS: Final = 3
MIN_END_DEVICE_SILENCE_THRESHOLD: Final = timedelta(minutes=15)
# Until a device's interval is known (one uplink seen).
UNKNOWN_INTERVAL_SILENCE_THRESHOLD: Final = timedelta(hours=1)
MAX_END_DEVICE_SILENCE_THRESHOLD: Final = timedelta(days=7)

ISSUE_MQTT_NOT_SET_UP: Final = "mqtt_not_set_up"

# Bounds of what uplinks can create (an option for the number of devices).
CONF_MAX_END_DEVICES: Final = "max_end_devices"
DEFAULT_MAX_END_DEVICES: Final = 200
MAX_MAX_END_DEVICES: Final = 5000
# Application IDs whose uplinks are taken; absent or empty for all.
CONF_APPLICATIONS: Final = "applications"
ISSUE_END_DEVICE_CAP: Final = "end_device_cap"
ISSUE_END_DEVICE_ENTITY_CAP: Final = "end_device_entity_cap"
# Version 3.3 renamed the end devices' Online sensors (now Silent sensors).
ISSUE_SILENT_REPLACES_ONLINE: Final = "silent_replaces_online"

# TTS applications: one config sub-entry each.
SUBENTRY_APPLICATION: Final = "application"
CONF_APPLICATION_ID: Final = "application_id"
CONF_TRANSPORT: Final = "transport"
CONF_MQTT_HOST: Final = "mqtt_host"
CONF_MQTT_PORT: Final = "mqtt_port"
CONF_MQTT_USERNAME: Final = "mqtt_username"
CONF_MQTT_TLS: Final = "mqtt_tls"
# The rights the application's key had when it was last checked.
CONF_RIGHTS: Final = "rights"
# The URL of the cloud cluster serving the application; absent: the account's.
CONF_CLUSTER: Final = "cluster"
TRANSPORT_DIRECT: Final = "direct"
TRANSPORT_MQTT: Final = "mqtt"
TRANSPORTS: Final = (TRANSPORT_DIRECT, TRANSPORT_MQTT)
ISSUE_APPLICATION_KEY_REJECTED: Final = "application_key_rejected"
# The account moved to another server than the one an application's key was
# checked on (same issue id as a rejected key: one new key fixes both).
ISSUE_APPLICATION_SERVER_CHANGED: Final = "application_server_changed"
# The applications' end devices are listed at setup and then this often.
DEVICE_LIST_INTERVAL: Final = timedelta(hours=1)
# Reconnect delays of a direct connection: doubling up to the maximum.
MIN_RECONNECT_DELAY: Final = timedelta(seconds=5)
MAX_RECONNECT_DELAY: Final = timedelta(minutes=5)

# Dispatcher signals, formatted with the entry ID; each platform adds what it
# does not have yet. A gateway's (argument: its ID) comes when it is first
# monitored and when its data shows a new feature (a status metric, a
# location); an end device's (argument: the device) with each of its updates,
# which may bring a new reading.
SIGNAL_NEW_GATEWAY_ENTITIES: Final = f"{DOMAIN}_new_gateway_entities_{{}}"
SIGNAL_NEW_END_DEVICE_ENTITIES: Final = f"{DOMAIN}_new_end_device_entities_{{}}"
