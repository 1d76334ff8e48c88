"""The TTS ``ApplicationUp`` MQTT message, and the one place that parses it.

TTS publishes one JSON object per message on ``v3/{app}@{tenant}/devices/{dev}/up``
(and on the join, downlink and location topics). Which kind of message it is
follows from the one field it carries: ``uplink_message``, ``join_accept``,
``downlink_queued`` and so on.

The parser is strict where a wrong value means a corrupt or foreign message
(the device IDs, the payload, the frame counter and port) and lenient where it
only loses a figure (radio metadata of the wrong type is treated as absent, as
in ``primitives.py``).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
import re
from typing import Any

from .primitives import (
    IDENTIFIER as _ID,
    VersionIds,
    parse_duration,
    parse_str,
    parse_timestamp,
    parse_uint,
)
from .uplink_metadata import (
    Location,
    RxMetadata,
    battery_percentage,
    device_location,
)

_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(?::\d{1,5})?$")
# LoRaWAN FRMPayloads are at most 242 bytes; base64 of 255 bytes is 340 chars.
MAX_PAYLOAD_BYTES = 255
_MAX_PAYLOAD_BASE64 = (MAX_PAYLOAD_BYTES + 2) // 3 * 4
MAX_FPORT = 255
MAX_FCNT = 2**32 - 1
# Bounds on what a formatter's output adds to one uplink.
MAX_MEASUREMENTS = 64
MAX_WARNINGS = 16
MAX_WARNING_LENGTH = 255

# ApplicationUp fields that carry a message other than an uplink.
OTHER_MESSAGE_FIELDS = frozenset(
    {
        "join_accept",
        "downlink_ack",
        "downlink_nack",
        "downlink_sent",
        "downlink_failed",
        "downlink_queued",
        "downlink_queue_invalidated",
        "location_solved",
        "service_data",
        "uplink_normalized",
    }
)


class UplinkError(ValueError):
    """The message is not a usable ``ApplicationUp``; the text says why."""


def is_identifier(value: str) -> bool:
    """Whether a text is a TTS identifier (application, device)."""
    return _ID.match(value) is not None


def _identifier(value: object) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise UplinkError("an end device or application ID is not a TTS identifier")
    return value


@dataclass(frozen=True, slots=True)
class EndDeviceIds:
    """Who sent an uplink: the application and the device within it."""

    application_id: str
    device_id: str
    dev_eui: str | None = None
    join_eui: str | None = None
    dev_addr: str | None = None

    @classmethod
    def from_json(cls, data: object) -> EndDeviceIds:
        """Parse ``end_device_ids``; raise UplinkError without valid IDs."""
        if not isinstance(data, Mapping):
            raise UplinkError("end_device_ids is not an object")
        application_ids = data.get("application_ids")
        if not isinstance(application_ids, Mapping):
            raise UplinkError("end_device_ids.application_ids is not an object")
        application_id = _identifier(application_ids.get("application_id"))
        device_id = _identifier(data.get("device_id"))
        return cls(
            application_id=application_id,
            device_id=device_id,
            dev_eui=parse_str(data.get("dev_eui")),
            join_eui=parse_str(data.get("join_eui")),
            dev_addr=parse_str(data.get("dev_addr")),
        )


@dataclass(frozen=True, slots=True)
class Uplink:
    """One uplink message of an end device, as the Application Server sent it."""

    ids: EndDeviceIds
    f_port: int
    f_cnt: int
    frm_payload: bytes
    decoded_payload: Mapping[str, Any] | None = None
    received_at: datetime | None = None
    rx_metadata: tuple[RxMetadata, ...] = ()
    spreading_factor: int | None = None
    bandwidth: int | None = None
    frequency: int | None = None
    consumed_airtime: float | None = None
    confirmed: bool = False
    simulated: bool = False
    version_ids: VersionIds | None = None
    # Host of the cluster whose Application Server handled the uplink.
    cluster_address: str | None = None
    # The battery level the device last reported in a DevStatusAns (TTS
    # repeats it with every uplink), in percent.
    last_battery_percentage: float | None = None
    # Where the device is, by uplink_message.locations (or the normalized payload).
    location: Location | None = None
    # The measurements of the Device Repository codec's normalizeUplink.
    normalized_payload: tuple[Mapping[str, Any], ...] | None = None
    # What the payload formatter (and its normalizer) warned of.
    decoded_payload_warnings: tuple[str, ...] = ()
    normalized_payload_warnings: tuple[str, ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        """The formatter's warnings, then the normalizer's."""
        return self.decoded_payload_warnings + self.normalized_payload_warnings

    @property
    def best_rx(self) -> RxMetadata | None:
        """The gateway that heard the uplink loudest (highest RSSI, then SNR)."""
        heard = [rx for rx in self.rx_metadata if rx.rssi is not None]
        if not heard:
            return self.rx_metadata[0] if self.rx_metadata else None
        return max(heard, key=lambda rx: (rx.rssi, rx.snr or float("-inf")))


def _strict_uint(raw: Mapping[str, Any], name: str, maximum: int) -> int:
    """A protobuf uint32 that TTS omits when zero; raise when malformed."""
    value: object = raw.get(name, 0)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (0 <= value <= maximum)
    ):
        raise UplinkError(f"{name} is not an integer from 0 to {maximum}")
    return value


def _payload(raw: Mapping[str, Any]) -> bytes:
    value = raw.get("frm_payload", "")
    if not isinstance(value, str):
        raise UplinkError("frm_payload is not a string")
    if len(value) > _MAX_PAYLOAD_BASE64:
        raise UplinkError(f"frm_payload is longer than {MAX_PAYLOAD_BYTES} bytes")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as err:
        raise UplinkError(f"frm_payload is not base64: {err}") from err


def _normalized_payload(value: object) -> tuple[Mapping[str, Any], ...] | None:
    """``normalized_payload``: a list of measurement objects; others are left out.

    TTS sends a list (lorawan-stack ``messages.proto``
    ``ApplicationUplink.normalized_payload``, repeated Struct); a single
    object is taken as one measurement, anything else as none.
    """
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        return None
    measurements = tuple(
        item for item in value[:MAX_MEASUREMENTS] if isinstance(item, Mapping)
    )
    return measurements or None


def _warnings(value: object) -> tuple[str, ...]:
    """``*_payload_warnings``: a list of texts, bounded; anything else is none."""
    if not isinstance(value, list):
        return ()
    return tuple(
        item[:MAX_WARNING_LENGTH]
        for item in value[:MAX_WARNINGS]
        if isinstance(item, str) and item
    )


def parse_application_up(data: object) -> Uplink | None:
    """Parse an ``ApplicationUp`` JSON object.

    Returns the uplink, or None for the other kinds of message (joins,
    downlink events, ...). Raises UplinkError when the message is unusable.
    """
    if not isinstance(data, Mapping):
        raise UplinkError("the message is not a JSON object")
    ids = EndDeviceIds.from_json(data.get("end_device_ids"))
    uplink = data.get("uplink_message")
    if uplink is None:
        if OTHER_MESSAGE_FIELDS.intersection(data):
            return None
        raise UplinkError("the message has no uplink_message nor a known other type")
    if not isinstance(uplink, Mapping):
        raise UplinkError("uplink_message is not an object")

    decoded = uplink.get("decoded_payload")
    if decoded is not None and not isinstance(decoded, Mapping):
        raise UplinkError("decoded_payload is not an object")
    rx_metadata = uplink.get("rx_metadata", [])
    if not isinstance(rx_metadata, list):
        raise UplinkError("rx_metadata is not a list")

    settings = uplink.get("settings")
    settings = settings if isinstance(settings, Mapping) else {}
    data_rate = settings.get("data_rate")
    lora = data_rate.get("lora") if isinstance(data_rate, Mapping) else None
    lora = lora if isinstance(lora, Mapping) else {}
    version_ids = uplink.get("version_ids")
    network_ids = uplink.get("network_ids")
    cluster_address = (
        parse_str(network_ids.get("cluster_address"))
        if isinstance(network_ids, Mapping)
        else None
    )

    normalized = _normalized_payload(uplink.get("normalized_payload"))
    return Uplink(
        ids=ids,
        f_port=_strict_uint(uplink, "f_port", MAX_FPORT),
        f_cnt=_strict_uint(uplink, "f_cnt", MAX_FCNT),
        frm_payload=_payload(uplink),
        decoded_payload=decoded or None,
        received_at=parse_timestamp(uplink.get("received_at"))
        or parse_timestamp(data.get("received_at")),
        rx_metadata=tuple(RxMetadata.from_json(rx) for rx in rx_metadata),
        spreading_factor=parse_uint(lora.get("spreading_factor")),
        bandwidth=parse_uint(lora.get("bandwidth")),
        frequency=parse_uint(settings.get("frequency")),
        consumed_airtime=parse_duration(uplink.get("consumed_airtime")),
        confirmed=uplink.get("confirmed") is True,
        simulated=data.get("simulated") is True,
        version_ids=(
            VersionIds.from_json(version_ids)
            if isinstance(version_ids, Mapping)
            else None
        ),
        cluster_address=(
            cluster_address
            if cluster_address and _HOST.match(cluster_address)
            else None
        ),
        last_battery_percentage=battery_percentage(
            uplink.get("last_battery_percentage")
        ),
        location=device_location(uplink.get("locations"), normalized),
        normalized_payload=normalized,
        decoded_payload_warnings=_warnings(uplink.get("decoded_payload_warnings")),
        normalized_payload_warnings=_warnings(
            uplink.get("normalized_payload_warnings")
        ),
    )
