"""One application's direct connection to The Things Stack's MQTT server.

The connection runs in a background task and never blocks setup. It
reconnects with a doubling delay (with jitter) that starts again from the
shortest once a connection has held for a minute, and keeps the
application's entities unavailable while it is down. TTS's MQTT server
answers "not authorized" for more than a bad key, so the key is checked
with ``auth_info`` before a repair issue says TTS rejected it; the issue
goes away once a connection succeeds or the key checks out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import random
import time
from typing import TYPE_CHECKING, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util.ssl import get_default_context

from ..const import (
    ISSUE_APPLICATION_KEY_REJECTED,
    LOGGER,
    MAX_RECONNECT_DELAY,
    MIN_RECONNECT_DELAY,
)
from ..issues import async_create_issue, async_delete_issue
from ..tts import (
    ApplicationSession,
    AuthInfo,
    KeyOwnerType,
    MqttNotAuthorizedError,
    Right,
    TTSAuthenticationError,
    TTSClient,
    TTSError,
    TTSPermissionError,
    TTSRateLimitError,
    TTSServer,
    connect_application,
)

if TYPE_CHECKING:
    from .applications import ApplicationConfig

# How to connect, to wait between attempts and to tell the time; tests swap
# them.
CONNECT = connect_application
SLEEP = asyncio.sleep
CLOCK = time.monotonic

# A connection that stayed up this long ends the outage: the next drop is
# a new outage, retried after the shortest delay and logged again.
STABLE_CONNECTION_SECONDS: Final = 60.0
# MIN_RECONNECT_DELAY * 2**7 > MAX_RECONNECT_DELAY: larger exponents change
# nothing.
_MAX_EXPONENT: Final = 7
_UNEXPECTED: Final = "unexpected error"


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
        """Nothing connects until async_start.

        ``server`` is the application's: its cluster on a cloud.
        """
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
        self._server = server
        self._session: ApplicationSession | None = None
        self._task: asyncio.Task[None] | None = None
        # Reconnects since the last connection that held: the outage so far.
        self._attempt = 0
        self._back_logged = False
        self._connected_at: float | None = None

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
        while True:
            try:
                error = await self._async_connect_once()
            finally:
                self._session = None
                self._set_available(False)
            if self._connected_at is not None and (
                CLOCK() - self._connected_at >= STABLE_CONNECTION_SECONDS
            ):
                self._attempt = 0
                self._back_logged = False
            floor = await self._async_failed(error)
            self._connected_at = None
            await SLEEP(_jittered(max(_backoff(self._attempt), floor)))
            self._attempt += 1

    async def _async_connect_once(self) -> Exception:
        """Connect and receive until the connection ends; return why it did."""
        settings = self.settings
        try:
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
        except Exception as err:  # noqa: BLE001 - the connection must keep trying
            return err
        return _ClosedError()

    def _connected(self, session: ApplicationSession) -> None:
        self._session = session
        self._connected_at = CLOCK()
        self.connects += 1
        if self._attempt and not self._back_logged:
            self._back_logged = True
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
        self._clear_rejected()
        self._set_available(True)

    async def _async_failed(self, error: Exception) -> float:
        """Record and log why the connection ended; the least delay it needs."""
        self.failures += 1
        if isinstance(error, MqttNotAuthorizedError):
            return await self._async_not_authorized(error)
        if not isinstance(error, TTSError):
            # A bug: its traceback once, not on every retry.
            if self.last_error != _UNEXPECTED:
                LOGGER.error(
                    "Unexpected error on the MQTT connection of %s; reconnecting",
                    self.config.title,
                    exc_info=error,
                )
            self.last_error = _UNEXPECTED
            return 0.0
        self._log_failure(str(error))
        # A rate limit: TTS counts connections per minute.
        return error.retry_after if isinstance(error, TTSRateLimitError) else 0.0

    def _log_failure(self, reason: str) -> None:
        """Once per outage at warning level; the retries at debug."""
        self.last_error = reason
        log = LOGGER.warning if self._attempt == 0 else LOGGER.debug
        if self._connected_at is not None:
            log(
                "MQTT connection of %s lost: %s; reconnecting",
                self.config.title,
                reason,
            )
        else:
            log(
                "MQTT connection of %s failed (attempt %s): %s; retrying",
                self.config.title,
                self.failures,
                reason,
            )

    async def _async_not_authorized(self, error: MqttNotAuthorizedError) -> float:
        """TTS refused the login: ask ``auth_info`` whether it is the key."""
        client = TTSClient(
            async_get_clientsession(self.hass), self._server, self._api_key
        )
        try:
            info = await client.get_auth_info()
        except (TTSAuthenticationError, TTSPermissionError) as err:
            self._rejected(error, str(err))
            return MAX_RECONNECT_DELAY.total_seconds()
        except TTSError as err:
            # Unknown: not worth a repair issue; the next attempt asks again.
            self._log_failure(f"{error} (the key could not be checked: {err})")
            return err.retry_after if isinstance(err, TTSRateLimitError) else 0.0
        if (problem := self._key_problem(info)) is not None:
            self._rejected(error, problem)
            return MAX_RECONNECT_DELAY.total_seconds()
        self._clear_rejected()
        self.last_error = f"{error}, although the key is valid"
        log = LOGGER.warning if self._attempt == 0 else LOGGER.debug
        log(
            "The MQTT server of %s refused %s although The Things Stack accepts"
            " the key: the application ID or the MQTT username (tenant) may be"
            " wrong, or the server may be unavailable; retrying",
            self.config.title,
            self.settings.username,
        )
        return 0.0

    def _key_problem(self, info: AuthInfo) -> str | None:
        """Why a valid key still cannot read the application's uplinks, if so."""
        if (
            info.owner_type is KeyOwnerType.APPLICATION
            and info.owner_id != self.config.application_id
        ):
            return "the key belongs to another application"
        if not info.grants(Right.APPLICATION_TRAFFIC_READ):
            return "the key may not read the application's traffic"
        return None

    def _rejected(self, error: MqttNotAuthorizedError, reason: str) -> None:
        self.last_error = f"{error} ({reason})"
        if self.rejected:
            return
        self.rejected = True
        LOGGER.warning(
            "The Things Stack rejected the key of %s: %s", self.config.title, reason
        )
        async_create_issue(
            self.hass,
            self.issue_id,
            fixable=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_APPLICATION_KEY_REJECTED,
            placeholders={"application": self.config.title},
            data={
                "entry_id": self.entry.entry_id,
                "subentry_id": self.config.subentry_id,
            },
        )

    def _clear_rejected(self) -> None:
        if self.rejected:
            self.rejected = False
            async_delete_issue(self.hass, self.issue_id)


class _ClosedError(TTSError):
    """The server ended the connection."""

    def __init__(self) -> None:
        super().__init__("the server closed the connection")


def _backoff(attempt: int) -> float:
    """Seconds before reconnect number ``attempt`` of an outage (0 based)."""
    delay = MIN_RECONNECT_DELAY * (1 << min(attempt, _MAX_EXPONENT))
    return min(delay, MAX_RECONNECT_DELAY).total_seconds()


def _jittered(seconds: float) -> float:
    """Seconds to wait: the delay with up to a fifth of it added at random."""
    return seconds + random.uniform(0, seconds / 5)  # noqa: S311 - not security
