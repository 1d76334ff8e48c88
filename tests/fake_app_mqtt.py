"""An in-process stand-in for The Things Stack's MQTT server, per application.

It replaces ``end_devices.direct.CONNECT`` (the connect function of
``tts.mqtt``) so the direct connection's supervision, reconnects and key
handling can be tested without sockets; the wire side of ``tts.mqtt`` is
tested against a real socket server in ``test_tts_mqtt.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
import ssl
from unittest.mock import patch

from custom_components.ttn_gateway.end_devices import direct
from custom_components.ttn_gateway.tts import (
    MqttNotAuthorizedError,
    MqttSettings,
    TTSConnectionError,
    TTSRateLimitError,
)
from custom_components.ttn_gateway.tts.mqtt import UNAVAILABLE_RETRY_SECONDS

_CLOSED = None


@dataclass
class FakeSession:
    """One connection: what it subscribed, what it published."""

    server: FakeAppMqtt
    settings: MqttSettings
    subscriptions: list[str] = field(default_factory=list)
    queue: asyncio.Queue[tuple[str, bytes] | None] = field(
        default_factory=asyncio.Queue
    )

    async def subscribe(self, *topics: str) -> None:
        """Remember the topic filters."""
        self.subscriptions.extend(topics)

    async def messages(self) -> AsyncIterator[tuple[str, bytes]]:
        """Messages until the server drops the connection."""
        while (message := await self.queue.get()) is not _CLOSED:
            yield message
        raise TTSConnectionError("connection lost")

    async def publish(self, topic: str, payload: bytes) -> None:
        """Record what the client publishes."""
        if self.server.publish_fails:
            raise TTSConnectionError("connection lost")
        self.server.published.append((topic, payload))


@dataclass
class FakeAppMqtt:
    """The server: accepts one key, or refuses, or is unreachable.

    Refusals are what ``tts.mqtt`` makes of TTS's CONNACK codes: 5 "not
    authorized" for a wrong key and, with ``refusing``, for anything else
    that fails while TTS sets up the session (mystique
    ``pkg/session/connect.go``); 3 "server unavailable" with
    ``rate_limited``, TTS's answer to a resource exhausted (lorawan-stack
    ``pkg/applicationserver/io/mqtt/mqtt.go`` Connect).
    """

    api_key: str
    reachable: bool = True
    refusing: bool = False
    rate_limited: bool = False
    # Connecting raises an error of no kind the client knows: a bug.
    broken: bool = False
    publish_fails: bool = False
    attempts: int = 0
    sessions: list[FakeSession] = field(default_factory=list)
    published: list[tuple[str, bytes]] = field(default_factory=list)
    ssl_contexts: list[ssl.SSLContext | None] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    # Monotonic seconds as the direct connection reads them; sleeping and
    # ``hold`` advance it.
    now: float = 1000.0

    @asynccontextmanager
    async def connect(
        self,
        settings: MqttSettings,
        api_key: str,
        *,
        ssl_context: ssl.SSLContext | None,
        client_id: str | None = None,
        keepalive: int = 60,
    ) -> AsyncIterator[FakeSession]:
        """Connect like ``tts.mqtt.connect_application``."""
        self.attempts += 1
        self.ssl_contexts.append(ssl_context)
        if not self.reachable:
            raise TTSConnectionError("connection refused")
        if self.broken:
            raise RuntimeError("a bug")
        if self.rate_limited:
            raise TTSRateLimitError(
                "unavailable (rate limited?)", retry_after=UNAVAILABLE_RETRY_SECONDS
            )
        if self.refusing or api_key != self.api_key:
            raise MqttNotAuthorizedError("refused: not authorized")
        session = FakeSession(self, settings)
        self.sessions.append(session)
        try:
            yield session
        finally:
            self.sessions.remove(session)

    async def sleep(self, seconds: float) -> None:
        """Record the reconnect delay and wait no longer than a loop turn."""
        self.delays.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def clock(self) -> float:
        """The time the direct connection reads."""
        return self.now

    def hold(self, seconds: float) -> None:
        """Let time pass while connected."""
        self.now += seconds

    def publish(self, topic: str, payload: bytes | str) -> None:
        """Deliver a message to every connected client."""
        data = payload.encode() if isinstance(payload, str) else payload
        for session in self.sessions:
            session.queue.put_nowait((topic, data))

    def drop(self) -> None:
        """Close every connection, as a lost network would."""
        for session in self.sessions:
            session.queue.put_nowait(_CLOSED)

    @property
    def connected(self) -> bool:
        """Whether a client is connected now."""
        return bool(self.sessions)


@contextmanager
def serving(api_key: str) -> Iterator[FakeAppMqtt]:
    """The application's MQTT server, accepting the key, in place of TTS's."""
    server = FakeAppMqtt(api_key)
    with (
        patch.object(direct, "CONNECT", server.connect),
        patch.object(direct, "SLEEP", server.sleep),
        patch.object(direct, "CLOCK", server.clock),
    ):
        yield server
