"""Config entry migrations: each version's registry entries and options.

Only this entry's own devices, entities and repair issues change.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .const import (
    CONF_APPLICATIONS,
    CONF_END_DEVICE_SILENCE_THRESHOLD,
    CONF_END_DEVICES,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DEFAULT_UPLINK_TOPIC,
    DOMAIN,
    LOGGER,
    SUBENTRY_APPLICATION,
    TRANSPORT_MQTT,
)
from .end_devices import is_end_device
from .end_devices.registry import async_move_device
from .identifiers import account_id, migrate_identifier, migrate_unique_id
from .silent_migration import async_migrate_to_silent


async def async_migrate(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring an entry of an earlier version up to date.

    Version 1 built device and entity ids from the entry id; version 2 from
    the account (``owner@server``) and the TTS ids, keeping entity ids,
    names, areas and disabled flags. Version 3 holds applications in
    sub-entries; 3.2 renames an option; 3.3 turns the end devices' Online
    sensors into Silent sensors (see silent_migration).
    """
    if entry.version > 3:  # noqa: PLR2004  (a downgrade: this code cannot read it)
        return False
    if entry.version == 1:
        if entry.unique_id is None:
            LOGGER.error("Cannot migrate %s: the entry has no account", entry.title)
            return False
        account = entry.unique_id
        device_registry = dr.async_get(hass)
        for device in dr.async_entries_for_config_entry(
            device_registry, entry.entry_id
        ):
            identifiers = {
                (domain, new)
                if domain == DOMAIN
                and (new := migrate_identifier(entry.entry_id, account, identifier))
                else (domain, identifier)
                for domain, identifier in device.identifiers
            }
            if identifiers != device.identifiers:
                device_registry.async_update_device(
                    device.id, new_identifiers=identifiers
                )

        @callback
        def new_unique_id(entity: er.RegistryEntry) -> dict[str, str] | None:
            if entity.platform != DOMAIN:
                return None
            unique_id = migrate_unique_id(entry.entry_id, account, entity.unique_id)
            return None if unique_id is None else {"new_unique_id": unique_id}

        await er.async_migrate_entries(hass, entry.entry_id, new_unique_id)
        hass.config_entries.async_update_entry(entry, version=2)
        LOGGER.debug("Migrated %s to version 2", entry.title)
    if entry.version == 2:  # noqa: PLR2004
        _migrate_to_applications(hass, entry)
    if entry.minor_version < 2:  # noqa: PLR2004
        _migrate_silence_threshold(hass, entry)
    if entry.minor_version < 3:  # noqa: PLR2004
        await async_migrate_to_silent(hass, entry)
    return True


# The end devices' threshold option before version 3.2.


_OFFLINE_THRESHOLD: Final = "offline_threshold"


def _migrate_silence_threshold(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Version 3.2: ``offline_threshold`` becomes ``end_device_silence_threshold``.

    The same minutes after which an end device's Online sensor turns off,
    named like the gateways' silence threshold. Re-entrant.
    """
    options = dict(entry.options)
    if (minutes := options.pop(_OFFLINE_THRESHOLD, None)) is not None:
        options.setdefault(CONF_END_DEVICE_SILENCE_THRESHOLD, minutes)
    hass.config_entries.async_update_entry(entry, options=options, minor_version=2)
    LOGGER.debug("Migrated %s to version 3.2", entry.title)


def _migrate_to_applications(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Version 3: the end-device options become an application sub-entry.

    Version 2 took uplinks of every application (or those listed) on one
    topic of Home Assistant's MQTT. That becomes a sub-entry of the same
    kind without an application ID, holding the entry's end devices, so
    everything keeps working. There is none with end devices off, nor when
    there is nothing to keep: no end device and no MQTT integration (an
    entry used for its gateways only). Re-entrant: a sub-entry left by an
    interrupted run is taken again, never added twice.
    """
    options = dict(entry.options)
    enabled = options.pop(CONF_END_DEVICES, True)
    topic = options.pop(CONF_UPLINK_TOPIC, DEFAULT_UPLINK_TOPIC)
    applications = options.pop(CONF_APPLICATIONS, [])
    account = account_id(entry)
    end_devices = [
        device
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if is_end_device(account, device)
    ]
    # Version 2 had no sub-entries: one there was added by this step.
    subentry = next(iter(entry.subentries.values()), None)
    if (
        subentry is None
        and enabled
        and (
            end_devices
            or hass.config_entries.async_entries(mqtt.DOMAIN, include_ignore=False)
        )
    ):
        subentry = ConfigSubentry(
            data=MappingProxyType(
                {
                    CONF_TRANSPORT: TRANSPORT_MQTT,
                    CONF_UPLINK_TOPIC: topic,
                    CONF_APPLICATIONS: list(applications),
                }
            ),
            subentry_type=SUBENTRY_APPLICATION,
            title=f"MQTT {topic}",
            unique_id=None,
        )
        hass.config_entries.async_add_subentry(entry, subentry)
    if subentry is not None:
        for device in end_devices:
            async_move_device(hass, device, entry.entry_id, subentry.subentry_id)
    hass.config_entries.async_update_entry(entry, options=options, version=3)
    LOGGER.debug("Migrated %s to version 3", entry.title)
