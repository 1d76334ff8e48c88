"""End devices: the uplinks of the entry's TTS applications.

The manager ties the parts together: ``applications`` reads the application
sub-entries; each has a source of messages, ``direct`` (TTS's MQTT server)
or ``subscription`` (Home Assistant's MQTT integration), and with the right
to read devices a ``catalogue`` of its devices. ``intake`` turns messages
into device updates within the caps, ``state`` holds what is known of each
device, and ``registry`` keeps this entry's own registry entries in order.
Entities (``end_device_entities``) follow the devices and write their state
only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import ClientSession
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.util import dt as dt_util

from ..const import (
    CONF_DECODERS,
    CONF_MAX_END_DEVICES,
    CONF_OFFLINE_THRESHOLD,
    DEFAULT_MAX_END_DEVICES,
    DOMAIN,
    ISSUE_END_DEVICE_CAP,
    ISSUE_END_DEVICE_ENTITY_CAP,
    LOGGER,
    MIN_OFFLINE_THRESHOLD,
    OFFLINE_INTERVALS,
    UNKNOWN_INTERVAL_OFFLINE_THRESHOLD,
)
from ..decoders import Decoder, describe_reading
from ..identifiers import account_id, end_device_identifier
from ..timers import KeyedTimers
from ..tts import Right, TTSClient, TTSServer
from ..tts.downlink import Downlink
from ..tts.models import EndDeviceInfo
from ..tts.uplink import Uplink
from .applications import ApplicationConfig, application_configs, subentry_for
from .catalogue import DeviceCatalogue
from .catchup import CatchUpStore, StorageCatchUp
from .direct import DirectConnection
from .downlinks import DownlinkNotSentError, async_send_downlinks
from .intake import (
    MAX_ENTITIES_PER_DEVICE,
    MAX_MESSAGE_BYTES,
    Cap,
    Intake,
    IntakeSettings,
    MessageCounters,
)
from .registry import (
    LAST_DOWNLINK_KEY,
    STATIC_ENTITY_KEYS,
    DeletedDevices,
    async_load_known_devices,
    async_remove_device,
    async_update_device,
    device_key_text,
    end_device_key,
    is_end_device,
)
from .state import DeviceKey, EndDevice, EndDeviceListener
from .subscription import UplinkSubscription

type UplinkSource = DirectConnection | UplinkSubscription


__all__ = [
    "LAST_DOWNLINK_KEY",
    "MAX_ENTITIES_PER_DEVICE",
    "MAX_MESSAGE_BYTES",
    "ApplicationConfig",
    "DeviceKey",
    "DownlinkNotSentError",
    "EndDevice",
    "EndDeviceListener",
    "EndDeviceManager",
    "MessageCounters",
    "device_key_text",
    "end_device_diagnostics",
    "end_device_identifier",
    "end_device_key",
    "is_end_device",
]

# Adds the entities of one platform for a device: (device, entity keys,
# the application sub-entry they belong to).
type EntityAdder = Callable[[EndDevice, Iterable[str], str | None], None]

_CAP_ISSUES = {
    Cap.DEVICES: ISSUE_END_DEVICE_CAP,
    Cap.ENTITIES: ISSUE_END_DEVICE_ENTITY_CAP,
}


class EndDeviceManager:
    """Receives the uplinks of one config entry's applications."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        server: TTSServer,
        session: ClientSession,
    ) -> None:
        """Read the options and sub-entries; nothing is connected yet."""
        self.hass = hass
        self.entry = entry
        self.server = server
        options = entry.options
        self.applications = application_configs(entry)
        self.enabled = bool(self.applications)
        minutes = options.get(CONF_OFFLINE_THRESHOLD)
        self.silence_threshold_option = timedelta(minutes=minutes) if minutes else None
        self.decoders: dict[str, Decoder] = {
            device: Decoder(decoder)
            for device, decoder in options.get(CONF_DECODERS, {}).items()
            if decoder in Decoder.__members__.values()
        }
        self.max_devices: int = int(
            options.get(CONF_MAX_END_DEVICES, DEFAULT_MAX_END_DEVICES)
        )
        self.devices: dict[DeviceKey, EndDevice] = {}
        # Devices that have not sent (listed, or without a saved uplink):
        # they give way to devices that send once the cap is reached.
        self._silent: dict[DeviceKey, None] = {}
        # Devices the user deleted: lists do not bring them back, an uplink does.
        self._forgotten = DeletedDevices(hass, entry.entry_id)
        # Listed devices not in Home Assistant (deleted by the user, or no
        # room): their names and models for when they send.
        self._listed_only: dict[DeviceKey, EndDeviceInfo] = {}
        self.silence_timers: KeyedTimers[DeviceKey] = KeyedTimers(hass)
        self.intake = Intake(
            IntakeSettings(
                max_devices=self.max_devices,
                applications=_allowed_applications(self.applications),
                decoders=self.decoders,
                source_of=self._source_of,
            ),
            self.devices,
            self._new_device,
            server.gateway_server_url,
            self._make_room,
        )
        self.sources: dict[str, UplinkSource] = {}
        self.clients: dict[str, TTSClient] = {}
        self.catalogues: dict[str, DeviceCatalogue] = {}
        # Stored uplinks fetched after a restart or an outage, per sub-entry.
        self.catch_up_store = CatchUpStore(hass, entry.entry_id)
        self.catch_ups: dict[str, StorageCatchUp] = {}
        for config in self.applications:
            on_message = partial(self._async_handle_message, config)
            on_availability = partial(self._async_availability, config.subentry_id)
            if config.direct:
                self.sources[config.subentry_id] = DirectConnection(
                    hass, entry, config, server, on_message, on_availability
                )
            else:
                self.sources[config.subentry_id] = UplinkSubscription(
                    hass,
                    entry,
                    config.subentry_id,
                    config.topic,
                    on_message,
                    on_availability,
                )
            if config.api_key is None or config.application_id is None:
                continue
            client = TTSClient(session, server, config.api_key)
            self.clients[config.subentry_id] = client
            if config.grants(Right.APPLICATION_DEVICES_READ):
                self.catalogues[config.subentry_id] = DeviceCatalogue(
                    hass, entry, config, client, self
                )
        self._adders: dict[Platform, EntityAdder] = {}

    @property
    def counters(self) -> MessageCounters:
        """What happened to the messages received."""
        return self.intake.counters

    @property
    def receiving(self) -> bool:
        """Whether uplinks can arrive from at least one application."""
        return any(source.available for source in self.sources.values())

    def application_of(self, key: DeviceKey) -> ApplicationConfig | None:
        """The application sub-entry a device belongs to."""
        return subentry_for(self.applications, key[0])

    def _source_of(self, application_id: str) -> str | None:
        """The sub-entry whose source an application's messages must come from."""
        config = subentry_for(self.applications, application_id)
        return None if config is None else config.subentry_id

    def subentry_of(self, key: DeviceKey) -> str | None:
        """The ID of the sub-entry a device belongs to."""
        config = self.application_of(key)
        return None if config is None else config.subentry_id

    def receiving_for(self, device: EndDevice) -> bool:
        """Whether the device's uplinks can arrive (its source is up)."""
        if (subentry_id := self.subentry_of(device.key)) is None:
            return False
        return self.sources[subentry_id].available

    def key_of(self, device: dr.DeviceEntry) -> DeviceKey | None:
        """The end device a registry device stands for; None for gateways."""
        return end_device_key(account_id(self.entry), device)

    def silence_threshold(self, device: EndDevice) -> timedelta:
        """How long a device may be silent before it counts as offline."""
        if self.silence_threshold_option is not None:
            return self.silence_threshold_option
        if (interval := device.uplink_interval) is None:
            return UNKNOWN_INTERVAL_OFFLINE_THRESHOLD
        return max(
            MIN_OFFLINE_THRESHOLD, timedelta(seconds=interval * OFFLINE_INTERVALS)
        )

    # -- Setup ---------------------------------------------------------------

    @callback
    def async_load_known_devices(self) -> None:
        """Recreate the devices seen before from the registries, within the cap.

        Devices of an application that no longer has a sub-entry are removed,
        and so are those over the cap (the ones that sent least recently).
        """

        def known(key: DeviceKey, last_seen: datetime | None) -> EndDevice | None:
            if len(self.devices) >= self.max_devices:
                return None
            device = self._new_device(key)
            device.restore(last_seen, None)
            if last_seen is None:
                self._silent[key] = None
            return device

        async_load_known_devices(
            self.hass,
            self.entry.entry_id,
            account_id(self.entry),
            self.subentry_of,
            known,
        )

    def _new_device(self, key: DeviceKey) -> EndDevice:
        device = EndDevice(
            key=key,
            identifier=end_device_identifier(account_id(self.entry), key),
            decoder=self.decoders.get(device_key_text(key), Decoder.AUTO),
        )
        self._forgotten.discard(key)
        if (info := self._listed_only.pop(key, None)) is not None:
            _take_listed(device, info)
        for platform, entity_key in STATIC_ENTITY_KEYS:
            device.wanted[platform].add(entity_key)
        self.devices[key] = device
        return device

    @callback
    def async_register_platform(self, platform: Platform, adder: EntityAdder) -> None:
        """Let a platform add entities; it gets those of known devices now."""
        self._adders[platform] = adder
        for device in self.devices.values():
            self._add_missing(device, platform)

    def _add_missing(self, device: EndDevice, platform: Platform) -> None:
        if (adder := self._adders.get(platform)) is None:
            return
        if missing := device.wanted[platform] - device.created[platform]:
            device.created[platform].update(missing)
            adder(device, sorted(missing), self.subentry_of(device.key))

    async def async_setup(self) -> None:
        """Start every application's source; never waits for a connection.

        Without MQTT a repair issue says what to do, and the devices of
        applications on Home Assistant's MQTT are unavailable until it is
        loaded; a direct connection keeps its devices unavailable until it
        is up.
        """
        for issue in self._cap_issue_ids():
            ir.async_delete_issue(self.hass, DOMAIN, issue)
        await self._forgotten.async_load()
        await self.catch_up_store.async_load()
        for config in self.applications:
            client = self.clients.get(config.subentry_id)
            if client is None or not config.grants(Right.APPLICATION_TRAFFIC_READ):
                continue
            catch_up = StorageCatchUp(
                self.hass,
                self.entry,
                config,
                client,
                self.catch_up_store,
                self._async_apply_stored,
            )
            self.catch_ups[config.subentry_id] = catch_up
        for source in self.sources.values():
            source.async_start()
        for catalogue in self.catalogues.values():
            catalogue.async_start()

    @callback
    def async_stop(self) -> None:
        """Disconnect and stop the timers; the entry is unloading."""
        for source in self.sources.values():
            source.async_stop()
        for catalogue in self.catalogues.values():
            catalogue.async_stop()
        for catch_up in self.catch_ups.values():
            catch_up.async_stop()
        self.silence_timers.cancel_all()

    @callback
    def async_forget(self, device_entry: dr.DeviceEntry) -> None:
        """Forget a device the user deleted, until it sends again."""
        if (key := self.key_of(device_entry)) is not None:
            self.devices.pop(key, None)
            self._silent.pop(key, None)
            self._forgotten.add(key)
            self.silence_timers.cancel(key)

    @callback
    def _async_availability(self, subentry_id: str) -> None:
        """A source went up or down: entities follow, a catch-up may start."""
        self._notify_all()
        if (catch_up := self.catch_ups.get(subentry_id)) is not None:
            catch_up.async_source_changed(self.sources[subentry_id].available)

    @callback
    def _async_apply_stored(
        self, config: ApplicationConfig, uplinks: list[Uplink]
    ) -> int:
        """Apply uplinks fetched from TTS's storage, oldest first.

        They go through the intake like live uplinks (repeats and older ones
        are left out); each device's entities then write their state once,
        with the newest values.
        """
        now = dt_util.utcnow()
        updated: dict[DeviceKey, EndDevice] = {}
        for uplink in uplinks:
            if not config.takes(uplink.ids.application_id):
                self.counters.dropped += 1
                self.counters.drop_reasons["stored uplink of another application"] += 1
                continue
            if (device := self.intake.take_uplink(uplink, now, "storage")) is not None:
                updated[device.key] = device
        if self.intake.has_cap_hits:
            self._raise_cap_issues()
        for device in updated.values():
            self._async_device_updated(device)
        return len(updated)

    @callback
    def _notify_all(self) -> None:
        """Availability changed: every entity writes its state if it changed."""
        for device in self.devices.values():
            for listener in list(device.listeners):
                listener.async_handle_device_update()

    # -- Device lists and the cap ------------------------------------------------

    def listed_keys(self, application_id: str) -> set[DeviceKey]:
        """The devices of an application known now."""
        return {key for key in self.devices if key[0] == application_id}

    @callback
    def async_apply_listing(
        self, config: ApplicationConfig, listed: Collection[EndDeviceInfo]
    ) -> None:
        """Take the devices of an application's list from TTS.

        Listed devices appear with their TTS name and model while there is
        room under the cap (they give way to devices that send); renamed ones
        follow. A device the user deleted stays away until it sends again.
        """
        for key in [
            key for key in self._listed_only if key[0] == config.application_id
        ]:
            del self._listed_only[key]
        for info in listed:
            key = (info.application_id, info.device_id)
            if config.application_id != info.application_id:
                continue
            device = self.devices.get(key)
            if device is None:
                if key in self._forgotten.keys or len(self.devices) >= self.max_devices:
                    # It appears with its first uplink (if there is room).
                    self._listed_only[key] = info
                    continue
                device = self._new_device(key)
                self._silent[key] = None
            _take_listed(device, info)
            self._async_device_updated(device)

    @callback
    def async_remove_deleted(self, key: DeviceKey) -> None:
        """Remove a device deleted in TTS, with its registry device."""
        self._remove(key)

    def _remove(self, key: DeviceKey) -> None:
        self.devices.pop(key, None)
        self._silent.pop(key, None)
        self.silence_timers.cancel(key)
        async_remove_device(
            self.hass,
            self.entry.entry_id,
            end_device_identifier(account_id(self.entry), key),
        )

    def _make_room(self) -> bool:
        """Room for a device that sends: a listed device that never sent goes."""
        while self._silent:
            key, _ = self._silent.popitem()
            device = self.devices.get(key)
            if device is None or device.last_seen is not None:
                continue  # gone, or it has sent since
            LOGGER.info(
                "End device %s, listed but silent, makes room for one that sends "
                "(maximum end devices: %d)",
                device_key_text(key),
                self.max_devices,
            )
            self._remove(key)
            self._listed_only[key] = EndDeviceInfo(
                key[0], key[1], name=device.tts_name, version_ids=device.version_ids
            )
            return True
        return False

    # -- Downlinks -----------------------------------------------------------

    async def async_send_downlink(
        self, key: DeviceKey, downlinks: list[Downlink], *, replace: bool
    ) -> None:
        """Queue downlinks for a device through its application.

        Raises DownlinkNotSentError with a translation key when impossible.
        """
        config = self.application_of(key)
        subentry_id = None if config is None else config.subentry_id
        await async_send_downlinks(
            config,
            self.sources.get(subentry_id or ""),
            self.clients.get(subentry_id or ""),
            key,
            downlinks,
            replace=replace,
        )

    # -- Messages ------------------------------------------------------------

    @callback
    def _async_handle_message(
        self, config: ApplicationConfig, topic: str, payload: bytes
    ) -> None:
        """Take one MQTT message from an application's source; never raises."""
        try:
            device = self.intake.take(
                topic, payload, dt_util.utcnow(), config.subentry_id
            )
            if self.intake.has_cap_hits:
                self._raise_cap_issues()
            if device is not None:
                self._async_device_updated(device)
                catch_up = self.catch_ups.get(config.subentry_id)
                if catch_up is not None and device.last_seen is not None:
                    catch_up.async_note_uplink(device.last_seen)
        except Exception:  # noqa: BLE001 - one bad uplink must not stop the rest
            self.counters.dropped += 1
            self.counters.drop_reasons["error"] += 1
            LOGGER.exception("Error handling an uplink on %.200s", topic)

    def _async_device_updated(self, device: EndDevice) -> None:
        had_entities = any(device.created.values())
        if device.info_changed:
            device.info_changed = False
            if had_entities:
                self._update_device_registry(device)
        for platform in self._adders:
            self._add_missing(device, platform)
        for listener in device.listeners:
            listener.async_handle_device_update()

    def _update_device_registry(self, device: EndDevice) -> None:
        async_update_device(
            self.hass, self.entry.entry_id, device, self.subentry_of(device.key)
        )

    def _cap_issue_ids(self) -> tuple[str, ...]:
        return tuple(f"{issue}_{self.entry.entry_id}" for issue in _CAP_ISSUES.values())

    def _raise_cap_issues(self) -> None:
        for cap in self.intake.take_cap_hits():
            issue = _CAP_ISSUES[cap]
            issue_id = f"{issue}_{self.entry.entry_id}"
            if ir.async_get(self.hass).async_get_issue(DOMAIN, issue_id):
                continue
            LOGGER.warning(
                "End devices of %s: uplinks over the %s cap are dropped",
                self.entry.title,
                cap,
            )
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=issue,
                translation_placeholders={
                    "title": self.entry.title,
                    "max_devices": str(self.max_devices),
                    "max_entities": str(MAX_ENTITIES_PER_DEVICE),
                },
            )


