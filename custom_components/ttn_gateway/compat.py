"""Every difference between the Home Assistant versions this integration runs on.

The supported range is Home Assistant 2025.4.4 to the newest release. Each
shim says which versions need it and when it can go: once the oldest
supported version has the newer API, use that API directly and drop the shim.
"""

from __future__ import annotations

from collections.abc import Callable
import inspect
from typing import TYPE_CHECKING, Any, Final

from homeassistant import const as ha_const
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.update_coordinator import UpdateFailed

if TYPE_CHECKING:
    # Named in HA 2025.9+ (a plain FlowResult before). Only for the type check,
    # which runs against the newest Home Assistant; can go with HA >= 2025.9.
    from homeassistant.components.repairs.models import RepairsFlowResult

__all__ = [
    "DEVICE_IN_ONE_SUBENTRY",
    "PARTS_PER_MILLION",
    "RepairsFlowResult",
    "async_move_device_to_subentry",
    "device_config_entries",
    "device_subentry",
    "update_failed",
]

# --- UpdateFailed(retry_after=...): HA 2025.12+; can go with HA >= 2025.12 ---

_UPDATE_FAILED_RETRY_AFTER: Final = (
    "retry_after" in inspect.signature(UpdateFailed.__init__).parameters
)


def update_failed(retry_after: float | None = None, **kwargs: Any) -> UpdateFailed:
    """UpdateFailed that delays the next poll by ``retry_after`` where HA can.

    Older Home Assistant polls again at the coordinator's own interval.
    """
    if retry_after is not None and _UPDATE_FAILED_RETRY_AFTER:
        return UpdateFailed(retry_after=retry_after, **kwargs)  # type: ignore[call-arg,unused-ignore]
    return UpdateFailed(**kwargs)


# --- One config entry and sub-entry per device: HA 2026.8+ ------------------
# Before, a device may belong to several entries and sub-entries; the
# multi-entry fields are deprecated from 2026.8 (warnings from 2026.10,
# removed for custom integrations in 2027.10). Can go with HA >= 2026.8.

DEVICE_IN_ONE_SUBENTRY: Final = (
    "new_config_subentry_id"
    in inspect.signature(dr.DeviceRegistry.async_update_device).parameters
)


def device_config_entries(device: dr.DeviceEntry) -> set[str]:
    """The config entries a registry device belongs to (one from HA 2026.8)."""
    if (entry_id := getattr(device, "config_entry_id", None)) is not None:
        return {entry_id}
    return set(device.config_entries)


def device_subentry(device: dr.DeviceEntry, entry_id: str) -> str | None:
    """The sub-entry of the entry ``entry_id`` a registry device belongs to."""
    if DEVICE_IN_ONE_SUBENTRY:
        return device.config_subentry_id
    subentries = device.config_entries_subentries.get(entry_id, set())
    return next((subentry for subentry in subentries if subentry), None)


def async_move_device_to_subentry(
    device_registry: dr.DeviceRegistry,
    device: dr.DeviceEntry,
    entry_id: str,
    subentry_id: str | None,
    move_entities: Callable[[], None],
) -> None:
    """Put a device of the entry into one sub-entry; ``move_entities`` moves its entities.

    HA removes the entities of a sub-entry that their device leaves, so
    they move while the device is in both (before 2026.8) or before it
    moves (2026.8+).
    """
    if DEVICE_IN_ONE_SUBENTRY:
        move_entities()
        device_registry.async_update_device(
            device.id, new_config_subentry_id=subentry_id
        )
        return
    device_registry.async_update_device(
        device.id, add_config_entry_id=entry_id, add_config_subentry_id=subentry_id
    )
    move_entities()
    for other in device.config_entries_subentries.get(entry_id, set()):
        if other != subentry_id:
            device_registry.async_update_device(
                device.id,
                remove_config_entry_id=entry_id,
                remove_config_subentry_id=other,
            )


# --- UnitOfRatio: HA 2026.7+ deprecates CONCENTRATION_PARTS_PER_MILLION ------
# Both are "ppm". Can go with HA >= 2026.7 (then UnitOfRatio.PARTS_PER_MILLION).

_ratio = getattr(ha_const, "UnitOfRatio", None)
PARTS_PER_MILLION: Final[str] = (
    _ratio.PARTS_PER_MILLION if _ratio is not None else "ppm"
)
