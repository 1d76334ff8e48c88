"""Registry bookkeeping of end devices: only this entry's own entries, never others'.

End devices are known by (application ID, device ID) in a device identifier.
At setup the devices seen before are rebuilt from the registries; entities
that no longer belong to a device are removed, but only entity entries whose
config entry is this one and whose platform is this integration: helpers and
other integrations' entities linked to an end device are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
import math

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    restore_state,
)
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..compat import async_move_device_to_subentry, device_subentry
from ..const import DOMAIN, LOGGER
from ..decoders import Decoder, describe_reading
from ..identifiers import (
    end_device_identifier,
    end_device_key as identifier_key,
    entity_key,
)
from .state import DeviceKey, EndDevice

# The Silent sensor: on once the device sent nothing for its silence threshold.
SILENT_KEY = "silent"
# Static entities every end device has: (platform, key).
STATIC_ENTITY_KEYS: tuple[tuple[Platform, str], ...] = (
    (Platform.SENSOR, "rssi"),
    (Platform.SENSOR, "snr"),
    (Platform.SENSOR, "spreading_factor"),
    (Platform.SENSOR, "frequency"),
    (Platform.SENSOR, "frame_counter"),
    (Platform.SENSOR, "gateway_count"),
    (Platform.SENSOR, "airtime"),
    (Platform.SENSOR, "last_seen"),
    (Platform.SENSOR, "best_gateway"),
    (Platform.SENSOR, "gateways_in_reach"),
    (Platform.BINARY_SENSOR, SILENT_KEY),
    (Platform.BINARY_SENSOR, "no_fallback_gateway"),
)
# Fair Use Policy figures: only for devices on The Things Network.
FAIR_USE_ENTITY_KEYS: tuple[tuple[Platform, str], ...] = (
    (Platform.SENSOR, "airtime_today"),
    (Platform.SENSOR, "downlinks_today"),
    (Platform.BINARY_SENSOR, "fair_use_exceeded"),
)
# The entities that save when the device last sent (SILENT_KEY above).
LAST_SEEN_KEY = "last_seen"
# The sensor of a device's latest downlink, made with its first downlink.
LAST_DOWNLINK_KEY = "last_downlink"
# The battery sensor, made with the first uplink that reports the level.
BATTERY_KEY = "battery"
# The device tracker, made with the first uplink that gives a position.
LOCATION_KEY = "location"
# The decoder of the latest uplink and the formatter's warnings, made with the first uplink.
DECODER_KEY = "decoder"
# Entities a device gets once it has something to show: (platform, key).
LATER_ENTITY_KEYS: tuple[tuple[Platform, str], ...] = (
    (Platform.SENSOR, LAST_DOWNLINK_KEY),
    (Platform.SENSOR, BATTERY_KEY),
    (Platform.DEVICE_TRACKER, LOCATION_KEY),
    (Platform.SENSOR, DECODER_KEY),
)
_KEPT_KEYS = frozenset((*STATIC_ENTITY_KEYS, *FAIR_USE_ENTITY_KEYS, *LATER_ENTITY_KEYS))


def end_device_key(account: str, device: dr.DeviceEntry) -> DeviceKey | None:
    """The end device a registry device of the account stands for; else None."""
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and (key := identifier_key(account, identifier)):
            return key
    return None


def is_end_device(account: str, device: dr.DeviceEntry) -> bool:
    """Whether a registry device of the account is an end device."""
    return end_device_key(account, device) is not None


def device_key_text(key: DeviceKey) -> str:
    """``application-id/device-id``, as the options and diagnostics show it."""
    return f"{key[0]}/{key[1]}"


def _own_entities(
    entity_registry: er.EntityRegistry, entry_id: str, device_id: str
) -> list[er.RegistryEntry]:
    """This entry's own entities of a device (not helpers linked to it)."""
    return [
        entity_entry
        for entity_entry in er.async_entries_for_device(
            entity_registry, device_id, include_disabled_entities=True
        )
        if entity_entry.config_entry_id == entry_id and entity_entry.platform == DOMAIN
    ]


