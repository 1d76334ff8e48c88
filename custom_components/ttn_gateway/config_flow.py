"""Config flow: a TTS server and an API key, plus reauth, reconfigure and options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import (
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
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
    CONF_APPLICATIONS,
    CONF_DECODERS,
    CONF_END_DEVICES,
    CONF_GATEWAYS,
    CONF_MAX_END_DEVICES,
    CONF_MONITOR_ALL,
    CONF_OFFLINE_THRESHOLD,
    CONF_SCAN_INTERVAL,
    CONF_SERVER,
    CONF_SILENCE_THRESHOLD,
    CONF_UPLINK_TOPIC,
    DEFAULT_MAX_END_DEVICES,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_SERVER,
    DEFAULT_SILENCE_THRESHOLD,
    DEFAULT_UPLINK_TOPIC,
    DOMAIN,
    LOGGER,
    MAX_MAX_END_DEVICES,
    MAX_OFFLINE_THRESHOLD,
    MAX_SCAN_INTERVAL,
    MAX_SILENCE_THRESHOLD,
    MIN_SCAN_INTERVAL,
    MIN_SILENCE_THRESHOLD,
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
    TTSPermissionError,
    TTSServer,
)
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
    # TTS keys are "NNSXS.<id>.<secret>"; anything else cannot be valid.
    parts = api_key.split(".")
    if len(parts) != len(("prefix", "id", "secret")) or not all(parts):
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

    VERSION = 2

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
        """Uplinks over MQTT: on or off, the topic, silence and the bounds."""
        entry: TTSConfigEntry = self.config_entry
        errors: dict[str, str] = {}
        if user_input is not None:
            topic = user_input[CONF_UPLINK_TOPIC].strip()
            applications = sorted(
                {
                    application.strip()
                    for application in user_input.get(CONF_APPLICATIONS, [])
                    if application.strip()
                }
            )
            try:
                mqtt.valid_subscribe_topic(topic)
            except vol.Invalid:
                errors[CONF_UPLINK_TOPIC] = "invalid_topic"
            if not all(is_identifier(application) for application in applications):
                errors[CONF_APPLICATIONS] = "invalid_application_id"
            if not errors:
                options: dict[str, Any] = {
                    CONF_END_DEVICES: user_input[CONF_END_DEVICES],
                    CONF_UPLINK_TOPIC: topic,
                    CONF_MAX_END_DEVICES: int(
                        user_input.get(CONF_MAX_END_DEVICES, DEFAULT_MAX_END_DEVICES)
                    ),
                    CONF_APPLICATIONS: applications,
                }
                if threshold := user_input.get(CONF_OFFLINE_THRESHOLD):
                    options[CONF_OFFLINE_THRESHOLD] = int(threshold)
                    return self._save(options)
                return self._save(options, removed=(CONF_OFFLINE_THRESHOLD,))

        current = {
            CONF_END_DEVICES: True,
            CONF_UPLINK_TOPIC: DEFAULT_UPLINK_TOPIC,
            CONF_MAX_END_DEVICES: DEFAULT_MAX_END_DEVICES,
            CONF_APPLICATIONS: [],
            **entry.options,
            **(user_input or {}),
        }
        fields: dict[Any, Any] = {
            vol.Required(CONF_END_DEVICES): BooleanSelector(),
            vol.Required(CONF_UPLINK_TOPIC): TextSelector(),
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
            vol.Optional(CONF_APPLICATIONS): TextSelector(
                TextSelectorConfig(multiple=True)
            ),
        }
        return self.async_show_form(
            step_id="end_devices",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), current
            ),
            errors=errors,
            description_placeholders={"default_topic": DEFAULT_UPLINK_TOPIC},
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
