"""Version 3.3: the end devices' Online sensors become Silent sensors.

An Online sensor was on while its device sent within the silence threshold.
A Silent sensor is on once the device did not: a problem sensor like a
gateway's *Silent*, with the opposite state. The account's *End devices
online* count becomes *End devices silent* likewise.

Each registry entry keeps its area, disabled flag and restored timing, and
gets the entity ID Home Assistant would give the new sensor (device name and
sensor name in the system's language). A name or device class the user gave
it goes with the old meaning. Automations on an old entity ID would never
fire again, so a repair issue lists every entity ID that changed.
"""

from __future__ import annotations

from typing import Final

from homeassistant.components.binary_sensor import DOMAIN as BINARY_SENSOR_DOMAIN
from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    restore_state,
)
from homeassistant.helpers.translation import async_get_translations

from .const import DOMAIN, ISSUE_SILENT_REPLACES_ONLINE, LOGGER
from .end_devices.registry import SILENT_KEY
from .fleet import END_DEVICES_SILENT
from .identifiers import account_id, account_identifier, end_device_key
from .issues import async_create_issue

# The keys before version 3.3.
ONLINE_KEY: Final = "online"
END_DEVICES_ONLINE: Final = "end_devices_online"
# Their successors: (entity key, which is also its translation key, and the
# English name).
_END_DEVICE_SILENT: Final = (SILENT_KEY, "Silent")
_END_DEVICES_SILENT: Final = (END_DEVICES_SILENT, "End devices silent")
# Entity IDs listed in the repair issue; more are counted.
MAX_LISTED: Final = 20


def issue_id(entry_id: str) -> str:
    """The repair issue of an entry's renamed entities."""
    return f"{ISSUE_SILENT_REPLACES_ONLINE}_{entry_id}"


async def async_migrate_to_silent(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Turn the entry's Online sensors into Silent sensors. Re-entrant."""
    registry = er.async_get(hass)
    devices = dr.async_get(hass)
    translations = await async_get_translations(
        hass, hass.config.language, "entity", {DOMAIN}
    )
    renamed: list[tuple[str, str]] = []
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if (successor := _successor(account_id(entry), entity)) is None:
            continue
        key, english = successor
        base = entity.unique_id.rpartition("/")[0]
        unique_id = f"{base}/{key}"
        if registry.async_get_entity_id(entity.domain, DOMAIN, unique_id):
            # Left by an older version run after this one: the new one stays.
            registry.async_remove(entity.entity_id)
            continue
        device = devices.async_get(entity.device_id) if entity.device_id else None
        device_name = (
            (device.name_by_user or device.name) if device is not None else None
        ) or entity.entity_id.partition(".")[2].removesuffix(f"_{ONLINE_KEY}")
        name = translations.get(
            f"component.{DOMAIN}.entity.{entity.domain}.{key}.name", english
        )
        entity_id = registry.async_generate_entity_id(
            entity.domain, f"{device_name} {name}"
        )
        registry.async_update_entity(
            entity.entity_id,
            new_unique_id=unique_id,
            new_entity_id=entity_id,
            name=None,
            device_class=None,
            # Named as the new sensor will name itself: the registry stays
            # coherent while the entry is not loaded, and an area of its own
            # stays valid (Home Assistant 2026.10 requires a name with it).
            original_name=name,
            translation_key=key,
        )
        _move_restored_state(hass, entity.entity_id, entity_id)
        renamed.append((entity.entity_id, entity_id))
    if renamed:
        _async_tell(hass, entry, renamed)
    hass.config_entries.async_update_entry(entry, minor_version=3)
    LOGGER.debug("Migrated %s to version 3.3", entry.title)


def _successor(account: str, entity: er.RegistryEntry) -> tuple[str, str] | None:
    """The new key and name of an Online sensor or count; None for others."""
    if entity.platform != DOMAIN:
        return None
    base, _, key = entity.unique_id.rpartition("/")
    if (
        entity.domain == BINARY_SENSOR_DOMAIN
        and key == ONLINE_KEY
        and end_device_key(account, base) is not None
    ):
        return _END_DEVICE_SILENT
    if (
        entity.domain == SENSOR_DOMAIN
        and key == END_DEVICES_ONLINE
        and base == account_identifier(account)
    ):
        return _END_DEVICES_SILENT
    return None


def _move_restored_state(hass: HomeAssistant, old: str, new: str) -> None:
    """Let the renamed entity find what its old entity ID saved."""
    last_states = restore_state.async_get(hass).last_states
    if (stored := last_states.pop(old, None)) is not None:
        last_states[new] = stored


def _async_tell(
    hass: HomeAssistant, entry: ConfigEntry, renamed: list[tuple[str, str]]
) -> None:
    """Raise the repair issue that lists the changed entity IDs."""
    lines = [f"- `{old}` → `{new}`" for old, new in sorted(renamed)[:MAX_LISTED]]
    if (more := len(renamed) - MAX_LISTED) > 0:
        lines.append(f"- … (+{more})")
    async_create_issue(
        hass,
        issue_id(entry.entry_id),
        translation_key=ISSUE_SILENT_REPLACES_ONLINE,
        placeholders={"title": entry.title, "entities": "\n".join(lines)},
        fixable=True,
        persistent=True,
    )
