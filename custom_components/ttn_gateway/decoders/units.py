"""Units as codecs write them, read into Home Assistant's units and device classes.

Home Assistant's own table (``DEVICE_CLASS_UNITS``) says which units exist
and which device classes take them; only spellings that codecs use and Home
Assistant does not (``℃``, ``%RH``, ``lux``, ``uS/cm``…) are listed here.
"""

from __future__ import annotations

from functools import lru_cache
import math
import re

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.components.sensor.const import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
)
from homeassistant.const import (
    DEGREE,
    LIGHT_LUX,
    PERCENTAGE,
    UnitOfElectricPotential,
    UnitOfPressure,
    UnitOfTemperature,
    UnitOfVolume,
)

# Longest unit text taken from a payload; longer ones are no unit.
MAX_UNIT_LENGTH = 16

# Codec spellings of units Home Assistant writes otherwise.
_ALIASES: dict[str, str] = {
    "℃": UnitOfTemperature.CELSIUS,
    "°c": UnitOfTemperature.CELSIUS,
    "c": UnitOfTemperature.CELSIUS,
    "degc": UnitOfTemperature.CELSIUS,
    "celsius": UnitOfTemperature.CELSIUS,
    "℉": UnitOfTemperature.FAHRENHEIT,
    "°f": UnitOfTemperature.FAHRENHEIT,
    "%rh": PERCENTAGE,
    "% rh": PERCENTAGE,
    "rh": PERCENTAGE,
    "lux": LIGHT_LUX,
    "lx": LIGHT_LUX,
    "hpa": UnitOfPressure.HPA,
    "mbar": UnitOfPressure.MBAR,
    "pa": UnitOfPressure.PA,
    "kpa": UnitOfPressure.KPA,
    "v": UnitOfElectricPotential.VOLT,
    "mv": UnitOfElectricPotential.MILLIVOLT,
    "deg": DEGREE,
    "degree": DEGREE,
    "degrees": DEGREE,
    "l": UnitOfVolume.LITERS,
    "m3": UnitOfVolume.CUBIC_METERS,
    "ug/m3": "µg/m³",
    "μg/m³": "µg/m³",
    "µg/m3": "µg/m³",
    "us/cm": "µS/cm",
    "μs/cm": "µS/cm",
    # 1 dS/m is 1 mS/cm.
    "ds/m": "mS/cm",
}
_NUMBER_WITH_UNIT = re.compile(
    r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s][^\d]{0,15})?\s*$"
)


@lru_cache(maxsize=1)
def _known_units() -> dict[str, str]:
    """Every unit some Home Assistant device class takes, by its text."""
    units: dict[str, str] = {}
    for allowed in DEVICE_CLASS_UNITS.values():
        for unit in allowed:
            if isinstance(unit, str):
                units[unit] = unit
    return units


@lru_cache(maxsize=512)
def known_unit(text: str) -> str | None:
    """Home Assistant's spelling of a unit it knows (or a codec's alias); else None."""
    text = text.strip()
    known = _known_units()
    if text in known:
        return known[text]
    folded = text.casefold()
    if folded in _ALIASES:
        return _ALIASES[folded]
    return next((unit for unit in known if unit.casefold() == folded), None)


def parse_unit(text: str) -> str | None:
    """Home Assistant's spelling of a record's unit; the text itself if unknown.

    None for no unit (empty, too long, or not printable).
    """
    text = text.strip()
    if not text or len(text) > MAX_UNIT_LENGTH or not text.isprintable():
        return None
    return known_unit(text) or text


def parse_number(text: str) -> tuple[float | int, str | None] | None:
    """``"24.1"`` → (24.1, None), ``"3.6 V"`` → (3.6, "V"); None for other text.

    Only a unit Home Assistant knows makes a text a number with a unit.
    """
    if len(text) > MAX_UNIT_LENGTH + 32:
        return None
    if (match := _NUMBER_WITH_UNIT.match(text)) is None:
        return None
    number_text, unit_text = match.groups()
    try:
        number: float | int = (
            int(number_text)
            if number_text.lstrip("+-").isdecimal()
            else float(number_text)
        )
    except ValueError:  # pragma: no cover - the pattern admits numbers only
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    # "3.6 V" is a number with its unit, "3 ok" is text.
    unit = None if unit_text is None else known_unit(unit_text)
    if unit_text is not None and unit is None:
        return None
    return number, unit


