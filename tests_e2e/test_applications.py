"""An application connected directly: a real Home Assistant, the simulator's
authenticated MQTT server (mosquitto with a password file) and its HTTP API.

Uplinks reach Home Assistant with its MQTT integration switched off; a
downlink sent with the action reaches the simulator through its HTTP API (the
key may write downlinks) and TTS's answers show on the device; and the time from a published uplink to
its state in Home Assistant is measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import json
import statistics
import threading
import time
from typing import Any

import aiohttp
import pytest

from tts_simulator.app_broker import AppBroker
from tts_simulator.stack import LOCALHOST, HomeAssistantClient

from .conftest import (
    APPLICATION_ID,
    END_DEVICE_NAMES,
    Stack,
    entry_devices,
    object_id,
    simulator,
    wait_for_state,
)
from .test_end_devices import last_seen_state

FEATHER = "feather-m0"
LATENCY_UPLINKS = 100


class AppUplinks:
    """Uplinks on the application's MQTT server, with when they arrived."""

    def __init__(self, broker: AppBroker) -> None:
        """Log in as the application, as Home Assistant does."""
        from paho.mqtt.client import Client, MQTTMessage, MQTTv311
        from paho.mqtt.enums import CallbackAPIVersion

        self._lock = threading.Lock()
        self.arrived: dict[tuple[str, str], float] = {}
        self._ready = threading.Event()
        topic = f"v3/{broker.username}/devices/+/up"

        def on_connect(client: Client, *_args: Any) -> None:
            client.subscribe(topic)

        def on_message(_client: Client, _data: Any, message: MQTTMessage) -> None:
            uplink = json.loads(message.payload)
            key = (
                uplink["end_device_ids"]["device_id"],
                last_seen_state(uplink["uplink_message"]["received_at"]),
            )
            with self._lock:
                self.arrived.setdefault(key, time.time())

        self._client = Client(
            CallbackAPIVersion.VERSION2, client_id="e2e-latency", protocol=MQTTv311
        )
        self._client.username_pw_set(broker.username, broker.api_key)
        self._client.on_connect = on_connect
        self._client.on_subscribe = lambda *_args: self._ready.set()
        self._client.on_message = on_message
        self._client.connect(LOCALHOST, broker.port)
        self._client.loop_start()
        assert self._ready.wait(10), "no SUBACK from the application's MQTT server"

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def app_uplinks(app_broker: AppBroker) -> Iterator[AppUplinks]:
    """Record the application's uplinks from now on."""
    recorder = AppUplinks(app_broker)
    yield recorder
    recorder.close()


async def _entry_id(client: HomeAssistantClient, domain: str) -> str:
    return next(
        entry["entry_id"]
        for entry in await client.config_entries()
        if entry["domain"] == domain
    )


async def test_uplinks_arrive_with_the_mqtt_integration_off(
    hass_client: HomeAssistantClient, application_subentry: str
) -> None:
    """Home Assistant's MQTT integration disabled: the devices keep updating."""
    mqtt_entry = await _entry_id(hass_client, "mqtt")
    await hass_client.websocket(
        {
            "type": "config_entries/disable",
            "entry_id": mqtt_entry,
            "disabled_by": "user",
        }
    )
    try:
        entity_id = f"sensor.{object_id(FEATHER)}_last_seen"
        first = (await hass_client.states())[entity_id]["state"]
        deadline = time.monotonic() + 30
        while (await hass_client.states())[entity_id]["state"] == first:
            assert time.monotonic() < deadline, "no uplink without MQTT"
            await asyncio.sleep(0.5)
        silent = await wait_for_state(
            hass_client, f"binary_sensor.{object_id(FEATHER)}_silent", "off"
        )
        assert silent["attributes"]["friendly_name"] == (
            f"{END_DEVICE_NAMES[FEATHER]} Silent"
        )
    finally:
        await hass_client.websocket(
            {
                "type": "config_entries/disable",
                "entry_id": mqtt_entry,
                "disabled_by": None,
            }
        )


async def test_downlink_reaches_the_simulator(
    stack: Stack, hass_client: HomeAssistantClient, application_subentry: str
) -> None:
    """send_downlink pushes through the HTTP API; queued and sent come back."""
    entry_id = await _entry_id(hass_client, "ttn_gateway")
    (devices,) = await hass_client.websocket({"type": "config/device_registry/list"})
    feather = entry_devices(devices, entry_id).end_devices[FEATHER]
    before = len((await simulator(stack, "GET", "/sim/state"))["downlinks"])
    await hass_client.call_service(
        "ttn_gateway",
        "send_downlink",
        {"device_id": feather["id"], "f_port": 1, "payload": "01FF"},
    )
    deadline = time.monotonic() + 30
    while (
        len(downlinks := (await simulator(stack, "GET", "/sim/state"))["downlinks"])
        == before
    ):
        assert time.monotonic() < deadline, "the simulator got no downlink"
        await asyncio.sleep(0.2)
    record = downlinks[-1]
    assert (record["application_id"], record["device_id"]) == (APPLICATION_ID, FEATHER)
    assert (record["via"], record["replace"]) == ("http", False)
    assert record["downlinks"] == [
        {"f_port": 1, "priority": "NORMAL", "confirmed": False, "frm_payload": "Af8="}
    ]
    state = await wait_for_state(
        hass_client, f"sensor.{object_id(FEATHER)}_last_downlink", "sent"
    )
    assert state["attributes"]["f_port"] == 1


async def test_uplink_to_state_latency(
    stack: Stack,
    hass_client: HomeAssistantClient,
    application_subentry: str,
    app_uplinks: AppUplinks,
) -> None:
    """Median time from an uplink on TTS's MQTT server to its state in HA."""
    watched = {
        f"sensor.{object_id(device)}_last_seen": device for device in END_DEVICE_NAMES
    }
    shown: dict[tuple[str, str], float] = {}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{hass_client.base_url}/api/websocket") as ws,
    ):
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": hass_client.token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json(
            {"id": 1, "type": "subscribe_events", "event_type": "state_changed"}
        )
        deadline = time.monotonic() + LATENCY_UPLINKS * 3
        while len(shown) < LATENCY_UPLINKS:
            assert time.monotonic() < deadline, f"{len(shown)} uplinks shown"
            message = await asyncio.wait_for(ws.receive_json(), 30)
            arrived = time.time()
            if message.get("type") != "event":
                continue
            data = message["event"]["data"]
            device = watched.get(data["entity_id"])
            if device is None or data["new_state"] is None:
                continue
            shown.setdefault((device, data["new_state"]["state"]), arrived)
    latencies = [
        shown_at - app_uplinks.arrived[key]
        for key, shown_at in shown.items()
        if key in app_uplinks.arrived
    ]
    assert len(latencies) >= LATENCY_UPLINKS * 0.9, (len(latencies), len(shown))
    median = statistics.median(latencies)
    print(  # noqa: T201 - the figure the closing note reports
        f"\nuplink to state over the direct connection: median {median * 1000:.1f} ms,"
        f" p90 {statistics.quantiles(latencies, n=10)[-1] * 1000:.1f} ms,"
        f" max {max(latencies) * 1000:.1f} ms over {len(latencies)} uplinks"
    )
