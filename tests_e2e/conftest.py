"""End-to-end fixtures: mosquitto, the simulator and a real Home Assistant.

Run without the Home Assistant test harness, which blocks sockets and
patches the event loop: ``pytest tests_e2e -p no:homeassistant``. One stack
serves the whole session; every process is stopped by PID at the end, also
when a test fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
import random

import aiohttp
import pytest

from tts_simulator import tts_json
from tts_simulator.stack import (
    LOCALHOST,
    HomeAssistantClient,
    Processes,
    find_mosquitto,
    free_port,
    start_broker,
    start_hass,
    start_simulator,
    write_hass_config,
)

GATEWAYS = 5


@dataclass
class Stack:
    """Ports and credentials of the running stack."""

    hass_port: int
    simulator_url: str
    mqtt_port: int
    api_key: str
    processes: Processes


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start mosquitto, the simulator and Home Assistant on free ports."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it with apt-get)")
    work = tmp_path_factory.mktemp("e2e")
    processes = Processes(work / "logs")
    api_key = tts_json.api_key(random.Random(7))  # noqa: S311
    hass_port, simulator_port, mqtt_port = free_port(), free_port(), free_port()
    try:
        start_broker(processes, mqtt_port, work)
        start_simulator(
            processes,
            simulator_port,
            api_key,
            gateways=GATEWAYS,
            mqtt_port=mqtt_port,
            device_interval=5,
        )
        write_hass_config(work / "config", hass_port)
        start_hass(processes, work / "config", hass_port)
        yield Stack(
            hass_port,
            f"http://{LOCALHOST}:{simulator_port}",
            mqtt_port,
            api_key,
            processes,
        )
    except BaseException:
        for log in sorted((work / "logs").glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")  # noqa: T201
        raise
    finally:
        processes.stop()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser test saves screenshots (SCREENSHOT_DIR to keep them)."""
    import os

    if target := os.environ.get("SCREENSHOT_DIR"):
        return Path(target)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
async def hass_client(stack: Stack) -> AsyncIterator[HomeAssistantClient]:
    """A logged-in REST/websocket client; onboards and adds entries once."""
    async with aiohttp.ClientSession() as session:
        client = HomeAssistantClient(session, stack.hass_port)
        await client.onboard_or_login()
        await client.ensure_entries(stack.mqtt_port, stack.simulator_url, stack.api_key)
        yield client
