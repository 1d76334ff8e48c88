"""Simulated end devices and the uplink JSON TTS publishes for them over MQTT.

Four devices of one application: the Feather M0 of the original sketch (one
random byte on FPort 1, no payload formatter), a Cayenne LPP sensor decoded by
TTS's CayenneLPP formatter, a soil sensor with a custom JavaScript formatter,
and an Elsys EMS Desk whose Device Repository codec also normalizes its uplinks.
The JSON is the ``ApplicationUp`` of ``v3/{app}@{tenant}/devices/{device}/up``,
with the same fields and encodings as a real TTN capture.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import StrEnum
import math
import random
import struct
from typing import TYPE_CHECKING, Any, Final

from . import tts_json

if TYPE_CHECKING:
    from .fleet import SimGateway

# EU868 default channels (Hz) and the spreading factors devices use.
EU868_CHANNELS: Final = (
    868_100_000,
    868_300_000,
    868_500_000,
    867_100_000,
    867_300_000,
    867_500_000,
    867_700_000,
    867_900_000,
)
# Air time of an uplink by spreading factor, for a ~12 byte frame at 125 kHz.
AIRTIME: Final = {7: 0.051456, 8: 0.102912, 9: 0.185344, 10: 0.370688}
FEATHER_TX_INTERVAL: Final = 600.0  # TX_INTERVAL of the sketch
# Cayenne LPP data types used by the climate sensor.
LPP_ANALOG_INPUT: Final = 0x02
LPP_TEMPERATURE: Final = 0x67
LPP_HUMIDITY: Final = 0x68
LPP_BAROMETER: Final = 0x73
# The EMS Desk's uplink, as in the example of the Device Repository's codec
# (TheThingsNetwork/lorawan-devices vendor/elsys/ems-desk-codec.yaml at
# 62c8acdd7f0f1e43b65a86f6c158d83b3d0cd200): FPort 1, bytes
# 01 00E2 02 29 03 012705 11 02 = temperature 22.6, humidity 41,
# x/y/z 1/39/5, occupancy 2. Temperature and humidity vary around it.
ELSYS_F_PORT: Final = 1
ELSYS_TEMPERATURE: Final = 0x01
ELSYS_HUMIDITY: Final = 0x02
ELSYS_ACCELERATION: Final = 0x03
ELSYS_OCCUPANCY: Final = 0x11
ELSYS_EXAMPLE_ACCELERATION: Final = (1, 39, 5)
ELSYS_EXAMPLE_OCCUPANCY: Final = 2


class DeviceKind(StrEnum):
    """What a device sends and how TTS decodes it."""

    FEATHER = "feather_m0"
    CAYENNE_LPP = "cayenne_lpp"
    FORMATTER = "formatter"
    # A Device Repository codec with decodeUplink and normalizeUplink.
    REPOSITORY_CODEC = "repository_codec"


@dataclass
class EndDevice:
    """One end device of the simulated application."""

    device_id: str
    dev_eui: str
    dev_addr: str
    kind: DeviceKind
    interval: float
    next_uplink_at: float
    join_eui: str = "70B3D57ED0000000"
    f_cnt: int = 0
    spreading_factor: int = 7
    # Where the device's registry entry in TTS places it (latitude,
    # longitude, altitude); TTS adds it to every uplink as ``locations.user``.
    location: tuple[float, float, int] | None = None

    @property
    def f_port(self) -> int:
        """The application port the device sends on."""
        if self.kind is DeviceKind.REPOSITORY_CODEC:
            return ELSYS_F_PORT
        return 1 if self.kind is DeviceKind.FEATHER else 2

    def payload(self, rng: random.Random, now: float) -> bytes:
        """The next application payload."""
        if self.kind is DeviceKind.FEATHER:
            # readValues(): vals[0] = (unsigned char)rand();
            return bytes([rng.randrange(256)])
        day = math.sin(now / 86400 * 2 * math.pi)
        if self.kind is DeviceKind.REPOSITORY_CODEC:
            temperature = round((22.6 + 1.5 * day + rng.uniform(-0.3, 0.3)) * 10)
            humidity = round(41 - 5 * day + rng.uniform(-2, 2))
            return struct.pack(
                ">BhBBBbbbBB",
                ELSYS_TEMPERATURE,
                temperature,
                ELSYS_HUMIDITY,
                humidity,
                ELSYS_ACCELERATION,
                *ELSYS_EXAMPLE_ACCELERATION,
                ELSYS_OCCUPANCY,
                ELSYS_EXAMPLE_OCCUPANCY,
            )
        if self.kind is DeviceKind.CAYENNE_LPP:
            temperature = round((19.0 + 3 * day + rng.uniform(-0.3, 0.3)) * 10)
            humidity = round((55 - 10 * day + rng.uniform(-2, 2)) * 2)
            pressure = round((1013.2 + rng.uniform(-3, 3)) * 10)
            battery = round((3.3 - (self.f_cnt % 1000) / 5000) * 100)
            return (
                struct.pack(">BBh", 1, LPP_TEMPERATURE, temperature)
                + struct.pack(">BBB", 2, LPP_HUMIDITY, humidity)
                + struct.pack(">BBH", 3, LPP_BAROMETER, pressure)
                + struct.pack(">BBh", 4, LPP_ANALOG_INPUT, battery)
            )
        moisture = round((32.0 - 4 * day + rng.uniform(-0.5, 0.5)) * 10)
        soil_temperature = round((14.0 + 2 * day + rng.uniform(-0.2, 0.2)) * 100)
        battery_mv = 3610 - (self.f_cnt % 500)
        return struct.pack(">Hhh", moisture, soil_temperature, battery_mv)

    def decode(self, payload: bytes) -> dict[str, Any] | None:
        """The ``decoded_payload`` TTS adds, or None without a formatter."""
        if self.kind is DeviceKind.FEATHER:
            return None
        if self.kind is DeviceKind.CAYENNE_LPP:
            return decode_cayenne_lpp(payload)
        if self.kind is DeviceKind.REPOSITORY_CODEC:
            return decode_elsys(payload)
        moisture, soil_temperature, battery_mv = struct.unpack(">Hhh", payload)
        return {
            "battery_voltage": battery_mv / 1000,
            "soil_moisture": moisture / 10,
            "soil_temperature": soil_temperature / 100,
        }

    def normalize(self, decoded: dict[str, Any] | None) -> list[dict[str, Any]] | None:
        """The ``normalized_payload`` TTS adds, or None without a normalizer.

        A list of measurements in the Device Repository's schema, what the
        codec's normalizeUplink returns (``normalizedOutput`` of the example in
        ems-desk-codec.yaml): only ``air``, a field TTS's validator
        accepts (pkg/messageprocessors/normalizedpayload/uplink.go).
        """
        if self.kind is not DeviceKind.REPOSITORY_CODEC or decoded is None:
            return None
        return [
            {
                "air": {
                    "temperature": decoded["temperature"],
                    "relativeHumidity": decoded["humidity"],
                }
            }
        ]


def _number(value: float) -> float | int:
    """A number as TTS writes a Struct value: 22.0 is ``22``."""
    return int(value) if float(value).is_integer() else value


def decode_elsys(payload: bytes) -> dict[str, Any]:
    """What the EMS Desk's codec returns (``output.data`` of its example)."""
    (
        _,
        temperature,
        _,
        humidity,
        _,
        x,
        y,
        z,
        _,
        occupancy,
    ) = struct.unpack(">BhBBBbbbBB", payload)
    return {
        "temperature": _number(temperature / 10),
        "humidity": humidity,
        "x": x,
        "y": y,
        "z": z,
        "occupancy": occupancy,
    }


