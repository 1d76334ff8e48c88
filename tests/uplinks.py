"""TTS ApplicationUp messages for the end-device tests, as TTS encodes them."""

from __future__ import annotations

import base64
from datetime import datetime
import json
from typing import Any

from homeassistant.util import dt as dt_util

APP = "home-sensors"
FEATHER = "feather-m0-1"
LPP_NODE = "lpp-node"
FORMATTER_NODE = "rs261-erik-internal"
FORMATTER_APP = "thingsboard-ttn-demo"


def topic(application_id: str = APP, device_id: str = FEATHER, prefix: str = "") -> str:
    """The topic TTS publishes an uplink on (TTN adds the tenant to the app)."""
    return f"{prefix}v3/{application_id}@ttn/devices/{device_id}/up"


def timestamp(moment: datetime | None = None) -> str:
    """An RFC 3339 timestamp with nanoseconds, as TTS writes it."""
    moment = moment or dt_util.utcnow()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def uplink(
    *,
    application_id: str = APP,
    device_id: str = FEATHER,
    f_port: int = 1,
    f_cnt: int = 1,
    payload: bytes = b"\x2a",
    decoded: dict[str, Any] | None = None,
    received_at: datetime | None = None,
    gateways: tuple[tuple[str, float, float], ...] = (("rooftop", -97.0, 7.5),),
    spreading_factor: int = 7,
    frequency: str = "868100000",
    airtime: str = "0.046336s",
    version_ids: dict[str, str] | None = None,
    simulated: bool = False,
    battery: float | None = None,
    locations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An ApplicationUp with an uplink_message; zero fields are left out."""
    message: dict[str, Any] = {
        "f_port": f_port,
        "f_cnt": f_cnt,
        "frm_payload": base64.b64encode(payload).decode(),
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": gateway_id, "eui": "B827EBFFFE8DB887"},
                "timestamp": 1645246307,
                "rssi": rssi,
                "channel_rssi": rssi,
                "snr": snr,
                "frequency_offset": "-2631",
                "uplink_token": "ChkKFwoLZXJpa3MtcmcxODYSCMDuQP8=",
            }
            for gateway_id, rssi, snr in gateways
        ],
        "settings": {
            "data_rate": {
                "lora": {
                    "bandwidth": 125000,
                    "spreading_factor": spreading_factor,
                    "coding_rate": "4/5",
                }
            },
            "frequency": frequency,
            "timestamp": 1645246307,
        },
        "received_at": timestamp(received_at),
        "consumed_airtime": airtime,
        "network_ids": {
            "net_id": "000013",
            "tenant_id": "ttn",
            "cluster_id": "eu1",
            "cluster_address": "eu1.cloud.thethings.network",
        },
    }
    for key in ("f_port", "f_cnt", "frm_payload"):
        if not message[key]:
            del message[key]
    if decoded is not None:
        message["decoded_payload"] = decoded
    if version_ids is not None:
        message["version_ids"] = version_ids
    if battery is not None:
        message["last_battery_percentage"] = {
            "f_cnt": f_cnt,
            "received_at": timestamp(received_at),
            "value": battery,
        }
    if locations is not None:
        message["locations"] = locations
    body: dict[str, Any] = {
        "end_device_ids": {
            "device_id": device_id,
            "application_ids": {"application_id": application_id},
            "dev_eui": "70B3D57ED005A1B2",
            "join_eui": "0000000000000000",
            "dev_addr": "260B1234",
        },
        "correlation_ids": ["as:up:01JTTNGATEWAYCORRELATION01"],
        "received_at": timestamp(received_at),
        "uplink_message": message,
    }
    if simulated:
        body["simulated"] = True
    return body


def encode(message: dict[str, Any]) -> str:
    """The message as TTS sends it: compact JSON."""
    return json.dumps(message, separators=(",", ":"))
