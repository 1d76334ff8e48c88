"""The gateway state a user sees, under the orderings TTS really produces.

Late disconnects of superseded connections, polls that lag pushed events,
polls in flight while an event arrives, failed polls while the stream is
healthy, and broken messages on the stream.
"""

from __future__ import annotations

from datetime import timedelta
import json
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.ttn_gateway.const import DOMAIN
from custom_components.ttn_gateway.store import GatewayData, GatewayStore
from custom_components.ttn_gateway.stream import backoff_delay
from custom_components.ttn_gateway.tts import (
    ConnectionState,
    Gateway,
    GatewayConnection,
    GatewayConnectionStats,
    StreamEvent,
)

from .event_feed import (
    EventFeed,
    LiveStream,
    advance as _advance,
    flush as _flush,
    start_line,
)
from .fake_tts import GATEWAY_GARDEN, GATEWAY_NEVER, GATEWAY_ROOFTOP, FakeTTS

ROOFTOP = "binary_sensor.rooftop_gateway_connectivity"
ROOFTOP_SILENT = "binary_sensor.rooftop_gateway_silent"
ROOFTOP_EVENT = "event.rooftop_gateway_status"
ROOFTOP_UPLINKS = "sensor.rooftop_gateway_uplinks"
ROOFTOP_LAST_UPLINK = "sensor.rooftop_gateway_last_uplink"
GARDEN = "binary_sensor.kerlink_garden_connectivity"
# The rooftop gateway's connection in the sample stats.
OLD_CONNECTED_AT = "2025-03-13T07:02:11.412938119Z"
OLD_CONNECTION = "gs:conn:01JP7Y0V4M3Z1R2D8Y7KJ6W5E0"
NEW_CONNECTION = "gs:conn:01JPAZ3F2N8B5C1D4E6F7G8H9J"
NOW = "2025-03-14T10:20:00+00:00"

pytestmark = pytest.mark.freeze_time(NOW)


def event_line(
    name: str,
    time: str,
    data: dict[str, Any] | None = None,
    *,
    gateway_id: str = GATEWAY_ROOFTOP,
    connection: str | None = None,
) -> str:
    """One stream message, with the gs:conn correlation id TTS gives it."""
    event: dict[str, Any] = {
        "name": name,
        "time": time,
        "identifiers": [{"gateway_ids": {"gateway_id": gateway_id}}],
    }
    if data is not None:
        event["data"] = data
    if connection is not None:
        event["correlation_ids"] = [connection, "gs:uplink:01JPAZ3F2N8B5C1D4E6F7G8H9K"]
    return json.dumps({"result": event}) + "\n"


@pytest.fixture
async def stream(
    hass: HomeAssistant, event_feed: EventFeed, init_integration: MockConfigEntry
) -> LiveStream:
    """The integration set up with an open, healthy stream."""
    event_feed.current.send(start_line())
    await _flush(hass)
    return event_feed.current


def _event_types(hass: HomeAssistant, entity_id: str) -> list[str]:
    seen: list[str] = []

    @callback
    def record(event: Event) -> None:
        state = event.data["new_state"]
        if event.data["entity_id"] == entity_id and "event_type" in state.attributes:
            seen.append(state.attributes["event_type"])

    hass.bus.async_listen("state_changed", record)
    return seen


def _rooftop_stats(fake_tts: FakeTTS, **changes: Any) -> None:
    """Let TTS answer the rooftop gateway's stats with some fields changed."""
    stats = dict(fake_tts.stats[GATEWAY_ROOFTOP])  # type: ignore[arg-type]
    for key, value in changes.items():
        if value is None:
            stats.pop(key, None)
        else:
            stats[key] = value
    fake_tts.stats[GATEWAY_ROOFTOP] = stats


# --- 1. connections told apart by their gs:conn correlation id ---------------

ROOFTOP_SINCE = "sensor.rooftop_gateway_connected_since"
# How TTS ends connections: another Gateway Server expires the old UDP one
# (pkg/gatewayserver/io/udp); one server drops it for the new connection
# (gatewayserver.go, Connect: errNewConnection).
EXPIRED = {"namespace": "pkg/gatewayserver/io/udp", "name": "connection_expired"}
SUPERSEDED = {"namespace": "pkg/gatewayserver", "name": "new_connection"}
# The new connection started (io.NewConnection) just before its connect event.
NEW_CONNECTED_AT = "2025-03-14T10:20:00.4Z"


def _connect(data: dict[str, Any] | None = None) -> str:
    """The new connection's connect: no data (observability.go) or its stats."""
    return event_line(
        "gs.gateway.connect", "2025-03-14T10:20:01Z", data, connection=NEW_CONNECTION
    )


