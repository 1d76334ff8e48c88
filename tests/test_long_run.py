"""Simulated hours of 250 live gateways over the events stream, some flapping.

Every gateway's uplinks arrive as events, polls run as while streaming (every
5 minutes, some gateways' stats lagging the events), flapping gateways
disconnect, reconnect, or open a new connection while the old one ends, in
every order the simulator knows (`ReconnectOrder`), the stream drops now and
then, and end devices send over MQTT. Connect events come without data (as
TTS's observability.go publishes them) or, every other step, with the first
stats; stats events lose their gs:conn id for half an hour. The simulator's
clock is moved by hand, so hours take seconds.

Checked: after each reconnect the gateway is connected and its counters equal
the simulator's; a late disconnect never turns a connected gateway off;
counters never go back within a connection; memory stays flat (tracemalloc
growth between minute 20 and the end), and no task or timer piles up.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
import gc
import logging
import tracemalloc

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)
from pytest_homeassistant_custom_component.typing import (
    MqttMockHAClient,
    MqttMockPahoClient,
)

from custom_components.ttn_gateway.const import DOMAIN
from tts_simulator import ReconnectOrder, SimGateway, make_fleet
from tts_simulator.fleet import PROTOCOL_BASIC_STATION

from .event_feed import SimulatorFeed
from .fake_tts import FakeTTS
from .fault_cases import assert_handled
from .test_end_devices import encode
from .uplinks import topic, uplink

GATEWAYS = 250
STEP_SECONDS = 60
STEPS_PER_HOUR = 3600 // STEP_SECONDS
HOURS = 1
# Memory, tasks and timers are compared between this step and the end.
BASELINE_STEP = 20
# Seconds between the uplinks a gateway hears: busy, yet few enough events
# for tracemalloc to trace them in about a minute.
UPLINK_INTERVAL = 120.0
# Polls while the stream is healthy: every 5 minutes.
POLL_EVERY = 5
# The stream is dropped (and resumed with `after`) this often.
DROP_EVERY = 47
# Every LAG_EVERY-th gateway's stats lag its events by two minutes.
LAG_EVERY = 7
# Every FLAP_EVERY-th gateway drops off for a while, at its own moments.
FLAP_EVERY = 10
DEVICES = tuple(f"sensor-{n:02}" for n in range(10))
MEMORY_GROWTH_LIMIT = 2 * 1024 * 1024
# One frame: tracemalloc's cost grows with the frames it records.
TRACED_FRAMES = 1
HARNESS = (
    tracemalloc.Filter(False, "*/simulator/tts_simulator/*"),
    tracemalloc.Filter(False, "*/tests/*"),
    tracemalloc.Filter(False, "*/_pytest/*"),
    tracemalloc.Filter(False, "*/pytest_homeassistant_custom_component/*"),
    tracemalloc.Filter(False, "*/unittest/mock.py"),
    tracemalloc.Filter(False, logging.__file__),
    tracemalloc.Filter(False, tracemalloc.__file__),
)


def _timers(hass: HomeAssistant) -> int:
    """Timers scheduled on the loop (cancelled ones leave the heap lazily)."""
    scheduled = hass.loop._scheduled  # type: ignore[attr-defined]
    return sum(1 for handle in scheduled if not handle.cancelled())


ORDERS = tuple(ReconnectOrder)


def _flap(index: int, step: int) -> str | None:
    """What a flapping gateway does: disconnect, connect, reconnect or nothing."""
    phase = (step + 7 * index) % 37
    if phase == 0:
        return "disconnect"
    if phase == 5 + index % 11:
        return "connect"
    if phase == 20:
        return "reconnect"
    return None


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_hours_of_push_and_polls(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
    aioclient_mock: AiohttpClientMocker,
    mqtt_mock: MqttMockHAClient,
    mqtt_client_mock: MqttMockPahoClient,
) -> None:
    """State follows TTS through every ordering; memory and timers stay flat."""
    # The harness runs the loop in debug mode, which records a traceback for
    # every callback: that would be most of what this test measures.
    hass.loop.set_debug(False)
    simulator, clock = fake_tts.simulator, fake_tts.clock
    simulator.gateways, simulator.stats = [], {}
    simulator.auth_info["api_key"]["api_key"]["rights"].append(
        "RIGHT_GATEWAY_TRAFFIC_READ"
    )
    feed = SimulatorFeed(simulator)
    fake_tts.events = feed
    fleet = make_fleet(GATEWAYS, clock.now)
    for index, gateway in enumerate(fleet):
        gateway.uplink_interval = UPLINK_INTERVAL
        if index % 3:
            # Basic Station gateways send no status every 30 s.
            gateway.protocol = PROTOCOL_BASIC_STATION
        simulator.add_gateway(gateway)
    for gateway in fleet[::LAG_EVERY]:
        simulator.set_stats_lag(gateway.gateway_id, 120)
    flapping = [
        gateway
        for index, gateway in enumerate(fleet)
        if index % FLAP_EVERY == 3 and gateway.connected
    ]
    assert len(flapping) >= 20

    # Debug logging off: pytest keeps every log line for its report, which
    # would be counted as growth.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="custom_components.ttn_gateway")
    # Traced from before setup, so that what setup allocates and later
    # updates replace is in the baseline.
    tracemalloc.start(TRACED_FRAMES)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    runtime = mock_config_entry.runtime_data
    await _settle(hass, feed)
    assert runtime.store.push_healthy

    def entity_id(platform: str, gateway: SimGateway, key: str) -> str:
        unique_id = f"{mock_config_entry.unique_id}/gateway/{gateway.gateway_id}/{key}"
        found = entity_registry.async_get_entity_id(platform, DOMAIN, unique_id)
        assert found is not None
        return found

    uplinks = {
        gateway.gateway_id: entity_id("sensor", gateway, "uplink_count")
        for gateway in fleet
    }
    connectivity = {
        gateway.gateway_id: entity_id("binary_sensor", gateway, "connectivity")
        for gateway in flapping
    }
    since = {
        gateway.gateway_id: entity_id("sensor", gateway, "connected_since")
        for gateway in fleet
    }
    last_counts: dict[str, tuple[str, int]] = {}

    def assert_counters_never_go_back() -> None:
        for gateway_id, entity in uplinks.items():
            state = hass.states.get(entity).state
            if not state.isdecimal():
                continue
            connection = hass.states.get(since[gateway_id]).state
            before = last_counts.get(gateway_id)
            if before is not None and before[0] == connection:
                assert int(state) >= before[1], gateway_id
            last_counts[gateway_id] = (connection, int(state))

    reconnects = late_disconnects = polls = 0
    at_baseline: tracemalloc.Snapshot | None = None
    tasks_at_baseline = timers_at_baseline = 0
    for step in range(1, HOURS * STEPS_PER_HOUR + 1):
        reconnected: list[SimGateway] = []
        superseded: list[SimGateway] = []
        # Both connect shapes; stats without their gs:conn id for half an hour.
        simulator.connect_event_data = step % 2 == 0
        simulator.stats_carry_ids = step <= STEPS_PER_HOUR // 2
        for index, gateway in enumerate(flapping):
            action = _flap(index, step)
            if action == "disconnect":
                simulator.disconnect(gateway.gateway_id)
            elif action == "connect" and not gateway.connected:
                simulator.connect(gateway.gateway_id)
                reconnected.append(gateway)
            elif action == "reconnect" and gateway.connected:
                order = ORDERS[(step + index) % len(ORDERS)]
                simulator.reconnect(gateway.gateway_id, late_disconnect=5, order=order)
                if order is not ReconnectOrder.CLUSTER_CONNECT_AFTER_END:
                    # Else nothing of the new connection has arrived yet.
                    reconnected.append(gateway)
                if order is not ReconnectOrder.ONE_SERVER:
                    superseded.append(gateway)
        await _settle(hass, feed)
        for gateway in reconnected:
            stats = gateway.connection_stats(clock.now)
            assert isinstance(stats, dict)
            assert hass.states.get(connectivity[gateway.gateway_id]).state == STATE_ON
            state = hass.states.get(uplinks[gateway.gateway_id]).state
            assert state == stats.get("uplink_count", "0")
            reconnects += 1

        # A steady MQTT flow: every end device sends one uplink per step.
        for device in DEVICES:
            async_fire_mqtt_message(
                hass,
                topic(device_id=device),
                encode(
                    uplink(device_id=device, f_cnt=step, payload=bytes([step % 256]))
                ),
            )
        clock.advance(STEP_SECONDS)
        simulator.advance()  # uplink, status and stats events; late disconnects
        if step % DROP_EVERY == 0:
            feed.drop()
        await _settle(hass, feed)
        # Reopens after a drop (the backoff is 1 to 2 s) and due timers.
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=3))
        await _settle(hass, feed)
        if step % POLL_EVERY == 0:
            await runtime.coordinator.async_refresh()
            polls += 1
            await hass.async_block_till_done()
        for gateway in superseded:
            # The old connection's end arrived; the gateway is (still) on, on
            # the new connection.
            assert gateway.connected
            assert hass.states.get(connectivity[gateway.gateway_id]).state == STATE_ON
            assert hass.states.get(since[gateway.gateway_id]).state == (
                dt_util.utc_from_timestamp(gateway.session_start)
                .replace(microsecond=0)
                .isoformat()
            )
            late_disconnects += 1
        assert_counters_never_go_back()
        assert runtime.store.push_healthy

        if step % STEPS_PER_HOUR == 0:
            # The log and the request records are checked and emptied every
            # hour, so that what the test harness keeps is not counted as growth.
            assert_handled(caplog)
            assert "Error" not in caplog.text
            caplog.clear()
            aioclient_mock.mock_calls.clear()
            fake_tts.requests.clear()
            mqtt_client_mock.reset_mock()
            mqtt_mock.reset_mock()
        if step == BASELINE_STEP:
            await _flush_pending_writes(hass)
            gc.collect()
            at_baseline = tracemalloc.take_snapshot()
            tasks_at_baseline = len(asyncio.all_tasks())
            timers_at_baseline = _timers(hass)

    await _flush_pending_writes(hass)
    gc.collect()
    assert at_baseline is not None
    at_end = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(stat.size_diff for stat in at_end.compare_to(at_baseline, "filename"))
    # What the simulator, the fake and the test harness keep is not HA's.
    ours = at_end.filter_traces(HARNESS).compare_to(
        at_baseline.filter_traces(HARNESS), "filename"
    )
    growth = sum(stat.size_diff for stat in ours)
    streams = runtime.streams.diagnostics()
    events = sum(stream["events"] for stream in streams)
    print(  # noqa: T201
        f"\n{GATEWAYS} gateways, {HOURS} h: {events} events, {polls} polls,"
        f" {reconnects} reconnects ({late_disconnects} with a late disconnect),"
        f" {feed.requests} stream opens: memory growth from minute {BASELINE_STEP} to the end:"
        f" {growth / 1024:.0f} KiB in Home Assistant and the integration"
        f" ({total / 1024:.0f} KiB with the simulator and the test harness)"
    )
    print(  # noqa: T201
        "  streams: "
        + ", ".join(
            f"{item['connects']} connects, last error {item['last_error']!r}"
            for item in streams
        )
    )
    for stat in sorted(ours, key=lambda stat: -stat.size_diff)[:5]:
        print(f"  {stat}")  # noqa: T201
    assert growth < MEMORY_GROWTH_LIMIT
    # No more than at the end of hour 1 (one may have been in flight then).
    assert len(asyncio.all_tasks()) <= tasks_at_baseline
    assert _timers(hass) <= timers_at_baseline
    assert reconnects >= 50
    # Three of the four reconnect orders end the old connection late.
    assert late_disconnects >= 15
    assert events >= GATEWAYS * HOURS * 3600 / UPLINK_INTERVAL
    assert feed.requests >= HOURS * STEPS_PER_HOUR // DROP_EVERY
    # Every uplink arrived: the frame counters show the last one.
    for device in DEVICES:
        counter = hass.states.get(f"sensor.{device.replace('-', '_')}_frame_counter")
        assert counter is not None
        assert counter.state == str(HOURS * STEPS_PER_HOUR)
    # It ends with every flapping gateway in the state TTS has for it.
    for gateway in flapping:
        expected = STATE_ON if gateway.connected else STATE_OFF
        assert hass.states.get(connectivity[gateway.gateway_id]).state == expected


async def _flush_pending_writes(hass: HomeAssistant) -> None:
    """Let the activity timestamps' once-a-minute writes happen."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done()


async def _settle(hass: HomeAssistant, feed: SimulatorFeed) -> None:
    """Write what the simulator published to the streams and let HA apply it."""
    feed.pump()
    for _ in range(3):
        await asyncio.sleep(0)
    await hass.async_block_till_done()
