#!/usr/bin/env python3
"""Benchmarks of the integration, each against a baseline measured in the same run.

    ./scripts/bench            # every benchmark, 1000 gateways (a few minutes)
    ./scripts/bench --quick    # smaller fleets and fewer repeats (a minute)

Prints a table and writes .bench/results.json. The simulator serves the TTS
API over HTTP on 127.0.0.1 from a thread of its own, so that its CPU time is
not counted: figures are CPU seconds of the thread that runs Home Assistant's
event loop (time.thread_time), the median of several repeats.

1. HTTP requests per poll, counted at the simulator, against the per-gateway
   strategy of the original Prometheus exporter (one listing, then one stats
   request per gateway).
2. Event-loop CPU time of one poll inside Home Assistant (fetch, parse,
   update, state writes), and the state writes of a poll in which nothing
   changed; against the bare client fetching and parsing the same data.
3. Setup of a config entry (first poll and entity creation), against creating
   as many plain states with hass.states.async_set.
4. MQTT uplinks per second, from HA's MQTT client to states written,
   against HA's own MQTT sensors with value_templates (what users configure
   today) and against the floor: a bare subscription callback that parses the
   JSON and sets the eight states.
4b. Uplinks per second over the direct connection: mosquitto on 127.0.0.1
   and a publisher process (bench_publisher.py) publishing the same uplinks
   as TTS's MQTT server does (QoS 0, ``v3/{app}@{tenant}/devices/{dev}/up``),
   received by an application sub-entry connected directly; against the
   floor: a bare aiomqtt client in Home Assistant's event loop that parses
   the JSON and sets the eight states. Its ratio to 4. compares it with Home
   Assistant's MQTT path (whose messages skip the socket and paho there).
5. Memory per monitored gateway and per end device (tracemalloc), against
   plain states holding the same values.
6. The push path: uplink events per CPU second that the integration applies
   from the simulator's events stream over HTTP, for fleets of 10, 250 and
   1000 gateways, against the same events read and parsed by the bare client
   with no Home Assistant work. An event's cost should not grow with the
   fleet: the per-event time with 1000 gateways within 1.5x of that with 10.

Logging is at WARNING, as in Home Assistant started without --verbose.
``--profile`` writes a cProfile of each benchmark to .bench/NAME.prof (it
sees every thread, the simulator's included).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import cProfile
import functools
import gc
import json
import logging
import math
from pathlib import Path
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from typing import Any
from unittest.mock import patch

import aiohttp
from aiohttp import ThreadedResolver, web

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "simulator")]

# The harness first (it patches Home Assistant when imported), then the
# project's package, so that Home Assistant's loader finds it.
from pytest_homeassistant_custom_component import plugins  # noqa: E402

# The harness logs at INFO (every "Registered new ... entity" of a setup);
# Home Assistant without --verbose logs at WARNING (bootstrap's
# async_enable_logging), so the figures are those of a default installation.
logging.getLogger().setLevel(logging.WARNING)

import custom_components.ttn_gateway  # noqa: E402, F401
from custom_components.ttn_gateway.const import CONF_SERVER, DOMAIN  # noqa: E402
from custom_components.ttn_gateway.tts import TTSClient, TTSServer  # noqa: E402
from tts_simulator import ManualClock, Simulator, make_fleet  # noqa: E402
from tts_simulator.server import create_app  # noqa: E402

API_KEY = (
    "NNSXS.BENCHKEYBENCHKEYBENCHKEYBENCHKEYBENCHKE."
    "BENCHSECRETBENCHSECRETBENCHSECRETBENCHSECRETBENCHSE"
)
RESULTS = REPO_ROOT / ".bench" / "results.json"
POLL_SECONDS = 60.0
APPLICATION = "home-sensors"


# --- the simulator, served from a thread of its own ------------------------------


class SimulatorThread:
    """The simulator's aiohttp server on 127.0.0.1, on its own event loop."""

    def __init__(self, gateways: int) -> None:
        self.clock = ManualClock(start=time.time())
        self.simulator = Simulator(api_key=API_KEY, clock=self.clock)
        self.gateways = gateways
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = create_app(self.simulator)
        # No ticker: nothing is pushed on the events stream, so a figure is
        # the poll's alone.
        app.cleanup_ctx.clear()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        for gateway in make_fleet(
            self.gateways, self.clock.now, server_address=f"127.0.0.1:{port}"
        ):
            self.simulator.add_gateway(gateway)
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        # Open event streams end with the server.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def publish_uplinks(self, count: int) -> None:
        """Publish uplink events on the simulator's own loop."""
        self._loop.call_soon_threadsafe(self.simulator.publish_uplinks, count)

    def requests(self) -> int:
        """Requests answered so far (the events stream excluded)."""
        counts = self.simulator.request_counts
        return sum(n for endpoint, n in counts.items() if endpoint != "events")


# --- helpers ---------------------------------------------------------------------


