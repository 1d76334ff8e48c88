"""How well the decoders show real devices: figures over the Device Repository corpus.

Over the vendor codec examples in ``tests/fixtures/device_repository/examples.json``
(TheThingsNetwork/lorawan-devices ``vendor/<vendor>/*-codec.yaml``), each decoded
with the Automatic decoder as an uplink would be, it prints:

- the share of numeric fields of the decoded payload (numbers and numbers sent
  as text) shown as numeric sensors;
- the share of values whose record names a unit (``{value, unit}``…) shown
  with that unit;
- the share of normalized payload fields shown with the device class and unit
  the schema (``lib/payload.json``) gives them;
- readings named after an array index where the entry has a name;
- the corpus size: vendors, examples, examples with a normalized payload.

Run from the repository root: ``.venv/bin/python -m scripts.decoder_coverage``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
import math
from pathlib import Path
import sys
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.ttn_gateway.decoders import (
    Decoded,
    Decoder,
    Reading,
    decode_uplink,
    describe_reading,
)
from custom_components.ttn_gateway.decoders.payload_formatter import (
    _slug,
)
from custom_components.ttn_gateway.decoders.units import (
    parse_number,
    parse_unit,
)
from tests.device_repository import (
    DeviceRepositoryExample,
    example_bytes,
    load_examples,
)

# What Home Assistant shows for each field of lib/payload.json: the entity
# key, device class and unit, from the schema's descriptions ("Air
# temperature (°C)"). Wind direction has a device class only on Home
# Assistant versions that know one.
NORMALIZED_EXPECTED: dict[str, tuple[str, str | None, str | None]] = {
    "battery": ("normalized_battery", "voltage", "V"),
    "soil.depth": ("normalized_soil_depth", "distance", "cm"),
    "soil.moisture": ("normalized_soil_moisture", "moisture", "%"),
    "soil.temperature": ("normalized_soil_temperature", "temperature", "°C"),
    "soil.ec": ("normalized_soil_ec", "conductivity", "mS/cm"),
    "soil.pH": ("normalized_soil_ph", "ph", None),
    "soil.n": ("normalized_soil_n", None, "ppm"),
    "soil.p": ("normalized_soil_p", None, "ppm"),
    "soil.k": ("normalized_soil_k", None, "ppm"),
    "air.location": ("normalized_air_location", "enum", None),
    "air.temperature": ("normalized_air_temperature", "temperature", "°C"),
    "air.relativeHumidity": ("normalized_air_relative_humidity", "humidity", "%"),
    "air.pressure": ("normalized_air_pressure", "atmospheric_pressure", "hPa"),
    "air.co2": ("normalized_air_co2", "carbon_dioxide", "ppm"),
    "air.lightIntensity": ("normalized_air_light_intensity", "illuminance", "lx"),
    "wind.speed": ("normalized_wind_speed", "wind_speed", "m/s"),
    "wind.direction": ("normalized_wind_direction", "wind_direction", "°"),
    "water.leak": ("normalized_water_leak", "moisture", None),
    "water.temperature.min": ("normalized_water_temperature_min", "temperature", "°C"),
    "water.temperature.max": ("normalized_water_temperature_max", "temperature", "°C"),
    "water.temperature.avg": ("normalized_water_temperature_avg", "temperature", "°C"),
    "water.temperature.current": (
        "normalized_water_temperature_current",
        "temperature",
        "°C",
    ),
    "metering.water.total": ("normalized_metering_water_total", "water", "L"),
    "action.motion.detected": ("normalized_action_motion_detected", "motion", None),
    "action.motion.count": ("normalized_action_motion_count", None, None),
    "action.contactState": ("normalized_action_contact_state", "opening", None),
}
# A battery above this many volts is a percentage (as the decoder reads it).
_BATTERY_PERCENT = ("normalized_battery_percent", "battery", "%")
_MAX_BATTERY_VOLTS = 20.0
_NAME_KEYS = (
    "displayName",
    "display_name",
    "name",
    "label",
    "type",
    "measurement",
    "OBIS_ID",
)
_VALUE_KEYS = ("value", "measurementValue", "values")
# Identifiers, not values: SenseCAP's measurement IDs name a reading.
_IDENTIFIER_KEYS = frozenset({"measurementId"})


@dataclass
class ExampleCoverage:
    """What one example's decoded payload became."""

    example: DeviceRepositoryExample
    decoded: Decoded
    numeric: list[str] = field(default_factory=list)
    numeric_missing: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    units_missing: list[str] = field(default_factory=list)
    normalized: list[str] = field(default_factory=list)
    normalized_wrong: list[str] = field(default_factory=list)
    index_names: list[str] = field(default_factory=list)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and (parsed := parse_number(value)) is not None:
        return float(parsed[0])
    return None


