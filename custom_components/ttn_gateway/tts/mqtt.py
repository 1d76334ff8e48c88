"""The MQTT server of The Things Stack's Application Server, for one application.

Where it is and who logs in follow from the server (TTS API reference, MQTT
server): the cluster's host, 8883 with TLS for https servers and 1883 for
plain http, MQTT 3.1.1 and QoS 0 only, the username ``<app>@ttn`` on The
Things Network, ``<app>@<tenant>`` on The Things Industries Cloud and the
bare application ID on a self-hosted server, and an API key as password.
The Application Server also says so itself (``GET
/api/v3/as/applications/{id}/mqtt-connection-info``, lorawan-stack
``api/ttn/lorawan/v3/applicationserver.proto``): its configured public
addresses and the application's username. That answer wins when there is one.
The connection is a thin layer over aiomqtt that turns its errors into this
package's errors, none of which carries the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
import ipaddress
import secrets
import ssl
from typing import Any, Final
from urllib.parse import urlsplit

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
    def sends_key_in_clear(self) -> bool:
        """Whether the key (the password) would cross a network unencrypted."""
        return not self.tls and not is_local_host(self.host)

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


@dataclass(frozen=True, slots=True)
class MqttConnectionInfo:
    """What the Application Server says about its MQTT server.

    ``MQTTConnectionInfo`` of lorawan-stack ``api/api.md``: ``public_address``
    and ``public_tls_address`` (``host:port``, from the server's
    ``as.mqtt.public-address`` settings, the same for every application) and
    ``username``, the application's unique ID (``app@tenant`` on a
    multi-tenant server, lorawan-stack
    ``pkg/applicationserver/io/grpc/grpc.go`` ``GetMQTTConnectionInfo``).
    """

    public_address: str | None = None
    public_tls_address: str | None = None
    username: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> MqttConnectionInfo:
        """Parse the answer; fields that are missing or not text are None."""

        def text(key: str) -> str | None:
            value = data.get(key) if isinstance(data, dict) else None
            return (value.strip() or None) if isinstance(value, str) else None

        return cls(
            public_address=text("public_address"),
            public_tls_address=text("public_tls_address"),
            username=text("username"),
        )


def _host_port(address: str | None) -> tuple[str, int | None] | None:
    """Split ``host:port`` (IPv6 in brackets); None when unusable."""
    if not address:
        return None
    try:
        parts = urlsplit(f"//{address}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.path or parts.username or parts.password:
        return None
    return parts.hostname, port


def is_local_host(host: str) -> bool:
    """Whether a host is this machine or on a private network."""
    name = host.strip().lower().rstrip(".")
    if "." not in name.strip("[]") and ":" not in name:
        return True  # a bare name: localhost, or resolved on the LAN
    if name.endswith((".localhost", ".local", ".lan", ".home.arpa")):
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


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
    info: MqttConnectionInfo | None = None,
) -> MqttSettings:
    """The MQTT settings of an application; overrides win, then TTS's answer.

    From TTS's answer the address that fits the server's scheme is taken
    (TLS for https), else the other one. A loopback host in the answer (a
    server left at TTS's default ``localhost``) is replaced by the server's
    host unless the server is local itself. Without an answer the settings
    follow from the server.
    """
    derived_tls = server.url.startswith("https://")
    derived_host, derived_port = server.hostname, None
    if info is not None:
        tls_address = _host_port(info.public_tls_address)
        plain_address = _host_port(info.public_address)
        if tls_address is not None and (derived_tls or plain_address is None):
            derived_tls, (derived_host, derived_port) = True, tls_address
        elif plain_address is not None:
            derived_tls, (derived_host, derived_port) = False, plain_address
        if _is_loopback(derived_host) and not _is_loopback(server.hostname):
            derived_host = server.hostname
    use_tls = derived_tls if tls is None else tls
    if use_tls != derived_tls:
        derived_port = None
    return MqttSettings(
        host=host or derived_host,
        port=port or derived_port or (TLS_PORT if use_tls else PLAIN_PORT),
        tls=use_tls,
        username=username
        or (info.username if info is not None else None)
        or mqtt_username(server, application_id),
    )


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
