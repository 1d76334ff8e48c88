"""The Device Repository corpus itself: complete, traceable, and what it covers."""

from __future__ import annotations

from collections import Counter
import re

import pytest

from .device_repository import (
    DeviceRepositoryExample,
    example_bytes,
    load_examples,
    load_schema,
    normalized_leaves,
)

COMMIT = re.compile(r"^[0-9a-f]{40}$")

# Schema fields at least one codec example of the corpus produces. A change of
# the corpus that adds or loses one must show here.
COVERED_FIELDS = [
    "action.motion.count",
    "action.motion.detected",
    "air.lightIntensity",
    "air.relativeHumidity",
    "air.temperature",
    "battery",
    "metering.water.total",
    "water.leak",
    "water.temperature.max",
    "water.temperature.min",
]

# Normalized output of real codecs that the schema does not allow: Laird's
# RS1xx sends `air` as a list of measurements, an older Milesight EM300-TH
# codec a measurement `{"battVolt": 50}`.
OUTSIDE_SCHEMA = ["air", "battVolt"]


def test_corpus_has_enough_vendors_and_examples() -> None:
    examples = load_examples()
    vendors = Counter(example["vendor"] for example in examples)
    assert len(vendors) >= 15
    assert len(examples) >= 150
    assert sum(1 for e in examples if e["normalized"] is not None) >= 15


@pytest.mark.parametrize(
    "example", load_examples(), ids=lambda e: f"{e['codec_path']}:{e['description']}"
)
def test_every_example_is_traceable(example: DeviceRepositoryExample) -> None:
    assert example["codec_path"].startswith(f"vendor/{example['vendor']}/")
    assert example["codec_path"].endswith("-codec.yaml")
    assert COMMIT.match(example["commit"])
    assert 1 <= example["f_port"] <= 255
    # The example decodes to data or to errors, as in the codec file.
    assert example["decoded"] is not None or example["decoded_errors"]


def test_bytes_decode_from_hex() -> None:
    for example in load_examples():
        payload = example_bytes(example)
        assert payload
        assert payload.hex() == example["bytes_hex"]


def test_normalized_payloads_are_lists_of_measurements() -> None:
    for example in load_examples():
        if example["normalized"] is None:
            continue
        assert isinstance(example["normalized"], list)
        assert all(isinstance(m, dict) for m in example["normalized"])


def test_schema_is_traceable_and_complete() -> None:
    schema = load_schema()
    assert schema["source"]["repository"] == "TheThingsNetwork/lorawan-devices"
    assert schema["source"]["path"] == "lib/payload.json"
    assert COMMIT.match(schema["source"]["commit"])
    paths = [field["path"] for field in schema["fields"]]
    assert len(paths) == len(set(paths)) == 29
    units = {field["path"]: field["unit"] for field in schema["fields"]}
    assert units["air.temperature"] == "°C"
    assert units["air.pressure"] == "hPa"
    assert units["battery"] == "V"
    assert units["metering.water.total"] == "L"
    assert units["soil.ec"] == "dS/m"


def test_report_of_covered_schema_fields() -> None:
    schema_paths = {field["path"] for field in load_schema()["fields"]}
    produced = {
        leaf
        for example in load_examples()
        for measurement in example["normalized"] or []
        for leaf in normalized_leaves(measurement)
    }
    assert sorted(produced & schema_paths) == COVERED_FIELDS
    assert sorted(produced - schema_paths) == OUTSIDE_SCHEMA