def _record_value(item: Mapping[str, Any]) -> object:
    value = next((item[key] for key in _VALUE_KEYS if key in item), None)
    if isinstance(value, list):
        value = next(
            (entry for entry in value if not isinstance(entry, Mapping | list)),
            None,
        )
    return value


def _leaves(value: object, path: str) -> Iterator[tuple[str, object, str | None]]:
    """(path, value, unit named by its record) of each value of a payload."""
    if isinstance(value, Mapping):
        if any(key in value for key in _VALUE_KEYS) and (
            isinstance(value.get("unit"), str)
            or any(isinstance(value.get(key), str) for key in _NAME_KEYS)
            or "measurementId" in value
        ):
            unit = value.get("unit")
            yield path, _record_value(value), unit if isinstance(unit, str) else None
            value = {
                key: item
                for key, item in value.items()
                if key not in (*_NAME_KEYS, *_VALUE_KEYS, "unit")
            }
        for key, item in value.items():
            if key not in _IDENTIFIER_KEYS:
                yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value, start=1):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value, None


def _take(
    pool: list[tuple[float, Reading, str]], value: float, unit: str | None
) -> bool:
    """Find (and use up) a numeric reading with this value (and unit)."""
    for index, (shown, _reading, shown_unit) in enumerate(pool):
        if math.isclose(shown, value, rel_tol=1e-9, abs_tol=1e-9) and (
            unit is None or shown_unit == unit
        ):
            del pool[index]
            return True
    return False


def _numeric_pool(readings: Mapping[str, Reading]) -> list[tuple[float, Reading, str]]:
    pool: list[tuple[float, Reading, str]] = []
    for key, reading in readings.items():
        value = reading.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        description = describe_reading(key, reading.name)
        pool.append(
            (float(value), reading, (description.unit or "") if description else "")
        )
    return pool


def _index_names(decoded: object, readings: Mapping[str, Reading]) -> list[str]:
    """Readings named ``<list> <n>`` where the list's entry <n> has a name."""
    found: list[str] = []

    def walk(value: object, path: tuple[str, ...]) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, (*path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value, start=1):
                named = isinstance(item, Mapping) and any(
                    isinstance(item.get(key), str) and item.get(key, "").strip()
                    for key in _NAME_KEYS
                )
                if named and (slug := _slug((*path, str(index)))):
                    found.extend(
                        key
                        for key in readings
                        if key.rpartition("__")[2].split("_", 2)[-1].startswith(slug)
                        or key.endswith(f"_{slug}")
                        or f"_{slug}_" in key
                    )
                walk(item, (*path, str(index)))

    walk(decoded, ())
    return sorted(set(found))


def _normalized_fields(measurements: list[Any]) -> Iterator[tuple[str, object]]:
    for measurement in measurements:
        if isinstance(measurement, Mapping):
            yield from _flat(measurement, "")


def _flat(value: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, object]]:
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, Mapping):
            yield from _flat(item, path)
        else:
            yield path, item


