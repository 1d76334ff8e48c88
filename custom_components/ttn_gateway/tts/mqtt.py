"""The MQTT server of The Things Stack's Application Server, for one application.

Where it is and who logs in follow from the server (TTS API reference, MQTT
server): the cluster's host, 8883 with TLS for https servers and 1883 for
plain http, MQTT 3.1.1 and QoS 0 only, the username ``<app>@ttn`` on The
Things Network, ``<app>@<tenant>`` on The Things Industries Cloud and the
bare application ID on a self-hosted server, and an API key as password.
The connection is a thin layer over aiomqtt that turns its errors into this
package's errors, none of which carries the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
import secrets
import ssl
from typing import Final

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from .errors import TTSConnectionError, TTSError, TTSRateLimitError
from .servers import TTSServer

TLS_PORT: Final = 8883
PLAIN_PORT: Final = 1883
# CONNACK return codes of MQTT 3.1.1 and the reason codes paho maps them to:
# 4 bad username or password, 5 not authorized, 3 server unavailable.
_NOT_AUTHORIZED: Final = frozenset({4, 5, 134, 135})
_UNAVAILABLE: Final = frozenset({3, 136})
# When the server says it is unavailable: TTS's answer to a rate limit, whose
# profiles count accesses per minute (lorawan-stack pkg/ratelimit/config.go).
UNAVAILABLE_RETRY_SECONDS: Final = 60.0
# How long connecting, subscribing and publishing may take.
TIMEOUT_SECONDS: Final = 15.0


class MqttNotAuthorizedError(TTSError):
    """The MQTT server refused the login (CONNACK "not authorized").

    Not proof of a bad key. TTS's Application Server answers 5 for a key
    without rights on the application, but also for every other error while
    it sets up the session (mystique ``pkg/session/connect.go`` ReadConnect:
    an error of ``Connect`` that is no return code becomes "not authorized"):
    an invalid or unknown application ID, a wrong tenant, an Identity Server
    or Application Server it cannot reach (lorawan-stack
    ``pkg/applicationserver/io/mqtt/mqtt.go`` Connect). Only a rate limit
    (resource exhausted) becomes 3, "server unavailable".
    """


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where an application's MQTT connection goes and who logs in."""

    host: str
    port: int
    tls: bool
    username: str

    @property
    def topic_prefix(self) -> str:
        """``v3/<username>``: every topic of the application starts so."""
        return f"v3/{self.username}"

    def uplink_topic(self) -> str:
        """Uplinks of every device of the application."""
        return f"{self.topic_prefix}/devices/+/up"

    def downlink_events_topic(self) -> str:
        """Queued, sent, acknowledged and failed downlinks of every device."""
        return f"{self.topic_prefix}/devices/+/down/+"

    def downlink_topic(self, device_id: str, *, replace: bool) -> str:
        """Where downlinks for a device are published."""
        operation = "replace" if replace else "push"
        return f"{self.topic_prefix}/devices/{device_id}/down/{operation}"


def mqtt_username(server: TTSServer, application_id: str) -> str:
    """The MQTT username of an application on a server."""
    tenant = server.tenant
    return application_id if tenant is None else f"{application_id}@{tenant}"


def mqtt_settings(
    server: TTSServer,
    application_id: str,
    *,
    host: str | None = None,
    port: int | None = None,
    tls: bool | None = None,
    username: str | None = None,
) -> MqttSettings:
    """The server's MQTT settings for an application; overrides win."""
    use_tls = server.url.startswith("https://") if tls is None else tls
    return MqttSettings(
        host=host or server.hostname,
        port=port or (TLS_PORT if use_tls else PLAIN_PORT),
        tls=use_tls,
        username=username or mqtt_username(server, application_id),
    )


class ApplicationSession:
    """A connected session: subscribe, receive, publish."""

    def __init__(self, client: aiomqtt.Client, settings: MqttSettings) -> None:
        """Wrap a connected aiomqtt client."""
        self._client = client
        self._settings = settings

    async def subscribe(self, *topics: str) -> None:
        """Subscribe to topic filters at QoS 0, the only QoS TTS offers."""
        try:
            for topic in topics:
                await self._client.subscribe(topic, qos=0)
        except aiomqtt.MqttError as err:
            raise _error(err, self._settings) from None

    async def messages(self) -> AsyncIterator[tuple[str, bytes]]:
        """Every message as (topic, raw payload) until the connection ends."""
        try:
            async for message in self._client.messages:
                payload = message.payload
                yield (
                    message.topic.value,
                    payload if isinstance(payload, bytes) else str(payload).encode(),
                )
        except aiomqtt.MqttError as err:
            raise _error(err, self._settings) from None

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 0."""
        try:
            await self._client.publish(topic, payload, qos=0)
        except aiomqtt.MqttError as err:
            raise _error(err, self._settings) from None


@asynccontextmanager
async def connect_application(
    settings: MqttSettings,
    api_key: str,
    *,
    ssl_context: ssl.SSLContext | None,
    client_id: str | None = None,
    keepalive: int = 60,
) -> AsyncIterator[ApplicationSession]:
    """Connect to an application's MQTT server; disconnect on leaving.

    ``ssl_context`` is used when the settings ask for TLS; it is injected so
    that no context is built (a blocking call) in the event loop.
    """
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=api_key,
        identifier=client_id or f"ha-ttn-gateway-{secrets.token_hex(6)}",
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=keepalive,
        timeout=TIMEOUT_SECONDS,
        tls_context=ssl_context if settings.tls else None,
        clean_session=True,
    )
    try:
        await client.__aenter__()
    except aiomqtt.MqttError as err:
        raise _error(err, settings) from None
    try:
        yield ApplicationSession(client, settings)
    finally:
        with contextlib.suppress(aiomqtt.MqttError):  # already gone
            await client.__aexit__(None, None, None)


def _error(
    err: aiomqtt.MqttError, settings: MqttSettings
) -> MqttNotAuthorizedError | TTSRateLimitError | TTSConnectionError:
    """This package's error for an aiomqtt error; never with the key in it."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(err, aiomqtt.MqttCodeError):
        rc = err.rc
        code = rc.value if isinstance(rc, ReasonCode) else rc
        if code in _NOT_AUTHORIZED:
            return MqttNotAuthorizedError(
                f"{where} refused {settings.username}: not authorized"
            )
        if code in _UNAVAILABLE:
            return TTSRateLimitError(
                f"{where} is unavailable (rate limited?)",
                retry_after=UNAVAILABLE_RETRY_SECONDS,
            )
        return TTSConnectionError(f"{where} refused the request (code {code})")
    text = str(err).strip() or type(err).__name__
    return TTSConnectionError(f"MQTT connection to {where}: {text[:200]}")
