"""SenseCAP's measurement IDs: the name and unit each ``measurementId`` stands for.

SenseCAP codecs in the Device Repository (TheThingsNetwork/lorawan-devices
``vendor/sensecap/*-codec.yaml``, e.g. ``sensecap2120-8-in-1-codec.yaml``)
report telemetry as ``{"measurementId": 4097, "measurementValue": 21.4}``;
the IDs are SenseCAP's measurement list, as their decoders document them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Measurement:
    """What a SenseCAP measurement ID measures."""

    name: str
    unit: str | None


_MEASUREMENTS: dict[int, Measurement] = {
    4097: Measurement("Air temperature", "°C"),
    4098: Measurement("Air humidity", "%RH"),
    4099: Measurement("Light intensity", "lux"),
    4100: Measurement("CO2", "ppm"),
    4101: Measurement("Barometric pressure", "Pa"),
    4102: Measurement("Soil temperature", "°C"),
    4103: Measurement("Soil moisture", "%"),
    4104: Measurement("Wind direction", "°"),
    4105: Measurement("Wind speed", "m/s"),
    4106: Measurement("pH", None),
    4107: Measurement("Light quantum", "umol/m²s"),
    4108: Measurement("Electrical conductivity", "dS/m"),
    4109: Measurement("Dissolved oxygen", "mg/L"),
    4110: Measurement("Soil volumetric water content", "%"),
    4113: Measurement("Rainfall hourly", "mm/h"),
}


def sensecap_measurement(measurement_id: object) -> Measurement | None:
    """The measurement an ID (number or numeric text) stands for; else None."""
    if isinstance(measurement_id, str) and measurement_id.strip().isdecimal():
        measurement_id = int(measurement_id)
    if isinstance(measurement_id, bool) or not isinstance(measurement_id, int):
        return None
    return _MEASUREMENTS.get(measurement_id)
