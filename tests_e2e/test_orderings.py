"""The orderings TTS really produces, against a real Home Assistant.

A superseded connection's late disconnect, stats that lag the events, lines
on the events stream that are no events, and a gateway whose events TTS
refuses to stream: each made by the simulator, each seen as a user sees it.
"""

from __future__ import annotations

import asyncio
import time

from tts_simulator.stack import HomeAssistantClient

from .conftest import Stack, simulator, wait_for_state
from .test_gateways import poll_now

ROOFTOP = "rooftop-gateway"
GARDEN = "garden-gateway"
BARN = "barn-gateway"


async def _states_for(
    client: HomeAssistantClient, entity_id: str, seconds: float
) -> list[str]:
    """The entity's state, sampled every 0.2 s for a while."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append((await client.states())[entity_id]["state"])
        await asyncio.sleep(0.2)
    return seen


async def test_late_disconnect_of_superseded_connection(
    stack: Stack, hass_client: HomeAssistantClient
) -> None:
    """The gateway reconnects; its old connection's end, 2 s later, is no alarm."""
    entity = "binary_sensor.barn_gateway_connectivity"
    await wait_for_state(hass_client, entity, "on")
    since = (await hass_client.states())["sensor.barn_gateway_connected_since"]
    await simulator(stack, "POST", f"/sim/gateways/{BARN}/reconnect", {"late": 2})
    seen = await _states_for(hass_client, entity, 6)
    assert set(seen) == {"on"}
    states = await hass_client.states()
    assert states["sensor.barn_gateway_connected_since"]["state"] != since["state"]
    assert states["binary_sensor.barn_gateway_silent"]["state"] == "off"
    # The Status event entity reported no disconnect.
    assert states["event.barn_gateway_status"]["attributes"].get("event_type") != (
        "disconnected"
    )


async def test_lagging_poll_does_not_move_counters_back(
    stack: Stack, hass_client: HomeAssistantClient
) -> None:
    """Stats answered ten minutes behind: the counter keeps its larger value."""
    entity = "sensor.rooftop_gateway_uplinks"
    await poll_now(hass_client, entity)
    await asyncio.sleep(2)
    before = int((await hass_client.states())[entity]["state"])
    await simulator(stack, "POST", f"/sim/gateways/{ROOFTOP}/lag", {"seconds": 600})
    try:
        await asyncio.sleep(11)  # the coordinator's refresh debouncer
        await poll_now(hass_client, entity)
        seen = await _states_for(hass_client, entity, 4)
        assert all(int(state) >= before for state in seen), (before, seen)
    finally:
        await simulator(stack, "POST", f"/sim/gateways/{ROOFTOP}/lag", {"seconds": 0})


async def test_garbage_on_the_stream_loses_nothing(
    stack: Stack, hass_client: HomeAssistantClient
) -> None:
    """Lines that are no events are skipped; the next disconnect shows at once."""
    entity = "binary_sensor.garden_gateway_connectivity"
    await wait_for_state(hass_client, entity, "on")
    for kind in ("malformed", "huge-counter", "nested", "binary"):
        await simulator(stack, "POST", "/sim/stream/garbage", {"kind": kind})
    await simulator(stack, "POST", f"/sim/gateways/{GARDEN}/disconnect")
    try:
        await wait_for_state(hass_client, entity, "off", seconds=5)
    finally:
        await simulator(stack, "POST", f"/sim/gateways/{GARDEN}/connect")
    await wait_for_state(hass_client, entity, "on", seconds=5)


async def test_refused_gateway_is_named_and_the_others_stream(
    stack: Stack, hass_client: HomeAssistantClient
) -> None:
    """TTS refuses one gateway's events: a repair issue, push for the rest."""
    await simulator(stack, "POST", "/sim/gateways/spare-gateway/refuse-events")
    await simulator(stack, "POST", "/sim/stream/drop")
    deadline = time.monotonic() + 30
    while True:
        (issues,) = await hass_client.websocket({"type": "repairs/list_issues"})
        found = [
            issue
            for issue in issues["issues"]
            if issue["domain"] == "ttn_gateway"
            and issue["issue_id"].startswith("no_event_rights_")
        ]
        if found:
            break
        assert time.monotonic() < deadline, issues
        await asyncio.sleep(0.5)
    assert found[0]["translation_placeholders"]["gateways"] == "spare-gateway"
    # The other gateways' events still arrive within seconds.
    entity = "binary_sensor.garden_gateway_connectivity"
    await simulator(stack, "POST", f"/sim/gateways/{GARDEN}/disconnect")
    try:
        await wait_for_state(hass_client, entity, "off", seconds=10)
    finally:
        await simulator(stack, "POST", f"/sim/gateways/{GARDEN}/connect")
        await simulator(stack, "POST", "/sim/gateways/spare-gateway/allow-events")
    await wait_for_state(hass_client, entity, "on", seconds=10)
