"""Checks of a server and its keys, shared by the flows and the repairs.

Each check asks TTS and turns what goes wrong into a `FlowError`: a
translation key of the forms' ``error`` section and its placeholders. No
error text carries the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.util.ssl import get_default_context
import voluptuous as vol

from .const import (
    CONF_MQTT_HOST,
    CONF_MQTT_PORT,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    LOGGER,
)
from .end_devices import direct
from .tts import (
    Application,
    AuthInfo,
    ClusterDetection,
    InvalidServerError,
    KeyOwnerType,
    MqttNotAuthorizedError,
    MqttSettings,
    Right,
    TTSAuthenticationError,
    TTSClient,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSServer,
    console_rights,
    detect_cluster,
    mqtt_settings,
)

API_KEY_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
LIST_RIGHTS = {
    KeyOwnerType.USER: Right.USER_GATEWAYS_LIST,
    KeyOwnerType.ORGANIZATION: Right.ORGANIZATION_GATEWAYS_LIST,
}
# What an application's key needs: the application (its name) and its
# uplinks. Downlinks and the device list are optional.
APPLICATION_RIGHTS = (Right.APPLICATION_INFO, Right.APPLICATION_TRAFFIC_READ)
OPTIONAL_APPLICATION_RIGHTS = (
    Right.APPLICATION_TRAFFIC_DOWN_WRITE,
    Right.APPLICATION_DEVICES_READ,
)
# How long the flows' test login to an MQTT server may take.
MQTT_LOGIN_TIMEOUT_SECONDS = 10.0


class FlowError(Exception):
    """A user-facing validation error: a translation key and its placeholders."""

    def __init__(self, error: str, placeholders: Mapping[str, str] | None = None):
        super().__init__(error)
        self.error = error
        self.placeholders = dict(placeholders or {})


def clean_api_key(value: str) -> str:
    """Strip what users paste along with a key (spaces, a Bearer prefix)."""
    key = value.strip()
    if key.lower().startswith("bearer "):
        key = key[len("bearer ") :].strip()
    return key


def key_schema() -> vol.Schema:
    """A form asking for a key only."""
    return vol.Schema({vol.Required(CONF_API_KEY): API_KEY_SELECTOR})


def granted_application_rights(auth: AuthInfo) -> list[str]:
    """The application rights the key holds, as stored in a sub-entry."""
    return sorted(
        right
        for right in (*APPLICATION_RIGHTS, *OPTIONAL_APPLICATION_RIGHTS)
        if auth.grants(right)
    )


def _has_key_shape(api_key: str) -> bool:
    """TTS keys are "NNSXS.<id>.<secret>"; anything else cannot be valid."""
    parts = api_key.split(".")
    return len(parts) == len(("prefix", "id", "secret")) and all(parts)


def _flow_error(
    err: TTSError, server: TTSServer, needed: Right, *, application: bool
) -> FlowError:
    """The form's error for what TTS answered.

    ``needed`` names the right a refusal without details is about; a 404 is
    about the application when one is checked, else about the server.
    """
    if isinstance(err, TTSAuthenticationError):
        return FlowError("invalid_auth")
    if application and isinstance(err, TTSNotFoundError):
        return FlowError("application_not_found")
    if isinstance(err, TTSPermissionError):
        return FlowError(
            "missing_rights",
            {"rights": console_rights(err.missing_rights or (needed,))},
        )
    LOGGER.debug("Cannot connect to %s: %s", server.host, err)
    return FlowError("cannot_connect", {"error": str(err)})


async def validate_input(
    hass: HomeAssistant, server_text: str, api_key: str
) -> tuple[TTSServer, AuthInfo]:
    """Check the server and key: who owns the key and whether it has the rights."""
    try:
        server = TTSServer.parse(server_text)
    except InvalidServerError as err:
        raise FlowError("invalid_url") from err
    if not _has_key_shape(api_key):
        raise FlowError("invalid_auth")
    client = TTSClient(async_get_clientsession(hass), server, api_key)
    try:
        auth = await client.get_auth_info()
        if auth.owner_type not in LIST_RIGHTS:
            if not auth.owner_id:
                raise FlowError("invalid_auth")
            raise FlowError("wrong_key_type", {"owner": auth.owner_type.value})
        needed = (
            LIST_RIGHTS[auth.owner_type],
            Right.GATEWAY_INFO,
            Right.GATEWAY_STATUS_READ,
        )
        if missing := auth.missing_rights(needed):
            raise FlowError("missing_rights", {"rights": console_rights(missing)})
        await client.list_gateways()
    except TTSError as err:
        raise _flow_error(
            err, server, Right.USER_GATEWAYS_LIST, application=False
        ) from err
    return server, auth


async def validate_application(
    hass: HomeAssistant, server: TTSServer, application_id: str, api_key: str
) -> tuple[Application, AuthInfo]:
    """Check an application key: whose it is, its rights, and the application."""
    if not _has_key_shape(api_key):
        raise FlowError("invalid_auth")
    client = TTSClient(async_get_clientsession(hass), server, api_key)
    try:
        auth = await client.get_auth_info()
        if not auth.owner_id:
            raise FlowError("invalid_auth")
        if (
            auth.owner_type is KeyOwnerType.APPLICATION
            and auth.owner_id != application_id
        ):
            raise FlowError("wrong_application", {"owner": auth.owner_id})
        if missing := auth.missing_rights(APPLICATION_RIGHTS):
            raise FlowError("missing_rights", {"rights": console_rights(missing)})
        application = await client.get_application(application_id)
        if auth.grants(Right.APPLICATION_DEVICES_READ):
            await client.list_end_devices(application_id)
    except TTSError as err:
        raise _flow_error(
            err, server, Right.APPLICATION_INFO, application=True
        ) from err
    return application, auth


def mqtt_settings_data(settings: MqttSettings) -> dict[str, Any]:
    """A sub-entry's data for where its direct connection goes."""
    return {
        CONF_MQTT_HOST: settings.host,
        CONF_MQTT_PORT: settings.port,
        CONF_MQTT_USERNAME: settings.username,
        CONF_MQTT_TLS: settings.tls,
    }


