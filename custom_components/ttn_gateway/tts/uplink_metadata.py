"""Radio metadata, position and battery of an uplink (lorawan-stack ``messages.proto``).

The gateways that heard it (``RxMetadata``), the device's position
(``ApplicationUplink.locations`` or the normalized payload) and the battery
level of its last DevStatusAns (``last_battery_percentage``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .primitives import parse_float, parse_str

# The gateway ID TTS gives traffic that Packet Broker forwarded from another network.
PACKET_BROKER = "packetbroker"
MAX_LATITUDE = 90.0
MAX_LONGITUDE = 180.0
MAX_PERCENTAGE = 100.0
# Sources of uplink_message.locations, most trusted first: what the device's
# own payload says, then what the user set; other keys (solvers) after those.
_LOCATION_SERVICES = ("frm-payload", "user")


@dataclass(frozen=True, slots=True)
class RxMetadata:
    """How one gateway heard an uplink."""

    gateway_id: str | None
    rssi: float | None
    snr: float | None
    # Forwarded by Packet Broker from a gateway of another network.
    via_packet_broker: bool = False

    @classmethod
    def from_json(cls, data: object) -> RxMetadata:
        """Parse one entry of ``rx_metadata``."""
        raw: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        gateway_ids = raw.get("gateway_ids")
        gateway_id = (
            parse_str(gateway_ids.get("gateway_id"))
            if isinstance(gateway_ids, Mapping)
            else None
        )
        rssi = parse_float(raw.get("rssi"))
        if rssi is None:
            rssi = parse_float(raw.get("channel_rssi"))
        return cls(
            gateway_id=gateway_id,
            rssi=rssi,
            snr=parse_float(raw.get("snr")),
            via_packet_broker=isinstance(raw.get("packet_broker"), Mapping)
            or gateway_id == PACKET_BROKER,
        )


@dataclass(frozen=True, slots=True)
class Location:
    """Where a device is: degrees, metres above sea level, accuracy in metres."""

    latitude: float
    longitude: float
    altitude: float | None = None
    accuracy: float | None = None
    source: str | None = None

    @classmethod
    def from_values(
        cls,
        latitude: object,
        longitude: object,
        altitude: object = None,
        accuracy: object = None,
        source: object = None,
    ) -> Location | None:
        """A position within range; None otherwise.

        Exactly 0, 0 is what GPS modules send without a fix: not a position.
        """
        lat, lon = parse_float(latitude), parse_float(longitude)
        if lat is None or lon is None:
            return None
        if (
            abs(lat) > MAX_LATITUDE
            or abs(lon) > MAX_LONGITUDE
            or (lat == 0 and lon == 0)
        ):
            return None
        alt, acc = parse_float(altitude), parse_float(accuracy)
        return cls(
            latitude=lat,
            longitude=lon,
            altitude=alt,
            accuracy=acc if acc is not None and acc >= 0 else None,
            source=parse_str(source),
        )

    @classmethod
    def from_json(cls, data: object) -> Location | None:
        """Parse a TTS ``Location`` object; None when it is not a position.

        TTS leaves zero values out of its JSON (``pkg/jsonpb/ttn.go``: protojson
        without ``EmitUnpopulated``), so a missing coordinate is 0: a position
        on the equator or the prime meridian. Both missing is no position.
        """
        if not isinstance(data, Mapping):
            return None
        if "latitude" not in data and "longitude" not in data:
            return None
        return cls.from_values(
            data.get("latitude", 0.0),
            data.get("longitude", 0.0),
            data.get("altitude"),
            data.get("accuracy"),
            data.get("source"),
        )


def _normalized_location(
    measurements: tuple[Mapping[str, Any], ...] | None,
) -> Location | None:
    """The last ``position`` of the normalized payload.

    lorawan-devices ``lib/payload.json``: ``position.latitude``/``longitude``
    in degrees.
    """
    for measurement in reversed(measurements or ()):
        position = measurement.get("position")
        if isinstance(position, Mapping) and (
            location := Location.from_values(
                position.get("latitude"),
                position.get("longitude"),
                source="normalized_payload",
            )
        ):
            return location
    return None


def device_location(
    locations: object, normalized: tuple[Mapping[str, Any], ...] | None = None
) -> Location | None:
    """The most trusted position.

    The payload's own (TTS's ``frm-payload``, then the normalized payload's),
    then the user's, then solvers'.
    """
    if not isinstance(locations, Mapping):
        return _normalized_location(normalized)
    if (own := Location.from_json(locations.get("frm-payload"))) is not None:
        return own
    if (from_normalized := _normalized_location(normalized)) is not None:
        return from_normalized
    services = [name for name in _LOCATION_SERVICES if name in locations]
    services += sorted(
        name
        for name in locations
        if isinstance(name, str) and name not in _LOCATION_SERVICES
    )
    for service in services:
        if (location := Location.from_json(locations[service])) is not None:
            return location
    return None


def battery_percentage(data: object) -> float | None:
    """``last_battery_percentage.value``: 0 to 100, else None."""
    if not isinstance(data, Mapping):
        return None
    value = parse_float(data.get("value", 0))
    if value is None or not 0 <= value <= MAX_PERCENTAGE:
        return None
    return value
