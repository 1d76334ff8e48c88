"""The TTN Gateway integration: The Things Stack gateways in Home Assistant.

Data path: the coordinator's polls and the events streams feed the gateway
store; the entities and the silence monitor follow the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final

from homeassistant.components import mqtt
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
    ConfigSubentry,
)
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_APPLICATIONS,
    CONF_END_DEVICE_SILENCE_THRESHOLD,
    CONF_END_DEVICES,
    CONF_SERVER,
    CONF_SILENCE_THRESHOLD,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DEFAULT_SILENCE_THRESHOLD,
    DEFAULT_UPLINK_TOPIC,
    DOMAIN,
    ISSUE_APPLICATION_KEY_REJECTED,
    ISSUE_END_DEVICE_CAP,
    ISSUE_END_DEVICE_ENTITY_CAP,
    ISSUE_MISSING_GATEWAY_RIGHTS,
    ISSUE_MQTT_NOT_SET_UP,
    ISSUE_NO_EVENT_RIGHTS,
    LOGGER,
    SUBENTRY_APPLICATION,
    TRANSPORT_MQTT,
)
from .coordinator import TTSCoordinator
from .end_devices import EndDeviceManager, is_end_device
from .end_devices.catchup import CatchUpStore, issue_id as storage_issue_id
from .end_devices.registry import async_move_device, async_remove_deleted_devices
from .entity import async_announce_gateways
from .identifiers import account_id, migrate_identifier, migrate_unique_id
from .issues import async_delete_issue
from .runtime import TTSConfigEntry, TTSRuntimeData
from .services import async_setup_services
from .silence import SilenceMonitor
from .store import GatewayStore
from .stream import GatewayEventStreams
from .tts import TTSClient, TTSServer

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.DEVICE_TRACKER,
    Platform.EVENT,
    Platform.NUMBER,
    Platform.SENSOR,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, whether or not an entry is loaded."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Bring an entry of an earlier version up to date.

    Version 1 built device and entity ids from the entry id; version 2 from
    the account (``owner@server``) and the TTS ids. Only this entry's own
    devices and entities change; entity ids, names, areas and disabled flags
    stay. Version 3 holds applications in sub-entries; 3.2 renames an option.
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


async def async_setup_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Set up a TTS account from a config entry."""
    client = TTSClient(
        async_get_clientsession(hass),
        TTSServer(entry.data[CONF_SERVER]),
        entry.data[CONF_API_KEY],
    )
    store = GatewayStore()
    coordinator = TTSCoordinator(hass, entry, client, store)
    await coordinator.async_config_entry_first_refresh()
    end_devices = EndDeviceManager(
        hass,
        entry,
        client.server,
        async_get_clientsession(hass),
        coordinator.device_names,
    )
    end_devices.async_load_known_devices()
    entry.async_on_unload(end_devices.async_stop)
    await end_devices.async_setup()
    silence = SilenceMonitor(
        hass,
        store,
        timedelta(
            minutes=entry.options.get(CONF_SILENCE_THRESHOLD, DEFAULT_SILENCE_THRESHOLD)
        ),
    )
    streams = GatewayEventStreams(
        hass, entry, client, store, coordinator.polling_interval
    )
    entry.runtime_data = TTSRuntimeData(
        client=client,
        store=store,
        coordinator=coordinator,
        streams=streams,
        silence=silence,
        end_devices=end_devices,
    )
    entry.async_on_unload(coordinator.async_start())
    entry.async_on_unload(async_announce_gateways(hass, entry, store))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the platforms, so that the restored thresholds count and new end
    # devices' entities can be added.
    entry.async_on_unload(silence.async_start())
    await streams.async_start()
    entry.async_on_unload(_async_reload_on_subentry_change(hass, entry))
    return True


def _subentries_of(entry: ConfigEntry) -> dict[str, tuple[str, Any]]:
    return {
        subentry_id: (subentry.title, dict(subentry.data))
        for subentry_id, subentry in entry.subentries.items()
    }


@callback
def _async_reload_on_subentry_change(
    hass: HomeAssistant, entry: ConfigEntry
) -> Callable[[], None]:
    """Reload when an application is added, changed or removed.

    Options flows reload the entry themselves, so this is not an update
    listener (HA 2026.12 rejects one beside flows that reload).
    """
    loaded = _subentries_of(entry)

    @callback
    def changed(change: ConfigEntryChange, changed_entry: ConfigEntry) -> None:
        if (
            change is ConfigEntryChange.UPDATED
            and changed_entry.entry_id == entry.entry_id
            and changed_entry.state is ConfigEntryState.LOADED
            and _subentries_of(changed_entry) != loaded
        ):
            hass.config_entries.async_schedule_reload(entry.entry_id)

    return async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, changed)


async def async_unload_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: TTSConfigEntry) -> None:
    """Remove the entry's repair issues and stored data with the entry."""
    await async_remove_deleted_devices(hass, entry.entry_id)
    for subentry_id in entry.subentries:
        for issue in (ISSUE_APPLICATION_KEY_REJECTED, ISSUE_MQTT_NOT_SET_UP):
            async_delete_issue(hass, f"{issue}_{subentry_id}")
        async_delete_issue(hass, storage_issue_id(subentry_id))
    await CatchUpStore(hass, entry.entry_id).async_remove()
    for issue in (
        ISSUE_MISSING_GATEWAY_RIGHTS,
        ISSUE_NO_EVENT_RIGHTS,
        ISSUE_MQTT_NOT_SET_UP,
        ISSUE_END_DEVICE_CAP,
        ISSUE_END_DEVICE_ENTITY_CAP,
    ):
        async_delete_issue(hass, f"{issue}_{entry.entry_id}")


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: TTSConfigEntry, device_entry: DeviceEntry
) -> bool:
    """Let the user delete end devices; they come back when they send again.

    Gateways follow the account and the options, so they cannot be deleted.
    """
    if not is_end_device(account_id(entry), device_entry):
        return False
    if entry.state is ConfigEntryState.LOADED:
        entry.runtime_data.end_devices.async_forget(device_entry)
    return True
