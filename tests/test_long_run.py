"""A simulated day: 1440 polls of 250 live gateways, some flapping, and MQTT uplinks.

Time is frozen and moved by hand, so the day takes seconds. Checked: memory
stays flat (tracemalloc growth between the end of hour 1 and the end of the
day), no task or timer piles up, and the uplink counters follow TTS through
every reconnect (TTS restarts them at zero).
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
from tts_simulator import SimGateway, make_fleet

from .fake_tts import FakeTTS
from .fault_cases import assert_handled
from .test_end_devices import encode
from .uplinks import topic, uplink

GATEWAYS = 250
POLL_SECONDS = 60
POLLS_PER_HOUR = 3600 // POLL_SECONDS
HOURS = 24
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


def _flap(index: int, poll: int) -> str | None:
    """What a flapping gateway does at a poll: disconnect, connect or nothing."""
    phase = (poll + 7 * index) % 97
    if phase == 0:
        return "disconnect"
    if phase == 5 + index % 11:
        return "connect"
    return None


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_a_day_of_polls(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
    aioclient_mock: AiohttpClientMocker,
    mqtt_mock: MqttMockHAClient,
    mqtt_client_mock: MqttMockPahoClient,
) -> None:
    """Memory and timers stay flat, and counters follow TTS across reconnects."""
    # The harness runs the loop in debug mode, which records a traceback for
    # every callback: that would be most of what this test measures.
    hass.loop.set_debug(False)
    simulator, clock = fake_tts.simulator, fake_tts.clock
    simulator.gateways, simulator.stats = [], {}
    fleet = make_fleet(GATEWAYS, clock.now)
    for gateway in fleet:
        simulator.add_gateway(gateway)
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
    # Traced from before setup, so that what setup allocates and polls later
    # replace is in the baseline at the end of hour 1.
    tracemalloc.start(TRACED_FRAMES)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    def entity_id(gateway: SimGateway, key: str) -> str:
        unique_id = f"{mock_config_entry.entry_id}_{gateway.gateway_id}_{key}"
        found = entity_registry.async_get_entity_id("sensor", DOMAIN, unique_id)
        assert found is not None
        return found

    uplinks = {
        gateway.gateway_id: entity_id(gateway, "uplink_count") for gateway in fleet
    }
    connectivity = {
        gateway.gateway_id: entity_registry.async_get_entity_id(
            "binary_sensor",
            DOMAIN,
            f"{mock_config_entry.entry_id}_{gateway.gateway_id}_connectivity",
        )
        for gateway in flapping
    }

    reconnects = 0
    at_hour_1: tracemalloc.Snapshot | None = None
    tasks_at_hour_1 = timers_at_hour_1 = 0
    for poll in range(1, HOURS * POLLS_PER_HOUR + 1):
        reconnected = []
        for index, gateway in enumerate(flapping):
            action = _flap(index, poll)
            if action == "disconnect":
                simulator.disconnect(gateway.gateway_id)
            elif action == "connect" and not gateway.connected:
                simulator.connect(gateway.gateway_id)
                reconnected.append(gateway)
        # A steady MQTT flow: every end device sends one uplink per poll.
        for device in DEVICES:
            async_fire_mqtt_message(
                hass,
                topic(device_id=device),
                encode(
                    uplink(device_id=device, f_cnt=poll, payload=bytes([poll % 256]))
                ),
            )
        clock.advance(POLL_SECONDS)
        # Fire what is due within the next interval: the next poll.
        async_fire_time_changed(
            hass, dt_util.utcnow() + timedelta(seconds=POLL_SECONDS + 1)
        )
        await hass.async_block_till_done()

        for gateway in reconnected:
            stats = gateway.connection_stats(clock.now)
            assert isinstance(stats, dict)
            assert hass.states.get(connectivity[gateway.gateway_id]).state == STATE_ON
            state = hass.states.get(uplinks[gateway.gateway_id]).state
            assert state == stats.get("uplink_count", "0")
            reconnects += 1

        if poll % POLLS_PER_HOUR == 0:
            # The log and the request records are checked and emptied every
            # hour, so that what the test harness keeps is not counted as growth.
            assert_handled(caplog)
            assert "Error" not in caplog.text
            caplog.clear()
            aioclient_mock.mock_calls.clear()
            fake_tts.requests.clear()
            mqtt_client_mock.reset_mock()
            mqtt_mock.reset_mock()
        if poll == POLLS_PER_HOUR:
            gc.collect()
            at_hour_1 = tracemalloc.take_snapshot()
            tasks_at_hour_1 = len(asyncio.all_tasks())
            timers_at_hour_1 = _timers(hass)

    gc.collect()
    assert at_hour_1 is not None
    at_end = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(stat.size_diff for stat in at_end.compare_to(at_hour_1, "filename"))
    # What the simulator, the fake and the test harness keep is not HA's.
    ours = at_end.filter_traces(HARNESS).compare_to(
        at_hour_1.filter_traces(HARNESS), "filename"
    )
    growth = sum(stat.size_diff for stat in ours)
    print(  # noqa: T201
        f"\n{GATEWAYS} gateways, {HOURS * POLLS_PER_HOUR} polls, {reconnects} "
        f"reconnects: memory growth from hour 1 to the end: {growth / 1024:.0f} KiB "
        f"in Home Assistant and the integration ({total / 1024:.0f} KiB with the "
        "simulator and the test harness)"
    )
    for stat in sorted(ours, key=lambda stat: -stat.size_diff)[:5]:
        print(f"  {stat}")  # noqa: T201
    assert growth < MEMORY_GROWTH_LIMIT
    # No more than at the end of hour 1 (one may have been in flight then).
    assert len(asyncio.all_tasks()) <= tasks_at_hour_1
    assert _timers(hass) <= timers_at_hour_1
    assert reconnects >= 200
    # Every uplink arrived: the frame counters show the last one.
    for device in DEVICES:
        counter = hass.states.get(f"sensor.{device.replace('-', '_')}_frame_counter")
        assert counter is not None
        assert counter.state == str(HOURS * POLLS_PER_HOUR)
    # The day ends with every flapping gateway in the state TTS has for it.
    for gateway in flapping:
        expected = STATE_ON if gateway.connected else STATE_OFF
        assert hass.states.get(connectivity[gateway.gateway_id]).state == expected
