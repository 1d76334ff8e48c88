"""Repairs: a new key for an application whose key cannot be used.

(The other fixable issue, the entities renamed by version 3.3, is only
confirmed: the user has read which entity IDs changed.)

Either The Things Stack rejected the key (the direct connection raises the
issue), or the account moved to another server than the one the key was
checked on (the account's reconfigure raises it). Sub-entries have no
reauthentication flow of their own, so the issue's fix asks for a new key,
checks it on the account's server like the application flow does (with a
test login for a direct connection), and saves it; the account then reloads.
After a server change the MQTT settings are those of the new server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from .const import (
    CONF_APPLICATION_ID,
    CONF_RIGHTS,
    CONF_SERVER,
    ISSUE_SILENT_REPLACES_ONLINE,
    LOGGER,
)
from .end_devices.applications import ApplicationConfig
from .tts import TTSServer
from .validation import (
    FlowError,
    async_mqtt_settings,
    clean_api_key,
    granted_application_rights,
    key_schema,
    mqtt_settings_data,
    validate_application,
    validate_mqtt_login,
)

if TYPE_CHECKING:
    from .compat import RepairsFlowResult


class ApplicationKeyRepairFlow(RepairsFlow):
    """Asks for a new key of one application."""

    def __init__(self, entry_id: str, subentry_id: str) -> None:
        """Remember which application the issue is about."""
        self._entry_id = entry_id
        self._subentry_id = subentry_id

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Ask for the new key (the flow starts with the issue's data)."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Check and save the new key."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if (
            entry is None
            or (subentry := entry.subentries.get(self._subentry_id)) is None
        ):
            return self.async_abort(reason="application_removed")
        errors: dict[str, str] = {}
        placeholders = {
            "application": subentry.title,
            "error": "",
            "rights": "",
            "owner": "",
            "username": "",
        }
        if user_input is not None:
            server = TTSServer(entry.data[CONF_SERVER])
            api_key = clean_api_key(user_input[CONF_API_KEY])
            try:
                data = await self._async_checked(server, dict(subentry.data), api_key)
            except FlowError as err:
                errors["base"] = err.error
                placeholders.update(err.placeholders)
            except Exception:  # noqa: BLE001
                LOGGER.exception("Unexpected error validating an application key")
                errors["base"] = "unknown"
            else:
                self.hass.config_entries.async_update_subentry(
                    entry, subentry, data=data
                )
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            data_schema=key_schema(),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_checked(
        self, server: TTSServer, data: dict[str, Any], api_key: str
    ) -> dict[str, Any]:
        """The sub-entry's new data, once the key is checked on the server."""
        application_id = data[CONF_APPLICATION_ID]
        _application, auth = await validate_application(
            self.hass, server, application_id, api_key
        )
        moved = data.get(CONF_SERVER) not in (None, server.url)
        data.update(
            {
                CONF_API_KEY: api_key,
                CONF_RIGHTS: granted_application_rights(auth),
                CONF_SERVER: server.url,
            }
        )
        config = ApplicationConfig.from_data(self._subentry_id, "", data)
        cluster = config.application_server(server)
        checked = None
        if cluster != server:
            # The key is used on the application's cluster: checked there too.
            checked = await async_mqtt_settings(
                self.hass, server, application_id, api_key, cluster=cluster
            )
        if not config.direct:
            return data
        if not moved:
            settings = config.mqtt_settings(cluster)
        else:
            settings = checked or await async_mqtt_settings(
                self.hass, server, application_id, api_key
            )
        await validate_mqtt_login(settings, api_key)
        return data | mqtt_settings_data(settings)


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """The fix flow of this integration's fixable issues."""
    if issue_id.startswith(ISSUE_SILENT_REPLACES_ONLINE):
        return ConfirmRepairFlow()
    data = data or {}
    return ApplicationKeyRepairFlow(
        str(data.get("entry_id", "")), str(data.get("subentry_id", ""))
    )
