"""Real devices: every vendor codec example of the Device Repository, decoded.

Each example of ``fixtures/device_repository/examples.json`` (bytes, the codec's
decoded output and normalized output, from TheThingsNetwork/lorawan-devices
``vendor/<vendor>/*-codec.yaml``) is decoded with the Automatic decoder as its
uplink would be. Per example: every numeric field is a numeric sensor, every
value whose record names a unit carries that unit, every normalized field has
the device class and unit of the schema (``NORMALIZED_EXPECTED`` in
``scripts/decoder_coverage.py``, written from ``lib/payload.json``), and no
reading is named after an array index where the entry has a name.
"""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.ttn_gateway.decoders import Decoder, describe_reading
from scripts.decoder_coverage import NORMALIZED_EXPECTED, cover, main

from .device_repository import DeviceRepositoryExample, load_examples, load_schema

EXAMPLES = load_examples()


def _id(example: DeviceRepositoryExample) -> str:
    index = [e for e in EXAMPLES if e["codec_path"] == example["codec_path"]].index(
        example
    )
    return f"{example['codec_path'].removeprefix('vendor/')}#{index + 1}"


@pytest.mark.parametrize("example", EXAMPLES, ids=_id)
def test_example(example: DeviceRepositoryExample) -> None:
    """Numbers numeric, units kept, normalized fields right, no index names."""
    result = cover(example)
    assert result.numeric_missing == []
    assert result.units_missing == []
    assert result.normalized_wrong == []
    assert result.index_names == []
    if example["normalized"] and result.normalized:
        assert result.decoded.decoder is Decoder.NORMALIZED
    for key, reading in result.decoded.readings.items():
        description = describe_reading(key, reading.name)
        assert description is not None, key
        if description.binary:
            assert isinstance(reading.value, bool), key


def test_expectations_cover_the_schema() -> None:
    """The table of expectations names every leaf but the time and position."""
    paths = {field["path"] for field in load_schema()["fields"]}
    assert set(NORMALIZED_EXPECTED) == paths - {
        "time",
        "position.latitude",
        "position.longitude",
    }


def _readings(
    codec: str, index: int = 0
) -> dict[str, tuple[Any, str | None, Any, Any]]:
    example = [e for e in EXAMPLES if e["codec_path"] == f"vendor/{codec}"][index]
    result = cover(example)
    shown: dict[str, tuple[Any, str | None, Any, Any]] = {}
    for key, reading in result.decoded.readings.items():
        description = describe_reading(key, reading.name)
        assert description is not None
        name = description.name or description.translation_key
        assert name is not None
        shown[name] = (
            reading.value,
            description.unit,
            None if description.device_class is None else str(description.device_class),
            None if description.state_class is None else str(description.state_class),
        )
    return shown


@pytest.mark.parametrize(
    ("codec", "name", "expected"),
    [
        # {displayName, unit, value}: named by displayName, with the unit.
        (
            "decentlab/dl-sht35-codec.yaml",
            "Battery voltage",
            (3.168, "V", "voltage", "measurement"),
        ),
        (
            "decentlab/dl-iam-codec.yaml",
            "Barometric pressure",
            (96412, "Pa", "atmospheric_pressure", "measurement"),
        ),
        # {name, unit, values: [t=0, t-1, ...]}: the newest, first value.
        (
            "adeunis/temp-codec.yaml",
            "temperature 1",
            (43.5, "°C", "temperature", "measurement"),
        ),
        # SenseCAP's measurement IDs: 4097 air temperature, 4098 air humidity.
        (
            "sensecap/sensecap210x-codec.yaml",
            "Air temperature",
            (21.4, "°C", "temperature", "measurement"),
        ),
        (
            "sensecap/sensecap210x-codec.yaml",
            "Air humidity",
            (31.4, "%", "humidity", "measurement"),
        ),
    ],
)
def test_named_readings_with_units(
    codec: str, name: str, expected: tuple[Any, ...]
) -> None:
    """Records become one sensor each, named as the vendor names them."""
    found = [
        shown
        for index in range(3)
        if len([e for e in EXAMPLES if e["codec_path"] == f"vendor/{codec}"]) > index
        and (shown := _readings(codec, index).get(name)) is not None
    ]
    assert found, name
    assert found[0] == expected


def test_normalized_example_entities() -> None:
    """Browan's TBMS100 motion sensor: normalized fields with class and unit."""
    shown = _readings("browan/tbms100-codec.yaml")
    assert shown["normalized_air_temperature"] == (
        20,
        "°C",
        "temperature",
        "measurement",
    )
    assert shown["normalized_battery"] == (3.6, "V", "voltage", "measurement")
    assert shown["normalized_action_motion_detected"] == (True, None, "motion", None)


def test_figures_meet_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    """The figure script's targets: >= 95 % numeric and units, every normalized
    field right, no index names."""
    assert main() == 0
    out = capsys.readouterr().out
    assert "Corpus: " in out
    assert "Readings named after an array index of a named entry: 0" in out
