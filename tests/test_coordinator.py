"""Polling, failures and recovery as a user sees them."""

from __future__ import annotations

from datetime import timedelta
import logging

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ttn_gateway.const import (
    CONF_GATEWAYS,
    CONF_MONITOR_ALL,
    CONF_SCAN_INTERVAL,
    DOMAIN,
)

from .fake_tts import (
    FORBIDDEN,
    GATEWAY_GARDEN,
    GATEWAY_ROOFTOP,
    GATEWAY_STATION,
    FakeTTS,
    listed_gateway,
    load_json,
)

ROOFTOP = "binary_sensor.rooftop_gateway_connectivity"
STATION = "binary_sensor.basic_station_gw_connectivity"


async def _poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float = 61
) -> None:
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_one_poll_is_one_listing_and_one_batch(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Four gateways cost one listing and one batch stats request."""
    assert fake_tts.count("gateways") == 1
    assert fake_tts.count("batch") == 1
    assert fake_tts.count("single") == 0


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        ("gateways", 500),
        ("gateways", 503),
        ("batch", 502),
        ("gateways", TimeoutError()),
        ("batch", aiohttp.ServerDisconnectedError()),
        ("gateways", aiohttp.ClientConnectionError()),
    ],
)
@pytest.mark.usefixtures("init_integration")
async def test_unreachable_tts_makes_entities_unavailable(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    endpoint: str,
    fault: int | Exception,
) -> None:
    """Entities go unavailable while TTS fails, and come back by themselves."""
    fake_tts.fail(endpoint, fault, times=2)
    await _poll(hass, freezer)
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.rooftop_gateway_uplinks").state == STATE_UNAVAILABLE
    await _poll(hass, freezer)
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE
    # Logged once, not at every failed poll.
    assert caplog.text.count("Error fetching") == 1

    await _poll(hass, freezer)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert "Fetching ttn_gateway" in caplog.text
    assert "recovered" in caplog.text


@pytest.mark.usefixtures("init_integration")
async def test_malformed_json_is_a_communication_error(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Garbage from TTS makes entities unavailable with a clear log line."""
    fake_tts.fail("batch", 200, body=["not", "an", "object"])
    await _poll(hass, freezer)
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE
    assert "Unexpected JSON" in caplog.text
    await _poll(hass, freezer)
    assert hass.states.get(ROOFTOP).state == STATE_ON


async def test_rejected_key_starts_reauth(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A key TTS stops accepting asks the user for a new one."""
    fake_tts.api_key = "NNSXS.OTHERKEYID.OTHERSECRET"
    await _poll(hass, freezer)
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert flows[0]["context"]["entry_id"] == init_integration.entry_id
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE


async def test_rejected_key_at_setup_starts_reauth(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """Setup with a rejected key fails and asks for a new key."""
    fake_tts.fail("gateways", 401)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_unreachable_at_setup_retries(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """TTS down at startup: setup is retried later."""
    fake_tts.fail("gateways", 503)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY


@pytest.mark.usefixtures("init_integration")
async def test_listing_rights_revoked(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key that may no longer list gateways says which right is missing."""
    fake_tts.fail("gateways", 403)
    await _poll(hass, freezer)
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE
    assert "RIGHT_GATEWAY_STATUS_READ" in caplog.text


@pytest.mark.usefixtures("init_integration")
async def test_rate_limit_is_honoured(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a 429 nothing is sent to TTS before X-Rate-Limit-Retry has passed."""
    fake_tts.fail("gateways", 429, headers={"X-Rate-Limit-Retry": "150"})
    await _poll(hass, freezer)
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE
    assert "rate limited" in caplog.text.lower()
    sent = len(fake_tts.requests)
    await _poll(hass, freezer)  # 61 s after the 429
    await _poll(hass, freezer)  # 122 s after the 429
    assert len(fake_tts.requests) == sent
    await _poll(hass, freezer)  # 183 s: allowed again
    assert len(fake_tts.requests) > sent
    assert hass.states.get(ROOFTOP).state == STATE_ON


async def test_gateway_without_status_rights(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Only the gateway the key may not read is unavailable, and a repair says why."""
    fake_tts.stats[GATEWAY_STATION] = FORBIDDEN
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert hass.states.get(STATION).state == STATE_UNAVAILABLE
    assert hass.states.get(ROOFTOP).state == STATE_ON
    issue = issue_registry.async_get_issue(
        DOMAIN, f"missing_gateway_rights_{mock_config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders == {
        "gateways": GATEWAY_STATION,
        "right": "RIGHT_GATEWAY_STATUS_READ",
        "title": mock_config_entry.title,
    }

    # Later polls batch the others and leave the forbidden gateway alone.
    before = fake_tts.count("single")
    await _poll(hass, freezer)
    assert fake_tts.count("single") == before
    assert hass.states.get(STATION).state == STATE_UNAVAILABLE

    # Rights granted: within the hourly recheck it comes back, the repair goes.
    fake_tts.stats[GATEWAY_STATION] = fake_tts.stats[GATEWAY_ROOFTOP]
    await _poll(hass, freezer, seconds=3600)
    assert hass.states.get(STATION).state == STATE_ON
    assert (
        issue_registry.async_get_issue(
            DOMAIN, f"missing_gateway_rights_{mock_config_entry.entry_id}"
        )
        is None
    )


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

    await _poll(hass, freezer, seconds=61)
    assert fake_tts.count("batch") == batch_calls
    await _poll(hass, freezer, seconds=240)
    assert fake_tts.count("batch") == batch_calls + 1


async def test_debug_logs_never_show_the_key(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Setup, polls, every kind of failure and unload at DEBUG leak no key."""
    caplog.set_level(logging.DEBUG)
    fake_tts.stats[GATEWAY_STATION] = FORBIDDEN
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    for endpoint, fault in (
        ("gateways", 500),
        ("batch", TimeoutError()),
        ("gateways", 429),
        ("gateways", 403),
        ("gateways", 401),
    ):
        fake_tts.fail(endpoint, fault)
        await _poll(hass, freezer, seconds=3700)
        await _poll(hass, freezer, seconds=3700)
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    secret = fake_tts.api_key.rsplit(".", 1)[1]
    for message in ("HTTP 500", "Timeout", "rate limited", "lacks these rights"):
        assert message in caplog.text
    assert hass.config_entries.flow.async_progress()  # the 401 started reauth
    assert fake_tts.api_key not in caplog.text
    assert secret not in caplog.text
    for state in hass.states.async_all():
        assert secret not in str(state.attributes)


@pytest.mark.parametrize(("gateways", "requests"), [(1, 2), (100, 2), (250, 4)])
async def test_requests_per_poll(
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
    await _poll(hass, freezer)
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
    await _poll(hass, freezer)
    assert written == []

    stats = fake_tts.stats[GATEWAY_ROOFTOP]
    assert isinstance(stats, dict)
    stats["uplink_count"] = "18343"
    await _poll(hass, freezer)
    assert written == ["sensor.rooftop_gateway_uplinks"]
