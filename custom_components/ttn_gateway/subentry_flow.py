"""Sub-entry flow: a TTS application of an account, its key and its uplinks.

The key is checked on the account's server, which the sub-entry stores. On
a cloud the application's devices may be served by another cluster than the
account's: the flow suggests the one its devices are registered on, and the
key is checked on the chosen cluster too (its ``mqtt-connection-info``)
before anything is sent there. The MQTT server's address and the username
come from TTS when it says them, and a direct connection is tried once
before anything is saved.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import CONF_API_KEY
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
import voluptuous as vol

from .const import (
    CONF_APPLICATION_ID,
    CONF_CLUSTER,
    CONF_MQTT_HOST,
    CONF_MQTT_PORT,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    ISSUE_APPLICATION_KEY_REJECTED,
    LOGGER,
    TRANSPORT_DIRECT,
    TRANSPORT_MQTT,
    TRANSPORTS,
)
from .issues import async_delete_issue
from .tts import AuthInfo, MqttSettings, TTSServer, is_identifier
from .validation import (
    API_KEY_SELECTOR,
    FlowError,
    async_detect_cluster,
    async_mqtt_settings,
    clean_api_key,
    granted_application_rights,
    mqtt_settings_data,
    validate_application,
    validate_mqtt_login,
)

# The cluster choice: the one the application's devices are on.
CLUSTER_AUTO = "auto"
TRANSPORT_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=list(TRANSPORTS),
        mode=SelectSelectorMode.LIST,
        translation_key=CONF_TRANSPORT,
    )
)


def _cluster_selector(server: TTSServer) -> SelectSelector:
    """The clusters of the server's cloud, after the automatic choice."""
    return SelectSelector(
        SelectSelectorConfig(
            options=[
                CLUSTER_AUTO,
                *(str(cluster.cluster_id) for cluster in server.clusters),
            ],
            mode=SelectSelectorMode.DROPDOWN,
            translation_key=CONF_CLUSTER,
        )
    )


