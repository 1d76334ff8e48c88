"""The Things Network's fair use: each device's airtime today, against a TTN cluster.

Fair use applies only to servers of The Things Network, so this module adds a
second account, on ``eu1`` as a user types it: the stack's Home Assistant
reaches the TTN cluster host names at the simulator's https port
(``tts_simulator/cluster.py``). Its application's uplinks arrive through
Home Assistant's MQTT integration. The devices are paused while the account
is added, so every uplink it counts is one recorded here; the account is
removed at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import time
from typing import Any

import pytest

from tts_simulator.stack import DOMAIN, HomeAssistantClient

from .conftest import (
    APPLICATION_ID,
    DEVICE_INTERVAL,
    END_DEVICES,
    Stack,
    entry_devices,
    simulator,
    wait_for_entry_devices,
)
from .test_end_devices import UPLINK_TOPIC, PublishedUplinks, parse_time

# A cluster of The Things Network, as the config flow takes it.
TTN_SERVER = "eu1"
TTN_HOST = "eu1.cloud.thethings.network"
# Uplinks of each device counted live (DEVICE_INTERVAL apart).
UPLINKS = 3
WAIT_SECONDS = 90


def consumed_airtime(uplink: dict[str, Any]) -> float:
    """ApplicationUplink.consumed_airtime, a protobuf Duration ("0.370688s")."""
    text = uplink["uplink_message"]["consumed_airtime"]
    assert text.endswith("s"), text
    return float(text[:-1])


@pytest.fixture
async def ttn_account(
    stack: Stack, hass_client: HomeAssistantClient
) -> AsyncIterator[str]:
    """A second account on the TTN cluster, with the application; removed after.

    The devices are paused meanwhile; they send again at the end.
    """
    await wait_for_entry_devices(hass_client)
    await simulator(stack, "POST", "/sim/devices/pause")
    entry_id = None
    try:
        await asyncio.sleep(1)  # an uplink of the last tick is delivered
        result = await hass_client.add_entry(
            DOMAIN, {"server": TTN_SERVER, "api_key": stack.api_key}
        )
        entry_id = result["result"]["entry_id"]
        assert result["title"] == f"demo ({TTN_HOST})", result
        assert stack.app_broker is not None
        await hass_client.add_subentry(
            entry_id,
            "application",
            [
                {
                    "application_id": APPLICATION_ID,
                    "api_key": stack.app_broker.api_key,
                    "transport": "mqtt",
                },
                {"uplink_topic": UPLINK_TOPIC},
            ],
        )
        yield entry_id
    finally:
        if entry_id is not None:
            await hass_client.remove_entry(entry_id)
        await simulator(stack, "POST", "/sim/devices/resume")


def number(state: dict[str, Any] | None) -> float | None:
    """A sensor's state as a number; None while it has none."""
    if state is None or state["state"] in ("unknown", "unavailable"):
        return None
    return float(state["state"])


async def wait_for_fair_use_entities(
    client: HomeAssistantClient, entry_id: str
) -> dict[str, dict[str, str]]:
    """Per device ID, its fair use entities by key (from TTS's device list)."""
    keys = ("airtime_today", "fair_use_exceeded")
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        (devices,) = await client.websocket({"type": "config/device_registry/list"})
        (entities,) = await client.websocket({"type": "config/entity_registry/list"})
        found = entry_devices(devices, entry_id).end_devices
        by_device = {device["id"]: device_id for device_id, device in found.items()}
        fair_use: dict[str, dict[str, str]] = {}
        for entity in entities:
            if (
                entity["config_entry_id"] == entry_id
                and entity["translation_key"] in keys
                and entity["device_id"] in by_device
            ):
                fair_use.setdefault(by_device[entity["device_id"]], {})[
                    entity["translation_key"]
                ] = entity["entity_id"]
                if entity["translation_key"] == "airtime_today":
                    # A diagnostic a user turns on.
                    assert entity["disabled_by"] in ("integration", None), entity
        if set(fair_use) == set(END_DEVICES) and all(
            len(found) == len(keys) for found in fair_use.values()
        ):
            return fair_use
        assert time.monotonic() < deadline, f"fair use entities: {fair_use}"
        await asyncio.sleep(1)


async def test_airtime_today_is_the_sum_of_the_days_uplinks(
    stack: Stack, hass_client: HomeAssistantClient, ttn_account: str
) -> None:
    entry_id = ttn_account
    fair_use = await wait_for_fair_use_entities(hass_client, entry_id)
    sensors = {
        device_id: found["airtime_today"] for device_id, found in fair_use.items()
    }
    for entity_id in sensors.values():
        await hass_client.websocket(
            {
                "type": "config/entity_registry/update",
                "entity_id": entity_id,
                "disabled_by": None,
            }
        )
    # Enabled: the entry reloads (after 30 s) and adds them, at 0 (no uplink yet).
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        states = await hass_client.states()
        shown = {d: number(states.get(e)) for d, e in sensors.items()}
        if all(value == 0 for value in shown.values()):
            break
        assert time.monotonic() < deadline, f"before any uplink: {shown}"
        await asyncio.sleep(1)

    recorder = PublishedUplinks(stack.mqtt_port)
    try:
        await simulator(stack, "POST", "/sim/devices/resume")
        deadline = time.monotonic() + WAIT_SECONDS
        while any(len(recorder.uplinks(d)) < UPLINKS for d in END_DEVICES):
            assert time.monotonic() < deadline, "the devices sent too little"
            await asyncio.sleep(0.5)
        await simulator(stack, "POST", "/sim/devices/pause")
        await asyncio.sleep(DEVICE_INTERVAL / 2)  # one published just before
        # The UTC day of each uplink's reception (TTS's received_at) counts.
        today = datetime.now(UTC).date()
        expected = {
            device_id: round(
                sum(
                    consumed_airtime(uplink)
                    for uplink in recorder.uplinks(device_id)
                    if parse_time(uplink["uplink_message"]["received_at"]).date()
                    == today
                ),
                6,
            )
            for device_id in END_DEVICES
        }
    finally:
        recorder.close()

    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        states = await hass_client.states()
        shown = {d: number(states.get(e)) for d, e in sensors.items()}
        if all(
            value is not None and abs(value - expected[d]) < 2e-6
            for d, value in shown.items()
        ):
            break
        assert time.monotonic() < deadline, f"shown {shown}, expected {expected}"
        await asyncio.sleep(0.5)
    for device_id, found in fair_use.items():
        assert (
            states[found["airtime_today"]]["attributes"]["unit_of_measurement"] == "s"
        )
        # Far below the 30 s a day: no fair use problem.
        problem = states[found["fair_use_exceeded"]]
        assert problem["state"] == "off", problem
        assert problem["attributes"]["airtime_today"] == round(expected[device_id], 3)
