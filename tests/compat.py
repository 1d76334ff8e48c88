"""What the tests need to run on both ends of the supported HA range.

The oldest supported Home Assistant is 2025.4; the newest is whatever the
newest pytest-homeassistant-custom-component pins. Helpers here pick the API
each version has, so the tests themselves stay the same on both.
"""

from __future__ import annotations

from enum import Enum
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from syrupy.assertion import SnapshotAssertion


def device_by_identifier(
    registry: dr.DeviceRegistry, identifier: tuple[str, str], config_entry_id: str
) -> dr.DeviceEntry | None:
    """The entry's device with an identifier.

    HA 2026.8 made identifiers unique per config entry only and deprecated
    ``async_get_device(identifiers=...)`` (tests fail on its use); before
    2026.8 the per-entry look-up does not exist.
    """
    if by_identifier := getattr(registry, "async_get_device_by_identifier", None):
        device: dr.DeviceEntry | None = by_identifier(identifier, config_entry_id)
        return device
    device = registry.async_get_device(identifiers={identifier})
    if device is None or device_config_entry_id(device) != config_entry_id:
        return None
    return device


def device_config_entry_id(device: dr.DeviceEntry) -> str | None:
    """The one config entry of a device.

    HA 2026.8 gave a device a single ``config_entry_id`` and deprecated the
    ``config_entries`` set (reading it fails in tests); 2025.4 has only the set.
    """
    if hasattr(type(device), "config_entry_id"):
        entry_id: str | None = device.config_entry_id  # type: ignore[attr-defined]
        return entry_id
    entries = device.config_entries
    assert len(entries) <= 1, entries
    return next(iter(entries), None)


def user_visible_log(caplog: pytest.LogCaptureFixture) -> str:
    """The captured log as a user sees it: INFO and above, with tracebacks.

    HA 2026 logs the full error of a failed coordinator update at DEBUG,
    traceback included; a user sees it only after turning on debug logging.
    """
    lines = []
    for record in caplog.records:
        if record.levelno < logging.INFO:
            continue
        lines.append(record.getMessage())
        if record.exc_info or record.exc_text:
            lines.append("Traceback (most recent call last):")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """Enums as their values, containers of them likewise."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(_plain(key)): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def snapshot_user_view(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    config_entry_id: str,
) -> None:
    """Snapshot what a user sees of each entity of one platform.

    Like the harness's ``snapshot_platform``, but only the registry fields
    and state a user meets (name, kind, unit, category, state, attributes),
    in plain values: the registry's own bookkeeping fields and the types of
    attribute keys change between HA releases without a user seeing it.
    """
    entries = er.async_entries_for_config_entry(entity_registry, config_entry_id)
    assert entries
    assert len({entry.domain for entry in entries}) == 1, "one platform at a time"
    for entry in sorted(entries, key=lambda entry: entry.entity_id):
        assert entry.disabled_by is None, "enable every entity for the snapshot"
        assert {
            "entity_id": entry.entity_id,
            "unique_id": entry.unique_id,
            "has_entity_name": entry.has_entity_name,
            "original_name": entry.original_name,
            "translation_key": entry.translation_key,
            "original_device_class": _plain(entry.original_device_class),
            "original_icon": entry.original_icon,
            "entity_category": _plain(entry.entity_category),
            "unit_of_measurement": entry.unit_of_measurement,
            "capabilities": _plain(entry.capabilities),
            # The precision the frontend shows; the rest of the options is
            # HA's bookkeeping.
            "display_precision": entry.options.get("sensor", {}).get(
                "suggested_display_precision"
            ),
        } == snapshot(name=f"{entry.entity_id}-entry")
        state = hass.states.get(entry.entity_id)
        assert state is not None, f"no state for {entry.entity_id}"
        assert {
            "state": state.state,
            "attributes": _plain(dict(state.attributes)),
        } == snapshot(name=f"{entry.entity_id}-state")
