"""Coverage and the fleet at a glance, against what the simulator did.

Which gateways carried each end device comes from the simulated
application's Storage Integration, which keeps every uplink the simulator
published (``tts_simulator/storage.py``; each ``ApplicationUp``'s
``rx_metadata`` lists the gateways that received it, lorawan-stack
``api/api.md`` ApplicationUplink). The soil sensor is within reach of one
gateway only (``tts_simulator/devices.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from tts_simulator.stack import HomeAssistantClient

from .conftest import (
    APPLICATION_ID,
    END_DEVICES,
    GATEWAYS,
    Stack,
    object_id,
    simulator,
    wait_for_entry_devices,
)

SINGLE = "soil-sensor"
# Connected but quiet: it carries no uplink, so disconnecting it moves no
# device to another gateway, and no other test counts its uplinks.
BARN = "barn-gateway"
# How long coverage may take to show what the uplinks carried.
WAIT_SECONDS = 60


async def carried_by(stack: Stack) -> dict[str, set[str]]:
    """Per end device, the gateways of every uplink the simulator published.

    ``GET .../packages/storage/uplink_message``, one ``{"result": ...}`` per
    line (TTS's JSON stream; docs: integrations/storage/retrieve).
    """
    assert stack.app_broker is not None
    state = await simulator(stack, "GET", "/sim/state")
    assert state["storage"]["enabled"], "the storage keeps no uplinks"
    url = (
        f"{stack.simulator_url}/api/v3/as/applications/{APPLICATION_ID}"
        "/packages/storage/uplink_message"
    )
    headers = {"Authorization": f"Bearer {stack.app_broker.api_key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers) as response,
    ):
        response.raise_for_status()
        text = await response.text()
    carried: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        message = json.loads(line)["result"]
        device_id = message["end_device_ids"]["device_id"]
        carried.setdefault(device_id, set()).update(
            rx["gateway_ids"]["gateway_id"]
            for rx in message["uplink_message"].get("rx_metadata", [])
        )
    return carried


def entity_ids(
    entities: list[dict[str, Any]], device_id: str, translation_key: str
) -> str:
    """The entity of a device with this translation key."""
    (entity_id,) = [
        entity["entity_id"]
        for entity in entities
        if entity["device_id"] == device_id
        and entity["translation_key"] == translation_key
    ]
    return str(entity_id)


async def test_single_gateway_device_is_flagged_and_its_gateway_names_it(
    stack: Stack, hass_client: HomeAssistantClient
) -> None:
    entry_id, found = await wait_for_entry_devices(hass_client)
    (entities,) = await hass_client.websocket({"type": "config/entity_registry/list"})
    entities = [e for e in entities if e["config_entry_id"] == entry_id]
    names = {
        gateway_id: device["name"] for gateway_id, device in found.gateways.items()
    }

    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        carried = await carried_by(stack)
        states = await hass_client.states()
        wrong: dict[str, Any] = {}
        for device_id in END_DEVICES:
            device = found.end_devices[device_id]["id"]
            reach = states[entity_ids(entities, device, "gateways_in_reach")]
            problem = states[entity_ids(entities, device, "no_fallback_gateway")]
            gateways = carried.get(device_id, set())
            expected = (
                str(len(gateways)),
                sorted(names[gateway_id] for gateway_id in gateways),
                "on" if len(gateways) == 1 else "off",
            )
            shown = (
                reach["state"],
                reach["attributes"]["gateways"],
                problem["state"],
            )
            if shown != expected:
                wrong[device_id] = (shown, expected)
        # The simulator's other devices reach two gateways within a few uplinks.
        several = [d for d in END_DEVICES if len(carried.get(d, ())) > 1]
        if not wrong and several:
            break
        assert time.monotonic() < deadline, (
            f"(shown, carried): {wrong}; several gateways: {several}"
        )
        await asyncio.sleep(1)

    # The one gateway that hears the soil sensor names it, and only such devices.
    assert len(carried[SINGLE]) == 1, (
        f"{SINGLE} reached {carried[SINGLE]}: a gateway it uses was disconnected"
        " earlier in this session"
    )
    (gateway_id,) = carried[SINGLE]
    only_here = states[
        entity_ids(entities, found.gateways[gateway_id]["id"], "end_devices_only_here")
    ]
    alone = sorted(
        found.end_devices[device_id]["name"]
        for device_id, gateways in carried.items()
        if gateways == {gateway_id} and device_id in END_DEVICES
    )
    assert found.end_devices[SINGLE]["name"] in alone
    assert only_here["state"] == str(len(alone)), only_here
    assert only_here["attributes"]["end_devices_only_here"] == alone, only_here
    # A gateway that hears nothing alone lists nothing.
    for other, device in found.gateways.items():
        if other == gateway_id or any(
            gateways == {other} for gateways in carried.values()
        ):
            continue
        other_state = states[
            entity_ids(entities, device["id"], "end_devices_only_here")
        ]
        assert other_state["state"] == "0", other_state
        assert other_state["attributes"]["end_devices_only_here"] == [], other_state
    # Entity IDs as a user finds them: the device's name and the entity's.
    assert (
        states[f"binary_sensor.{object_id(SINGLE)}_no_fallback_gateway"]["state"]
        == "on"
    )


async def fleet_states(
    client: HomeAssistantClient, entry_id: str
) -> dict[str, dict[str, Any]]:
    """The fleet sensors of the account's device, by translation key."""
    (entities,) = await client.websocket({"type": "config/entity_registry/list"})
    states = await client.states()
    return {
        entity["translation_key"]: states[entity["entity_id"]]
        for entity in entities
        if entity["config_entry_id"] == entry_id
        and entity["translation_key"]
        in ("gateways_connected", "gateways_silent", "end_devices_silent")
    }


async def wait_for_connected(
    client: HomeAssistantClient, entry_id: str, expected: int
) -> dict[str, dict[str, Any]]:
    """Wait until *Gateways connected* shows `expected`; the fleet sensors."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        fleet = await fleet_states(client, entry_id)
        if fleet["gateways_connected"]["state"] == str(expected):
            return fleet
        assert time.monotonic() < deadline, fleet
        await asyncio.sleep(0.5)


async def test_fleet_counts_follow_a_gateway_disconnecting(
    stack: Stack, hass_client: HomeAssistantClient
) -> None:
    entry_id, _found = await wait_for_entry_devices(hass_client)
    gateways = (await simulator(stack, "GET", "/sim/state"))["gateways"]
    connected = [g["gateway_id"] for g in gateways if g["state"] == "connected"]
    assert BARN in connected
    fleet = await wait_for_connected(hass_client, entry_id, len(connected))
    assert fleet["gateways_connected"]["attributes"]["monitored"] == GATEWAYS
    # The other counts are those of the sensors a user sees on each device.
    (entities,) = await hass_client.websocket({"type": "config/entity_registry/list"})
    states = await hass_client.states()
    # Gateways and end devices both have a Silent sensor; unique IDs tell
    # them apart (identifiers.py: <account>/gateway/… and <account>/device/…).
    on = {
        kind: sum(
            states.get(e["entity_id"], {}).get("state") == "on"
            for e in entities
            if e["config_entry_id"] == entry_id
            and e["translation_key"] == "silent"
            and f"/{kind}/" in e["unique_id"]
        )
        for kind in ("gateway", "device")
    }
    assert fleet["gateways_silent"]["state"] == str(on["gateway"]), (fleet, on)
    assert fleet["end_devices_silent"]["state"] == str(on["device"]), (fleet, on)
    assert fleet["end_devices_silent"]["attributes"]["known"] == len(END_DEVICES)

    await simulator(stack, "POST", f"/sim/gateways/{BARN}/disconnect")
    try:
        fleet = await wait_for_connected(hass_client, entry_id, len(connected) - 1)
        assert fleet["gateways_connected"]["attributes"]["monitored"] == GATEWAYS
    finally:
        await simulator(stack, "POST", f"/sim/gateways/{BARN}/connect")
    await wait_for_connected(hass_client, entry_id, len(connected))
