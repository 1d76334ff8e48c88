"""Sub-entry flow: a TTS application of an account, its key and its uplinks."""

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
    CONF_MQTT_HOST,
    CONF_MQTT_PORT,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    LOGGER,
    TRANSPORT_DIRECT,
    TRANSPORT_MQTT,
    TRANSPORTS,
)
from .tts import TTSServer
from .tts.mqtt import mqtt_settings
from .tts.uplink import is_identifier
from .validation import (
    API_KEY_SELECTOR,
    FlowError,
    clean_api_key,
    granted_application_rights,
    validate_application,
)

TRANSPORT_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=list(TRANSPORTS),
        mode=SelectSelectorMode.LIST,
        translation_key=CONF_TRANSPORT,
    )
)


class ApplicationSubentryFlow(ConfigSubentryFlow):
    """Adds or changes a TTS application: its ID, key and how uplinks arrive."""

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._data: dict[str, Any] = {}
        self._title = ""

    @property
    def _server(self) -> TTSServer:
        return TTSServer(self._get_entry().data[CONF_SERVER])

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
        placeholders: dict[str, str] = {"error": "", "rights": "", "owner": ""}
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
                    application, auth = await validate_application(
                        self.hass, self._server, application_id, api_key
                    )
                except FlowError as err:
                    errors["base"] = err.error
                    placeholders.update(err.placeholders)
                except Exception:  # noqa: BLE001
                    LOGGER.exception("Unexpected error validating an application key")
                    errors["base"] = "unknown"
                else:
                    self._title = application.name or application_id
                    self._data = {
                        CONF_APPLICATION_ID: application_id,
                        CONF_API_KEY: api_key,
                        CONF_TRANSPORT: user_input[CONF_TRANSPORT],
                        CONF_RIGHTS: granted_application_rights(auth),
                    }
                    if user_input[CONF_TRANSPORT] == TRANSPORT_MQTT:
                        return await self.async_step_mqtt()
                    if not self._server.is_cloud:
                        return await self.async_step_direct()
                    return self._finish()
        defaults = {
            CONF_TRANSPORT: TRANSPORT_DIRECT,
            **{
                key: value
                for key, value in current.items()
                if key in (CONF_APPLICATION_ID, CONF_TRANSPORT)
            },
            **(user_input or {}),
        }
        schema = vol.Schema(
            {
                vol.Required(CONF_APPLICATION_ID): TextSelector(),
                vol.Required(CONF_API_KEY): API_KEY_SELECTOR,
                vol.Required(CONF_TRANSPORT): TRANSPORT_SELECTOR,
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, defaults),
            errors=errors,
            description_placeholders=placeholders,
        )

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
        """Where a self-hosted server's MQTT server is."""
        if user_input is not None:
            self._data.update(
                {
                    CONF_MQTT_HOST: user_input[CONF_MQTT_HOST].strip(),
                    CONF_MQTT_PORT: int(user_input[CONF_MQTT_PORT]),
                    CONF_MQTT_USERNAME: user_input[CONF_MQTT_USERNAME].strip(),
                    CONF_MQTT_TLS: user_input[CONF_MQTT_TLS],
                }
            )
            return self._finish()
        settings = mqtt_settings(self._server, self._data[CONF_APPLICATION_ID])
        current = self._current()
        defaults = {
            CONF_MQTT_HOST: current.get(CONF_MQTT_HOST, settings.host),
            CONF_MQTT_PORT: current.get(CONF_MQTT_PORT, settings.port),
            CONF_MQTT_USERNAME: current.get(CONF_MQTT_USERNAME, settings.username),
            CONF_MQTT_TLS: current.get(CONF_MQTT_TLS, settings.tls),
        }
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
            data_schema=self.add_suggested_values_to_schema(schema, defaults),
        )

    async def async_step_mqtt(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The topic on Home Assistant's MQTT broker that carries the uplinks."""
        errors: dict[str, str] = {}
        default_topic = mqtt_settings(
            self._server, self._data[CONF_APPLICATION_ID]
        ).uplink_topic()
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
            return self.async_update_and_abort(
                self._get_entry(),
                self._get_reconfigure_subentry(),
                title=self._title,
                unique_id=application_id,
                data=self._data,
            )
        return self.async_create_entry(
            title=self._title, data=self._data, unique_id=application_id
        )
