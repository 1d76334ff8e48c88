"""Applications and their end devices as the Identity Server lists them.

``GET /api/v3/applications/{id}`` and ``GET /api/v3/applications/{id}/devices``
(lorawan-stack ``api/ttn/lorawan/v3/application.proto``, ``end_device.proto``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .primitives import IDENTIFIER, VersionIds, as_mapping, parse_str


@dataclass(frozen=True, slots=True)
class Application:
    """A TTS application as the Identity Server describes it."""

    application_id: str
    name: str | None = None
    description: str | None = None

    @classmethod
    def from_json(cls, data: object, application_id: str) -> Application:
        """Parse ``GET /applications/{id}``; the ID asked for when none is given."""
        raw = as_mapping(data)
        ids = as_mapping(raw.get("ids"))
        return cls(
            application_id=parse_str(ids.get("application_id")) or application_id,
            name=_bounded_name(raw.get("name")),
            description=_bounded_name(raw.get("description")),
        )


@dataclass(frozen=True, slots=True)
class EndDeviceInfo:
    """An end device as the application's device list names it."""

    application_id: str
    device_id: str
    name: str | None = None
    description: str | None = None
    dev_eui: str | None = None
    version_ids: VersionIds | None = None

    @classmethod
    def from_json(cls, data: object) -> EndDeviceInfo | None:
        """Parse one item of ``GET /applications/{id}/devices``; None if unusable."""
        raw = as_mapping(data)
        ids = as_mapping(raw.get("ids"))
        application_ids = as_mapping(ids.get("application_ids"))
        application_id = parse_str(application_ids.get("application_id"))
        device_id = parse_str(ids.get("device_id"))
        if not (
            application_id
            and device_id
            and IDENTIFIER.match(application_id)
            and IDENTIFIER.match(device_id)
        ):
            return None
        version_ids = raw.get("version_ids")
        return cls(
            application_id=application_id,
            device_id=device_id,
            name=_bounded_name(raw.get("name")),
            description=_bounded_name(raw.get("description")),
            dev_eui=parse_str(ids.get("dev_eui")),
            version_ids=(
                VersionIds.from_json(version_ids)
                if isinstance(version_ids, Mapping)
                else None
            ),
        )


# Names and descriptions shown in Home Assistant are cut to this length.
MAX_NAME_LENGTH = 255


def _bounded_name(value: object) -> str | None:
    text = parse_str(value)
    if text is None or not text.strip():
        return None
    return text.strip()[:MAX_NAME_LENGTH]


@dataclass(frozen=True, slots=True)
class EndDeviceListing:
    """An application's device list; incomplete when it may lack devices."""

    devices: list[EndDeviceInfo]
    complete: bool
