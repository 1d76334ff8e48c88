"""Fault injection: what a user sees while TTS or the network fails, and recovery.

Each case runs against the simulator through the test adapter and checks the
entity states, repair issues, reauth flows and log lines, and that the
integration comes back by itself once the fault ends. How the client turns
each answer into an error is tested in test_tts_client.py; an events stream
that stalls, ends, fails in-band or is refused is tested in
test_events_stream.py (test_idle_stream_is_reopened,
test_reconnect_resumes_after_last_event, test_in_band_error_ends_the_stream,
test_backoff_grows_and_honours_rate_limit).
"""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import (
    CONF_API_KEY,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ttn_gateway.const import (
    CONF_GATEWAYS,
    CONF_MONITOR_ALL,
    CONF_SERVER,
    DOMAIN,
)
from tts_simulator import Request, Response

from .fake_tts import (
    FORBIDDEN,
    GATEWAY_GARDEN,
    GATEWAY_ROOFTOP,
    GATEWAY_STATION,
    SERVER_URL,
    FakeTTS,
    listed_gateway,
    load_json,
)
from .fault_cases import (
    TRANSIENT_FAULTS,
    TransientFault,
    assert_handled,
    integration_states,
    poll,
    readings,
)

ROOFTOP = "binary_sensor.rooftop_gateway_connectivity"
STATION = "binary_sensor.basic_station_gw_connectivity"
GARDEN = "binary_sensor.kerlink_garden_connectivity"
ROOFTOP_UPLINKS = "sensor.rooftop_gateway_uplinks"
FLEET_SILENT = "sensor.jdoe_eu1_cloud_thethings_network_gateways_silent"
NEW_KEY = (
    "NNSXS.OTHERKEYOTHERKEYOTHERKEYOTHERKEYOTHERK."
    "OTHERSECRETOTHERSECRETOTHERSECRETOTHERSECRETOTHERSE"
)


def _device_ids(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    """The entry's gateways and end devices (not the account's own device)."""
    return {
        identifier
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        for _, identifier in device.identifiers
        if identifier != f"{entry.unique_id}/account"
    }


# --- failures that end by themselves -------------------------------------------


@pytest.mark.parametrize(
    "fault", TRANSIENT_FAULTS, ids=[fault.name for fault in TRANSIENT_FAULTS]
)
@pytest.mark.usefixtures("init_integration")
async def test_transient_fault(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    fault: TransientFault,
) -> None:
    """Entities go unavailable, one line says why, and all comes back by itself."""
    before = integration_states(hass)
    assert len(before) > 20
    assert STATE_UNAVAILABLE not in before.values()

    fault.inject(fake_tts, 2)
    await poll(hass, freezer)
    assert set(readings(hass).values()) == {STATE_UNAVAILABLE}
    await poll(hass, freezer)
    assert set(readings(hass).values()) == {STATE_UNAVAILABLE}
    # Said once, with what happened, not at every failed poll.
    assert caplog.text.count("Error fetching ttn_gateway") == 1
    assert fault.logged in caplog.text

    # The poll after the second failure waits twice the interval (backoff).
    await poll(hass, freezer, 121)
    assert integration_states(hass) == before
    assert caplog.text.count("data recovered") == 1
    assert_handled(caplog)


async def test_unreachable_at_setup_retries_until_it_works(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """TTS down when HA starts: setup is retried and succeeds once TTS is back."""
    fake_tts.fail("gateways", 503)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert "HTTP 503" in caplog.text

    await poll(hass, freezer, seconds=120)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert_handled(caplog)


# --- the API key -----------------------------------------------------------------


async def test_rejected_key_starts_reauth_and_a_new_key_recovers(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key TTS stops accepting (401) asks the user for a new one, once."""
    before = integration_states(hass)
    fake_tts.api_key = NEW_KEY  # the old key was deleted in the Console
    await poll(hass, freezer)

    assert set(readings(hass).values()) == {STATE_UNAVAILABLE}
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert flows[0]["context"]["entry_id"] == init_integration.entry_id
    assert caplog.text.count("Authentication failed while fetching") == 1

    # No more requests with a key TTS rejects, and no second reauth flow.
    sent = len(fake_tts.requests)
    await poll(hass, freezer)
    await poll(hass, freezer)
    assert len(fake_tts.requests) == sent
    assert len(hass.config_entries.flow.async_progress()) == 1

    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_API_KEY: NEW_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED
    assert integration_states(hass) == before
    assert_handled(caplog)


async def test_rejected_key_at_setup_starts_reauth(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Setup with a rejected key fails and asks for a new key."""
    fake_tts.fail("gateways", 401)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert_handled(caplog)


@pytest.mark.usefixtures("init_integration")
async def test_listing_right_revoked(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key that may no longer list gateways (403) says which right is missing."""
    before = integration_states(hass)
    rights = fake_tts.auth_info["api_key"]["api_key"]["rights"]
    fake_tts.auth_info["api_key"]["api_key"]["rights"] = [
        right for right in rights if right != "RIGHT_USER_GATEWAYS_LIST"
    ]
    await poll(hass, freezer)
    await poll(hass, freezer)
    assert set(readings(hass).values()) == {STATE_UNAVAILABLE}
    assert caplog.text.count("Error fetching ttn_gateway") == 1
    assert (
        "The API key lacks these rights: List gateways the user is a collaborator"
        " of (RIGHT_USER_GATEWAYS_LIST)"
    ) in caplog.text

    fake_tts.auth_info["api_key"]["api_key"]["rights"] = rights
    await poll(hass, freezer, 121)  # backoff after two failures
    assert integration_states(hass) == before
    assert_handled(caplog)


async def test_status_right_missing_on_one_gateway(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """403 on one gateway: only it is unavailable, and a repair names the right."""
    issue_id = f"missing_gateway_rights_{init_integration.entry_id}"
    before = integration_states(hass)
    station_entities = {
        entity for entity in readings(hass) if "basic_station_gw" in entity
    }
    stats = fake_tts.stats[GATEWAY_STATION]
    fake_tts.stats[GATEWAY_STATION] = FORBIDDEN
    await poll(hass, freezer)

    now = integration_states(hass)
    assert {entity for entity, state in now.items() if state == STATE_UNAVAILABLE} == (
        station_entities
    )
    # The account's counts lose the station, whose connection is now unknown.
    fleet_connected = "sensor.jdoe_eu1_cloud_thethings_network_gateways_connected"
    assert int(now[fleet_connected]) == int(before[fleet_connected]) - 1
    unchanged = station_entities | {fleet_connected, FLEET_SILENT}
    assert {e: s for e, s in now.items() if e not in unchanged} == {
        e: s for e, s in before.items() if e not in unchanged
    }
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "gateways": GATEWAY_STATION,
        "right": "RIGHT_GATEWAY_STATUS_READ",
        "title": init_integration.title,
    }

    # Later polls batch the others and leave the forbidden gateway alone.
    singles = fake_tts.count("single")
    await poll(hass, freezer)
    assert fake_tts.count("single") == singles
    assert hass.states.get(STATION).state == STATE_UNAVAILABLE
    assert hass.states.get(ROOFTOP).state == STATE_ON

    # Right granted: within the hourly recheck it comes back, the repair goes.
    fake_tts.stats[GATEWAY_STATION] = stats
    await poll(hass, freezer, seconds=3600)
    assert integration_states(hass) == before
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert "Error fetching" not in caplog.text
    assert_handled(caplog)


async def test_status_right_missing_at_setup(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A gateway the key may not read from the start is set up unavailable."""
    fake_tts.stats[GATEWAY_STATION] = FORBIDDEN
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(STATION).state == STATE_UNAVAILABLE
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert issue_registry.async_get_issue(
        DOMAIN, f"missing_gateway_rights_{mock_config_entry.entry_id}"
    )


# --- rate limiting -----------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["gateways", "batch"])
@pytest.mark.usefixtures("init_integration")
async def test_rate_limit_is_honoured(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    endpoint: str,
) -> None:
    """After a 429 nothing is sent to TTS before X-Rate-Limit-Retry has passed."""
    before = integration_states(hass)
    fake_tts.fail(endpoint, 429, headers={"X-Rate-Limit-Retry": "150"})
    await poll(hass, freezer)
    assert set(readings(hass).values()) == {STATE_UNAVAILABLE}
    assert "rate limited the API key; retrying in 150 s" in caplog.text
    sent = len(fake_tts.requests)
    await poll(hass, freezer)  # 61 s after the 429
    await poll(hass, freezer)  # 122 s after the 429
    assert len(fake_tts.requests) == sent
    assert caplog.text.count("Error fetching ttn_gateway") == 1

    await poll(hass, freezer)  # 183 s: allowed again
    assert len(fake_tts.requests) > sent
    assert integration_states(hass) == before
    assert_handled(caplog)


# --- bad data --------------------------------------------------------------------


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_wrong_types_in_fields(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A field of the wrong type makes that value unknown, and nothing else.

    Counters and activity times of the same connection keep their last good
    value: an unreadable one must not look like a reset or a jump back.
    """
    before = integration_states(hass)
    good_stats = fake_tts.stats[GATEWAY_ROOFTOP]
    assert isinstance(good_stats, dict)
    fake_tts.stats[GATEWAY_ROOFTOP] = {
        **good_stats,
        "uplink_count": True,
        "downlink_count": -4,
        "last_uplink_received_at": 1741946400,
        "protocol": ["udp"],
        "round_trip_times": "fast",
        "sub_bands": {"min_frequency": "863000000"},
        "last_status": [1, 2],
        "gateway_remote_address": "203.0.113.17",
    }
    listing = fake_tts.gateways[0]
    assert listing["ids"]["gateway_id"] == GATEWAY_ROOFTOP
    fake_tts.gateways[0] = {
        **listing,
        "ids": {"gateway_id": GATEWAY_ROOFTOP, "eui": 42},
        "name": {"en": "Rooftop"},
        "version_ids": "rak",
        "frequency_plan_ids": "EU_863_870",
    }
    await poll(hass, freezer)

    after = integration_states(hass)
    assert after[ROOFTOP] == STATE_ON  # connected_at is fine
    for bad in ("round_trip_time", "protocol"):
        assert after[f"sensor.rooftop_gateway_{bad}"] == STATE_UNKNOWN, bad
    # Not 0 and not unknown: the counters of this connection never go back.
    for kept in ("uplinks", "downlinks", "last_uplink"):
        key = f"sensor.rooftop_gateway_{kept}"
        assert after[key] == before[key], kept
    assert (
        after["sensor.rooftop_gateway_transmission_acknowledgements"]
        == (before["sensor.rooftop_gateway_transmission_acknowledgements"])
    )
    assert (
        after["sensor.rooftop_gateway_connected_since"]
        == (before["sensor.rooftop_gateway_connected_since"])
    )
    # Every other gateway is untouched.
    assert {e: s for e, s in after.items() if "rooftop" not in e} == {
        e: s for e, s in before.items() if "rooftop" not in e
    }
    assert "Error fetching" not in caplog.text

    fake_tts.stats[GATEWAY_ROOFTOP] = good_stats
    fake_tts.gateways[0] = listing
    await poll(hass, freezer)
    assert integration_states(hass) == before
    assert_handled(caplog)


async def test_unreadable_gateway_in_the_list_keeps_its_device(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One unreadable item in the list costs no device: it is kept until TTS says."""
    before = integration_states(hass)
    devices = _device_ids(hass, init_integration)
    listing = fake_tts.gateways[0]
    fake_tts.gateways[0] = {"ids": {"gateway_id": 7}, "name": "???"}
    await poll(hass, freezer)
    assert _device_ids(hass, init_integration) == devices
    assert integration_states(hass) == before

    # Rooftop's stats still come through while its list entry is unreadable.
    stats = fake_tts.stats[GATEWAY_ROOFTOP]
    assert isinstance(stats, dict)
    fake_tts.stats[GATEWAY_ROOFTOP] = {**stats, "uplink_count": "18343"}
    await poll(hass, freezer)
    assert hass.states.get(ROOFTOP_UPLINKS).state == "18343"

    # Once the list is readable and lacks the gateway, its entities are
    # unavailable; the device goes when the next complete list lacks it too.
    fake_tts.gateways = fake_tts.gateways[1:]
    await poll(hass, freezer)
    assert _device_ids(hass, init_integration) == devices
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE
    await poll(hass, freezer)
    assert _device_ids(hass, init_integration) == devices - {
        f"{init_integration.unique_id}/gateway/{GATEWAY_ROOFTOP}"
    }
    assert hass.states.get(ROOFTOP) is None
    fake_tts.gateways = [listing, *fake_tts.gateways]
    assert "Error fetching" not in caplog.text
    assert_handled(caplog)


async def test_duplicate_gateway_ids(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gateway listed twice gets one device, and is asked for once."""
    fake_tts.gateways = [
        *fake_tts.gateways,
        listed_gateway(GATEWAY_ROOFTOP, "Rooftop twin"),
        listed_gateway(GATEWAY_GARDEN),
    ]
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await poll(hass, freezer)

    assert len(_device_ids(hass, mock_config_entry)) == 4
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert hass.states.get("binary_sensor.rooftop_twin_connectivity") is None
    unique_ids = [
        entry.unique_id
        for entry in er.async_entries_for_config_entry(
            entity_registry, mock_config_entry.entry_id
        )
    ]
    assert len(unique_ids) == len(set(unique_ids))
    assert "does not generate unique IDs" not in caplog.text
    assert_handled(caplog)


async def test_empty_account(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An account without gateways loads quietly; gateways added later appear."""
    gateways = fake_tts.gateways
    fake_tts.gateways = []
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    # Only the account's gateway counts (the entry has no application).
    assert integration_states(hass) == {
        "sensor.jdoe_eu1_cloud_thethings_network_gateways_connected": "0",
        FLEET_SILENT: "0",
    }
    await poll(hass, freezer)
    assert fake_tts.count("batch") == 0  # nothing to ask

    fake_tts.gateways = gateways
    await poll(hass, freezer)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert hass.states.get(GARDEN).state == STATE_OFF
    assert "Error" not in caplog.text
    assert_handled(caplog)


async def test_page_shrinks_between_requests(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gateway deleted while the list is read shifts the next page; none is lost.

    1001 gateways fill two pages of 1000. Deleting one of page 1 before page 2
    is read moves the last gateway onto page 1, which was already read.
    """
    stats = load_json("gateway-connection-stats.json")
    fake_tts.gateways = [listed_gateway(f"gw-{n:04}") for n in range(1001)]
    fake_tts.stats = {f"gw-{n:04}": stats for n in range(1001)}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: fake_tts.api_key},
        options={CONF_MONITOR_ALL: False, CONF_GATEWAYS: ["gw-0005", "gw-1000"]},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert _device_ids(hass, entry) == {
        f"{entry.unique_id}/gateway/gw-0005",
        f"{entry.unique_id}/gateway/gw-1000",
    }

    handle = fake_tts.simulator.handle
    pages: list[str] = []

    def delete_during_listing(request: Request) -> Response:
        response = handle(request)
        if request.path.endswith("/gateways"):
            pages.append(request.query["page"])
            if len(pages) == 1:
                fake_tts.simulator.remove_gateway("gw-0005")
        return response

    fake_tts.simulator.handle = delete_during_listing  # type: ignore[method-assign]
    await poll(hass, freezer)

    # Page 1, page 2 (total now 1000: changed), then page 1 again.
    assert pages == ["1", "2", "1"]
    # A deleted gateway's device goes once two complete lists lacked it.
    await poll(hass, freezer)
    assert _device_ids(hass, entry) == {f"{entry.unique_id}/gateway/gw-1000"}
    assert hass.states.get("binary_sensor.gw_1000_connectivity").state == STATE_ON
    assert "Error fetching" not in caplog.text
    assert_handled(caplog)


def _listing_that_keeps_moving(fake: FakeTTS) -> Any:
    """Every read of page 2 sees a different total."""
    handle = fake.simulator.handle
    reads = iter(range(1000))

    def moving(request: Request) -> Response:
        response = handle(request)
        if request.path.endswith("/gateways"):
            response.headers["X-Total-Count"] = str(1001 + next(reads))
        return response

    return moving


async def test_list_that_never_settles_keeps_known_gateways(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A list whose pages keep moving removes no device that was known."""
    before = integration_states(hass)
    devices = _device_ids(hass, init_integration)
    fake_tts.gateways = fake_tts.gateways[1:]  # rooftop missing from the read
    fake_tts.simulator.handle = _listing_that_keeps_moving(fake_tts)  # type: ignore[method-assign]
    await poll(hass, freezer)
    assert fake_tts.count("gateways") == 1 + 3 * 2
    assert _device_ids(hass, init_integration) == devices
    assert integration_states(hass) == before
    assert_handled(caplog)
