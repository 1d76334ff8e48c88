"""End-to-end fixtures: mosquitto, the simulator and a real Home Assistant.

Run without the Home Assistant test harness, which blocks sockets and
patches the event loop: ``pytest tests_e2e -p no:homeassistant``. One stack
serves the whole session; every process is stopped by PID at the end, also
when a test fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
import random
import re
import time
from typing import Any

import aiohttp
import pytest

from tts_simulator import tts_json
from tts_simulator.app_broker import AppBroker, mqtt_username
from tts_simulator.cluster import make_cluster_tls
from tts_simulator.core import DEVICE_NAMES
from tts_simulator.stack import (
    LOCALHOST,
    HomeAssistantClient,
    Processes,
    find_mosquitto,
    free_port,
    start_app_broker,
    start_broker,
    start_hass,
    start_simulator,
    write_hass_config,
)

GATEWAYS = 5
# Seconds between uplinks of each simulated end device: often enough that
# waiting for the next one keeps the tests fast.
DEVICE_INTERVAL = 3.0


APPLICATION_ID = "home-sensors"
# The application's login on the simulator's MQTT server (TTN tenant).
APPLICATION_USERNAME = mqtt_username(APPLICATION_ID, "ttn")
END_DEVICES = (
    "feather-m0",
    "lpp-climate-sensor",
    "soil-sensor",
    "office-desk-sensor",
)
# Their names in TTS, which the application's device list gives them.
END_DEVICE_NAMES = {device_id: DEVICE_NAMES[device_id][0] for device_id in END_DEVICES}


def object_id(device_id: str) -> str:
    """The start of a device's entity IDs: its TTS name, slugified."""
    return re.sub(r"[^a-z0-9]+", "_", END_DEVICE_NAMES[device_id].lower()).strip("_")


@dataclass
class EntryDevices:
    """The devices of the integration's config entry, by TTS ID."""

    gateways: dict[str, dict[str, Any]]
    end_devices: dict[str, dict[str, Any]]


def entry_devices(devices: list[dict[str, Any]], entry_id: str) -> EntryDevices:
    """Tell gateways from end devices by their device registry identifier.

    A gateway is ``<owner@server>/gateway/<gateway id>``, an end device
    ``<owner@server>/device/<application id>/<device id>``; the account's own
    device ``<owner@server>/account`` is neither.
    """
    found = EntryDevices({}, {})
    for device in devices:
        if entry_id not in device["config_entries"]:
            continue
        ((domain, identifier),) = device["identifiers"]
        assert domain == "ttn_gateway"
        match identifier.split("/"):
            case [_account, "gateway", gateway_id]:
                found.gateways[gateway_id] = device
            case [_account, "device", application_id, device_id]:
                assert application_id == APPLICATION_ID
                found.end_devices[device_id] = device
            case [_account, "account"]:
                # The account's own device, with the fleet sensors.
                continue
            case _:
                raise AssertionError(f"unexpected identifier {identifier}")
    return found


async def wait_for_entry_devices(
    client: HomeAssistantClient, seconds: float = 60
) -> tuple[str, EntryDevices]:
    """Wait until every gateway and end device has its device; the entry ID too.

    End devices appear with their first uplink after the MQTT entry is added.
    """
    entry_id = next(
        entry["entry_id"]
        for entry in await client.config_entries()
        if entry["domain"] == "ttn_gateway"
    )
    deadline = time.monotonic() + seconds
    while True:
        (devices,) = await client.websocket({"type": "config/device_registry/list"})
        found = entry_devices(devices, entry_id)
        if len(found.gateways) == GATEWAYS and set(found.end_devices) == set(
            END_DEVICES
        ):
            return entry_id, found
        assert time.monotonic() < deadline, (
            f"devices: {sorted(found.gateways)} {sorted(found.end_devices)}"
        )
        await asyncio.sleep(0.5)


@dataclass
class Stack:
    """Ports and credentials of the running stack."""

    hass_port: int
    simulator_url: str
    mqtt_port: int
    api_key: str
    config_dir: Path
    processes: Processes
    # The application's MQTT server, as TTS offers it, and its key.
    app_broker: AppBroker | None = None

    def restart_hass(self) -> None:
        """Stop Home Assistant (as a user does) and start it on the same config."""
        self.processes.stop_one("hass")
        start_hass(self.processes, self.config_dir, self.hass_port)