def cpu() -> float:
    """CPU seconds of this thread: Home Assistant's event loop."""
    return time.thread_time()


def median(values: list[float]) -> float:
    """The median of the repeats."""
    return statistics.median(values)


@contextlib.asynccontextmanager
async def home_assistant() -> Any:
    """Home Assistant in this process (the test harness's instance)."""
    from homeassistant import loader
    from pytest_homeassistant_custom_component.common import (
        async_test_home_assistant,
    )

    config_dir = tempfile.mkdtemp(prefix="ttn-gateway-bench-")
    try:
        # The mDNS resolver needs the zeroconf integration; plain DNS will do.
        with patch(
            "homeassistant.helpers.aiohttp_client._async_make_resolver",
            return_value=ThreadedResolver(),
        ):
            async with async_test_home_assistant(config_dir=config_dir) as hass:
                hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
                yield hass
                # A complete stop: the final storage writes happen here, so
                # nothing writes into the folder once it is being removed.
                await hass.async_block_till_done()
                await hass.async_stop()
                await hass.async_block_till_done(wait_background_tasks=True)
    finally:
        shutil.rmtree(config_dir, ignore_errors=False)


def state_writes(hass: Any) -> Callable[[], int]:
    """Count every state write (changed or only reported)."""
    from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
    from homeassistant.core import callback

    written = [0]

    @callback
    def count(_event: Any) -> None:
        written[0] += 1

    hass.bus.async_listen(EVENT_STATE_CHANGED, count)
    hass.bus.async_listen(
        EVENT_STATE_REPORTED, count, event_filter=callback(lambda _: True)
    )
    return lambda: written[0]


async def add_entry(hass: Any, url: str, **options: Any) -> Any:
    """Add (not yet set up) a config entry of the integration."""
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    entry = MockConfigEntry(
        domain=DOMAIN,
        title="bench",
        unique_id="bench@127.0.0.1",
        data={CONF_SERVER: url, "api_key": API_KEY},
        options=options,
    )
    entry.add_to_hass(hass)
    return entry


def integration_states(hass: Any) -> list[Any]:
    """The states of the integration's entities."""
    from homeassistant.helpers import entity_registry as er

    registry = er.async_get(hass)
    return [
        state
        for state in hass.states.async_all()
        if (item := registry.async_get(state.entity_id)) and item.platform == DOMAIN
    ]


def set_plain_states(hass: Any, states: list[Any], prefix: str) -> None:
    """The same states and attributes, set directly: what HA stores anyway."""
    for state in states:
        domain, object_id = state.entity_id.split(".", 1)
        hass.states.async_set(
            f"{domain}.{prefix}_{object_id}", state.state, dict(state.attributes)
        )


# --- 1. requests per poll ----------------------------------------------------------


async def exporter_poll(session: aiohttp.ClientSession, url: str) -> int:
    """The exporter's strategy: list the gateways, then ask each for its stats."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    # The exporter sent no limit, so TTS listed its first 100 gateways only;
    # here one page holds them all (up to 1000), as a fixed exporter would.
    async with session.get(
        f"{url}/api/v3/gateways", params={"limit": "1000"}, headers=headers
    ) as response:
        listed = (await response.json()).get("gateways", [])
    ids = [item["ids"]["gateway_id"] for item in listed]
    for gateway_id in ids:
        async with session.get(
            f"{url}/api/v3/gs/gateways/{gateway_id}/connection/stats",
            headers=headers,
        ) as response:
            await response.read()
    return len(ids)


async def bench_requests(sizes: list[int]) -> list[dict[str, Any]]:
    """Requests of one poll of the integration's client and of the exporter."""
    rows = []
    for size in sizes:
        with SimulatorThread(size) as sim:
            async with aiohttp.ClientSession() as session:
                client = TTSClient(session, TTSServer(sim.url), API_KEY)
                before = sim.requests()
                gateways = await client.list_gateways()
                stats = await client.get_connection_stats(gateways)
                ours = sim.requests() - before
                assert len(stats) == size
                before = sim.requests()
                assert await exporter_poll(session, sim.url) == size
                theirs = sim.requests() - before
        target = 1 + math.ceil(size / 100)
        rows.append(
            {
                "gateways": size,
                "integration": ours,
                "exporter": theirs,
                "ratio": theirs / ours,
                "target": target,
                "met": ours <= target,
            }
        )
    return rows


# --- 2. one poll, 3. setup, 5a. memory per gateway ----------------------------------


