"""One application's direct connection to The Things Stack's MQTT server.

The connection runs in a background task and never blocks setup. It
reconnects with a doubling delay (with jitter), keeps the application's
entities unavailable while it is down, and raises a repair issue when TTS
rejects the key; the issue goes away once a connection succeeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import random
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util.ssl import get_default_context

from ..const import (
    DOMAIN,
    ISSUE_APPLICATION_KEY_REJECTED,
    LOGGER,
    MAX_RECONNECT_DELAY,
    MIN_RECONNECT_DELAY,
)
from ..tts import TTSAuthenticationError, TTSError, TTSServer
from ..tts.mqtt import ApplicationSession, connect_application

if TYPE_CHECKING:
    from .applications import ApplicationConfig

# How to connect and to wait between attempts; tests swap them.
CONNECT = connect_application
SLEEP = asyncio.sleep


class NotConnectedError(Exception):
    """The direct connection is down; nothing can be published now."""


class DirectConnection:
    """Receives an application's messages straight from TTS, reconnecting."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        config: ApplicationConfig,
        server: TTSServer,
        on_message: Callable[[str, bytes], None],
        on_availability: Callable[[], None],
    ) -> None:
        """Nothing connects until async_start."""
        if config.api_key is None or config.application_id is None:
            raise ValueError("a direct connection needs an application ID and key")
        self.hass = hass
        self.entry = entry
        self.config = config
        self.settings = config.mqtt_settings(server)
        self._api_key = config.api_key
        self._on_message = on_message
        self._on_availability = on_availability
        # Connected and subscribed: uplinks can arrive.
        self.available = False
        self.connects = 0
        self.failures = 0
        self.last_error: str | None = None
        self.rejected = False
        self._session: ApplicationSession | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def issue_id(self) -> str:
        """ID of the repair issue about a rejected key."""
        return f"{ISSUE_APPLICATION_KEY_REJECTED}_{self.config.subentry_id}"

    @property
    def subscribed(self) -> bool:
        """Whether the uplink topics are subscribed (the same as available)."""
        return self.available

    @callback
    def async_start(self) -> None:
        """Start connecting in the background."""
        self._task = self.entry.async_create_background_task(
            self.hass,
            self._async_run(),
            f"ttn_gateway {self.config.application_id} MQTT",
        )

    @callback
    def async_stop(self) -> None:
        """Disconnect; the entry is unloading."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._session = None
        self.available = False

    async def async_publish(self, topic: str, payload: bytes) -> None:
        """Publish on the connection; raise NotConnectedError while it is down."""
        if (session := self._session) is None:
            raise NotConnectedError(self.config.title)
        try:
            await session.publish(topic, payload)
        except TTSError as err:
            raise NotConnectedError(self.config.title) from err

    def _set_available(self, available: bool) -> None:
        if available != self.available:
            self.available = available
            self._on_availability()

    async def _async_run(self) -> None:
        delay = MIN_RECONNECT_DELAY
        while True:
            try:
                await self._async_connect_once()
                delay = MIN_RECONNECT_DELAY
            except TTSAuthenticationError as err:
                self._rejected(err)
                delay = MAX_RECONNECT_DELAY
            except TTSError as err:
                self._failed(err)
            except Exception:  # noqa: BLE001 - the connection must keep trying
                self.failures += 1
                self.last_error = "unexpected error"
                LOGGER.exception(
                    "Unexpected error on the MQTT connection of %s", self.config.title
                )
            finally:
                self._session = None
                self._set_available(False)
            await SLEEP(_jittered(delay))
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    async def _async_connect_once(self) -> None:
        settings = self.settings
        async with CONNECT(
            settings,
            self._api_key,
            ssl_context=get_default_context() if settings.tls else None,
        ) as session:
            await session.subscribe(
                settings.uplink_topic(), settings.downlink_events_topic()
            )
            self._connected(session)
            async for topic, payload in session.messages():
                self._on_message(topic, payload)
        # The server closed the connection without an error.
        raise _ClosedError

    def _connected(self, session: ApplicationSession) -> None:
        self._session = session
        self.connects += 1
        if self.failures or self.rejected:
            LOGGER.info("Connected again to the MQTT server of %s", self.config.title)
        else:
            LOGGER.debug(
                "Connected to %s:%s for %s",
                self.settings.host,
                self.settings.port,
                self.config.title,
            )
        self.failures = 0
        self.last_error = None
        if self.rejected:
            self.rejected = False
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        self._set_available(True)

    def _failed(self, err: TTSError) -> None:
        self.failures += 1
        self.last_error = str(err)
        # Once per outage at warning level; the retries at debug.
        log = LOGGER.warning if self.failures == 1 else LOGGER.debug
        log(
            "MQTT connection of %s failed (attempt %s): %s; retrying",
            self.config.title,
            self.failures,
            err,
        )

    def _rejected(self, err: TTSAuthenticationError) -> None:
        self.failures += 1
        self.last_error = str(err)
        if self.rejected:
            return
        self.rejected = True
        LOGGER.warning(
            "The Things Stack rejected the key of %s: %s", self.config.title, err
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self.issue_id,
            is_fixable=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_APPLICATION_KEY_REJECTED,
            translation_placeholders={"application": self.config.title},
            data={
                "entry_id": self.entry.entry_id,
                "subentry_id": self.config.subentry_id,
            },
        )


class _ClosedError(TTSError):
    """The server ended the connection."""

    def __init__(self) -> None:
        super().__init__("the server closed the connection")


def _jittered(delay: timedelta) -> float:
    """Seconds to wait: the delay with up to a fifth of it added at random."""
    seconds = delay.total_seconds()
    return seconds + random.uniform(0, seconds / 5)  # noqa: S311 - not security