def device_classes_of(unit: str) -> list[SensorDeviceClass]:
    """The device classes that take a unit, in Home Assistant's order."""
    return [
        device_class
        for device_class, allowed in DEVICE_CLASS_UNITS.items()
        if unit in allowed and device_class is not SensorDeviceClass.MONETARY
    ]


def state_class_for(
    device_class: SensorDeviceClass | None, wanted: SensorStateClass
) -> SensorStateClass | None:
    """The wanted state class if the device class allows it.

    Else a meter's (total_increasing: energy, water, gas), else the class's
    first; none for classes without state classes.
    """
    if device_class is None:
        return wanted
    allowed = DEVICE_CLASS_STATE_CLASSES.get(device_class)
    if allowed is None:
        return wanted
    if wanted in allowed:
        return wanted
    if SensorStateClass.TOTAL_INCREASING in allowed:
        return SensorStateClass.TOTAL_INCREASING
    return next(iter(sorted(allowed)), None)


def device_class_for(unit: str | None, slug: str) -> SensorDeviceClass | None:
    """The device class a unit and a name imply.

    The first class the name suggests that takes the unit; else the one
    class that takes the unit (°C: temperature); else none (%: humidity,
    moisture, battery… the name must say which).
    """
    if unit is None:
        return None
    classes = device_classes_of(unit)
    for hint in class_hints(slug):
        if hint in classes:
            return hint
    return classes[0] if len(classes) == 1 else None


# Words of a field's name that say which device class a unit is meant as,
# checked from the name's last word back: (word, device class name).
_CLASS_WORDS: tuple[tuple[str, str], ...] = (
    ("temperature", "TEMPERATURE"),
    ("temp", "TEMPERATURE"),
    ("humidity", "HUMIDITY"),
    ("moisture", "MOISTURE"),
    ("battery", "BATTERY"),
    ("barometric", "ATMOSPHERIC_PRESSURE"),
    ("atmospheric", "ATMOSPHERIC_PRESSURE"),
    ("pressure", "PRESSURE"),
    ("co2", "CO2"),
    ("voltage", "VOLTAGE"),
    ("current", "CURRENT"),
    ("power", "POWER"),
    ("energy", "ENERGY"),
    ("water", "WATER"),
    ("gas", "GAS"),
    ("volume", "VOLUME"),
    ("distance", "DISTANCE"),
    ("level", "DISTANCE"),
    ("depth", "DISTANCE"),
    ("height", "DISTANCE"),
    ("wind", "WIND_SPEED"),
    ("speed", "SPEED"),
    ("direction", "WIND_DIRECTION"),
    ("illuminance", "ILLUMINANCE"),
    ("light", "ILLUMINANCE"),
    ("pm25", "PM25"),
    ("pm2", "PM25"),
    ("pm10", "PM10"),
    ("pm1", "PM1"),
    ("rssi", "SIGNAL_STRENGTH"),
    ("noise", "SOUND_PRESSURE"),
    ("sound", "SOUND_PRESSURE"),
    ("rain", "PRECIPITATION"),
    ("rainfall", "PRECIPITATION"),
    ("precipitation", "PRECIPITATION"),
    ("frequency", "FREQUENCY"),
    ("duration", "DURATION"),
    ("interval", "DURATION"),
    ("conductivity", "CONDUCTIVITY"),
    ("ec", "CONDUCTIVITY"),
    ("ph", "PH"),
    ("weight", "WEIGHT"),
    ("irradiance", "IRRADIANCE"),
    ("radiation", "IRRADIANCE"),
)


_QUALIFIERS = frozenset({"wind", "barometric", "atmospheric"})


def class_hints(slug: str) -> list[SensorDeviceClass]:
    """The device classes a field's name suggests, most telling first."""
    hints: list[SensorDeviceClass] = []
    words = slug.split("_")
    # Words that qualify another (wind speed, barometric pressure) come first.
    ordered = [word for word in words if word in _QUALIFIERS]
    ordered += [word for word in reversed(words) if word not in _QUALIFIERS]
    for word in ordered:
        for hint, name in _CLASS_WORDS:
            device_class = SensorDeviceClass[name]
            if word == hint and device_class not in hints:
                hints.append(device_class)
    return hints
