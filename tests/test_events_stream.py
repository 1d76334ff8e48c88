"""The TTS events stream as a user sees it: instant connectivity, relaxed polls."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import logging

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant, callback
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.ttn_gateway.const import DOMAIN

from .event_feed import (
    SAMPLE,
    EventFeed,
    advance as _advance,
    flush as _flush,
    start_line,
    stream_line,
)
from .fake_tts import GATEWAY_GARDEN, GATEWAY_ROOFTOP, GATEWAY_STATION, FakeTTS

ROOFTOP = "binary_sensor.rooftop_gateway_connectivity"
ROOFTOP_SILENT = "binary_sensor.rooftop_gateway_silent"
ROOFTOP_EVENT = "event.rooftop_gateway_status"
GARDEN = "binary_sensor.kerlink_garden_connectivity"
NOW = "2025-03-14T10:20:00+00:00"

pytestmark = pytest.mark.freeze_time(NOW)


@pytest.fixture
async def streaming(
    hass: HomeAssistant,
    event_feed: EventFeed,
    init_integration: MockConfigEntry,
) -> EventFeed:
    """The integration set up with an open, healthy stream."""
    event_feed.current.send(start_line())
    await _flush(hass)
    return event_feed


async def test_stream_request(
    hass: HomeAssistant, event_feed: EventFeed, init_integration: MockConfigEntry
) -> None:
    """One stream for the server, for every gateway, with the gateway events."""
    assert len(event_feed.requests) == 1
    body = event_feed.requests[0]
    assert body["identifiers"] == [
        {"gateway_ids": {"gateway_id": gateway_id}}
        for gateway_id in sorted(
            [GATEWAY_ROOFTOP, GATEWAY_GARDEN, "never-connected-gw", GATEWAY_STATION]
        )
    ]
    # The key lacks RIGHT_GATEWAY_TRAFFIC_READ: no uplink events.
    assert body["names"] == [
        "gs.gateway.connect",
        "gs.gateway.disconnect",
        "gs.gateway.connection.stats",
        "gs.status.receive",
    ]
    assert "after" not in body


async def test_uplink_events_with_traffic_right(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    event_feed: EventFeed,
    mock_config_entry: MockConfigEntry,
) -> None:
    """A key that may read traffic also streams uplinks."""
    fake_tts.auth_info["api_key"]["api_key"]["rights"].append(
        "RIGHT_GATEWAY_TRAFFIC_READ"
    )
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert event_feed.requests[0]["names"][-1] == "gs.up.receive"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_disconnect_and_connect_within_seconds(
    hass: HomeAssistant, streaming: EventFeed
) -> None:
    """A disconnect event turns connectivity off at once, a connect back on."""
    events: list[str] = []

    @callback
    def record(event: Event) -> None:
        # A callback runs in the event loop, in order; a plain function would
        # run in the executor, in any order.
        state = event.data["new_state"]
        if (
            event.data["entity_id"] == ROOFTOP_EVENT
            and "event_type" in state.attributes
        ):
            events.append(state.attributes["event_type"])

    hass.bus.async_listen("state_changed", record)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    streaming.current.send(
        stream_line(
            "gs.gateway.disconnect",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:20:01Z",
            {"namespace": "pkg/gatewayserver/io/udp", "name": "connection_expired"},
        )
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF
    assert (
        hass.states.get("sensor.rooftop_gateway_last_seen").state
        == "2025-03-14T10:20:01+00:00"
    )
    # The counters TTS keeps after a disconnect stay.
    assert hass.states.get("sensor.rooftop_gateway_uplinks").state == "18342"
    silent = hass.states.get(ROOFTOP_SILENT)
    assert silent.state == STATE_ON
    assert silent.attributes["reason"] == "disconnected"
    assert events == ["disconnected", "silent"]

    # TTS publishes the connect without data (observability.go).
    streaming.current.send(
        stream_line(
            "gs.gateway.connect",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:20:30Z",
            connection="gs:conn:01JPA2A5G0Q2K8W3VDH6T9XN4B",
        )
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert (
        hass.states.get("sensor.rooftop_gateway_connected_since").state
        == "2025-03-14T10:20:30+00:00"
    )
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_OFF
    assert events == ["disconnected", "silent", "connected", "recovered"]


async def test_sample_stream_in_both_framings(
    hass: HomeAssistant, event_feed: EventFeed, init_integration: MockConfigEntry
) -> None:
    """The sample stream applies the same with one or two newlines per message."""
    event_feed.current.send(SAMPLE.replace("\n", "\n\n"))
    await _flush(hass)
    # The sample ends with a reconnect at 10:23:02.
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert (
        hass.states.get("sensor.rooftop_gateway_connected_since").state
        == "2025-03-14T10:23:02+00:00"
    )


async def test_bad_messages_are_skipped(
    hass: HomeAssistant, streaming: EventFeed
) -> None:
    """Garbage and unknown events between good ones lose nothing."""
    streaming.current.send(
        "not json\n"
        '["a list"]\n'
        '{"result": {"time": "2025-03-14T10:20:01Z"}}\n'
        + stream_line("gs.unknown.event", GATEWAY_ROOFTOP, "2025-03-14T10:20:01Z")
        + stream_line("gs.gateway.disconnect", "unknown-gw", "2025-03-14T10:20:01Z")
        + stream_line("gs.gateway.disconnect", GATEWAY_ROOFTOP, "bad time")
        + stream_line("gs.gateway.disconnect", GATEWAY_ROOFTOP, "2025-03-14T10:20:02Z")
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF


async def test_messages_split_across_chunks(
    hass: HomeAssistant, streaming: EventFeed
) -> None:
    """A message that arrives in pieces is applied once it is complete."""
    line = stream_line("gs.gateway.disconnect", GATEWAY_ROOFTOP, "2025-03-14T10:20:02Z")
    streaming.current.send(line[:40])
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    streaming.current.send(line[40:])
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF


async def test_stale_events_change_nothing(
    hass: HomeAssistant, streaming: EventFeed
) -> None:
    """Replayed events older than what a poll brought are ignored."""
    streaming.current.send(
        # The rooftop gateway connected on 2025-03-13 07:02; this is older.
        stream_line("gs.gateway.disconnect", GATEWAY_ROOFTOP, "2025-03-13T07:00:00Z")
        + stream_line(
            "gs.gateway.connection.stats",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:20:01Z",
            {"connected_at": "2025-03-13T07:02:11.412938119Z", "uplink_count": "5"},
        )
        + stream_line("gs.gateway.connect", GATEWAY_GARDEN, "2025-03-13T20:00:00Z")
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert hass.states.get("sensor.rooftop_gateway_uplinks").state == "18342"
    # Kerlink garden disconnected at 22:04, after that connect.
    assert hass.states.get(GARDEN).state == STATE_OFF


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_stats_and_status_events(
    hass: HomeAssistant, streaming: EventFeed
) -> None:
    """Connection stats and status events refresh the gateway's sensors."""
    streaming.current.send(
        stream_line(
            "gs.gateway.connection.stats",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:20:01Z",
            {
                "connected_at": "2025-03-13T07:02:11.412938119Z",
                "uplink_count": "18350",
                "downlink_count": "57",
                "tx_acknowledgment_count": "57",
                "last_uplink_received_at": "2025-03-14T10:20:00Z",
                "protocol": "udp",
            },
        )
        + stream_line(
            "gs.status.receive",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:20:02Z",
            {"metrics": {"temp": 39.0}},
        )
        # A second copy of the status changes nothing.
        + stream_line(
            "gs.status.receive",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:20:02Z",
            {"metrics": {"temp": 50.0}},
        )
        # Garden is disconnected: its status cannot be applied.
        + stream_line(
            "gs.status.receive",
            GATEWAY_GARDEN,
            "2025-03-14T10:20:02Z",
            {"metrics": {"temp": 50.0}},
        )
    )
    await _flush(hass)
    assert hass.states.get("sensor.rooftop_gateway_uplinks").state == "18350"
    assert hass.states.get("sensor.rooftop_gateway_temperature").state == "39.0"
    assert (
        hass.states.get("sensor.rooftop_gateway_last_uplink").state
        == "2025-03-14T10:20:00+00:00"
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_disconnect_stats_event(
    hass: HomeAssistant, streaming: EventFeed
) -> None:
    """Stats with only disconnected_at mean the gateway left."""
    streaming.current.send(
        stream_line(
            "gs.gateway.connection.stats",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:20:01Z",
            {"disconnected_at": "2025-03-14T10:20:01Z"},
        )
        + stream_line("gs.gateway.connection.stats", GATEWAY_ROOFTOP, NOW, {})
        # Never connected gateway: TTS had no stats for it.
        + stream_line(
            "gs.gateway.disconnect", "never-connected-gw", "2025-03-14T10:20:01Z"
        )
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF
    assert (
        hass.states.get("sensor.never_connected_last_seen").state
        == "2025-03-14T10:20:01+00:00"
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_uplink_events(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    event_feed: EventFeed,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Uplink events move Last uplink; counters stay with the polls."""
    fake_tts.auth_info["api_key"]["api_key"]["rights"].append("RIGHT_GATEWAY_ALL")
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    event_feed.current.send(
        start_line()
        + stream_line("gs.up.receive", GATEWAY_STATION, "2025-03-14T10:19:59Z")
        # Older than the last uplink TTS reported: ignored.
        + stream_line("gs.up.receive", GATEWAY_ROOFTOP, "2025-03-14T10:00:00Z")
        # Garden is disconnected.
        + stream_line("gs.up.receive", GATEWAY_GARDEN, "2025-03-14T10:19:59Z")
    )
    await _flush(hass)
    assert (
        hass.states.get("sensor.basic_station_gw_last_uplink").state
        == "2025-03-14T10:19:59+00:00"
    )
    assert hass.states.get("sensor.basic_station_gw_uplinks").state == "412"
    assert (
        hass.states.get("sensor.rooftop_gateway_last_uplink").state
        == "2025-03-14T10:15:38+00:00"
    )


async def test_poll_relaxes_while_stream_is_healthy(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    event_feed: EventFeed,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Polls every 5 min with a healthy stream, every minute again without."""
    coordinator = init_integration.runtime_data.coordinator
    assert coordinator.update_interval == timedelta(seconds=60)
    event_feed.current.send(start_line())
    await _flush(hass)
    assert coordinator.update_interval == timedelta(minutes=5)

    polls = fake_tts.count("batch")
    await _advance(hass, freezer, 61)  # the poll scheduled before the stream
    await _advance(hass, freezer, 120)
    assert fake_tts.count("batch") == polls + 1
    # Events keep the stream from being reopened as idle.
    event_feed.current.send(
        stream_line("gs.status.receive", GATEWAY_ROOFTOP, "2025-03-14T10:23:01Z")
    )
    await _flush(hass)
    await _advance(hass, freezer, 181)
    assert fake_tts.count("batch") == polls + 2

    # The stream drops: poll at once, then every minute.
    event_feed.current.close()
    await _flush(hass)
    assert coordinator.update_interval == timedelta(seconds=60)
    assert fake_tts.count("batch") == polls + 3


async def test_relaxed_poll_never_below_user_interval(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    event_feed: EventFeed,
    mock_config_entry: MockConfigEntry,
) -> None:
    """A user interval above 5 minutes is kept while streaming."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={"scan_interval": 900}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    event_feed.current.send(start_line())
    await _flush(hass)
    assert mock_config_entry.runtime_data.coordinator.update_interval == timedelta(
        seconds=900
    )


async def test_reconnect_resumes_after_last_event(
    hass: HomeAssistant,
    streaming: EventFeed,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A dropped stream is reopened after a backoff, asking for what it missed."""
    caplog.set_level(logging.INFO)
    streaming.current.send(
        stream_line("gs.status.receive", GATEWAY_ROOFTOP, "2025-03-14T10:20:05.25Z")
    )
    streaming.current.close()
    await _flush(hass)
    assert len(streaming.requests) == 1
    assert "Events stream from eu1.cloud.thethings.network lost" in caplog.text

    await _advance(hass, freezer, 2)  # the first backoff is 1 to 2 s
    assert len(streaming.requests) == 2
    assert streaming.requests[1]["after"] == "2025-03-14T10:20:05.250000Z"
    streaming.current.send(start_line("2025-03-14T10:20:07Z"))
    await _flush(hass)
    assert "Events stream from eu1.cloud.thethings.network is back" in caplog.text
    assert hass.config_entries.async_entries(DOMAIN)[
        0
    ].runtime_data.coordinator.update_interval == timedelta(minutes=5)


async def test_in_band_error_ends_the_stream(
    hass: HomeAssistant, streaming: EventFeed, freezer: FrozenDateTimeFactory
) -> None:
    """An error inside the stream is handled like a disconnect."""
    streaming.current.send(
        '{"error":{"code":7,"message":"error:pkg/auth/rights:no_gateway_rights",'
        '"details":[{"namespace":"pkg/auth/rights","name":"no_gateway_rights"}]}}\n'
        # Nothing after the error is read.
        + stream_line("gs.gateway.disconnect", GATEWAY_ROOFTOP, "2025-03-14T10:20:09Z")
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    coordinator = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.coordinator
    assert coordinator.update_interval == timedelta(seconds=60)
    await _advance(hass, freezer, 2)
    assert len(streaming.requests) == 2


async def test_backoff_grows_and_honours_rate_limit(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    event_feed: EventFeed,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Failed attempts wait longer each time; a 429 waits as long as TTS asks."""
    # Server errors, then a rate limit of 100 s.
    for _ in range(3):
        event_feed.fail(503)
    event_feed.fail(429, headers={"X-Rate-Limit-Retry": "100"})
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert len(event_feed.requests) == 1

    # Backoffs: 1-2 s, 2-4 s, 4-8 s (timers may fire up to 0.5 s early here).
    for attempts, wait in ((2, 2), (3, 4), (4, 8)):
        await _advance(hass, freezer, wait / 2 - 0.6)
        assert len(event_feed.requests) == attempts - 1
        await _advance(hass, freezer, wait / 2 + 0.6)
        assert len(event_feed.requests) == attempts
    # Rate limited: not before 100 s.
    await _advance(hass, freezer, 99 - 0.6)
    assert len(event_feed.requests) == 4
    await _advance(hass, freezer, 2)
    assert len(event_feed.requests) == 5
    # Polls are not held back by the stream's rate limit.
    assert mock_config_entry.runtime_data.coordinator.last_update_success


async def test_idle_stream_is_reopened(
    hass: HomeAssistant,
    streaming: EventFeed,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """TTS sends no heartbeat: after 5 quiet minutes the stream is reopened."""
    caplog.set_level(logging.INFO)
    await _advance(hass, freezer, 299)
    assert len(streaming.requests) == 1
    await _advance(hass, freezer, 2)
    await _advance(hass, freezer, 2)
    assert len(streaming.requests) == 2
    # Quiet is normal: nothing logged above debug.
    assert "lost" not in caplog.text


async def test_new_gateway_reopens_stream(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    streaming: EventFeed,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A gateway added in TTS is streamed from the next poll on."""
    from .fake_tts import listed_gateway, load_json

    fake_tts.gateways.append(listed_gateway("new-gw", "New gateway"))
    fake_tts.stats["new-gw"] = load_json("gateway-connection-stats-basicstation.json")
    await _advance(hass, freezer, 61)
    assert len(streaming.requests) == 2
    ids = [
        item["gateway_ids"]["gateway_id"]
        for item in streaming.requests[1]["identifiers"]
    ]
    assert "new-gw" in ids


async def test_unload_stops_the_stream(
    hass: HomeAssistant, streaming: EventFeed, init_integration: MockConfigEntry
) -> None:
    """Unloading cancels the stream task; nothing is left running."""
    tasks = [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(f"{DOMAIN} events stream")
    ]
    assert len(tasks) == 1
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert tasks[0].done()


async def test_stop_cancels_the_stream(
    hass: HomeAssistant, streaming: EventFeed
) -> None:
    """Stopping Home Assistant ends the stream task without warnings."""
    tasks = [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(f"{DOMAIN} events stream")
    ]
    await hass.async_stop()
    assert tasks[0].done()