def _reading_platform(key: str) -> tuple[Platform, Decoder] | None:
    if (description := describe_reading(key)) is None:
        return None
    platform = Platform.BINARY_SENSOR if description.binary else Platform.SENSOR
    return platform, description.decoder


def keeps(device: EndDevice, platform: Platform, key: str) -> bool:
    """Whether an entity key still belongs to the device."""
    if (platform, key) in _KEPT_KEYS:
        return True
    found = _reading_platform(key)
    return (
        found is not None
        and found[0] is platform
        and device.decoder in (Decoder.AUTO, found[1])
    )


@callback
def async_move_device(
    hass: HomeAssistant, device: dr.DeviceEntry, entry_id: str, subentry_id: str | None
) -> None:
    """Put a device of the entry, and its entities, into one sub-entry."""
    device_registry = dr.async_get(hass)
    entity_registry = er.async_get(hass)

    def move_entities() -> None:
        for entity in _own_entities(entity_registry, entry_id, device.id):
            if entity.config_subentry_id != subentry_id:
                entity_registry.async_update_entity(
                    entity.entity_id, config_subentry_id=subentry_id
                )

    async_move_device_to_subentry(
        device_registry, device, entry_id, subentry_id, move_entities
    )


def _saved_last_seen(
    hass: HomeAssistant, identifier: str, entities: list[er.RegistryEntry]
) -> datetime | None:
    """When the device last sent, as saved before the restart; None if never.

    Read from the state its Silent sensor saved (``last_seen`` in its extra
    data) and its Last seen sensor, whichever is later.
    """
    saved = restore_state.async_get(hass).last_states
    found: list[datetime] = []
    for entity_entry in entities:
        if (stored := saved.get(entity_entry.entity_id)) is None:
            continue
        key = entity_key(identifier, entity_entry.unique_id)
        value: object = None
        if key == SILENT_KEY and stored.extra_data is not None:
            value = stored.extra_data.as_dict().get("last_seen")
        elif key == LAST_SEEN_KEY:
            value = stored.state.state
        seen = dt_util.parse_datetime(value) if isinstance(value, str) else None
        if seen is not None and seen.tzinfo is not None:
            found.append(seen)
    return max(found, default=None)


@callback
def async_load_known_devices(
    hass: HomeAssistant,
    entry_id: str,
    account: str,
    subentry_of: Callable[[DeviceKey], str | None],
    new_device: Callable[[DeviceKey, datetime | None], EndDevice | None],
) -> None:
    """Recreate the devices seen before from the registries.

    Devices of an application without a sub-entry are removed; the others
    are put into their application's sub-entry. They are offered to
    new_device with when they last sent, the latest first and those that
    never sent last; a device it returns None for is over the cap and is
    removed with its entities. With a decoder chosen for a device, this
    entry's entities of other decoders are removed.
    """
    device_registry = dr.async_get(hass)
    entity_registry = er.async_get(hass)
    known: list[tuple[DeviceKey, dr.DeviceEntry, datetime | None]] = []
    for device_entry in dr.async_entries_for_config_entry(device_registry, entry_id):
        if (key := end_device_key(account, device_entry)) is None:
            continue
        if (subentry_id := subentry_of(key)) is None:
            LOGGER.debug(
                "Removing end device %s: its application is not set up", key[1]
            )
            device_registry.async_remove_device(device_entry.id)
            continue
        if device_subentry(device_entry, entry_id) != subentry_id:
            async_move_device(hass, device_entry, entry_id, subentry_id)
        entities = _own_entities(entity_registry, entry_id, device_entry.id)
        identifier = end_device_identifier(account, key)
        known.append((key, device_entry, _saved_last_seen(hass, identifier, entities)))
    # Stable: devices that never sent keep the registry's order.
    known.sort(key=lambda item: -item[2].timestamp() if item[2] else math.inf)
    for key, device_entry, last_seen in known:
        if (device := new_device(key, last_seen)) is None:
            LOGGER.info(
                "Removing end device %s: over the maximum number of end devices",
                device_key_text(key),
            )
            device_registry.async_remove_device(device_entry.id)
            continue
        for entity_entry in _own_entities(entity_registry, entry_id, device_entry.id):
            key_text = entity_key(device.identifier, entity_entry.unique_id)
            try:
                platform = Platform(entity_entry.domain)
            except ValueError:  # pragma: no cover - only our platforms register
                continue
            if keeps(device, platform, key_text):
                device.entity_keys[platform].add(key_text)
                if entity_entry.original_name:
                    device.names[key_text] = entity_entry.original_name
            else:
                entity_registry.async_remove(entity_entry.entity_id)


