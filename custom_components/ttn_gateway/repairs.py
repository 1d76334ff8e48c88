"""Repairs: a new key for an application whose key The Things Stack rejected.

Sub-entries have no reauthentication flow of their own, so the repair issue
raised by the direct connection asks for the new key, checks it like the
application flow does, and saves it; the account then reloads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from .const import CONF_APPLICATION_ID, CONF_RIGHTS, CONF_SERVER, LOGGER
from .tts import TTSServer
from .validation import (
    FlowError,
    clean_api_key,
    granted_application_rights,
    key_schema,
    validate_application,
)

if TYPE_CHECKING:
    # Named since HA 2025.9; before, the flows return a plain FlowResult.
    from homeassistant.components.repairs.models import RepairsFlowResult


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
        }
        if user_input is not None:
            api_key = clean_api_key(user_input[CONF_API_KEY])
            try:
                _application, auth = await validate_application(
                    self.hass,
                    TTSServer(entry.data[CONF_SERVER]),
                    subentry.data[CONF_APPLICATION_ID],
                    api_key,
                )
            except FlowError as err:
                errors["base"] = err.error
                placeholders.update(err.placeholders)
            except Exception:  # noqa: BLE001
                LOGGER.exception("Unexpected error validating an application key")
                errors["base"] = "unknown"
            else:
                rights = granted_application_rights(auth)
                self.hass.config_entries.async_update_subentry(
                    entry,
                    subentry,
                    data={**subentry.data, CONF_API_KEY: api_key, CONF_RIGHTS: rights},
                )
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            data_schema=key_schema(),
            errors=errors,
            description_placeholders=placeholders,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """The fix flow of this integration's fixable issues."""
    data = data or {}
    return ApplicationKeyRepairFlow(
        str(data.get("entry_id", "")), str(data.get("subentry_id", ""))
    )
