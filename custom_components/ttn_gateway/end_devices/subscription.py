"""Uplinks through Home Assistant's MQTT integration: follow its entry and broker.

Setup never waits for MQTT. The uplink topic (and, when it ends in ``/up``,
the matching downlink event topic) is subscribed whenever Home Assistant's
MQTT integration is loaded; when it unloads (reload, removal, disabled) the
subscription goes, and when it is loaded again the topic is subscribed
again. The end devices are available while MQTT is loaded and its client is
connected to the broker: a broker that is down makes them unavailable (MQTT
subscribes again by itself when it reconnects). Without any MQTT entry a
repair issue says what to do.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from typing import TYPE_CHECKING

from homeassistant.components import mqtt
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from ..const import DOMAIN, ISSUE_MQTT_NOT_SET_UP, LOGGER
from ..issues import async_create_issue, async_delete_issue

if TYPE_CHECKING:
    from homeassistant.components.mqtt import ReceiveMessage


class UplinkSubscription:
    """The uplink topic's subscription, following MQTT's config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        subentry_id: str,
        topic: str,
        on_message: Callable[[str, bytes], None],
        on_availability: Callable[[], None],
    ) -> None:
        """Nothing happens until async_start."""
        self.hass = hass
        self.entry = entry
        self.subentry_id = subentry_id
        self.topic = topic
        self.topics = _topics(topic)
        self._on_message = on_message
        self._on_availability = on_availability
        # MQTT is loaded and connected: uplinks can arrive.
        self.available = False
        # What MQTT's client last said of its broker connection.
        self._connected = False
        self.subscribed = False
        self._unsubscribe: list[Callable[[], None]] = []
        self._subscribing = False
        self._stop_listening: list[Callable[[], None]] = []
        self._stopped = False

    @property
    def issue_id(self) -> str:
        """ID of this entry's repair issue about MQTT."""
        return f"{ISSUE_MQTT_NOT_SET_UP}_{self.subentry_id}"

    @callback
    def async_start(self) -> None:
        """Follow MQTT's config entry and connection from now on; never waits."""
        self._stop_listening = [
            async_dispatcher_connect(
                self.hass, SIGNAL_CONFIG_ENTRY_CHANGED, self._async_entry_changed
            ),
            mqtt.async_subscribe_connection_status(
                self.hass, self._async_connection_changed
            ),
        ]
        self._connected = _mqtt_connected(self.hass)
        self._async_sync()

    @callback
    def async_stop(self) -> None:
        """Unsubscribe and stop following; the entry is unloading."""
        self._stopped = True
        for stop_listening in self._stop_listening:
            stop_listening()
        self._stop_listening = []
        self._drop_subscription()
        self.available = False
        async_delete_issue(self.hass, self.issue_id)

    @callback
    def _async_entry_changed(
        self, change: ConfigEntryChange, entry: ConfigEntry
    ) -> None:
        if entry.domain == mqtt.DOMAIN:
            self._connected = _mqtt_connected(self.hass)
            self._async_sync()

    @callback
    def _async_connection_changed(self, connected: bool) -> None:
        """MQTT's client connected to its broker, or lost it."""
        self._connected = connected
        self._async_sync()

    def _mqtt_state(self) -> tuple[bool, bool]:
        """(an enabled MQTT entry exists, it is loaded)."""
        entries = self.hass.config_entries.async_entries(
            mqtt.DOMAIN, include_ignore=False, include_disabled=False
        )
        return bool(entries), any(
            entry.state is ConfigEntryState.LOADED for entry in entries
        )

    @callback
    def _async_sync(self) -> None:
        """Subscribe, or drop the subscription, as MQTT's state says."""
        if self._stopped:
            return
        configured, loaded = self._mqtt_state()
        if configured:
            async_delete_issue(self.hass, self.issue_id)
        else:
            self._raise_issue()
        if loaded:
            if not self._unsubscribe and not self._subscribing:
                self._subscribing = True
                self.entry.async_create_task(
                    self.hass, self._async_subscribe(), "ttn_gateway uplinks"
                )
        else:
            self._drop_subscription()
        available = loaded and self._connected
        if available == self.available:
            return
        self.available = available
        if available:
            LOGGER.debug("MQTT is connected: receiving uplinks on %s", self.topic)
        else:
            LOGGER.info(
                "MQTT is %s: end devices of %s are unavailable until it is back",
                "not connected to its broker" if loaded else "not loaded",
                self.entry.title,
            )
        self._on_availability()

    async def _async_subscribe(self) -> None:
        unsubscribes: list[Callable[[], None]] = []
        try:
            for topic in self.topics:
                unsubscribes.append(
                    await mqtt.async_subscribe(
                        self.hass, topic, self._async_received, qos=0, encoding=None
                    )
                )
        except HomeAssistantError as err:  # MQTT went away meanwhile
            LOGGER.debug("Could not subscribe to %s: %s", self.topic, err)
            for unsubscribe in unsubscribes:
                _unsubscribe_quietly(unsubscribe)
            return
        finally:
            self._subscribing = False
        if self._stopped or not self._mqtt_state()[1]:
            for unsubscribe in unsubscribes:
                _unsubscribe_quietly(unsubscribe)
            return
        self._unsubscribe = unsubscribes
        self.subscribed = True
        LOGGER.debug("Subscribed to %s", self.topic)

    @callback
    def _async_received(self, msg: ReceiveMessage) -> None:
        payload = msg.payload
        self._on_message(
            msg.topic,
            payload.encode() if isinstance(payload, str) else bytes(payload),
        )

    def _drop_subscription(self) -> None:
        self.subscribed = False
        for unsubscribe in self._unsubscribe:
            _unsubscribe_quietly(unsubscribe)
        self._unsubscribe = []

    def _raise_issue(self) -> None:
        if ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id):
            return
        LOGGER.warning(
            "End devices of %s need Home Assistant's MQTT integration, which is "
            "not set up",
            self.entry.title,
        )
        async_create_issue(
            self.hass,
            self.issue_id,
            fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_MQTT_NOT_SET_UP,
            placeholders={"title": self.entry.title, "topic": self.topic},
        )


def _mqtt_connected(hass: HomeAssistant) -> bool:
    """Whether MQTT's client is connected to its broker now."""
    try:
        return bool(mqtt.is_connected(hass))
    except KeyError:  # MQTT is not set up
        return False


def _topics(topic: str) -> tuple[str, ...]:
    """The uplink topic, and the downlink events beside it when it ends in /up."""
    if topic.endswith("/up"):
        return (topic, f"{topic.removesuffix('/up')}/down/+")
    return (topic,)


def _unsubscribe_quietly(unsubscribe: Callable[[], None]) -> None:
    """Unsubscribe; a client that went away with its entry has nothing to undo."""
    with contextlib.suppress(HomeAssistantError, KeyError, ValueError):
        unsubscribe()
