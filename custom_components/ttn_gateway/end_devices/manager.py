"""The end-device manager: ties the parts of ``end_devices`` together."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from aiohttp import ClientSession
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from ..const import (
    CONF_DECODERS,
    CONF_END_DEVICE_SILENCE_THRESHOLD,
    CONF_MAX_END_DEVICES,
    DEFAULT_MAX_END_DEVICES,
    LOGGER,
    MIN_END_DEVICE_SILENCE_THRESHOLD,
    SIGNAL_NEW_END_DEVICE_ENTITIES,
    SILENCE_INTERVALS,
    UNKNOWN_INTERVAL_SILENCE_THRESHOLD,
)
from ..decoders import Decoder
from ..device_names import DeviceNames
from ..identifiers import account_id, end_device_identifier
from ..issues import async_delete_issue
from ..timers import KeyedTimers
from ..tts import Downlink, EndDeviceInfo, Right, TTSClient, TTSServer, Uplink
from .applications import (
    ApplicationConfig,
    allowed_applications,
    application_configs,
    console_base,
    subentry_for,
)
from .cap import CappedDevices, take_listed
from .catalogue import DeviceCatalogue
from .catchup import CatchUpStore, StorageCatchUp
from .direct import DirectConnection
from .downlinks import async_send_downlinks
from .intake import Intake, IntakeSettings, MessageCounters
from .registry import (
    FAIR_USE_ENTITY_KEYS,
    STATIC_ENTITY_KEYS,
    DeletedDevices,
    async_load_known_devices,
    async_update_device,
    device_key_text,
    end_device_key,
)
from .state import DeviceKey, EndDevice
from .subscription import UplinkSubscription

type UplinkSource = DirectConnection | UplinkSubscription


class EndDeviceManager(CappedDevices):
    """Receives the uplinks of one config entry's applications."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        server: TTSServer,
        session: ClientSession,
        device_names: DeviceNames,
    ) -> None:
        """Read the options and sub-entries; nothing is connected yet."""
        self.hass = hass
        self.entry = entry
        self.server = server
        self.device_names = device_names
        options = entry.options
        self.applications = application_configs(entry)
        # application ID -> its sub-entry; every entity asks on every uplink.
        self._subentry_by_application: dict[str, ApplicationConfig | None] = {}
        self.enabled = bool(self.applications)
        minutes = options.get(CONF_END_DEVICE_SILENCE_THRESHOLD)
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
                applications=allowed_applications(self.applications),
                decoders=self.decoders,
                source_of=self._source_of,
            ),
            self.devices,
            self._new_device,
            partial(console_base, self.applications, server),
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
            application_server = config.application_server(server)
            if config.direct:
                self.sources[config.subentry_id] = DirectConnection(
                    hass, entry, config, application_server, on_message, on_availability
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
            client = TTSClient(session, application_server, config.api_key)
            self.clients[config.subentry_id] = client
            if config.grants(Right.APPLICATION_DEVICES_READ):
                self.catalogues[config.subentry_id] = DeviceCatalogue(
                    hass, entry, config, client, self
                )

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
        return self._subentry_for(key[0])

    def _subentry_for(self, application_id: str) -> ApplicationConfig | None:
        try:
            return self._subentry_by_application[application_id]
        except KeyError:
            config = subentry_for(self.applications, application_id)
            self._subentry_by_application[application_id] = config
            return config

    def _source_of(self, application_id: str) -> str | None:
        """The sub-entry whose source an application's messages must come from."""
        config = self._subentry_for(application_id)
        return None if config is None else config.subentry_id

    def subentry_of(self, key: DeviceKey) -> str | None:
        """The ID of the sub-entry a device belongs to."""
        config = self.application_of(key)
        return None if config is None else config.subentry_id

    @property
    def fair_use_applies(self) -> bool:
        """Whether The Things Network's Fair Use Policy applies (its servers only)."""
        return self.server.is_the_things_network

    def receiving_for(self, device: EndDevice) -> bool:
        """Whether the device's uplinks can arrive (its source is up)."""
        if (subentry_id := self.subentry_of(device.key)) is None:
            return False
        return self.sources[subentry_id].available

    def key_of(self, device: dr.DeviceEntry) -> DeviceKey | None:
        """The end device a registry device stands for; None for gateways."""
        return end_device_key(account_id(self.entry), device)

    def silence_threshold(self, device: EndDevice) -> timedelta:
        """How long a device may go without an uplink before it counts as silent."""
        if self.silence_threshold_option is not None:
            return self.silence_threshold_option
        if (interval := device.uplink_interval) is None:
            return UNKNOWN_INTERVAL_SILENCE_THRESHOLD
        return max(
            MIN_END_DEVICE_SILENCE_THRESHOLD,
            timedelta(seconds=interval * SILENCE_INTERVALS),
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
            take_listed(device, info)
        for platform, entity_key in STATIC_ENTITY_KEYS:
            device.entity_keys[platform].add(entity_key)
        if self.fair_use_applies:
            for platform, entity_key in FAIR_USE_ENTITY_KEYS:
                device.entity_keys[platform].add(entity_key)
        self.devices[key] = device
        return device

    async def async_setup(self) -> None:
        """Start every application's source; never waits for a connection.

        Without MQTT a repair issue says what to do, and the devices of
        applications on Home Assistant's MQTT are unavailable until it is
        loaded; a direct connection keeps its devices unavailable until it
        is up.
        """
        for issue in self._cap_issue_ids():
            async_delete_issue(self.hass, issue)
        self.entry.async_on_unload(
            self.device_names.async_add_listener(self._async_names_learnt)
        )
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
        if device.info_changed:
            device.info_changed = False
            # A device without entities yet gets its registry entry with them.
            if device.listeners:
                self._update_device_registry(device)
            self.intake.coverage.renamed(device.key)
        # The platforms add the entities the device does not have yet (keys
        # are only ever added, so a count that did not change brings none).
        if device.announced != device.entity_count:
            device.announced = device.entity_count
            async_dispatcher_send(
                self.hass,
                SIGNAL_NEW_END_DEVICE_ENTITIES.format(self.entry.entry_id),
                device,
            )
        for listener in device.listeners:
            listener.async_handle_device_update()

    def _update_device_registry(self, device: EndDevice) -> None:
        async_update_device(
            self.hass,
            self.entry.entry_id,
            self.device_names.readable(device.device_info()),
            self.subentry_of(device.key),
        )

    @callback
    def _async_names_learnt(self) -> None:
        for device in self.devices.values():
            if device.listeners:
                self._update_device_registry(device)
