"""Config flow: a TTS server and an API key, plus reauth and reconfigure.

The applications of an account are its sub-entries (`subentry_flow`); the
options live in `options_flow`, the checks against TTS in `validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
import voluptuous as vol

from .const import (
    CONF_SERVER,
    DEFAULT_SERVER,
    DOMAIN,
    ISSUE_APPLICATION_KEY_REJECTED,
    ISSUE_APPLICATION_SERVER_CHANGED,
    LOGGER,
    SUBENTRY_APPLICATION,
)
from .issues import async_create_issue, async_delete_issue
from .options_flow import TTNGatewayOptionsFlow
from .runtime import TTSConfigEntry
from .subentry_flow import ApplicationSubentryFlow
from .tts import TTN_CLUSTERS, AuthInfo, TTSServer
from .validation import (
    API_KEY_SELECTOR,
    FlowError,
    clean_api_key,
    key_schema,
    validate_input,
)

SERVER_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=list(TTN_CLUSTERS),
        custom_value=True,
        mode=SelectSelectorMode.DROPDOWN,
        translation_key=CONF_SERVER,
    )
)


def server_default(url: str) -> str:
    """Show a TTN cluster by its short name, anything else by its URL."""
    for cluster in TTN_CLUSTERS:
        if TTSServer.parse(cluster).url == url:
            return cluster
    return url


def unique_id_for(server: TTSServer, auth: AuthInfo) -> str:
    """One entry per key owner and Identity Server."""
    return f"{auth.owner_id}@{TTSServer(server.identity_server_url).host}"


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
    # 3.2: the end devices' threshold option is named for silence;
    # 3.3: their Online sensors are Silent sensors.
    MINOR_VERSION = 3

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
            data_schema=key_schema(),
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
            self._bind_application_keys(entry, server)
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

    @callback
    def _bind_application_keys(self, entry: ConfigEntry, server: TTSServer) -> None:
        """Keep each application's key with the server it was checked on.

        An application without a stored server was checked on the account's
        current one, which is stored in it first. Each application whose
        server is not the new one is left out (see ``application_configs``)
        and gets a repair issue asking for a key checked on the new server.
        """
        current = entry.data[CONF_SERVER]
        for subentry in list(entry.subentries.values()):
            if subentry.subentry_type != SUBENTRY_APPLICATION or not subentry.data.get(
                CONF_API_KEY
            ):
                continue
            checked_on = subentry.data.get(CONF_SERVER)
            if checked_on is None:
                checked_on = current
                self.hass.config_entries.async_update_subentry(
                    entry, subentry, data={**subentry.data, CONF_SERVER: current}
                )
            issue_id = f"{ISSUE_APPLICATION_KEY_REJECTED}_{subentry.subentry_id}"
            if checked_on == server.url:
                issue = ir.async_get(self.hass).async_get_issue(DOMAIN, issue_id)
                if issue and issue.translation_key == ISSUE_APPLICATION_SERVER_CHANGED:
                    async_delete_issue(self.hass, issue_id)
                continue
            async_create_issue(
                self.hass,
                issue_id,
                fixable=True,
                persistent=True,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_APPLICATION_SERVER_CHANGED,
                placeholders={
                    "application": subentry.title,
                    "server": server.host,
                },
                data={"entry_id": entry.entry_id, "subentry_id": subentry.subentry_id},
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
