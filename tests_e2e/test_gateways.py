"""What a user sees in a real Home Assistant set up against the simulator."""

from __future__ import annotations

import asyncio
import time

from tts_simulator.stack import HomeAssistantClient

from .conftest import (
    END_DEVICE_NAMES,
    END_DEVICES,
    GATEWAYS,
    Stack,
    simulator,
    wait_for_entry_devices,
    wait_for_state,
)

ROOFTOP = "rooftop-gateway"


async def poll_now(client: HomeAssistantClient, entity_id: str) -> None:
    """Make the integration poll now, as the entity's "update" action does."""
    await client.call_service(
        "homeassistant", "update_entity", {"entity_id": entity_id}
    )


async def test_config_entries_devices_and_entities(
    hass_client: HomeAssistantClient,
) -> None:
    entries = {entry["domain"]: entry for entry in await hass_client.config_entries()}
    assert entries["ttn_gateway"]["state"] == "loaded"
    assert entries["ttn_gateway"]["title"].startswith("demo (127.0.0.1:")
    assert entries["mqtt"]["state"] == "loaded"

    entry_id, found = await wait_for_entry_devices(hass_client)
    assert entry_id == entries["ttn_gateway"]["entry_id"]
    (entities,) = await hass_client.websocket({"type": "config/entity_registry/list"})
    gateways = {device["name"]: device for device in found.gateways.values()}
    assert set(gateways) == {
        "Rooftop gateway",
        "Garden gateway",
        "Barn gateway",
        "Attic gateway",
        "Spare gateway",
    }
    assert len(found.gateways) == GATEWAYS
    rooftop = found.gateways[ROOFTOP]
    assert rooftop["name"] == "Rooftop gateway"
    # The brand's name from the Device Repository; the model is not in it.
    assert (rooftop["manufacturer"], rooftop["model"]) == (
        "RAKwireless Technology Co.",
        "rak7248",
    )
    assert rooftop["configuration_url"].endswith(f"/console/gateways/{ROOFTOP}")
    assert set(found.end_devices) == set(END_DEVICES)
    assert {device["name"] for device in found.end_devices.values()} == set(
        END_DEVICE_NAMES.values()
    )
    ours = [e for e in entities if e["config_entry_id"] == entry_id]
    by_device = {device["id"]: device for device in found.gateways.values()} | {
        device["id"]: device for device in found.end_devices.values()
    }
    # The rest are the fleet sensors, on the account's own device.
    (account,) = {e["device_id"] for e in ours} - set(by_device)
    assert {e["translation_key"] for e in ours if e["device_id"] == account} >= {
        "gateways_connected",
        "gateways_silent",
    }
    # Gateway entities belong to gateways, end-device entities to end devices.
    rooftop_entities = {e["entity_id"] for e in ours if e["device_id"] == rooftop["id"]}
    assert "binary_sensor.rooftop_gateway_connectivity" in rooftop_entities
    assert not any("feather" in entity for entity in rooftop_entities)
    feather_id = found.end_devices["feather-m0"]["id"]
    feather_entities = {e["entity_id"] for e in ours if e["device_id"] == feather_id}
    assert "binary_sensor.feather_m0_on_the_balcony_silent" in feather_entities
    assert "sensor.feather_m0_on_the_balcony_value" in feather_entities

    states = await hass_client.states()
    assert states["binary_sensor.rooftop_gateway_connectivity"]["state"] == "on"
    assert states["binary_sensor.barn_gateway_connectivity"]["state"] == "on"
    assert states["binary_sensor.attic_gateway_connectivity"]["state"] == "off"
    assert states["binary_sensor.spare_gateway_connectivity"]["state"] == "off"
    assert states["sensor.spare_gateway_uplinks"]["state"] == "unknown"
    assert int(states["sensor.rooftop_gateway_uplinks"]["state"]) > 0
    # Diagnostics a normal user does not need exist, disabled by default.
    registered = {e["entity_id"]: e for e in ours}
    for entity_id in (
        "sensor.garden_gateway_protocol",
        "sensor.rooftop_gateway_temperature",
    ):
        assert registered[entity_id]["disabled_by"] == "integration"
        assert entity_id not in states


async def test_counters_and_disconnect_reach_ha_in_one_poll(
    stack: Stack, hass_client: HomeAssistantClient
) -> None:
    entity = "sensor.rooftop_gateway_uplinks"
    before = int((await hass_client.states())[entity]["state"])
    interval = 10  # the rooftop gateway hears an uplink at least this often
    await asyncio.sleep(interval + 1)
    await poll_now(hass_client, entity)
    deadline = time.monotonic() + 20
    while int((await hass_client.states())[entity]["state"]) <= before:
        assert time.monotonic() < deadline, "uplink counter did not grow"
        await asyncio.sleep(0.5)

    await simulator(stack, "POST", f"/sim/gateways/{ROOFTOP}/disconnect")
    await poll_now(hass_client, "binary_sensor.rooftop_gateway_connectivity")
    await wait_for_state(
        hass_client, "binary_sensor.rooftop_gateway_connectivity", "off"
    )
    states = await hass_client.states()
    assert states["sensor.rooftop_gateway_connected_since"]["state"] == "unknown"
    assert states["sensor.rooftop_gateway_uplinks"]["state"] != "unavailable"

    await simulator(stack, "POST", f"/sim/gateways/{ROOFTOP}/connect")
    await asyncio.sleep(11)  # the coordinator's refresh debouncer
    await poll_now(hass_client, "binary_sensor.rooftop_gateway_connectivity")
    await wait_for_state(
        hass_client, "binary_sensor.rooftop_gateway_connectivity", "on"
    )


async def test_prometheus_exports_gateway_sensors(
    hass_client: HomeAssistantClient,
) -> None:
    metrics = await hass_client.text("/api/prometheus")
    uplinks = [
        line
        for line in metrics.splitlines()
        if 'entity="sensor.rooftop_gateway_uplinks"' in line
        and not line.startswith("#")
    ]
    assert uplinks
    assert any(
        'entity="binary_sensor.attic_gateway_connectivity"' in line
        and line.endswith(" 0.0")
        for line in metrics.splitlines()
    )
    assert float(uplinks[0].rsplit(" ", 1)[1]) > 0
