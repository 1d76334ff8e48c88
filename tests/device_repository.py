"""Uplink examples of The Things Network's Device Repository, as test data.

``fixtures/device_repository/examples.json`` holds the ``uplinkDecoder.examples``
of vendor codec files (``vendor/<vendor>/<model>-codec.yaml`` in
``TheThingsNetwork/lorawan-devices``), each with the file and the commit it was read
at. The values are those of the YAML: ``input.bytes`` as hex, ``output.data`` /
``warnings`` / ``errors`` and ``normalizedOutput.data`` / ``warnings`` / ``errors``
(``None`` where the example has no such key), read with only ``true``/``false``
as booleans (YAML 1.2): ``install: no`` of ws301-codec.yaml stays the text
``"no"``. They are what the vendor's codec
returns, so they show the shapes real decoders produce: Decentlab's
``{displayName, unit, value}`` records, Adeunis' ``{name, unit, values}``, IMST's
OBIS lists, SenseCAP's ``messages``, numbers as text, and normalized payloads that
break the schema.

``fixtures/device_repository/normalized-schema.json`` lists every leaf field of the
normalized payload schema (``lib/payload.json`` of the same repository): dotted
path, JSON type, unit as the schema states it, limits.
"""

from __future__ import annotations

from functools import cache
import json
from pathlib import Path
from typing import Any, TypedDict

FIXTURES = Path(__file__).parent / "fixtures" / "device_repository"


class DeviceRepositoryExample(TypedDict):
    """One uplink example of a vendor codec file."""

    vendor: str
    codec_path: str
    commit: str
    description: str | None
    f_port: int
    bytes_hex: str
    decoded: Any
    decoded_warnings: list[str] | None
    decoded_errors: list[str] | None
    normalized: list[Any] | None
    normalized_warnings: list[str] | None
    normalized_errors: list[str] | None


class SchemaSource(TypedDict):
    """Where the schema was read."""

    repository: str
    path: str
    commit: str
    schema_id: str


class _SchemaFieldRequired(TypedDict):
    path: str
    type: str | list[str]
    description: str | None
    unit: str | None


class SchemaField(_SchemaFieldRequired, total=False):
    """One leaf of a normalized measurement (``air.temperature``)."""

    definition: str
    minimum: float
    maximum: float
    exclusiveMaximum: float
    enum: list[str]
    format: str


class NormalizedSchema(TypedDict):
    """The normalized payload schema, flattened to its leaves."""

    source: SchemaSource
    payload: str
    unit_note: str
    fields: list[SchemaField]


@cache
def load_examples() -> tuple[DeviceRepositoryExample, ...]:
    """Return every recorded codec example."""
    raw = (FIXTURES / "examples.json").read_text(encoding="utf-8")
    examples: list[DeviceRepositoryExample] = json.loads(raw)
    return tuple(examples)


@cache
def load_schema() -> NormalizedSchema:
    """Return the flattened normalized payload schema."""
    raw = (FIXTURES / "normalized-schema.json").read_text(encoding="utf-8")
    schema: NormalizedSchema = json.loads(raw)
    return schema


def example_bytes(example: DeviceRepositoryExample) -> bytes:
    """Return the ``FRMPayload`` of an example."""
    return bytes.fromhex(example["bytes_hex"])


def normalized_leaves(measurement: Any, prefix: str = "") -> list[str]:
    """Return the dotted paths of the leaves of one normalized measurement.

    A value that is not an object (a list, a number) is a leaf, so a codec
    that puts a list where the schema wants an object shows up as that path.
    """
    if not isinstance(measurement, dict):
        return [prefix]
    paths: list[str] = []
    for key, value in measurement.items():
        paths.extend(normalized_leaves(value, f"{prefix}.{key}" if prefix else key))
    return paths