# Diagnostics keep the shape of a reading but not where a device is.
REDACTED = "**REDACTED**"


def _take_listed(device: EndDevice, info: EndDeviceInfo) -> None:
    """A device's name and model as the application's list gives them."""
    changed = device.tts_name != (info.name or None)
    device.tts_name = info.name or None
    if info.version_ids is not None and device.version_ids != info.version_ids:
        device.version_ids = info.version_ids
        changed = True
    if changed:
        device.info_changed = True


def _allowed_applications(configs: list[ApplicationConfig]) -> frozenset[str]:
    """The applications whose uplinks are taken; empty for all."""
    allowed: set[str] = set()
    for config in configs:
        if config.application_id is not None:
            allowed.add(config.application_id)
        elif not config.applications:
            return frozenset()
        else:
            allowed.update(config.applications)
    return frozenset(allowed)


def _reading_for_diagnostics(key: str, value: Any) -> Any:
    description = describe_reading(key)
    return REDACTED if description is not None and description.location else value


def _application_diagnostics(
    manager: EndDeviceManager, config: ApplicationConfig
) -> dict[str, Any]:
    """One application's sub-entry and source, without its key."""
    source = manager.sources[config.subentry_id]
    details: dict[str, Any] = {
        "subentry_id": config.subentry_id,
        "application_id": config.application_id,
        "transport": config.transport,
        "rights": sorted(config.rights),
        "available": source.available,
        "subscribed": source.subscribed,
    }
    if isinstance(source, DirectConnection):
        settings = source.settings
        details.update(
            mqtt_host=settings.host,
            mqtt_port=settings.port,
            mqtt_tls=settings.tls,
            connects=source.connects,
            failures=source.failures,
            last_error=source.last_error,
            key_rejected=source.rejected,
        )
    else:
        details.update(topic=source.topic, applications=sorted(config.applications))
    details["messages_for_other_sources"] = {
        application_id: count
        for (source, application_id), count in sorted(
            manager.counters.other_source.items()
        )
        if source == config.subentry_id
    }
    if (catalogue := manager.catalogues.get(config.subentry_id)) is not None:
        details.update(
            devices_listed=catalogue.listed,
            device_list_complete=catalogue.complete,
            device_list_error=catalogue.last_error,
        )
    if (catch_up := manager.catch_ups.get(config.subentry_id)) is not None:
        details["stored_uplinks"] = catch_up.diagnostics()
    return details