def decode_cayenne_lpp(payload: bytes) -> dict[str, Any]:
    """Decode the LPP types used here the way TTS's CayenneLPP formatter names them."""
    decoded: dict[str, Any] = {}
    offset = 0
    while offset + 2 <= len(payload):
        channel, kind = payload[offset], payload[offset + 1]
        offset += 2
        if kind == LPP_TEMPERATURE:
            (value,) = struct.unpack_from(">h", payload, offset)
            decoded[f"temperature_{channel}"] = value / 10
            offset += 2
        elif kind == LPP_HUMIDITY:
            decoded[f"relative_humidity_{channel}"] = payload[offset] / 2
            offset += 1
        elif kind == LPP_BAROMETER:
            (value,) = struct.unpack_from(">H", payload, offset)
            decoded[f"barometric_pressure_{channel}"] = value / 10
            offset += 2
        elif kind == LPP_ANALOG_INPUT:
            (value,) = struct.unpack_from(">h", payload, offset)
            decoded[f"analog_in_{channel}"] = value / 100
            offset += 2
        else:
            break
    return decoded


def make_devices(now: float, *, interval: float | None = None) -> list[EndDevice]:
    """The four devices; `interval` overrides every device's TX interval."""
    return [
        EndDevice(
            device_id="feather-m0",
            dev_eui="9876B6000011A1F5",
            dev_addr="260B4B71",
            kind=DeviceKind.FEATHER,
            interval=interval or FEATHER_TX_INTERVAL,
            next_uplink_at=now + 2,
        ),
        EndDevice(
            device_id="lpp-climate-sensor",
            dev_eui="70B3D57ED005B1C3",
            dev_addr="260B91D2",
            kind=DeviceKind.CAYENNE_LPP,
            interval=interval or 300.0,
            next_uplink_at=now + 4,
            spreading_factor=9,
        ),
        EndDevice(
            device_id="soil-sensor",
            dev_eui="A84041000181C2E7",
            dev_addr="260B22E3",
            kind=DeviceKind.FORMATTER,
            interval=interval or 900.0,
            next_uplink_at=now + 6,
            spreading_factor=8,
            location=(52.0907, 5.1214, 4),
        ),
        EndDevice(
            device_id="office-desk-sensor",
            dev_eui="A81758FFFE0412C5",
            dev_addr="260B6F08",
            kind=DeviceKind.REPOSITORY_CODEC,
            interval=interval or 600.0,
            next_uplink_at=now + 8,
        ),
    ]