def _new_stats(connection: str | None = NEW_CONNECTION, uplinks: str = "3") -> str:
    """The new connection's stats (gatewayserver.go, updateConnStats)."""
    return event_line(
        "gs.gateway.connection.stats",
        "2025-03-14T10:20:05Z",
        {"connected_at": NEW_CONNECTED_AT, "protocol": "udp", "uplink_count": uplinks},
        connection=connection,
    )


def _old_end(at: str = "2025-03-14T10:20:04Z", *, ids: bool = True) -> str:
    """The old connection's disconnect and its last stats (updateConnStats)."""
    return event_line(
        "gs.gateway.disconnect", at, EXPIRED, connection=OLD_CONNECTION
    ) + event_line(
        "gs.gateway.connection.stats",
        at,
        {"disconnected_at": at},
        connection=OLD_CONNECTION if ids else None,
    )


@pytest.mark.parametrize(
    "connect_data",
    [None, {"connected_at": NEW_CONNECTED_AT, "protocol": "udp"}],
    ids=["connect without data", "connect with stats"],
)
@pytest.mark.parametrize(
    "stats_carry_ids", [True, False], ids=["stats with gs:conn", "stats without"]
)
async def test_late_disconnect_of_superseded_connection_is_ignored(
    hass: HomeAssistant,
    stream: LiveStream,
    connect_data: dict[str, Any] | None,
    stats_carry_ids: bool,
) -> None:
    """A new connection opens before another server ends the old one."""
    events = _event_types(hass, ROOFTOP_EVENT)
    new_connection = NEW_CONNECTION if stats_carry_ids else None
    stream.send(
        _connect(connect_data)
        + _old_end(ids=stats_carry_ids)
        # The new connection's stats come only after the old one's end.
        + _new_stats(new_connection)
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_OFF
    assert hass.states.get(ROOFTOP_SINCE).state == "2025-03-14T10:20:00+00:00"
    assert hass.states.get(ROOFTOP_UPLINKS).state == "3"
    assert events == []
    # Later stats of the new connection are taken.
    stream.send(_new_stats(new_connection, uplinks="7"))
    await _flush(hass)
    assert hass.states.get(ROOFTOP_UPLINKS).state == "7"
    # The new connection's own disconnect still counts.
    stream.send(
        event_line(
            "gs.gateway.disconnect",
            "2025-03-14T10:22:00Z",
            connection=NEW_CONNECTION,
        )
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF
    assert events == ["disconnected", "silent"]


# Every order the events of a reconnect reach the stream in, and the Status
# events a user sees on the way.
RECONNECT_ORDERS = {
    # One Gateway Server ends the old connection before it announces the new
    # one (gatewayserver.go, Connect waits for the old connection's tasks).
    "one server": (
        lambda: event_line(
            "gs.gateway.disconnect",
            "2025-03-14T10:20:00.3Z",
            SUPERSEDED,
            connection=OLD_CONNECTION,
        )
        + _connect()
        + _new_stats(),
        ["disconnected", "silent", "connected", "recovered"],
    ),
    # Another server ends the old one later, before or after the new stats.
    "cluster, stats first": (lambda: _connect() + _new_stats() + _old_end(), []),
    "cluster, end first": (lambda: _connect() + _old_end() + _new_stats(), []),
    # The later end reaches the stream before the earlier connect.
    "cluster, end delivered first": (
        lambda: _old_end() + _connect() + _new_stats(),
        ["disconnected", "silent", "connected", "recovered"],
    ),
}


@pytest.mark.parametrize(
    ("lines", "expected_events"), RECONNECT_ORDERS.values(), ids=RECONNECT_ORDERS
)
async def test_every_reconnect_order_ends_on_the_new_connection(
    hass: HomeAssistant,
    stream: LiveStream,
    lines: Any,
    expected_events: list[str],
) -> None:
    """Whatever the order, the gateway ends connected with the new stats."""
    events = _event_types(hass, ROOFTOP_EVENT)
    stream.send(lines())
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_OFF
    assert hass.states.get(ROOFTOP_SINCE).state == "2025-03-14T10:20:00+00:00"
    assert hass.states.get(ROOFTOP_UPLINKS).state == "3"
    assert events == expected_events


async def test_traffic_of_another_connection_proves_it_alive(
    hass: HomeAssistant, stream: LiveStream
) -> None:
    """After one connection's end, another one's status means connected."""
    stream.send(_old_end())
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF
    # The ended connection's late status changes nothing.
    stream.send(
        event_line(
            "gs.status.receive",
            "2025-03-14T10:20:05Z",
            {"metrics": {"temp": 40.0}},
            connection=OLD_CONNECTION,
        )
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF
    stream.send(
        event_line(
            "gs.status.receive",
            "2025-03-14T10:20:06Z",
            {"metrics": {"temp": 40.0}},
            connection=NEW_CONNECTION,
        )
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    # Its start comes with its stats.
    stream.send(_new_stats())
    await _flush(hass)
    assert hass.states.get(ROOFTOP_SINCE).state == "2025-03-14T10:20:00+00:00"
    assert hass.states.get(ROOFTOP_UPLINKS).state == "3"


async def test_lagging_poll_of_an_older_connection(
    hass: HomeAssistant, stream: LiveStream, freezer: FrozenDateTimeFactory
) -> None:
    """A poll from a registry still on the old connection moves nothing back."""
    stream.send(_connect() + _new_stats(uplinks="2"))
    await _flush(hass)
    assert hass.states.get(ROOFTOP_UPLINKS).state == "2"
    # TTS still answers the old connection (since 2025-03-13, 18342 uplinks).
    await _advance(hass, freezer, 61)
    assert hass.states.get(ROOFTOP_SINCE).state == "2025-03-14T10:20:00+00:00"
    assert hass.states.get(ROOFTOP_UPLINKS).state == "2"
    stream.send(_new_stats(uplinks="4"))
    await _flush(hass)
    assert hass.states.get(ROOFTOP_UPLINKS).state == "4"


@pytest.mark.parametrize(
    ("ended_at", "lines"),
    [
        # The end of the old connection, from before the reconnect.
        ("2025-03-14T10:19:30Z", lambda: _old_end("2025-03-14T10:19:30Z") + _connect()),
        # The old connection's server writes its end late (updateConnStats).
        ("2025-03-14T10:20:04Z", lambda: _connect() + _new_stats() + _old_end()),
    ],
    ids=["before the reconnect", "superseded connection's end"],
)
async def test_lagging_disconnected_poll_after_a_reconnect(
    hass: HomeAssistant,
    stream: LiveStream,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    ended_at: str,
    lines: Any,
) -> None:
    """A poll showing an end that predates the new connection keeps it on."""
    stream.send(lines())
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    events = _event_types(hass, ROOFTOP_EVENT)
    _rooftop_stats(fake_tts, connected_at=None, disconnected_at=ended_at)
    await _advance(hass, freezer, 61)
    await _advance(hass, freezer, 300)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert events == []
    # A poll showing an end after the new connection started is the truth.
    _rooftop_stats(fake_tts, connected_at=None, disconnected_at="2025-03-14T10:26:00Z")
    await _advance(hass, freezer, 300)
    assert hass.states.get(ROOFTOP).state == STATE_OFF


# --- rule 1: a poll in flight versus a poll that starts after the event -------


def _push_during_stats_request(
    hass: HomeAssistant, fake_tts: FakeTTS, entry: MockConfigEntry, line: str
) -> None:
    """Apply a pushed event after TTS answered the poll's stats request."""
    handle = fake_tts.simulator.handle
    store: GatewayStore = entry.runtime_data.store

    def answer_then_push(request: Any) -> Any:
        response = handle(request)
        if request.path.endswith("/connection/stats"):
            fake_tts.simulator.handle = handle  # type: ignore[method-assign]
            event = StreamEvent.from_json(json.loads(line)["result"])
            assert event is not None
            store.async_apply_event(event)
        return response

    fake_tts.simulator.handle = answer_then_push  # type: ignore[method-assign]


async def test_poll_in_flight_does_not_undo_a_pushed_disconnect(
    hass: HomeAssistant,
    stream: LiveStream,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A poll answered before the disconnect keeps it; a later poll is the truth."""
    _push_during_stats_request(
        hass,
        fake_tts,
        init_integration,
        event_line("gs.gateway.disconnect", "2025-03-14T10:20:59Z"),
    )
    await _advance(hass, freezer, 61)
    assert hass.states.get(ROOFTOP).state == STATE_OFF

    # The next poll starts after the event: what TTS says then is the truth
    # (here: the gateway is connected, on the same connection as before).
    await _advance(hass, freezer, 300)
    assert hass.states.get(ROOFTOP).state == STATE_ON


async def test_poll_after_a_disconnect_is_the_truth(
    hass: HomeAssistant,
    stream: LiveStream,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A disconnect a poll does not confirm does not pin the gateway off."""
    events = _event_types(hass, ROOFTOP_EVENT)
    stream.send(event_line("gs.gateway.disconnect", "2025-03-14T10:20:01Z"))
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF
    # Polls run every 5 minutes while the stream is healthy.
    await _advance(hass, freezer, 61)
    await _advance(hass, freezer, 300)
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert events == ["disconnected", "silent", "connected", "recovered"]


# --- 3. polls that lag events never move values back --------------------------


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_lagging_poll_keeps_counters_and_times(
    hass: HomeAssistant,
    stream: LiveStream,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Same connection: the larger counter and the newer time win."""
    stream.send(
        event_line(
            "gs.gateway.connection.stats",
            "2025-03-14T10:20:30Z",
            {
                "connected_at": OLD_CONNECTED_AT,
                "uplink_count": "18400",
                "downlink_count": "60",
                "last_uplink_received_at": "2025-03-14T10:20:29Z",
            },
        )
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP_UPLINKS).state == "18400"
    # TTS answers the poll from a registry that lags the events.
    await _advance(hass, freezer, 61)
    assert hass.states.get(ROOFTOP_UPLINKS).state == "18400"
    assert hass.states.get("sensor.rooftop_gateway_downlinks").state == "60"
    assert hass.states.get(ROOFTOP_LAST_UPLINK).state == "2025-03-14T10:20:29+00:00"
    # Once TTS catches up, the poll's larger values are taken.
    _rooftop_stats(fake_tts, uplink_count="18410")
    await _advance(hass, freezer, 200)
    stream.send(event_line("gs.up.receive", "2025-03-14T10:24:20Z"))
    await _flush(hass)
    await _advance(hass, freezer, 100)
    assert hass.states.get(ROOFTOP_UPLINKS).state == "18410"

    # A new connection starts the counters afresh.
    stream.send(
        event_line(
            "gs.gateway.connect", "2025-03-14T10:27:00Z", connection=NEW_CONNECTION
        )
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP_UPLINKS).state == "0"


# --- 2. the events stream cannot die ------------------------------------------


async def test_malformed_lines_do_not_end_the_stream(
    hass: HomeAssistant,
    stream: LiveStream,
    event_feed: EventFeed,
    init_integration: MockConfigEntry,
) -> None:
    """Garbage is skipped and counted; a later disconnect is still seen."""
    huge_counter = event_line(
        "gs.gateway.connection.stats",
        "2025-03-14T10:20:01Z",
        {"connected_at": OLD_CONNECTED_AT, "uplink_count": "9" * 5000},
    )
    nested = '{"result": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    stream.send(huge_counter + nested + "\x00\xff garbage\n" + nested)
    await _flush(hass)
    stream.send(
        event_line(
            "gs.gateway.disconnect", "2025-03-14T10:20:02Z", gateway_id=GATEWAY_GARDEN
        )
        + event_line("gs.gateway.disconnect", "2025-03-14T10:20:03Z")
    )
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF
    # The huge counter was refused, not taken: the last good value stays.
    assert hass.states.get(ROOFTOP_UPLINKS).state == "18342"
    assert len(event_feed.requests) == 1
    streams = init_integration.runtime_data.streams.diagnostics()
    assert streams[0]["skipped_messages"] == 3


async def test_a_bug_while_applying_reopens_the_stream(
    hass: HomeAssistant,
    stream: LiveStream,
    event_feed: EventFeed,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected error is logged once, polling tightens, the stream reopens."""
    coordinator = init_integration.runtime_data.coordinator
    assert coordinator.update_interval == timedelta(minutes=5)
    store = init_integration.runtime_data.store
    with patch.object(store, "async_apply_event", side_effect=RuntimeError("bug")):
        stream.send(event_line("gs.gateway.disconnect", "2025-03-14T10:20:01Z"))
        await _flush(hass)
    assert caplog.text.count("Unexpected error in the events stream") == 1
    assert coordinator.update_interval == timedelta(seconds=60)
    assert not store.push_healthy

    await _advance(hass, freezer, 2)
    assert len(event_feed.requests) == 2
    event_feed.current.send(start_line("2025-03-14T10:20:03Z"))
    await _flush(hass)
    assert store.push_healthy
    event_feed.current.send(event_line("gs.gateway.disconnect", "2025-03-14T10:20:04Z"))
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF


def test_backoff_never_overflows() -> None:
    """Days of outage keep the delay at its cap instead of raising."""
    for attempt in (0, 10, 1_024, 10**6):
        assert 0 < backoff_delay(attempt) <= 300


# --- 4. an event touches only its own gateway --------------------------------


async def test_an_event_writes_only_its_gateway(
    hass: HomeAssistant, stream: LiveStream
) -> None:
    """Other gateways' entities do no work for an event that is not theirs."""
    written: list[str] = []

    @callback
    def record(event: Event) -> None:
        written.append(event.data["entity_id"])

    hass.bus.async_listen("state_changed", record)
    with patch(
        "custom_components.ttn_gateway.entity.GatewayEntity._signature",
        autospec=True,
        side_effect=lambda entity: (entity.gateway_id, entity.entity_id),
    ) as signature:
        stream.send(
            event_line(
                "gs.status.receive",
                "2025-03-14T10:20:01Z",
                {"time": "2025-03-14T10:20:01Z", "metrics": {"rxin": 1}},
            )
        )
        await _flush(hass)
    gateways = {call.args[0].gateway_id for call in signature.call_args_list}
    assert gateways == {GATEWAY_ROOFTOP}


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_busy_gateway_timestamps_written_once_a_minute(
    hass: HomeAssistant,
    stream: LiveStream,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Every uplink moves Last uplink, but it is written at most once a minute."""
    changes: list[str] = []

    @callback
    def record(event: Event) -> None:
        if event.data["entity_id"] == ROOFTOP_LAST_UPLINK:
            changes.append(event.data["new_state"].state)

    hass.bus.async_listen("state_changed", record)
    for second in range(1, 50, 10):
        stream.send(event_line("gs.up.receive", f"2025-03-14T10:20:{second:02}Z"))
        await _flush(hass)
        await _advance(hass, freezer, 10)
    assert changes == ["2025-03-14T10:20:01+00:00"]
    await _advance(hass, freezer, 15)
    assert changes == ["2025-03-14T10:20:01+00:00", "2025-03-14T10:20:41+00:00"]
    # Silence still counts from the exact last uplink.
    store = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.store
    stats = store.get(GATEWAY_ROOFTOP).connection.stats
    assert stats.last_uplink_received_at.isoformat() == "2025-03-14T10:20:41+00:00"
    # A change of connection state is written at once.
    stream.send(event_line("gs.gateway.disconnect", "2025-03-14T10:21:10Z"))
    await _flush(hass)
    assert hass.states.get("sensor.rooftop_gateway_last_seen").state == (
        "2025-03-14T10:21:10+00:00"
    )


# --- 5. a failed poll while the stream delivers --------------------------------


async def test_failed_poll_with_healthy_stream_keeps_gateways(
    hass: HomeAssistant,
    stream: LiveStream,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Push still delivers: entities stay available; the next poll is soon."""
    coordinator = init_integration.runtime_data.coordinator
    await _advance(hass, freezer, 61)  # the poll scheduled before the stream
    polls = fake_tts.count("gateways")
    fake_tts.fail("gateways", 500)
    await _advance(hass, freezer, 200)
    # An event keeps the stream from being reopened as idle.
    stream.send(event_line("gs.up.receive", "2025-03-14T10:24:21Z"))
    await _flush(hass)
    await _advance(hass, freezer, 101)
    assert fake_tts.count("gateways") == polls + 1
    assert not coordinator.last_update_success
    assert hass.states.get(ROOFTOP).state == STATE_ON
    assert hass.states.get(ROOFTOP_UPLINKS).state == "18342"
    # Events are still applied.
    stream.send(event_line("gs.gateway.disconnect", "2025-03-14T10:26:10Z"))
    await _flush(hass)
    assert hass.states.get(ROOFTOP).state == STATE_OFF
    # The next poll comes at the normal interval, not the relaxed one.
    assert coordinator.update_interval == timedelta(seconds=60)
    await _advance(hass, freezer, 61)
    assert fake_tts.count("gateways") == polls + 2
    assert coordinator.last_update_success
    assert coordinator.update_interval == timedelta(minutes=5)


async def test_failed_poll_without_stream_makes_gateways_unavailable(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """With no source delivering, the state is stale: unavailable."""
    fake_tts.fail("gateways", 500)
    await _advance(hass, freezer, 61)
    assert hass.states.get(ROOFTOP).state == STATE_UNAVAILABLE
    await _advance(hass, freezer, 61)
    assert hass.states.get(ROOFTOP).state == STATE_ON


# --- 6. a gateway TTS refuses to stream -----------------------------------------


async def test_refused_gateway_is_split_off_with_a_repair_issue(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    event_feed: EventFeed,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """403 for one gateway of a group: the others stream, that one is named."""
    requests: list[list[str]] = []
    answer = event_feed.__call__

    async def refuse_garden(data: Any) -> Any:
        ids = [item["gateway_ids"]["gateway_id"] for item in data["identifiers"]]
        requests.append(ids)
        if GATEWAY_GARDEN in ids:
            event_feed.fail(403)
        response = await answer(data)
        if GATEWAY_GARDEN not in ids:
            response.send(start_line())
        return response

    fake_tts.events = refuse_garden
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await _flush(hass)
    await _flush(hass)
    assert requests[0] == sorted(
        [GATEWAY_ROOFTOP, GATEWAY_GARDEN, GATEWAY_NEVER, "basic-station-gw"]
    )
    # Split until the refused gateway stands alone.
    assert [GATEWAY_GARDEN] in requests
    streams = mock_config_entry.runtime_data.streams
    assert streams.refused == {GATEWAY_GARDEN}
    assert mock_config_entry.runtime_data.store.push_healthy
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"no_event_rights_{mock_config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders["gateways"] == GATEWAY_GARDEN
    count = len(requests)
    await _advance(hass, freezer, 600)
    # No retry loop.
    assert len(requests) == count


# --- 8. smaller ------------------------------------------------------------------


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_disconnect_of_never_connected_gateway_keeps_counters_unknown(
    hass: HomeAssistant, stream: LiveStream
) -> None:
    """TTS has no counters for it: they are unknown, not 0."""
    stream.send(
        event_line(
            "gs.gateway.disconnect", "2025-03-14T10:20:01Z", gateway_id=GATEWAY_NEVER
        )
    )
    await _flush(hass)
    assert hass.states.get("binary_sensor.never_connected_connectivity").state == (
        STATE_OFF
    )
    assert hass.states.get("sensor.never_connected_uplinks").state == STATE_UNKNOWN
    assert hass.states.get("sensor.never_connected_last_seen").state == (
        "2025-03-14T10:20:01+00:00"
    )


async def test_stream_health_is_logged_once(
    hass: HomeAssistant,
    stream: LiveStream,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flapping stream says it was lost once, not at every attempt."""
    caplog.set_level(logging.INFO)
    stream.close()
    await _flush(hass)
    for _ in range(5):
        await _advance(hass, freezer, 301)
    assert caplog.text.count("Events stream from eu1.cloud.thethings.network") == 1


async def test_gateway_without_traffic_right_streams_without_uplinks(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    event_feed: EventFeed,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Refused only with uplink events: that gateway streams the rest alone."""
    fake_tts.auth_info["api_key"]["api_key"]["rights"].append(
        "RIGHT_GATEWAY_TRAFFIC_READ"
    )
    requests: list[tuple[list[str], bool]] = []
    answer = event_feed.__call__

    async def refuse_garden_uplinks(data: Any) -> Any:
        ids = [item["gateway_ids"]["gateway_id"] for item in data["identifiers"]]
        uplinks = "gs.up.receive" in data["names"]
        requests.append((ids, uplinks))
        refused = GATEWAY_GARDEN in ids and uplinks
        if refused:
            event_feed.fail(403)
        response = await answer(data)
        if not refused:
            response.send(start_line())
        return response

    fake_tts.events = refuse_garden_uplinks
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    for _ in range(3):
        await _flush(hass)
    assert ([GATEWAY_GARDEN], False) in requests
    streams = mock_config_entry.runtime_data.streams
    assert streams.refused == set()
    assert streams.without_uplinks == {GATEWAY_GARDEN}
    assert mock_config_entry.runtime_data.store.push_healthy
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"no_event_rights_{mock_config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders == {
        "gateways": GATEWAY_GARDEN,
        "right": "RIGHT_GATEWAY_TRAFFIC_READ",
        "title": mock_config_entry.title,
    }
    # Its disconnects still arrive by push.
    # Each request that was not refused opened one of the feed's streams.
    opened = [
        ids for ids, uplinks in requests if not (GATEWAY_GARDEN in ids and uplinks)
    ]
    garden_stream = event_feed.streams[opened.index([GATEWAY_GARDEN])]
    garden_stream.send(
        event_line(
            "gs.gateway.connect",
            "2025-03-14T10:20:01Z",
            {"connected_at": "2025-03-14T10:20:01Z"},
            gateway_id=GATEWAY_GARDEN,
        )
    )
    await _flush(hass)
    assert hass.states.get(GARDEN).state == STATE_ON


# --- the connection rules, event by event -------------------------------------

T0 = "2025-03-14T10:00:00Z"


def _stats(**fields: str) -> GatewayConnection:
    return GatewayConnection.from_stats(GatewayConnectionStats.from_json(fields))


class _Gateway:
    """One gateway in a store: feed it events and polls, read what a user sees."""

    def __init__(self, connection: GatewayConnection) -> None:
        self.store = GatewayStore()
        self.store.async_apply_poll(0, {"gw": self._data(connection)})

    @staticmethod
    def _data(connection: GatewayConnection) -> GatewayData:
        return GatewayData(Gateway("gw"), connection)

    def event(
        self,
        name: str,
        time: str | None,
        data: dict[str, Any] | None = None,
        connection: str | None = None,
    ) -> bool:
        line = event_line(
            name, time or "", data, gateway_id="gw", connection=connection
        )
        event = StreamEvent.from_json(json.loads(line)["result"])
        assert event is not None
        return bool(self.store.async_apply_event(event))

    def poll(self, connection: GatewayConnection, *, in_flight: bool = False) -> None:
        started = self.store.begin_poll() - (1 if in_flight else 0)
        self.store.async_apply_poll(started, {"gw": self._data(connection)})

    @property
    def seen(self) -> tuple[str, str | None, int | None]:
        """Connectivity, Connected since (seconds) and Uplinks."""
        data = self.store.get("gw")
        assert data is not None
        stats = data.connection.stats
        since = stats.connected_at if stats else None
        return (
            data.connection.state.value,
            since.isoformat(timespec="seconds") if since else None,
            stats.uplink_count if stats else None,
        )


CONNECTED_T0 = ("connected", "2025-03-14T10:00:00+00:00")


def test_rules_ids_decide_over_times() -> None:
    """Ids tell a repeated connect, an ended connection and old traffic apart."""
    gw = _Gateway(_stats(connected_at=T0, uplink_count="50"))
    # The poll's connection's own connect, seen late: its id is learned.
    assert not gw.event(
        "gs.gateway.connect", "2025-03-14T10:00:00.2Z", None, OLD_CONNECTION
    )
    # Its stats, then a copy of the connect: nothing new.
    assert gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:01:00Z",
        {"connected_at": T0, "uplink_count": "60"},
        OLD_CONNECTION,
    )
    assert not gw.event(
        "gs.gateway.connect", "2025-03-14T10:01:01Z", None, OLD_CONNECTION
    )
    assert gw.seen == (*CONNECTED_T0, 60)
    # A connect older than the current connection changes nothing.
    assert not gw.event(
        "gs.gateway.connect", "2025-03-14T09:00:00Z", None, NEW_CONNECTION
    )
    # No time: nothing to place.
    assert not gw.event("gs.gateway.connect", None, None, NEW_CONNECTION)
    # The new connection opens; the old one's uplink and stats change nothing.
    assert gw.event("gs.gateway.connect", "2025-03-14T10:05:00Z", None, NEW_CONNECTION)
    assert not gw.event("gs.up.receive", "2025-03-14T10:05:01Z", None, OLD_CONNECTION)
    assert not gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:05:02Z",
        {"connected_at": T0, "uplink_count": "61"},
        OLD_CONNECTION,
    )
    # The new one's stats from just before its connect event are its own.
    assert gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:05:03Z",
        {"connected_at": "2025-03-14T10:04:59.9Z", "uplink_count": "1"},
    )
    assert gw.seen == ("connected", "2025-03-14T10:04:59+00:00", 1)
    # The same stats again change nothing; the old connection's end neither.
    assert not gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:05:03Z",
        {"connected_at": "2025-03-14T10:04:59.9Z", "uplink_count": "1"},
        NEW_CONNECTION,
    )
    assert not gw.event(
        "gs.gateway.disconnect", "2025-03-14T10:05:04Z", None, OLD_CONNECTION
    )
    # The new connection ends; its late stats and connect change nothing.
    assert gw.event(
        "gs.gateway.disconnect", "2025-03-14T10:06:00Z", None, NEW_CONNECTION
    )
    assert not gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:06:01Z",
        {"connected_at": "2025-03-14T10:04:59.9Z", "uplink_count": "2"},
        NEW_CONNECTION,
    )
    assert not gw.event(
        "gs.gateway.connect", "2025-03-14T10:06:02Z", None, NEW_CONNECTION
    )
    assert gw.seen == ("disconnected", None, 1)


def test_rules_a_connect_with_stats_makes_a_data_less_one_exact() -> None:
    """Both connect shapes of one connection: the start becomes exact."""
    gw = _Gateway(_stats(connected_at=T0))
    assert gw.event("gs.gateway.connect", "2025-03-14T10:05:00Z", None, NEW_CONNECTION)
    assert gw.event(
        "gs.gateway.connect",
        "2025-03-14T10:05:00Z",
        {"connected_at": "2025-03-14T10:04:58Z", "protocol": "udp"},
        NEW_CONNECTION,
    )
    assert gw.seen == ("connected", "2025-03-14T10:04:58+00:00", 0)
    # Stats of a connection that started well before the connect: older.
    assert not gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:05:01Z",
        {"connected_at": "2025-03-14T10:00:30Z", "uplink_count": "9"},
    )


def test_rules_an_older_connection_by_time_alone() -> None:
    """Without ids, a connection that started before the connect is older."""
    gw = _Gateway(_stats(connected_at=T0))
    assert gw.event("gs.gateway.connect", "2025-03-14T10:05:00Z")
    assert not gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:05:01Z",
        {"connected_at": "2025-03-14T10:03:00Z", "uplink_count": "9"},
    )
    assert gw.seen == ("connected", "2025-03-14T10:05:00+00:00", 0)
    # A poll of the old connection moves nothing back.
    gw.poll(_stats(connected_at=T0, uplink_count="70"))
    assert gw.seen == ("connected", "2025-03-14T10:05:00+00:00", 0)
    # A poll of the new connection makes the start exact and brings counters.
    gw.poll(_stats(connected_at="2025-03-14T10:04:59.5Z", uplink_count="3"))
    assert gw.seen == ("connected", "2025-03-14T10:04:59+00:00", 3)
    # A poll of a newer connection is taken.
    gw.poll(_stats(connected_at="2025-03-14T10:30:00Z", uplink_count="1"))
    assert gw.seen == ("connected", "2025-03-14T10:30:00+00:00", 1)


def test_rules_polls_after_an_end() -> None:
    """After a pushed end: older ends, the same end and stale connections."""
    gw = _Gateway(_stats(connected_at=T0, uplink_count="5"))
    assert gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:01:00Z",
        {"connected_at": T0, "uplink_count": "6"},
        OLD_CONNECTION,
    )
    assert gw.event(
        "gs.gateway.disconnect", "2025-03-14T10:10:00Z", None, OLD_CONNECTION
    )
    # Status and stats of the ended connection change nothing.
    assert not gw.event(
        "gs.status.receive", "2025-03-14T10:10:01Z", {"metrics": {}}, OLD_CONNECTION
    )
    # A poll still showing the ended connection is stale.
    gw.poll(_stats(connected_at=T0, uplink_count="6"))
    assert gw.seen == ("disconnected", None, 6)
    # A poll with an older end changes nothing; the same end is taken.
    gw.poll(_stats(disconnected_at="2025-03-14T09:00:00Z", uplink_count="1"))
    assert gw.seen == ("disconnected", None, 6)
    gw.poll(_stats(disconnected_at="2025-03-14T10:10:00Z", uplink_count="7"))
    assert gw.seen == ("disconnected", None, 7)
    # A connection that started before that end but after the ended one: alive.
    gw.poll(_stats(connected_at="2025-03-14T10:09:00Z", uplink_count="2"))
    assert gw.seen == ("connected", "2025-03-14T10:09:00+00:00", 2)
    # A later end is taken; then a poll without times, in flight, is not.
    gw.poll(_stats(disconnected_at="2025-03-14T10:20:00Z"))
    assert gw.seen == ("disconnected", None, 0)
    assert gw.event("gs.gateway.connect", "2025-03-14T10:21:00Z", None, NEW_CONNECTION)
    gw.poll(GatewayConnection(ConnectionState.NOT_CONNECTED), in_flight=True)
    assert gw.seen == ("connected", "2025-03-14T10:21:00+00:00", 0)
    gw.poll(GatewayConnection(ConnectionState.NOT_CONNECTED))
    assert gw.seen == ("not_connected", None, None)


def test_rules_no_rights_and_unknown_starts() -> None:
    """A gateway the key may not read ignores events; traffic alone revives."""
    gw = _Gateway(GatewayConnection(ConnectionState.NO_RIGHTS))
    assert not gw.event("gs.gateway.connect", T0, None, NEW_CONNECTION)
    gw.poll(_stats(connected_at=T0))
    assert gw.event(
        "gs.gateway.disconnect", "2025-03-14T10:10:00Z", None, OLD_CONNECTION
    )
    # Another connection's uplink: alive since an unknown moment.
    assert gw.event("gs.up.receive", "2025-03-14T10:10:05Z", None, NEW_CONNECTION)
    assert gw.seen == ("connected", None, None)
    assert not gw.event("gs.up.receive", "2025-03-14T10:10:05Z", None, NEW_CONNECTION)
    # A poll showing an end before that uplink is old; its stats bring the start.
    gw.poll(_stats(disconnected_at="2025-03-14T10:10:00Z"))
    assert gw.seen == ("connected", None, None)
    assert gw.event(
        "gs.gateway.connection.stats",
        "2025-03-14T10:10:06Z",
        {"connected_at": "2025-03-14T10:09:30Z", "uplink_count": "4"},
        NEW_CONNECTION,
    )
    assert gw.seen == ("connected", "2025-03-14T10:09:30+00:00", 4)