async def async_mqtt_settings(
    hass: HomeAssistant,
    server: TTSServer,
    application_id: str,
    api_key: str,
    *,
    cluster: TTSServer | None = None,
) -> MqttSettings:
    """The application's MQTT settings as TTS gives them, else derived.

    Without TTS's answer (an older server, a key without the right, no
    network) the settings follow from the server. On another cluster than
    the account's server (``cluster``) the answer is where the key is
    checked before it is used there, so it must come.
    """
    asked = cluster or server
    client = TTSClient(async_get_clientsession(hass), asked, api_key)
    try:
        info = await client.get_mqtt_connection_info(application_id)
    except TTSError as err:
        if asked != server:
            raise _flow_error(
                err, asked, Right.APPLICATION_INFO, application=True
            ) from err
        LOGGER.debug("No MQTT connection info from %s: %s", server.host, err)
        info = None
    return mqtt_settings(asked, application_id, info=info)


async def async_detect_cluster(
    hass: HomeAssistant,
    server: TTSServer,
    application_id: str,
    api_key: str,
    auth: AuthInfo,
) -> ClusterDetection:
    """The cloud cluster the application's devices are registered on.

    Read from the Identity Server's device list when the key may read it,
    else (or with no device naming one) from the application. Not knowing
    is no error: the flow then takes the account's cluster.
    """
    client = TTSClient(async_get_clientsession(hass), server, api_key)
    device_hosts: list[str] = []
    application_host: str | None = None
    try:
        if auth.grants(Right.APPLICATION_DEVICES_READ):
            device_hosts = await client.list_device_application_servers(application_id)
        if not device_hosts:
            application_host = await client.get_application_server(application_id)
    except TTSError as err:
        LOGGER.debug("Cannot tell the cluster of %s: %s", application_id, err)
    detection = detect_cluster(server, device_hosts, application_host)
    if detection.spread and detection.cluster is not None:
        LOGGER.warning(
            "The end devices of application %s are registered on several"
            " clusters (%s); %s, which has the most, is used",
            application_id,
            ", ".join(f"{host}: {count}" for host, count in detection.devices.items()),
            detection.cluster.host,
        )
    return detection


async def validate_mqtt_login(settings: MqttSettings, api_key: str) -> None:
    """Log in to the application's MQTT server once, then leave."""
    try:
        async with (
            asyncio.timeout(MQTT_LOGIN_TIMEOUT_SECONDS),
            direct.CONNECT(
                settings,
                api_key,
                ssl_context=get_default_context() if settings.tls else None,
            ),
        ):
            pass
    except (TTSAuthenticationError, MqttNotAuthorizedError) as err:
        raise FlowError("mqtt_invalid_auth", {"username": settings.username}) from err
    except TimeoutError as err:
        raise FlowError(
            "mqtt_cannot_connect",
            {"error": f"{settings.host}:{settings.port}: no answer"},
        ) from err
    except TTSError as err:
        raise FlowError("mqtt_cannot_connect", {"error": str(err)}) from err
