"""Where a gateway is: the location of its antennas in the gateway registry.

``GET /api/v3/gateways`` with ``antennas`` in the field mask gives
``antennas[].location`` (``Location`` in ``api/ttn/lorawan/v3/metadata.proto``).
The Identity Server blanks it for a gateway the key may not view unless the
gateway's location is public (``Gateway.PublicSafe``, ``pkg/ttnpb/public.go``).
With ``update_location_from_status`` the Gateway Server writes the location
a gateway reports in its status messages into ``antennas[0]`` with source
``SOURCE_GPS`` (``handleLocationUpdates``, ``pkg/gatewayserver/gatewayserver.go``),
so the listing is the one place to read it.

Protobuf omits zero values: a missing coordinate is 0, and a location with
neither coordinate is no location at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import math

MAX_LATITUDE = 90.0
MAX_LONGITUDE = 180.0


def _number(value: object, *, missing: float | None) -> float | None:
    """A finite JSON number; ``missing`` when absent, None when unreadable."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class AntennaLocation:
    """An antenna's position: degrees, metres above sea level, accuracy in metres."""

    latitude: float
    longitude: float
    altitude: float = 0.0
    accuracy: float = 0.0
    source: str | None = None

    @classmethod
    def from_json(cls, data: object) -> AntennaLocation | None:
        """Parse a ``Location``; None when it gives no position.

        No position: neither coordinate (both omitted as zero), a coordinate
        that is no number, or one out of range.
        """
        if not isinstance(data, Mapping):
            return None
        raw_latitude, raw_longitude = data.get("latitude"), data.get("longitude")
        if raw_latitude is None and raw_longitude is None:
            return None
        latitude = _number(raw_latitude, missing=0.0)
        longitude = _number(raw_longitude, missing=0.0)
        if (
            latitude is None
            or longitude is None
            or abs(latitude) > MAX_LATITUDE
            or abs(longitude) > MAX_LONGITUDE
        ):
            return None
        accuracy = _number(data.get("accuracy"), missing=0.0)
        source = data.get("source")
        return cls(
            latitude=latitude,
            longitude=longitude,
            altitude=_number(data.get("altitude"), missing=0.0) or 0.0,
            accuracy=accuracy if accuracy is not None and accuracy > 0 else 0.0,
            source=source if isinstance(source, str) and source else None,
        )

    @classmethod
    def from_antennas(cls, antennas: object) -> AntennaLocation | None:
        """The first antenna's position that there is (TTS updates the first)."""
        if type(antennas) is not list:
            return None
        for antenna in antennas:
            if isinstance(antenna, Mapping) and (
                location := cls.from_json(antenna.get("location"))
            ):
                return location
        return None
