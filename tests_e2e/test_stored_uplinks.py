"""Uplinks sent while Home Assistant was stopped, fetched from the Storage Integration.

The simulator's application keeps what it publishes (``tts_simulator/
storage.py``), as TTS's Storage Integration does. Home Assistant is stopped
while the devices keep sending, then started again after they have gone
quiet: the uplinks it shows can only have come from the storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import time

import aiohttp
import pytest

from tts_simulator.stack import HomeAssistantClient, start_hass

from .conftest import DEVICE_INTERVAL, END_DEVICES, Stack, simulator
from .test_end_devices import PublishedUplinks, expected_states, mismatches

# How soon after Home Assistant answers again the missed uplinks must show.
SHOWN_WITHIN_SECONDS = 60
# How long Home Assistant may take to answer again after it is started.
START_SECONDS = 120


@pytest.fixture(scope="module")
def recorded(stack: Stack) -> Iterator[PublishedUplinks]:
    """Every uplink the simulator publishes from now on."""
    recorder = PublishedUplinks(stack.mqtt_port)
    yield recorder
    recorder.close()


async def test_uplinks_sent_while_stopped_show_after_the_start(
    stack: Stack, hass_client: HomeAssistantClient, recorded: PublishedUplinks
) -> None:
    await asyncio.to_thread(stack.processes.stop_one, "hass")
    try:
        # The devices keep sending (every DEVICE_INTERVAL s) into the void.
        before = {device_id: recorded.latest(device_id) for device_id in END_DEVICES}
        deadline = time.monotonic() + 30
        while any(
            recorded.latest(device_id) is before[device_id] for device_id in END_DEVICES
        ):
            assert time.monotonic() < deadline, "the devices sent nothing"
            await asyncio.sleep(0.5)
        await simulator(stack, "POST", "/sim/devices/pause")
        await asyncio.sleep(DEVICE_INTERVAL / 2)  # one published just before
        missed = {device_id: recorded.latest(device_id) for device_id in END_DEVICES}
        state = await simulator(stack, "GET", "/sim/state")
        assert state["storage"]["enabled"]

        await asyncio.to_thread(
            start_hass, stack.processes, stack.config_dir, stack.hass_port
        )
        async with aiohttp.ClientSession() as session:
            client = HomeAssistantClient(session, stack.hass_port)
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    await client.onboard_or_login()
                    break
                except aiohttp.ClientError:
                    assert time.monotonic() < deadline, "Home Assistant did not start"
                    await asyncio.sleep(1)
            answering = time.monotonic()
            while True:
                states = await client.states()
                problems = {
                    device_id: wrong
                    for device_id, uplink in missed.items()
                    if uplink is None
                    or (wrong := mismatches(states, expected_states(uplink)))
                }
                if not problems:
                    break
                assert time.monotonic() - answering < SHOWN_WITHIN_SECONDS, problems
                await asyncio.sleep(0.5)
    finally:
        await simulator(stack, "POST", "/sim/devices/resume")