def _expected(path: str, value: object) -> tuple[str, str | None, str | None]:
    if (
        path == "battery"
        and isinstance(value, int | float)
        and value > _MAX_BATTERY_VOLTS
    ):
        return _BATTERY_PERCENT
    key, device_class, unit = NORMALIZED_EXPECTED[path]
    description = describe_reading(key)
    if path == "wind.direction" and description and description.device_class is None:
        device_class = None
    return key, device_class, unit


def cover(example: DeviceRepositoryExample) -> ExampleCoverage:
    """Decode one example as its uplink would be, and check what it shows."""
    decoded_payload = (
        example["decoded"] if isinstance(example["decoded"], Mapping) else None
    )
    normalized = example["normalized"]
    decoded = decode_uplink(
        Decoder.AUTO,
        example["f_port"],
        example_bytes(example),
        decoded_payload or None,
        [item for item in normalized or [] if isinstance(item, Mapping)] or None,
    )
    result = ExampleCoverage(example, decoded)
    pool = _numeric_pool(decoded.readings)
    unit_pool = list(pool)
    for path, value, unit in _leaves(decoded_payload or {}, ""):
        if (number := _number(value)) is None:
            continue
        result.numeric.append(path)
        if not _take(pool, number, None):
            result.numeric_missing.append(path)
        if unit is not None and (wanted := parse_unit(unit)) is not None:
            result.units.append(path)
            if not _take(unit_pool, number, wanted):
                result.units_missing.append(f"{path} ({unit})")
    for path, value in _normalized_fields(normalized or []):
        if path not in NORMALIZED_EXPECTED or value == "":
            # Not in the schema (TTS drops it) or an empty text that says nothing.
            continue
        result.normalized.append(path)
        key, device_class, unit = _expected(path, value)
        description = describe_reading(key)
        shown_class = (
            None
            if description is None or description.device_class is None
            else str(description.device_class)
        )
        if (
            key not in decoded.readings
            or description is None
            or (shown_class, description.unit) != (device_class, unit)
        ):
            result.normalized_wrong.append(path)
    result.index_names = _index_names(decoded_payload, decoded.readings)
    return result


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else "0/0"


def main() -> int:
    """Print the figures; exit 1 when a target is missed."""
    examples = load_examples()
    results = [cover(example) for example in examples]
    numeric = sum(len(r.numeric) for r in results)
    numeric_shown = numeric - sum(len(r.numeric_missing) for r in results)
    units = sum(len(r.units) for r in results)
    units_shown = units - sum(len(r.units_missing) for r in results)
    normalized = sum(len(r.normalized) for r in results)
    normalized_right = normalized - sum(len(r.normalized_wrong) for r in results)
    index_names = [name for r in results for name in r.index_names]
    vendors = Counter(example["vendor"] for example in examples)
    with_normalized = sum(1 for example in examples if example["normalized"])
    decoders = Counter(str(r.decoded.decoder) for r in results)
    print(
        f"Corpus: {len(vendors)} vendors, {len(examples)} examples, "
        f"{with_normalized} with a normalized payload"
    )
    print(f"Decoder used: {dict(sorted(decoders.items()))}")
    print(f"Numeric fields shown as numeric sensors: {_share(numeric_shown, numeric)}")
    print(
        f"Values whose record names a unit, shown with it: {_share(units_shown, units)}"
    )
    print(
        "Normalized fields with the schema's device class and unit: "
        f"{_share(normalized_right, normalized)}"
    )
    print(f"Readings named after an array index of a named entry: {len(index_names)}")
    for result in results:
        missing = (
            result.numeric_missing + result.units_missing + result.normalized_wrong
        )
        if missing or result.index_names:
            print(f"  {result.example['codec_path']}: {missing + result.index_names}")
    targets_met = (
        numeric_shown >= 0.95 * numeric
        and units_shown >= 0.95 * units
        and normalized_right == normalized
        and not index_names
    )
    return 0 if targets_met else 1


if __name__ == "__main__":
    sys.exit(main())
