"""Config flow: a TTS server and an API key, plus reauth, reconfigure and options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol

from .const import (
    CONF_APPLICATION_ID,
    CONF_DECODERS,
    CONF_GATEWAYS,
    CONF_MAX_END_DEVICES,
    CONF_MONITOR_ALL,
    CONF_MQTT_HOST,
    CONF_MQTT_PORT,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    CONF_OFFLINE_THRESHOLD,
    CONF_RIGHTS,
    CONF_SCAN_INTERVAL,
    CONF_SERVER,
    CONF_SILENCE_THRESHOLD,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DEFAULT_MAX_END_DEVICES,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_SERVER,
    DEFAULT_SILENCE_THRESHOLD,
    DOMAIN,
    LOGGER,
    MAX_MAX_END_DEVICES,
    MAX_OFFLINE_THRESHOLD,
    MAX_SCAN_INTERVAL,
    MAX_SILENCE_THRESHOLD,
    MIN_SCAN_INTERVAL,
    MIN_SILENCE_THRESHOLD,
    SUBENTRY_APPLICATION,
    TRANSPORT_DIRECT,
    TRANSPORT_MQTT,
    TRANSPORTS,
)
from .decoders import Decoder
from .end_devices import device_key_text, end_device_key
from .end_devices.registry import async_remove_decoder_entities
from .identifiers import account_id
from .runtime import TTSConfigEntry
from .tts import (
    TTN_CLUSTERS,
    AuthInfo,
    InvalidServerError,
    KeyOwnerType,
    Right,
    TTSAuthenticationError,
    TTSClient,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSServer,
)
from .tts.models import Application
from .tts.mqtt import mqtt_settings
from .tts.uplink import is_identifier

SERVER_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=list(TTN_CLUSTERS),
        custom_value=True,
        mode=SelectSelectorMode.DROPDOWN,
        translation_key=CONF_SERVER,
    )
)
API_KEY_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
DECODER_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=[decoder.value for decoder in Decoder],
        mode=SelectSelectorMode.DROPDOWN,
        translation_key="decoder",
    )
)
LIST_RIGHTS = {
    KeyOwnerType.USER: Right.USER_GATEWAYS_LIST,
    KeyOwnerType.ORGANIZATION: Right.ORGANIZATION_GATEWAYS_LIST,
}


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


def server_default(url: str) -> str:
    """Show a TTN cluster by its short name, anything else by its URL."""
    for cluster in TTN_CLUSTERS:
        if TTSServer.parse(cluster).url == url:
            return cluster
    return url


def unique_id_for(server: TTSServer, auth: AuthInfo) -> str:
    """One entry per key owner and Identity Server."""
    return f"{auth.owner_id}@{TTSServer(server.identity_server_url).host}"


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
            raise FlowError("missing_rights", {"rights": ", ".join(missing)})
        await client.list_gateways()
    except TTSAuthenticationError as err:
        raise FlowError("invalid_auth") from err
    except TTSPermissionError as err:
        rights = ", ".join(err.missing_rights) or Right.USER_GATEWAYS_LIST
        raise FlowError("missing_rights", {"rights": rights}) from err
    except TTSError as err:
        LOGGER.debug("Cannot connect to %s: %s", server.host, err)
        raise FlowError("cannot_connect", {"error": str(err)}) from err
    return server, auth


# What an application's key needs: the application (its name) and its
# uplinks. Downlinks and the device list are optional.
APPLICATION_RIGHTS = (Right.APPLICATION_INFO, Right.APPLICATION_TRAFFIC_READ)
OPTIONAL_APPLICATION_RIGHTS = (
    Right.APPLICATION_TRAFFIC_DOWN_WRITE,
    Right.APPLICATION_DEVICES_READ,
)
TRANSPORT_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=list(TRANSPORTS),
        mode=SelectSelectorMode.LIST,
        translation_key=CONF_TRANSPORT,
    )
)


def _has_key_shape(api_key: str) -> bool:
    """TTS keys are "NNSXS.<id>.<secret>"; anything else cannot be valid."""
    parts = api_key.split(".")
    return len(parts) == len(("prefix", "id", "secret")) and all(parts)


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
            raise FlowError("missing_rights", {"rights": ", ".join(missing)})
        application = await client.get_application(application_id)
        if auth.grants(Right.APPLICATION_DEVICES_READ):
            await client.list_end_devices(application_id)
    except TTSAuthenticationError as err:
        raise FlowError("invalid_auth") from err
    except TTSNotFoundError as err:
        raise FlowError("application_not_found") from err
    except TTSPermissionError as err:
        rights = ", ".join(err.missing_rights) or Right.APPLICATION_INFO
        raise FlowError("missing_rights", {"rights": rights}) from err
    except TTSError as err:
        LOGGER.debug("Cannot connect to %s: %s", server.host, err)
        raise FlowError("cannot_connect", {"error": str(err)}) from err
    return application, auth


def _user_schema(server: str, api_key: str | None = None) -> vol.Schema:
    key_field = (
        vol.Required(CONF_API_KEY)
        if api_key is None
        else vol.Required(CONF_API_KEY, default=api_key)
    )
    return vol.Schema(
        {
            vol.Required(CONF_SERVER, default=server): SERVER_SELECTOR,
            key_field: API_KEY_SELECTOR,
        }
    )


class TTNGatewayConfigFlow(ConfigFlow, domain=DOMAIN):
    """Adds a TTS account."""

    VERSION = 3

    async def _validate(
        self,
        user_input: dict[str, Any],
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> tuple[TTSServer, AuthInfo, str] | None:
        api_key = clean_api_key(user_input[CONF_API_KEY])
        try:
            server, auth = await validate_input(
                self.hass, user_input[CONF_SERVER], api_key
            )
        except FlowError as err:
            errors["base"] = err.error
            placeholders.update(err.placeholders)
            return None
        except Exception:  # noqa: BLE001
            LOGGER.exception("Unexpected error validating the TTS API key")
            errors["base"] = "unknown"
            return None
        return server, auth, api_key

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the server and the API key."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {"error": "", "rights": "", "owner": ""}
        if user_input is not None and (
            result := await self._validate(user_input, errors, placeholders)
        ):
            server, auth, api_key = result
            await self.async_set_unique_id(unique_id_for(server, auth))
            self._abort_if_unique_id_configured()
            return self.async_create_entry(
                title=f"{auth.owner_id} ({server.host})",
                data={CONF_SERVER: server.url, CONF_API_KEY: api_key},
            )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _user_schema(DEFAULT_SERVER), user_input
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start reauthentication after TTS rejected the key."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new key of the same account."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {
            "error": "",
            "rights": "",
            "owner": "",
            "title": entry.title,
        }
        if user_input is not None and (
            result := await self._validate(
                {**user_input, CONF_SERVER: entry.data[CONF_SERVER]},
                errors,
                placeholders,
            )
        ):
            server, auth, api_key = result
            await self.async_set_unique_id(unique_id_for(server, auth))
            self._abort_if_unique_id_mismatch(reason="wrong_account")
            return self.async_update_reload_and_abort(
                entry, data_updates={CONF_API_KEY: api_key}
            )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_API_KEY): API_KEY_SELECTOR}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the server or the key of an account."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {"error": "", "rights": "", "owner": ""}
        if user_input is not None and (
            result := await self._validate(user_input, errors, placeholders)
        ):
            server, auth, api_key = result
            owner = (entry.unique_id or "").rpartition("@")[0]
            if auth.owner_id != owner:
                return self.async_abort(reason="wrong_account")
            unique_id = unique_id_for(server, auth)
            if unique_id != entry.unique_id:
                await self.async_set_unique_id(unique_id)
                self._abort_if_unique_id_configured()
            return self.async_update_reload_and_abort(
                entry,
                unique_id=unique_id,
                title=f"{auth.owner_id} ({server.host})",
                data_updates={CONF_SERVER: server.url, CONF_API_KEY: api_key},
            )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _user_schema(server_default(entry.data[CONF_SERVER])),
                user_input,
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: TTSConfigEntry) -> OptionsFlow:
        """Create the options flow."""
        return TTNGatewayOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """An account's TTS applications are its sub-entries."""
        return {SUBENTRY_APPLICATION: ApplicationSubentryFlow}


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
                        CONF_RIGHTS: sorted(
                            right
                            for right in (
                                *APPLICATION_RIGHTS,
                                *OPTIONAL_APPLICATION_RIGHTS,
                            )
                            if auth.grants(right)
                        ),
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