async def bench_poll_and_setup(size: int, repeats: int) -> dict[str, Any]:
    """Setup, then polls with and without changes, inside Home Assistant."""
    result: dict[str, Any] = {"gateways": size}
    with SimulatorThread(size) as sim:
        # Baseline of the poll: the bare client, same data, no Home Assistant.
        bare = []
        async with aiohttp.ClientSession() as session:
            client = TTSClient(session, TTSServer(sim.url), API_KEY)
            await client.get_connection_stats(await client.list_gateways())
            for _ in range(repeats):
                sim.clock.advance(POLL_SECONDS)
                gc.collect()
                started = cpu()
                await client.get_connection_stats(await client.list_gateways())
                bare.append(cpu() - started)

        async with home_assistant() as hass:
            writes = state_writes(hass)
            entry = await add_entry(hass, sim.url)
            gc.collect()
            started_cpu, started_wall = cpu(), time.perf_counter()
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            setup_cpu = cpu() - started_cpu
            setup_wall = time.perf_counter() - started_wall
            states = integration_states(hass)
            coordinator = entry.runtime_data.coordinator

            changed, changed_writes = [], []
            for _ in range(repeats):
                sim.clock.advance(POLL_SECONDS)
                gc.collect()
                before, started = writes(), cpu()
                await coordinator.async_refresh()
                await hass.async_block_till_done()
                changed.append(cpu() - started)
                changed_writes.append(writes() - before)
            unchanged, unchanged_writes = [], []
            for _ in range(repeats):
                gc.collect()
                before, started = writes(), cpu()
                await coordinator.async_refresh()
                await hass.async_block_till_done()
                unchanged.append(cpu() - started)
                unchanged_writes.append(writes() - before)

            # Baseline of the setup: as many plain states, same attributes.
            gc.collect()
            started = cpu()
            set_plain_states(hass, states, "plain")
            await hass.async_block_till_done()
            plain_cpu = cpu() - started
            await hass.config_entries.async_unload(entry.entry_id)

    result |= {
        "entities": len(states),
        "poll_cpu_s": median(changed),
        "poll_state_writes": median(changed_writes),
        "unchanged_poll_cpu_s": median(unchanged),
        "unchanged_poll_state_writes": max(unchanged_writes),
        "bare_fetch_parse_cpu_s": median(bare),
        "setup_cpu_s": setup_cpu,
        "setup_wall_s": setup_wall,
        "plain_states_cpu_s": plain_cpu,
    }
    return result


async def bench_memory_per_gateway(size: int) -> dict[str, Any]:
    """Memory of a loaded entry per gateway, and of the same plain states."""
    with SimulatorThread(size) as sim:
        async with home_assistant() as hass:
            entry = await add_entry(hass, sim.url)
            gc.collect()
            tracemalloc.start()
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            sim.clock.advance(POLL_SECONDS)
            await entry.runtime_data.coordinator.async_refresh()
            await hass.async_block_till_done()
            gc.collect()
            ours = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            states = integration_states(hass)

            gc.collect()
            tracemalloc.start()
            set_plain_states(hass, states, "plain")
            await hass.async_block_till_done()
            gc.collect()
            plain = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            await hass.config_entries.async_unload(entry.entry_id)
    return {
        "gateways": size,
        "entities": len(states),
        "bytes_per_gateway": ours / size,
        "plain_state_bytes_per_gateway": plain / size,
    }


# --- 4. MQTT uplinks per second, 5b. memory per end device ---------------------------

# The eight values, as HA's MQTT sensors would extract them from an uplink.
TEMPLATES = {
    "temperature": "{{ value_json.uplink_message.decoded_payload.temperature }}",
    "humidity": "{{ value_json.uplink_message.decoded_payload.humidity }}",
    "rssi": "{{ value_json.uplink_message.rx_metadata[0].rssi }}",
    "snr": "{{ value_json.uplink_message.rx_metadata[0].snr }}",
    "frame_counter": "{{ value_json.uplink_message.f_cnt }}",
    "spreading_factor": (
        "{{ value_json.uplink_message.settings.data_rate.lora.spreading_factor }}"
    ),
    "frequency": "{{ value_json.uplink_message.settings.frequency | int / 1000000 }}",
    "last_seen": "{{ value_json.received_at }}",
}


FLOOR_ATTRIBUTES: dict[str, dict[str, str]] = {
    "temperature": {
        "state_class": "measurement",
        "unit_of_measurement": "°C",
        "device_class": "temperature",
    },
    "humidity": {
        "state_class": "measurement",
        "unit_of_measurement": "%",
        "device_class": "humidity",
    },
    "rssi": {
        "state_class": "measurement",
        "unit_of_measurement": "dBm",
        "device_class": "signal_strength",
    },
    "snr": {"state_class": "measurement", "unit_of_measurement": "dB"},
    "frame_counter": {"state_class": "total_increasing"},
    "spreading_factor": {},
    "frequency": {"unit_of_measurement": "MHz", "device_class": "frequency"},
    "last_seen": {"device_class": "timestamp"},
}