def end_device_diagnostics(manager: EndDeviceManager) -> dict[str, Any]:
    """What the manager receives and knows, for the diagnostics download."""
    counters = manager.counters
    return {
        "enabled": manager.enabled,
        "receiving": manager.receiving,
        "max_devices": manager.max_devices,
        "max_entities_per_device": MAX_ENTITIES_PER_DEVICE,
        "applications": [
            _application_diagnostics(manager, config) for config in manager.applications
        ],
        "silence_threshold_minutes": (
            None
            if manager.silence_threshold_option is None
            else manager.silence_threshold_option.total_seconds() / 60
        ),
        "decoders": {
            device: str(decoder) for device, decoder in manager.decoders.items()
        },
        "messages": {
            "received": counters.received,
            "uplinks": counters.uplinks,
            "repeats": counters.repeats,
            "older": counters.older,
            "ignored": counters.ignored,
            "dropped": counters.dropped,
            "undecodable": counters.undecodable,
            "over_device_cap": counters.over_device_cap,
            "over_entity_cap": counters.over_entity_cap,
            "drop_reasons": dict(counters.drop_reasons),
        },
        "devices": {
            device_key_text(key): {
                "decoder": str(device.decoder),
                "decoder_used": None
                if device.decoder_used is None
                else str(device.decoder_used),
                "formatter_warnings": list(device.warnings),
                "formatter_failed": device.formatter_failed,
                "last_seen": device.last_seen,
                "uplink_interval_seconds": device.uplink_interval,
                "silence_threshold_seconds": manager.silence_threshold(
                    device
                ).total_seconds(),
                "f_port": None if device.uplink is None else device.uplink.f_port,
                "f_cnt": None if device.uplink is None else device.uplink.f_cnt,
                "readings": {
                    reading_key: _reading_for_diagnostics(reading_key, reading.value)
                    for reading_key, reading in device.readings.items()
                },
                "entities": {
                    str(platform): sorted(keys)
                    for platform, keys in device.wanted.items()
                },
            }
            for key, device in manager.devices.items()
        },
    }
