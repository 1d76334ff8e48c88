"""Setup and unload of a config entry."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ttn_gateway.const import DOMAIN

from .common import async_poll
from .fake_tts import FORBIDDEN, GATEWAY_STATION, FakeTTS


async def test_setup_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The entry loads with the gateways' entities, and unloads cleanly."""
    assert init_integration.state is ConfigEntryState.LOADED
    entity_id = "binary_sensor.rooftop_gateway_connectivity"
    assert hass.states.get(entity_id).state == "on"

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get(entity_id).state == STATE_UNAVAILABLE


async def test_removing_the_entry_removes_its_repair_issue(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The repair about missing gateway rights goes when the account goes."""
    issue_id = f"missing_gateway_rights_{init_integration.entry_id}"
    fake_tts.stats[GATEWAY_STATION] = FORBIDDEN
    await async_poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    assert await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert not [i for i in issue_registry.issues.values() if i.domain == DOMAIN]