def _floor_states(hass: Any, data: dict[str, Any]) -> None:
    """The floor's work for one uplink: eight async_set with their attributes."""
    device = data["end_device_ids"]["device_id"]
    up = data["uplink_message"]
    decoded, rx = up["decoded_payload"], up["rx_metadata"][0]
    values = {
        "temperature": decoded["temperature"],
        "humidity": decoded["humidity"],
        "rssi": rx["rssi"],
        "snr": rx["snr"],
        "frame_counter": up["f_cnt"],
        "spreading_factor": up["settings"]["data_rate"]["lora"]["spreading_factor"],
        "frequency": int(up["settings"]["frequency"]) / 1e6,
        "last_seen": data["received_at"],
    }
    object_id = device.replace("-", "_")
    for value, state in values.items():
        hass.states.async_set(
            f"sensor.{object_id}_{value}", state, _floor_attributes(device, value)
        )


@functools.cache
def _floor_attributes(device: str, value: str) -> dict[str, str]:
    """What such a sensor carries: unit, device and state class, name."""
    return {
        **FLOOR_ATTRIBUTES[value],
        "friendly_name": f"{device} {value.replace('_', ' ')}",
    }


def uplink(device: str, f_cnt: int, now: float) -> bytes:
    """An ApplicationUp with a decoded temperature and humidity.

    Each of the eight values differs from the device's previous uplink (the
    periods are prime to the number of devices), so every one is written.
    """
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now + f_cnt))
    stamp += ".123456789Z"
    rssi = -60 - f_cnt % 47
    message = {
        "end_device_ids": {
            "device_id": device,
            "application_ids": {"application_id": APPLICATION},
            "dev_eui": "70B3D57ED005A1B2",
        },
        "correlation_ids": ["as:up:01H0BENCH"],
        "received_at": stamp,
        "uplink_message": {
            "f_port": 2,
            "f_cnt": f_cnt,
            "frm_payload": "AQID",
            "decoded_payload": {
                "temperature": round(20 + (f_cnt % 97) / 10, 1),
                "humidity": 40 + f_cnt % 29,
            },
            "rx_metadata": [
                {
                    "gateway_ids": {"gateway_id": "rooftop-gateway"},
                    "rssi": rssi,
                    "channel_rssi": rssi,
                    "snr": round(7.5 - (f_cnt % 13) / 4, 2),
                    "received_at": stamp,
                }
            ],
            "settings": {
                "data_rate": {
                    "lora": {
                        "bandwidth": 125000,
                        "spreading_factor": 7 + 2 * (f_cnt % 3),
                        "coding_rate": "4/5",
                    }
                },
                "frequency": str(868100000 + 200000 * (f_cnt % 3)),
            },
            "received_at": stamp,
            "consumed_airtime": "0.061696s",
        },
    }
    return json.dumps(message, separators=(",", ":")).encode()


def topic(device: str) -> str:
    """The topic TTS publishes a device's uplinks on."""
    return f"v3/{APPLICATION}@ttn/devices/{device}/up"


@contextlib.asynccontextmanager
async def mqtt_ready(hass: Any, yaml: list[dict[str, Any]] | None = None) -> Any:
    """HA's MQTT integration on the test harness's mocked client (no broker)."""
    from homeassistant.config_entries import ConfigEntries

    config = {"mqtt": {"sensor": yaml}} if yaml else {}
    if config:
        hass.config_entries = ConfigEntries(hass, config)
    clients = plugins.mqtt_client_mock.__pytest_wrapped__.obj(hass)
    client = next(clients)

    async def setup(hass: Any, entry: Any) -> bool:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        return True

    with patch("homeassistant.config.load_yaml_config_file", return_value=config):
        async with plugins._mqtt_mock_entry(
            hass, client, None, None, None
        ) as setup_entry:
            await setup_entry(setup)
            yield
    with contextlib.suppress(StopIteration):
        next(clients)


def fire_mqtt_message(hass: Any, where: str, payload: bytes) -> None:
    """Hand a message to HA's MQTT client as paho does.

    The harness's async_fire_mqtt_message passes a new Mock as the paho
    client, which HA ignores but which stays allocated (about 5 KiB a
    message): it would count as the integration's memory and CPU.
    """
    from paho.mqtt.client import MQTTMessage

    msg = MQTTMessage(topic=where.encode())
    msg.payload = payload
    msg.timestamp = time.monotonic()
    hass.data["mqtt"].client._async_mqtt_on_message(None, None, msg)


async def rate(
    hass: Any, devices: list[str], messages: int, expected_writes: int
) -> tuple[float, int]:
    """Messages per CPU second from HA's MQTT client to states written."""
    writes = state_writes(hass)
    now = time.time()
    payloads = [
        (topic(devices[n % len(devices)]), uplink(devices[n % len(devices)], n, now))
        for n in range(1, messages + 1)
    ]
    gc.collect()
    before, started = writes(), cpu()
    for index, (where, payload) in enumerate(payloads):
        fire_mqtt_message(hass, where, payload)
        if index % 50 == 49:
            await hass.async_block_till_done()
    await hass.async_block_till_done()
    spent = cpu() - started
    written = writes() - before
    # A value that happens to repeat is not written again: allow for a few.
    if written < 0.9 * expected_writes:
        raise SystemExit(f"only {written} of {expected_writes} state writes")
    return messages / spent, written


