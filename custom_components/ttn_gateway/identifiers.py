"""Device identifiers and entity unique ids: built and read here only.

They are made from stable identities of The Things Stack, not from the
config entry id, so that removing and re-adding an account brings back the
same entities with their history and customisations:

- gateway device: ``{owner@server}/gateway/{gateway_id}``
- end device: ``{owner@server}/device/{application_id}/{device_id}``
- entity: ``{device identifier}/{key}``

TTS ids are lowercase letters, digits and dashes, and the entry's unique id
(``owner@server``) holds no ``/``, so the parts are split without a regex.
Version 1 of the config entry built them from the entry id; old_* reads those.
"""

from __future__ import annotations

import re

from homeassistant.config_entries import ConfigEntry

_GATEWAY = "gateway"
_DEVICE = "device"


def account_id(entry: ConfigEntry) -> str:
    """The account an entry stands for: its unique id, ``owner@server``.

    Every entry the config flow makes has one; the entry id stands in otherwise.
    """
    return entry.unique_id or entry.entry_id


def gateway_identifier(account: str, gateway_id: str) -> str:
    """Device identifier of a gateway of the account (the entry's unique id)."""
    return f"{account}/{_GATEWAY}/{gateway_id}"


def gateway_id_of(account: str, identifier: str) -> str | None:
    """The gateway ID of a gateway device identifier of the account; else None."""
    match identifier.split("/"):
        case [owner, kind, gateway_id] if owner == account and kind == _GATEWAY:
            return gateway_id
    return None


def end_device_identifier(account: str, key: tuple[str, str]) -> str:
    """Device identifier of an end device (application ID, device ID)."""
    return f"{account}/{_DEVICE}/{key[0]}/{key[1]}"


def end_device_key(account: str, identifier: str) -> tuple[str, str] | None:
    """The (application ID, device ID) of an end device identifier; else None."""
    match identifier.split("/"):
        case [owner, kind, application_id, device_id] if (
            owner == account and kind == _DEVICE
        ):
            return application_id, device_id
    return None


def entity_unique_id(device_identifier: str, key: str) -> str:
    """Unique id of a device's entity."""
    return f"{device_identifier}/{key}"


def entity_key(device_identifier: str, unique_id: str) -> str:
    """The entity key of a unique id made by entity_unique_id."""
    return unique_id.removeprefix(f"{device_identifier}/")


# -- Version 1 (config entry id based), read only by the migration -----------

_TTS_ID = "[a-z0-9-]+"


def migrate_identifier(entry_id: str, account: str, identifier: str) -> str | None:
    """The version 2 form of a version 1 device identifier; None if not one."""
    if match := re.fullmatch(
        rf"{re.escape(entry_id)}_device_({_TTS_ID})_({_TTS_ID})", identifier
    ):
        return end_device_identifier(account, (match[1], match[2]))
    if match := re.fullmatch(rf"{re.escape(entry_id)}_({_TTS_ID})", identifier):
        return gateway_identifier(account, match[1])
    return None


def migrate_unique_id(entry_id: str, account: str, unique_id: str) -> str | None:
    """The version 2 form of a version 1 entity unique id; None if not one.

    Application, device and gateway IDs hold no ``_``, entity keys may.
    """
    if match := re.fullmatch(
        rf"{re.escape(entry_id)}_device_({_TTS_ID})_({_TTS_ID})_(.+)", unique_id
    ):
        device = end_device_identifier(account, (match[1], match[2]))
        return entity_unique_id(device, match[3])
    if match := re.fullmatch(rf"{re.escape(entry_id)}_({_TTS_ID})_(.+)", unique_id):
        return entity_unique_id(gateway_identifier(account, match[1]), match[2])
    return None