class TTNGatewayOptionsFlow(OptionsFlow):
    """Gateway polling and end-device options, one menu entry each."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask which options to change."""
        return self.async_show_menu(
            step_id="init",
            menu_options=["gateways", "end_devices", "end_device_decoder"],
        )

    def _save(
        self, changes: dict[str, Any], removed: tuple[str, ...] = ()
    ) -> ConfigFlowResult:
        """Store the changed options; the entry reloads to apply them."""
        entry: TTSConfigEntry = self.config_entry
        options = {
            key: value for key, value in entry.options.items() if key not in removed
        }
        options.update(changes)
        if self.hass.config_entries.async_update_entry(entry, options=options):
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data=options)

    async def async_step_gateways(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Poll interval and which gateways to monitor."""
        entry: TTSConfigEntry = self.config_entry
        errors: dict[str, str] = {}
        if user_input is not None:
            options = {
                CONF_SCAN_INTERVAL: int(user_input[CONF_SCAN_INTERVAL]),
                CONF_MONITOR_ALL: user_input[CONF_MONITOR_ALL],
                CONF_GATEWAYS: sorted(user_input.get(CONF_GATEWAYS, [])),
                CONF_SILENCE_THRESHOLD: int(user_input[CONF_SILENCE_THRESHOLD]),
            }
            if not options[CONF_MONITOR_ALL] and not options[CONF_GATEWAYS]:
                errors[CONF_GATEWAYS] = "no_gateways_selected"
            else:
                return self._save(options)

        current = {
            CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL.total_seconds(),
            CONF_MONITOR_ALL: True,
            CONF_GATEWAYS: [],
            CONF_SILENCE_THRESHOLD: DEFAULT_SILENCE_THRESHOLD,
            **entry.options,
            **(user_input or {}),
        }
        gateway_options = {
            gateway_id: gateway_id for gateway_id in current[CONF_GATEWAYS]
        }
        if (runtime := getattr(entry, "runtime_data", None)) is not None:
            for gateway in runtime.coordinator.account_gateways:
                gateway_options[gateway.gateway_id] = (
                    f"{gateway.name} ({gateway.gateway_id})"
                    if gateway.name
                    else gateway.gateway_id
                )
        schema = vol.Schema(
            {
                vol.Required(CONF_SCAN_INTERVAL): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_SCAN_INTERVAL.total_seconds(),
                        max=MAX_SCAN_INTERVAL.total_seconds(),
                        step=1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="s",
                    )
                ),
                vol.Required(CONF_MONITOR_ALL): BooleanSelector(),
                vol.Optional(CONF_GATEWAYS): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=value, label=label)
                            for value, label in sorted(
                                gateway_options.items(), key=lambda item: item[1]
                            )
                        ],
                        multiple=True,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(
                    CONF_SILENCE_THRESHOLD, default=DEFAULT_SILENCE_THRESHOLD
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_SILENCE_THRESHOLD,
                        max=MAX_SILENCE_THRESHOLD,
                        step=1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="min",
                    )
                ),
            }
        )
        return self.async_show_form(
            step_id="gateways",
            data_schema=self.add_suggested_values_to_schema(schema, current),
            errors=errors,
        )

    def _end_device_names(self) -> list[str]:
        """``application/device`` of every end device in the device registry."""
        entry: TTSConfigEntry = self.config_entry
        return sorted(
            device_key_text(key)
            for device in dr.async_entries_for_config_entry(
                dr.async_get(self.hass), entry.entry_id
            )
            if (key := end_device_key(account_id(entry), device)) is not None
        )

    async def async_step_end_devices(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """End devices of every application: when silent is offline, the cap."""
        entry: TTSConfigEntry = self.config_entry
        if user_input is not None:
            options: dict[str, Any] = {
                CONF_MAX_END_DEVICES: int(
                    user_input.get(CONF_MAX_END_DEVICES, DEFAULT_MAX_END_DEVICES)
                ),
            }
            if threshold := user_input.get(CONF_OFFLINE_THRESHOLD):
                options[CONF_OFFLINE_THRESHOLD] = int(threshold)
                return self._save(options)
            return self._save(options, removed=(CONF_OFFLINE_THRESHOLD,))

        current = {
            CONF_MAX_END_DEVICES: DEFAULT_MAX_END_DEVICES,
            **entry.options,
        }
        fields: dict[Any, Any] = {
            vol.Optional(CONF_OFFLINE_THRESHOLD): NumberSelector(
                NumberSelectorConfig(
                    min=1,
                    max=MAX_OFFLINE_THRESHOLD.total_seconds() // 60,
                    step=1,
                    mode=NumberSelectorMode.BOX,
                    unit_of_measurement="min",
                )
            ),
            vol.Optional(CONF_MAX_END_DEVICES): NumberSelector(
                NumberSelectorConfig(
                    min=1, max=MAX_MAX_END_DEVICES, step=1, mode=NumberSelectorMode.BOX
                )
            ),
        }
        return self.async_show_form(
            step_id="end_devices",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), current
            ),
        )

    async def async_step_end_device_decoder(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The decoder of one end device, picked from a list of known devices.

        Choices of devices no longer in the device registry are dropped.
        Going back to Automatic removes the entities of the previous decoder;
        Automatic makes again those it decodes.
        """
        entry: TTSConfigEntry = self.config_entry
        devices = self._end_device_names()
        decoders = {
            device: decoder
            for device, decoder in entry.options.get(CONF_DECODERS, {}).items()
            if device in devices
        }
        if not devices:
            return self.async_abort(reason="no_end_devices")
        if user_input is not None:
            device = user_input["device"]
            decoder = Decoder(user_input["decoder"])
            previous = decoders.pop(device, Decoder.AUTO)
            if decoder is not Decoder.AUTO:
                decoders[device] = decoder
            elif previous != Decoder.AUTO:
                application_id, device_id = device.split("/", 1)
                async_remove_decoder_entities(
                    self.hass,
                    entry.entry_id,
                    account_id(entry),
                    (application_id, device_id),
                    Decoder(previous),
                )
            return self._save({CONF_DECODERS: decoders})
        schema = vol.Schema(
            {
                vol.Required("device"): SelectSelector(
                    SelectSelectorConfig(
                        options=devices, mode=SelectSelectorMode.DROPDOWN
                    )
                ),
                vol.Required("decoder", default=Decoder.AUTO.value): DECODER_SELECTOR,
            }
        )
        return self.async_show_form(step_id="end_device_decoder", data_schema=schema)