async def simulator(
    stack: Stack, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """Call the simulator's control API."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{stack.simulator_url}{path}", json=body) as response,
    ):
        response.raise_for_status()
        return await response.json()


async def wait_for_state(
    client: HomeAssistantClient, entity_id: str, expected: str, seconds: float = 30
) -> dict[str, Any]:
    """Wait until the entity has the state; return it."""
    deadline = time.monotonic() + seconds
    while True:
        state = (await client.states()).get(entity_id)
        if state is not None and state["state"] == expected:
            return state
        assert time.monotonic() < deadline, f"{entity_id} is {state}"
        await asyncio.sleep(0.5)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start mosquitto, the simulator and Home Assistant on free ports."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it with apt-get)")
    work = tmp_path_factory.mktemp("e2e")
    processes = Processes(work / "logs")
    api_key = tts_json.api_key(random.Random(7))  # noqa: S311
    hass_port, simulator_port, mqtt_port = free_port(), free_port(), free_port()
    # The simulator also answers as a TTN cluster (https), for Home Assistant only.
    cluster = make_cluster_tls(work / "cluster", free_port())
    try:
        start_broker(processes, mqtt_port, work)
        app_broker = start_app_broker(
            processes,
            free_port(),
            work,
            username=APPLICATION_USERNAME,
            api_key=tts_json.api_key(random.Random(8)),  # noqa: S311
        )
        start_simulator(
            processes,
            simulator_port,
            api_key,
            gateways=GATEWAYS,
            mqtt_port=mqtt_port,
            device_interval=DEVICE_INTERVAL,
            app_broker=app_broker,
            cluster=cluster,
        )
        write_hass_config(work / "config", hass_port, cluster)
        start_hass(processes, work / "config", hass_port)
        yield Stack(
            hass_port,
            f"http://{LOCALHOST}:{simulator_port}",
            mqtt_port,
            api_key,
            work / "config",
            processes,
            app_broker,
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
        assert stack.app_broker is not None
        await ensure_application(client, stack.app_broker, "direct")
        await ensure_last_seen_enabled(client)
        yield client


async def ensure_last_seen_enabled(client: HomeAssistantClient) -> None:
    """Enable each end device's *Last seen* (disabled by default), as a user does.

    The tests follow every uplink through it. Home Assistant reloads the entry
    about 30 s after an entity is enabled; wait until each one has a state.
    """
    wanted = {f"sensor.{object_id(device_id)}_last_seen" for device_id in END_DEVICES}
    deadline = time.monotonic() + 120
    while True:
        (entities,) = await client.websocket({"type": "config/entity_registry/list"})
        found = {
            entity["entity_id"]: entity
            for entity in entities
            if entity["entity_id"] in wanted
        }
        if set(found) == wanted:
            break
        assert time.monotonic() < deadline, sorted(wanted - set(found))
        await asyncio.sleep(0.5)
    disabled = [
        entity_id for entity_id, entity in found.items() if entity["disabled_by"]
    ]
    if disabled:
        await client.websocket(
            *(
                {
                    "type": "config/entity_registry/update",
                    "entity_id": entity_id,
                    "disabled_by": None,
                }
                for entity_id in disabled
            )
        )
    while not wanted <= set(await client.states()):
        assert time.monotonic() < deadline, "Last seen never appeared after enabling"
        await asyncio.sleep(1)


@pytest.fixture
def app_broker(stack: Stack) -> AppBroker:
    """The application's MQTT server; ``set_key`` changes the key it accepts."""
    assert stack.app_broker is not None
    return stack.app_broker


# The transport the application sub-entry has now (one per session stack).
_APPLICATION: dict[str, str] = {}


async def ensure_application(
    client: HomeAssistantClient, app_broker: AppBroker, transport: str
) -> str:
    """The application sub-entry with uplinks arriving `transport`; its ID.

    Added once, then reconfigured when a test needs the other transport,
    as a user would; waits until the account has reloaded.
    """
    entry_id = next(
        entry["entry_id"]
        for entry in await client.config_entries()
        if entry["domain"] == "ttn_gateway"
    )
    (subentries,) = await client.websocket(
        {"type": "config_entries/subentries/list", "entry_id": entry_id}
    )
    existing = next(
        (item for item in subentries if item["subentry_type"] == "application"), None
    )
    if existing is not None and _APPLICATION.get(existing["subentry_id"]) == transport:
        return str(existing["subentry_id"])
    second = (
        {
            "mqtt_host": LOCALHOST,
            "mqtt_port": app_broker.port,
            "mqtt_username": app_broker.username,
            "mqtt_tls": False,
        }
        if transport == "direct"
        else {"uplink_topic": "v3/+/devices/+/up"}
    )
    await client.add_subentry(
        entry_id,
        "application",
        [
            {
                "application_id": APPLICATION_ID,
                "api_key": app_broker.api_key,
                "transport": transport,
            },
            second,
        ],
        subentry_id=None if existing is None else existing["subentry_id"],
    )
    (subentries,) = await client.websocket(
        {"type": "config_entries/subentries/list", "entry_id": entry_id}
    )
    subentry_id = next(
        str(item["subentry_id"])
        for item in subentries
        if item["subentry_type"] == "application"
    )
    _APPLICATION.clear()
    _APPLICATION[subentry_id] = transport
    deadline = time.monotonic() + 60
    while True:
        await asyncio.sleep(1)
        entry = next(
            entry
            for entry in await client.config_entries()
            if entry["entry_id"] == entry_id
        )
        if entry["state"] == "loaded":
            return subentry_id
        assert time.monotonic() < deadline, entry


@pytest.fixture
async def application_subentry(
    hass_client: HomeAssistantClient, app_broker: AppBroker
) -> str:
    """The application, connected directly to its MQTT server."""
    return await ensure_application(hass_client, app_broker, "direct")


@pytest.fixture
async def mqtt_application(
    hass_client: HomeAssistantClient, app_broker: AppBroker
) -> str:
    """The application, its uplinks through Home Assistant's MQTT integration."""
    return await ensure_application(hass_client, app_broker, "mqtt")
