"""Polling as a user sees it: requests per poll, options, state writes.

Failures and recovery are in test_faults.py."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import Event, HomeAssistant, callback
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.ttn_gateway.const import (
    CONF_GATEWAYS,
    CONF_MONITOR_ALL,
    CONF_SCAN_INTERVAL,
    DOMAIN,
)
from custom_components.ttn_gateway.diagnostics import (
    async_get_config_entry_diagnostics,
)

from .common import async_poll
from .fake_tts import (
    GATEWAY_GARDEN,
    GATEWAY_ROOFTOP,
    FakeTTS,
    listed_gateway,
    load_json,
)

ROOFTOP = "binary_sensor.rooftop_gateway_connectivity"
STATION = "binary_sensor.basic_station_gw_connectivity"


async def test_one_poll_is_one_listing_and_one_batch(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Four gateways cost one listing and one batch stats request."""
    assert fake_tts.count("gateways") == 1
    assert fake_tts.count("batch") == 1
    assert fake_tts.count("single") == 0


async def test_options_select_gateways_and_interval(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Only the selected gateways are monitored, at the chosen interval."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={
            "server": "https://eu1.cloud.thethings.network",
            "api_key": fake_tts.api_key,
        },
        options={
            CONF_SCAN_INTERVAL: 300,
            CONF_MONITOR_ALL: False,
            CONF_GATEWAYS: [GATEWAY_GARDEN],
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert hass.states.get("binary_sensor.kerlink_garden_connectivity") is not None
    assert hass.states.get(ROOFTOP) is None
    batch_calls = fake_tts.count("batch")
    batch_url = next(
        url for name, url in reversed(fake_tts.requests) if name == "batch"
    )
    assert batch_url.endswith("/gs/gateways/connection/stats")

    await async_poll(hass, freezer, seconds=61)
    assert fake_tts.count("batch") == batch_calls
    await async_poll(hass, freezer, seconds=240)
    assert fake_tts.count("batch") == batch_calls + 1


@pytest.mark.parametrize(("gateways", "requests"), [(1, 2), (100, 2), (250, 4)])
async def test_requests_perasync_poll(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    gateways: int,
    requests: int,
) -> None:
    """A poll is one listing plus one batch per 100 gateways."""
    fake_tts.gateways = [listed_gateway(f"gw-{n:04}") for n in range(gateways)]
    fake_tts.stats = {
        f"gw-{n:04}": load_json("gateway-connection-stats.json")
        for n in range(gateways)
    }
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    sent = len(fake_tts.requests)
    await async_poll(hass, freezer)
    assert len(fake_tts.requests) - sent == requests
    assert hass.states.get("binary_sensor.gw_0000_connectivity").state == STATE_ON


@pytest.mark.usefixtures("init_integration")
async def test_unchanged_poll_writes_no_state(
    hass: HomeAssistant, fake_tts: FakeTTS, freezer: FrozenDateTimeFactory
) -> None:
    """A poll that changes nothing writes no state; a change writes only its entity."""
    written: list[str] = []

    @callback
    def record(event: Event) -> None:
        written.append(event.data["entity_id"])

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    hass.bus.async_listen(
        EVENT_STATE_REPORTED, record, event_filter=callback(lambda _: True)
    )
    await async_poll(hass, freezer)
    assert written == []

    stats = fake_tts.stats[GATEWAY_ROOFTOP]
    assert isinstance(stats, dict)
    stats["uplink_count"] = "18343"
    await async_poll(hass, freezer)
    assert written == ["sensor.rooftop_gateway_uplinks"]


async def test_failed_poll_keeps_the_one_gateway_state(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The store is the only gateway state: a failed poll leaves it, stale."""
    coordinator = init_integration.runtime_data.coordinator
    # The coordinator keeps no copy of the gateways beside the store.
    assert coordinator.data is None

    fake_tts.fail("gateways", 500)
    await async_poll(hass, freezer, seconds=61)
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE
    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)
    assert diagnostics["coordinator"]["last_update_success"] is False
    assert diagnostics["coordinator"]["failures"] == 1
    assert diagnostics["store"]["poll_ok"] is False
    rooftop = diagnostics["gateways"][GATEWAY_ROOFTOP]
    assert rooftop["connection"]["stats"]["uplink_count"] == 18342
    assert coordinator.data is None

    await async_poll(hass, freezer, seconds=61)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert hass.states.get("sensor.rooftop_gateway_uplinks").state == "18342"
    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)
    assert diagnostics["coordinator"]["last_update_success"] is True
    assert diagnostics["store"]["poll_ok"] is True