class ApplicationSubentryFlow(ConfigSubentryFlow):
    """Adds or changes a TTS application: its ID, key and how uplinks arrive."""

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._data: dict[str, Any] = {}
        self._title = ""
        self._settings: MqttSettings | None = None
        # The direct step's settings the user was warned about (no TLS).
        self._warned: MqttSettings | None = None

    @property
    def _server(self) -> TTSServer:
        return TTSServer(self._get_entry().data[CONF_SERVER])

    @property
    def _derived(self) -> MqttSettings:
        """The MQTT settings TTS gave (or derived), known after the first step."""
        if self._settings is None:  # pragma: no cover - set by the first step
            raise RuntimeError("the key is not checked yet")
        return self._settings

    def _current(self) -> dict[str, Any]:
        """The sub-entry being reconfigured, or nothing for a new one."""
        if self.source == "reconfigure":
            return dict(self._get_reconfigure_subentry().data)
        return {}

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the application ID, its key and how uplinks arrive."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {
            "error": "",
            "rights": "",
            "owner": "",
            "username": "",
        }
        current = self._current()
        if user_input is not None:
            application_id = user_input[CONF_APPLICATION_ID].strip().lower()
            api_key = clean_api_key(user_input[CONF_API_KEY])
            if not is_identifier(application_id):
                errors[CONF_APPLICATION_ID] = "invalid_application_id"
            elif self._taken(application_id):
                return self.async_abort(reason="already_configured")
            else:
                try:
                    return await self._async_checked(
                        application_id,
                        api_key,
                        user_input[CONF_TRANSPORT],
                        user_input.get(CONF_CLUSTER, CLUSTER_AUTO),
                    )
                except FlowError as err:
                    errors["base"] = err.error
                    placeholders.update(err.placeholders)
                except Exception:  # noqa: BLE001
                    LOGGER.exception("Unexpected error validating an application key")
                    errors["base"] = "unknown"
        defaults = {
            CONF_TRANSPORT: TRANSPORT_DIRECT,
            CONF_CLUSTER: self._cluster_default(current),
            **{
                key: value
                for key, value in current.items()
                if key in (CONF_APPLICATION_ID, CONF_TRANSPORT)
            },
            # Never the key: it stays out of the form sent back.
            **{
                key: value
                for key, value in (user_input or {}).items()
                if key != CONF_API_KEY
            },
        }
        fields: dict[vol.Marker, Any] = {
            vol.Required(CONF_APPLICATION_ID): TextSelector(),
            vol.Required(CONF_API_KEY): API_KEY_SELECTOR,
            vol.Required(CONF_TRANSPORT): TRANSPORT_SELECTOR,
        }
        if self._server.is_cloud:
            fields[vol.Required(CONF_CLUSTER, default=CLUSTER_AUTO)] = (
                _cluster_selector(self._server)
            )
        schema = vol.Schema(fields)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, defaults),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _cluster_default(self, current: dict[str, Any]) -> str:
        """The stored cluster when it is one of the choices, else automatic."""
        stored = self._server.same_cloud(current.get(CONF_CLUSTER))
        if stored is not None and stored in self._server.clusters:
            return str(stored.cluster_id)
        return CLUSTER_AUTO

    async def _async_checked(
        self, application_id: str, api_key: str, transport: str, choice: str
    ) -> SubentryFlowResult:
        """Check the key and, on a cloud, its cluster and the direct connection."""
        server = self._server
        application, auth = await validate_application(
            self.hass, server, application_id, api_key
        )
        self._title = application.name or application_id
        self._data = {
            CONF_APPLICATION_ID: application_id,
            CONF_API_KEY: api_key,
            CONF_TRANSPORT: transport,
            CONF_RIGHTS: granted_application_rights(auth),
            CONF_SERVER: server.url,
        }
        cluster = server
        if server.is_cloud:
            cluster = await self._async_cluster(
                server, application_id, api_key, auth, choice
            )
        if cluster != server:  # none stored: the account's
            self._data[CONF_CLUSTER] = cluster.url
        # On another cluster this also checks the key there.
        settings = await async_mqtt_settings(
            self.hass, server, application_id, api_key, cluster=cluster
        )
        self._settings = settings
        if transport == TRANSPORT_MQTT:
            return await self.async_step_mqtt()
        if not server.is_cloud:
            return await self.async_step_direct()
        await validate_mqtt_login(settings, api_key)
        self._data.update(mqtt_settings_data(settings))
        return self._finish()

    async def _async_cluster(
        self,
        server: TTSServer,
        application_id: str,
        api_key: str,
        auth: AuthInfo,
        choice: str,
    ) -> TTSServer:
        """The cluster chosen, or the one the application's devices are on."""
        if choice != CLUSTER_AUTO:
            return {cluster.cluster_id: cluster for cluster in server.clusters}[choice]
        detection = await async_detect_cluster(
            self.hass, server, application_id, api_key, auth
        )
        return detection.cluster or server

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change an application's key or how its uplinks arrive."""
        return await self.async_step_user(user_input)

    def _taken(self, application_id: str) -> bool:
        """Whether another sub-entry of the account has the application."""
        own = (
            self._get_reconfigure_subentry().subentry_id
            if self.source == "reconfigure"
            else None
        )
        return any(
            subentry.unique_id == application_id and subentry.subentry_id != own
            for subentry in self._get_entry().subentries.values()
        )

    async def async_step_direct(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Where a self-hosted server's MQTT server is; tried before saving.

        Without TLS to a host outside the local network the key would travel
        in cleartext: a submit of such settings is answered with that warning
        (the form's error), and the same settings submitted again are accepted.
        """
        derived = self._derived
        errors: dict[str, str] = {}
        placeholders = {"error": "", "username": ""}
        if user_input is not None:
            settings = MqttSettings(
                host=user_input[CONF_MQTT_HOST].strip(),
                port=int(user_input[CONF_MQTT_PORT]),
                username=user_input[CONF_MQTT_USERNAME].strip(),
                tls=user_input[CONF_MQTT_TLS],
            )
            if not settings.sends_key_in_clear or settings == self._warned:
                try:
                    await validate_mqtt_login(settings, self._data[CONF_API_KEY])
                except FlowError as err:
                    errors["base"] = err.error
                    placeholders.update(err.placeholders)
                else:
                    self._data.update(mqtt_settings_data(settings))
                    return self._finish()
            suggested = settings
        else:
            current = self._current()
            if current.get(CONF_SERVER) not in (None, self._server.url):
                current = {}  # the settings of another server
            suggested = MqttSettings(
                host=current.get(CONF_MQTT_HOST, derived.host),
                port=int(current.get(CONF_MQTT_PORT, derived.port)),
                username=current.get(CONF_MQTT_USERNAME, derived.username),
                tls=bool(current.get(CONF_MQTT_TLS, derived.tls)),
            )
        if user_input is not None and suggested.sends_key_in_clear and not errors:
            self._warned = suggested
            errors["base"] = "mqtt_cleartext"
        schema = vol.Schema(
            {
                vol.Required(CONF_MQTT_HOST): TextSelector(),
                vol.Required(CONF_MQTT_PORT): NumberSelector(
                    NumberSelectorConfig(
                        min=1, max=65535, step=1, mode=NumberSelectorMode.BOX
                    )
                ),
                vol.Required(CONF_MQTT_USERNAME): TextSelector(),
                vol.Required(CONF_MQTT_TLS): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="direct",
            data_schema=self.add_suggested_values_to_schema(
                schema, mqtt_settings_data(suggested)
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_mqtt(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The topic on Home Assistant's MQTT broker that carries the uplinks."""
        errors: dict[str, str] = {}
        default_topic = self._derived.uplink_topic()
        if user_input is not None:
            topic = user_input[CONF_UPLINK_TOPIC].strip()
            try:
                mqtt.valid_subscribe_topic(topic)
            except vol.Invalid:
                errors[CONF_UPLINK_TOPIC] = "invalid_topic"
            else:
                self._data[CONF_UPLINK_TOPIC] = topic
                return self._finish()
        current = self._current()
        schema = vol.Schema({vol.Required(CONF_UPLINK_TOPIC): TextSelector()})
        return self.async_show_form(
            step_id="mqtt",
            data_schema=self.add_suggested_values_to_schema(
                schema,
                {CONF_UPLINK_TOPIC: current.get(CONF_UPLINK_TOPIC, default_topic)}
                | (user_input or {}),
            ),
            errors=errors,
            description_placeholders={"default_topic": default_topic},
        )

    def _finish(self) -> SubentryFlowResult:
        """Save the application; the account reloads to connect it."""
        application_id = self._data[CONF_APPLICATION_ID]
        if self.source == "reconfigure":
            subentry = self._get_reconfigure_subentry()
            # A key checked on the account's server settles a server change.
            async_delete_issue(
                self.hass,
                f"{ISSUE_APPLICATION_KEY_REJECTED}_{subentry.subentry_id}",
            )
            return self.async_update_and_abort(
                self._get_entry(),
                subentry,
                title=self._title,
                unique_id=application_id,
                data=self._data,
            )
        return self.async_create_entry(
            title=self._title, data=self._data, unique_id=application_id
        )
