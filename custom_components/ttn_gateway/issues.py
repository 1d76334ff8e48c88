"""Repair issues of this integration: raised and removed one way everywhere."""

from __future__ import annotations

from collections.abc import Mapping

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN


def async_create_issue(
    hass: HomeAssistant,
    issue_id: str,
    *,
    translation_key: str,
    placeholders: Mapping[str, str] | None = None,
    fixable: bool = False,
    persistent: bool = False,
    severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
    learn_more_url: str | None = None,
    data: dict[str, str | int | float | None] | None = None,
) -> None:
    """Raise (or update) one of this domain's repair issues."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=fixable,
        is_persistent=persistent,
        severity=severity,
        translation_key=translation_key,
        translation_placeholders=dict(placeholders) if placeholders else None,
        learn_more_url=learn_more_url,
        data=data,
    )


def async_delete_issue(hass: HomeAssistant, issue_id: str) -> None:
    """Remove one of this domain's repair issues, if it is raised."""
    ir.async_delete_issue(hass, DOMAIN, issue_id)