@callback
def async_remove_decoder_entities(
    hass: HomeAssistant, entry_id: str, account: str, key: DeviceKey, decoder: Decoder
) -> int:
    """Remove this entry's entities of one decoder from a device.

    Used when a device goes back to the Automatic decoder: what the
    previous decoder made comes back only if Automatic decodes it again.
    Returns how many entities were removed.
    """
    device_registry = dr.async_get(hass)
    entity_registry = er.async_get(hass)
    # Looked up among this entry's devices: the identifier look-up across
    # entries is deprecated from HA 2026.8, its per-entry successor is newer.
    identifier = end_device_identifier(account, key)
    device_entry = next(
        (
            device
            for device in dr.async_entries_for_config_entry(device_registry, entry_id)
            if (DOMAIN, identifier) in device.identifiers
        ),
        None,
    )
    if device_entry is None:
        return 0
    removed = 0
    for entity_entry in _own_entities(entity_registry, entry_id, device_entry.id):
        found = _reading_platform(entity_key(identifier, entity_entry.unique_id))
        if found is not None and found[1] is decoder:
            entity_registry.async_remove(entity_entry.entity_id)
            removed += 1
    return removed


@callback
def async_update_device(
    hass: HomeAssistant, entry_id: str, info: dr.DeviceInfo, subentry_id: str | None
) -> None:
    """Write a device's name, model and Console link to the device registry."""
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry_id, config_subentry_id=subentry_id, **info
    )


@callback
def async_remove_device(hass: HomeAssistant, entry_id: str, identifier: str) -> None:
    """Remove one of this entry's end devices from the device registry."""
    device_registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(device_registry, entry_id):
        if (DOMAIN, identifier) in device.identifiers:
            device_registry.async_remove_device(device.id)


class DeletedDevices:
    """End devices the user deleted, kept across restarts.

    Device lists do not bring them back; their next uplink does.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Nothing is read until async_load."""
        self._store: Store[list[list[str]]] = Store(
            hass, 1, deleted_devices_storage_key(entry_id)
        )
        self.keys: set[DeviceKey] = set()

    async def async_load(self) -> None:
        """Read the devices deleted before; anything unreadable is skipped."""
        saved = await self._store.async_load()
        if not isinstance(saved, list):
            return
        self.keys = {
            (item[0], item[1])
            for item in saved
            if isinstance(item, list)
            and len(item) == 2  # noqa: PLR2004 - (application ID, device ID)
            and all(isinstance(part, str) for part in item)
        }

    @callback
    def add(self, key: DeviceKey) -> None:
        """The user deleted the device."""
        if key not in self.keys:
            self.keys.add(key)
            self._save()

    @callback
    def discard(self, key: DeviceKey) -> None:
        """The device sent again: it is back."""
        if key in self.keys:
            self.keys.discard(key)
            self._save()

    def _save(self) -> None:
        self._store.async_delay_save(
            lambda: [list(key) for key in sorted(self.keys)], SAVE_DELAY_SECONDS
        )


# Seconds a change of the deleted devices waits to be written with the next.
SAVE_DELAY_SECONDS = 1


def deleted_devices_storage_key(entry_id: str) -> str:
    """Where an entry's deleted end devices are stored."""
    return f"{DOMAIN}.{entry_id}.deleted_end_devices"


async def async_remove_deleted_devices(hass: HomeAssistant, entry_id: str) -> None:
    """Forget an entry's deleted end devices with the entry."""
    await Store[list[list[str]]](
        hass, 1, deleted_devices_storage_key(entry_id)
    ).async_remove()