def uplink_topic(application_id: str, tenant: str, device_id: str) -> str:
    """The MQTT topic TTS publishes a device's uplinks on."""
    uid = f"{application_id}@{tenant}" if tenant else application_id
    return f"v3/{uid}/devices/{device_id}/up"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def application_up(
    device: EndDevice,
    payload: bytes,
    now: float,
    receivers: list[SimGateway],
    rng: random.Random,
    *,
    application_id: str,
    tenant: str,
    cluster: str,
) -> dict[str, Any]:
    """The ``ApplicationUp`` JSON of one uplink, heard by `receivers`."""
    sent_at = now - 0.34
    concentrator = int(sent_at * 1_000_000) % 2**32
    channel = rng.randrange(len(EU868_CHANNELS))
    uplink_ulid = tts_json.ulid(now, rng)
    rx_metadata = []
    for gateway in receivers:
        rssi = rng.randint(-118, -62)
        metadata: dict[str, Any] = {
            "gateway_ids": {"gateway_id": gateway.gateway_id, "eui": gateway.eui},
            "time": tts_json.timestamp(sent_at),
            "timestamp": concentrator,
            "rssi": rssi,
            "channel_rssi": rssi,
            "snr": round(rng.uniform(-7.5, 10.5), 2),
        }
        if gateway.location_public:
            metadata["location"] = {
                "latitude": gateway.latitude,
                "longitude": gateway.longitude,
                "altitude": gateway.altitude,
                "source": "SOURCE_REGISTRY",
            }
        metadata["uplink_token"] = _b64(rng.randbytes(40))
        metadata["channel_index"] = channel
        metadata["received_at"] = tts_json.timestamp(now - 0.22)
        rx_metadata.append(metadata)
    uplink: dict[str, Any] = {
        "session_key_id": _b64(rng.randbytes(16)),
        "f_port": device.f_port,
        "f_cnt": device.f_cnt,
        "frm_payload": _b64(payload),
    }
    decoded = device.decode(payload)
    if decoded is not None:
        uplink["decoded_payload"] = decoded
    # A list of Structs (api/api.md ApplicationUplink); TTS sets it from the
    # codec's normalizeUplink and omits it when there is none
    # (pkg/messageprocessors/javascript/javascript.go). No warnings: omitted.
    if (normalized := device.normalize(decoded)) is not None:
        uplink["normalized_payload"] = normalized
    uplink["rx_metadata"] = rx_metadata
    uplink["settings"] = {
        "data_rate": {
            "lora": {
                "bandwidth": 125000,
                "spreading_factor": device.spreading_factor,
                "coding_rate": "4/5",
            }
        },
        "frequency": tts_json.uint64(EU868_CHANNELS[channel]),
        "timestamp": concentrator,
        "time": tts_json.timestamp(sent_at),
    }
    uplink["received_at"] = tts_json.timestamp(now - 0.2)
    uplink["consumed_airtime"] = tts_json.duration(AIRTIME[device.spreading_factor])
    if device.location is not None:
        latitude, longitude, altitude = device.location
        uplink["locations"] = {
            "user": {
                "latitude": latitude,
                "longitude": longitude,
                "altitude": altitude,
                "source": "SOURCE_REGISTRY",
            }
        }
    uplink["network_ids"] = {
        "net_id": "000013",
        "ns_id": "EC656E0000000181",
        "tenant_id": tenant or "ttn",
        "cluster_id": cluster,
        "cluster_address": f"{cluster}.cloud.thethings.network",
    }
    return {
        "end_device_ids": {
            "device_id": device.device_id,
            "application_ids": {"application_id": application_id},
            "dev_eui": device.dev_eui,
            "join_eui": device.join_eui,
            "dev_addr": device.dev_addr,
        },
        "correlation_ids": [f"gs:uplink:{uplink_ulid}"],
        "received_at": tts_json.timestamp(now),
        "uplink_message": uplink,
    }