async def bench_mqtt(messages: int, devices: int) -> dict[str, Any]:
    """Uplinks per second: the integration, HA's templates, and the floor."""
    from homeassistant.components import mqtt
    from homeassistant.core import callback
    from homeassistant.util.json import json_loads_object

    names = [f"bench-device-{n}" for n in range(devices)]
    # Warm-up uplinks (create the entities), then the measured ones.
    warm = devices
    expected = 8 * messages

    # The integration, with its radio figures (disabled by default) enabled:
    # eight values each, as the templates and the floor.
    with (
        SimulatorThread(1) as sim,
        patch(
            "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
            return_value=True,
        ),
    ):
        async with home_assistant() as hass, mqtt_ready(hass):
            entry = await add_entry(hass, sim.url)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            await rate(hass, names, warm, 0)
            ours, ours_writes = await rate(hass, names, messages, expected)
            await hass.config_entries.async_unload(entry.entry_id)

    # HA's MQTT sensors with value templates, configured in YAML.
    sensors = [
        {
            "name": f"{device} {value}",
            "unique_id": f"{device}_{value}",
            "state_topic": topic(device),
            "value_template": template,
        }
        for device in names
        for value, template in TEMPLATES.items()
    ]
    async with home_assistant() as hass, mqtt_ready(hass, sensors):
        await rate(hass, names, warm, 0)
        templates, templates_writes = await rate(hass, names, messages, expected)

    # The floor: one subscription, json.loads, eight async_set, with the
    # attributes such sensors carry (unit, device and state class, name).
    async with home_assistant() as hass, mqtt_ready(hass):

        @callback
        def floor(msg: Any) -> None:
            _floor_states(hass, json_loads_object(msg.payload))

        await mqtt.async_subscribe(hass, "v3/+/devices/+/up", floor, encoding=None)
        await rate(hass, names, warm, 0)
        bare, _ = await rate(hass, names, messages, expected)

    return {
        "messages": messages,
        "devices": devices,
        "integration_per_s": ours,
        "integration_writes_per_message": ours_writes / messages,
        "templates_per_s": templates,
        "templates_writes_per_message": templates_writes / messages,
        "floor_per_s": bare,
        "vs_templates": ours / templates,
        "vs_floor": ours / bare,
        "met": ours >= 2 * templates,
    }


# --- 4b. uplinks over the direct connection ----------------------------------------


class Publisher:
    """mosquitto on 127.0.0.1 and bench_publisher.py publishing to it.

    Both are processes of their own, so that their CPU is not counted.
    """

    def __init__(self, work_dir: Path) -> None:
        from tts_simulator.stack import Processes, free_port, start_broker

        self.work_dir = work_dir
        self.port = free_port()
        self.processes = Processes(work_dir / "logs")
        start_broker(self.processes, self.port, work_dir / "broker")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(REPO_ROOT / "scripts" / "bench_publisher.py"),
                str(self.port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "connected":
            raise SystemExit("the publisher did not connect")
        self._files = 0

    async def publish(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish the messages from the publisher's process, wait until sent."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._files += 1
        path = self.work_dir / f"messages-{self._files}.json"
        path.write_text(json.dumps([[t, p.decode()] for t, p in messages]))
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        stdout = self.process.stdout
        line = await asyncio.get_running_loop().run_in_executor(None, stdout.readline)
        if line.strip() != f"published {len(messages)}":
            raise SystemExit(f"the publisher said {line!r}")

    def close(self) -> None:
        """Stop the publisher (end of its input), then the broker."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)
        self.processes.stop()


async def _settled(count: Callable[[], int], at_least: int) -> None:
    """Wait until count() reached at_least and then stayed put for a moment."""
    deadline = time.perf_counter() + 120
    last, since = -1, time.perf_counter()
    while True:
        now = time.perf_counter()
        current = count()
        if current != last:
            last, since = current, now
        elif current >= at_least and now - since > 0.3:
            return
        if now > deadline:
            raise SystemExit(f"only {current} of {at_least} after two minutes")
        await asyncio.sleep(0.05)


async def direct_rate(
    hass: Any,
    publisher: Publisher,
    done: Callable[[], int],
    devices: list[str],
    messages: int,
    expected: int,
) -> float:
    """Messages per CPU second, published by the publisher, until done()."""
    now = time.time()
    payloads = [
        (topic(devices[n % len(devices)]), uplink(devices[n % len(devices)], n, now))
        for n in range(1, messages + 1)
    ]
    before = done()
    gc.collect()
    started = cpu()
    await publisher.publish(payloads)
    # A value that happens to repeat is not written again: allow for a few.
    await _settled(lambda: done() - before, int(0.9 * expected))
    return messages / (cpu() - started)


async def bench_direct(messages: int, devices: int) -> dict[str, Any]:
    """Uplinks per second over the direct connection, and the bare client's."""
    import aiomqtt
    from homeassistant.config_entries import ConfigSubentryData
    from homeassistant.util.json import json_loads_object
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from custom_components.ttn_gateway import const

    names = [f"bench-device-{n}" for n in range(devices)]
    work_dir = Path(tempfile.mkdtemp(prefix="ttn-gateway-bench-mqtt-"))
    publisher = Publisher(work_dir)
    try:
        # The integration: an application connected directly, with the radio
        # figures enabled (eight values per uplink, as in the MQTT benchmark).
        with (
            SimulatorThread(1) as sim,
            patch(
                "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
                return_value=True,
            ),
        ):
            async with home_assistant() as hass:
                writes = state_writes(hass)
                entry = MockConfigEntry(
                    domain=DOMAIN,
                    version=3,
                    title="bench",
                    unique_id="bench@127.0.0.1",
                    data={CONF_SERVER: sim.url, "api_key": API_KEY},
                    subentries_data=[
                        ConfigSubentryData(
                            data={
                                const.CONF_APPLICATION_ID: APPLICATION,
                                "api_key": API_KEY,
                                const.CONF_TRANSPORT: const.TRANSPORT_DIRECT,
                                const.CONF_RIGHTS: [
                                    "RIGHT_APPLICATION_INFO",
                                    "RIGHT_APPLICATION_TRAFFIC_READ",
                                ],
                                const.CONF_MQTT_HOST: "127.0.0.1",
                                const.CONF_MQTT_PORT: publisher.port,
                                const.CONF_MQTT_TLS: False,
                                const.CONF_MQTT_USERNAME: f"{APPLICATION}@ttn",
                            },
                            subentry_type=const.SUBENTRY_APPLICATION,
                            title="Bench sensors",
                            unique_id=APPLICATION,
                        )
                    ],
                )
                entry.add_to_hass(hass)
                assert await hass.config_entries.async_setup(entry.entry_id)
                await hass.async_block_till_done()
                sources = entry.runtime_data.end_devices.sources
                await _until(lambda: all(s.available for s in sources.values()))
                await direct_rate(hass, publisher, writes, names, devices, 0)
                ours = await direct_rate(
                    hass, publisher, writes, names, messages, 8 * messages
                )
                await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_block_till_done()

        # The floor: a bare aiomqtt client in Home Assistant's event loop that
        # parses the JSON and sets the eight states with their attributes.
        async with home_assistant() as hass:
            received = [0]
            subscribed = asyncio.Event()

            async def floor() -> None:
                async with aiomqtt.Client("127.0.0.1", publisher.port) as client:
                    await client.subscribe(f"v3/{APPLICATION}@ttn/devices/+/up")
                    subscribed.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        _floor_states(hass, json_loads_object(message.payload))
                        received[0] += 1

            task = asyncio.create_task(floor())
            await subscribed.wait()
            await direct_rate(hass, publisher, lambda: received[0], names, devices, 0)
            bare = await direct_rate(
                hass, publisher, lambda: received[0], names, messages, messages
            )
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        publisher.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    return {
        "messages": messages,
        "devices": devices,
        "integration_per_s": ours,
        "floor_per_s": bare,
        "vs_floor": ours / bare,
    }


async def bench_memory_per_device(devices: int) -> dict[str, Any]:
    """Memory of the integration per end device, and of the same plain states."""
    names = [f"bench-device-{n}" for n in range(devices)]
    with SimulatorThread(1) as sim:
        async with home_assistant() as hass, mqtt_ready(hass):
            entry = await add_entry(hass, sim.url)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            before_states = {state.entity_id for state in integration_states(hass)}
            gc.collect()
            tracemalloc.start()
            await rate(hass, names, devices, 0)
            await rate(hass, names, devices, 0)
            gc.collect()
            ours = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            states = [
                state
                for state in integration_states(hass)
                if state.entity_id not in before_states
            ]
            gc.collect()
            tracemalloc.start()
            set_plain_states(hass, states, "plain")
            await hass.async_block_till_done()
            gc.collect()
            plain = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            await hass.config_entries.async_unload(entry.entry_id)
    return {
        "devices": devices,
        "entities": len(states),
        "bytes_per_device": ours / devices,
        "plain_state_bytes_per_device": plain / devices,
    }


# --- the push path -----------------------------------------------------------------


async def _until(done: Callable[[], bool], limit: float = 120.0) -> None:
    """Wait (on the event loop, costing next to no CPU) until done() holds."""
    deadline = time.perf_counter() + limit
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError("the events did not all arrive")
        await asyncio.sleep(0.005)


async def _bare_stream_cpu(sim: SimulatorThread, events: int) -> float:
    """CPU seconds for the bare client to read and parse a burst of events."""
    from custom_components.ttn_gateway.stream import STREAM_GATEWAY_LIMIT

    ids = sorted(sim.simulator.fleet)
    groups = [
        ids[start : start + STREAM_GATEWAY_LIMIT]
        for start in range(0, len(ids), STREAM_GATEWAY_LIMIT)
    ]
    received = [0]
    opened = [0]
    async with aiohttp.ClientSession() as session:
        client = TTSClient(session, TTSServer(sim.url), API_KEY)

        async def read(group: list[str]) -> None:
            async for event in client.stream_events(
                sim.url, group, ["gs.up.receive"], idle_timeout=600
            ):
                if event.name == "events.stream.start":
                    opened[0] += 1
                else:
                    received[0] += 1

        tasks = [asyncio.create_task(read(group)) for group in groups]
        await _until(lambda: opened[0] == len(groups))
        gc.collect()
        started = cpu()
        sim.publish_uplinks(events)
        await _until(lambda: received[0] >= events)
        used = cpu() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return used


async def _push(size: int, events: int) -> dict[str, Any]:
    """One fleet size: the integration and the bare client, same events."""
    with SimulatorThread(size) as sim:
        bare = await _bare_stream_cpu(sim, events)
        async with home_assistant() as hass:
            writes = state_writes(hass)
            entry = await add_entry(hass, sim.url)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            store, streams = entry.runtime_data.store, entry.runtime_data.streams
            await _until(lambda: store.push_healthy)

            def applied() -> int:
                return sum(item["events"] for item in streams.diagnostics())

            # Two uplinks per gateway first: a busy gateway's timestamps are
            # then written once a minute (the next write is scheduled), so the
            # burst measures the event path, the same for every fleet size.
            sim.publish_uplinks(2 * size)
            await _until(lambda: applied() >= 2 * size)
            await hass.async_block_till_done()
            gc.collect()
            before_writes, started = writes(), cpu()
            sim.publish_uplinks(events)
            await _until(lambda: applied() >= 2 * size + events)
            used = cpu() - started
            written = writes() - before_writes
            await hass.config_entries.async_unload(entry.entry_id)
    return {
        "gateways": size,
        "events": events,
        "integration_per_s": events / used,
        "bare_per_s": events / bare,
        "integration_us_per_event": used / events * 1e6,
        "bare_us_per_event": bare / events * 1e6,
        "state_writes": written,
    }


async def bench_push(sizes: list[int], events: int) -> list[dict[str, Any]]:
    """Uplink events applied per CPU second, against the bare client's parsing."""
    return [await _push(size, events) for size in sizes]


# --- the report ------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    rows = [
        "| benchmark | integration | baseline | ratio | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in results.get("requests_per_poll", []):
        rows.append(
            f"| HTTP requests per poll, {row['gateways']} gateways | "
            f"{row['integration']} | {row['exporter']} (exporter) | "
            f"{row['ratio']:.1f}x fewer | <= {row['target']}: "
            f"{'met' if row['met'] else 'MISSED'} |"
        )
    poll = results.get("poll")
    if poll is None:
        return _more_rows(results, rows)
    rows.append(
        f"| Event-loop CPU of one poll, {poll['gateways']} gateways, "
        f"{poll['poll_state_writes']:.0f} states changed | "
        f"{poll['poll_cpu_s'] * 1000:.0f} ms | "
        f"{poll['bare_fetch_parse_cpu_s'] * 1000:.0f} ms (bare client fetch+parse) | "
        f"{poll['poll_cpu_s'] / poll['bare_fetch_parse_cpu_s']:.1f}x | "
        f"< 100 ms: {'met' if poll['poll_cpu_s'] < 0.1 else 'MISSED'} |"
    )
    rows.append(
        f"| Poll with nothing changed, {poll['gateways']} gateways | "
        f"{poll['unchanged_poll_state_writes']} state writes, "
        f"{poll['unchanged_poll_cpu_s'] * 1000:.0f} ms | "
        f"{poll['bare_fetch_parse_cpu_s'] * 1000:.0f} ms (bare client) | "
        f"{poll['unchanged_poll_cpu_s'] / poll['bare_fetch_parse_cpu_s']:.1f}x | "
        f"0 writes: {'met' if poll['unchanged_poll_state_writes'] == 0 else 'MISSED'} |"
    )
    rows.append(
        f"| Setup, {poll['gateways']} gateways ({poll['entities']} entities) | "
        f"{poll['setup_cpu_s']:.2f} s CPU ({poll['setup_wall_s']:.2f} s wall) | "
        f"{poll['plain_states_cpu_s']:.2f} s (as many hass.states.async_set) | "
        f"{poll['setup_cpu_s'] / poll['plain_states_cpu_s']:.1f}x | "
        f"< 2 s: {'met' if poll['setup_cpu_s'] < 2 else 'MISSED'} |"
    )
    return _more_rows(results, rows)


def _more_rows(results: dict[str, Any], rows: list[str]) -> str:
    """The rows of the MQTT, push and memory benchmarks that ran."""
    if mqtt := results.get("mqtt"):
        rows.append(
            f"| MQTT uplinks per CPU second, 8 values each | "
            f"{mqtt['integration_per_s']:.0f}/s | "
            f"{mqtt['templates_per_s']:.0f}/s (MQTT sensors with templates), "
            f"{mqtt['floor_per_s']:.0f}/s (floor) | "
            f"{mqtt['vs_templates']:.2f}x templates, "
            f"{mqtt['vs_floor'] * 100:.0f} % of floor | "
            f">= 2x templates: {'met' if mqtt['met'] else 'MISSED'} |"
        )
    if direct := results.get("direct"):
        versus = ""
        met = direct["vs_floor"] >= 0.5
        if mqtt:
            vs_mqtt = direct["integration_per_s"] / mqtt["integration_per_s"]
            versus = f"{vs_mqtt:.2f}x HA's MQTT path, "
            met = met and vs_mqtt >= 1
        rows.append(
            f"| Uplinks per CPU second over the direct connection (mosquitto), "
            f"8 values each | {direct['integration_per_s']:.0f}/s | "
            f"{direct['floor_per_s']:.0f}/s (floor: bare aiomqtt client) | "
            f"{versus}{direct['vs_floor'] * 100:.0f} % of floor | "
            f">= 1x and >= 50 %: {'met' if met else 'MISSED'} |"
        )
    if push := results.get("push"):
        smallest, largest = push[0], push[-1]
        growth = (
            largest["integration_us_per_event"] / smallest["integration_us_per_event"]
        )
        for row in push:
            rows.append(
                f"| Uplink events applied per CPU second, {row['gateways']} gateways | "
                f"{row['integration_per_s']:.0f}/s "
                f"({row['integration_us_per_event']:.0f} µs/event, "
                f"{row['state_writes']} state writes) | "
                f"{row['bare_per_s']:.0f}/s (bare client read+parse) | "
                f"{row['integration_per_s'] / row['bare_per_s']:.2f}x | - |"
            )
        rows.append(
            f"| Per-event time, {largest['gateways']} against "
            f"{smallest['gateways']} gateways | {growth:.2f}x | - | - | "
            f"<= 1.5x: {'met' if growth <= 1.5 else 'MISSED'} |"
        )
    memory = results.get("memory_per_gateway")
    if memory is None:
        return "\n".join(rows)
    rows.append(
        f"| Memory per gateway ({memory['entities'] / memory['gateways']:.0f} "
        f"entities) | {memory['bytes_per_gateway'] / 1024:.1f} KiB | "
        f"{memory['plain_state_bytes_per_gateway'] / 1024:.1f} KiB (plain states) | "
        f"{memory['bytes_per_gateway'] / memory['plain_state_bytes_per_gateway']:.1f}x"
        f" | <= 100 KiB: {'met' if memory['bytes_per_gateway'] <= 100 * 1024 else 'MISSED'} |"
    )
    if device := results.get("memory_per_device"):
        rows.append(
            f"| Memory per end device ({device['entities'] / device['devices']:.0f} "
            f"entities) | {device['bytes_per_device'] / 1024:.1f} KiB | "
            f"{device['plain_state_bytes_per_device'] / 1024:.1f} KiB (plain states) | "
            f"{device['bytes_per_device'] / device['plain_state_bytes_per_device']:.1f}x"
            f" | <= 60 KiB: {'met' if device['bytes_per_device'] <= 60 * 1024 else 'MISSED'} |"
        )
    return "\n".join(rows)


async def main() -> None:
    """Run the benchmarks and report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller and faster")
    parser.add_argument("--json", type=Path, default=RESULTS, help="results file")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="write a cProfile of each benchmark's event loop to .bench/NAME.prof",
    )
    args = parser.parse_args()
    size = 250 if args.quick else 1000
    repeats = 3 if args.quick else 7

    steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        (
            "requests_per_poll",
            lambda: bench_requests(
                [1, 10, 100, 250] if args.quick else [1, 10, 100, 250, 1000]
            ),
        ),
        ("poll", lambda: bench_poll_and_setup(size, repeats)),
        ("mqtt", lambda: bench_mqtt(500 if args.quick else 2000, 20)),
        ("direct", lambda: bench_direct(500 if args.quick else 2000, 20)),
        (
            "push",
            lambda: bench_push(
                [10, 250] if args.quick else [10, 250, 1000],
                3000,
            ),
        ),
        ("memory_per_gateway", lambda: bench_memory_per_gateway(size // 4)),
        ("memory_per_device", lambda: bench_memory_per_device(100)),
    ]
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "quick": args.quick,
    }
    for name, step in steps:
        if args.only and name not in args.only:
            continue
        print(f"==> {name}", flush=True)
        started = time.perf_counter()
        profile = cProfile.Profile() if args.profile else None
        if profile:
            profile.enable()
        results[name] = await step()
        if profile:
            profile.disable()
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            profile.dump_stats(RESULTS.parent / f"{name}.prof")
        print(
            f"    {time.perf_counter() - started:.0f} s: {json.dumps(results[name])}",
            flush=True,
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print()
    if not args.only or "push" in args.only:
        print(table(results))
    print(f"\nWritten to {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
