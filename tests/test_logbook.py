"""Home Assistant's logbook: connections and silence, not every uplink.

The logbook lists every change of a sensor without unit of measurement or
state class (``is_sensor_continuous`` in ``homeassistant/components/logbook/
helpers.py``): the per-uplink timestamps and the best gateway would bury the
lines a user looks for. These tests read the logbook as the frontend does
(``logbook/get_events``) after several uplinks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
    mock_component,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import (
    MockHAClientWebSocket,
    MqttMockHAClient,
    WebSocketGenerator,
)

from .common import async_poll
from .fake_tts import GATEWAY_ROOFTOP, NOT_CONNECTED, FakeTTS
from .uplinks import encode, topic, uplink

GATEWAY_START = "2025-03-14T10:20:00+00:00"
DEVICE_START = "2025-11-07T09:00:00+00:00"
SILENT = "binary_sensor.feather_m0_1_silent"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder starts before Home Assistant, as its fixture requires."""


async def _setup_logbook(hass: HomeAssistant) -> None:
    """The logbook; its frontend dependency only registers a panel, mocked here.

    The unit tests' requirements leave the frontend package out.
    """
    mock_component(hass, "frontend")
    assert await async_setup_component(hass, "logbook", {})


async def _logged_entities(
    hass: HomeAssistant, client: MockHAClientWebSocket, since: datetime
) -> dict[str, int]:
    """The entities with logbook lines since a moment, with their line count."""
    await async_wait_recording_done(hass)
    await client.send_json_auto_id(
        {
            "type": "logbook/get_events",
            "start_time": since.isoformat(),
            "end_time": (dt_util.utcnow() + timedelta(hours=1)).isoformat(),
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    lines: dict[str, int] = {}
    for line in response["result"]:
        if (entity_id := line.get("entity_id")) is not None:
            lines[entity_id] = lines.get(entity_id, 0) + 1
    return lines


async def test_gateway_uplinks_write_no_logbook_lines(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """New uplinks on every poll: no lines; the disconnect has its line."""
    await _setup_logbook(hass)
    # Connected before the clock moves: the access token is issued now.
    client = await hass_ws_client(hass)
    freezer.move_to(GATEWAY_START)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)
    since = dt_util.utcnow()

    stats: Any = fake_tts.stats[GATEWAY_ROOFTOP]
    for _ in range(4):
        await async_poll(hass, freezer)
        # TTS's stats after an uplink: both moments move (ttnpb.GatewayConnectionStats).
        now = dt_util.utcnow().isoformat().replace("+00:00", "Z")
        stats["last_uplink_received_at"] = now
        stats["last_status_received_at"] = now
        stats["uplink_count"] = str(int(stats["uplink_count"]) + 1)
    await async_poll(hass, freezer)
    assert await _logged_entities(hass, client, since) == {}

    fake_tts.stats[GATEWAY_ROOFTOP] = NOT_CONNECTED
    await async_poll(hass, freezer)
    logged = await _logged_entities(hass, client, since)
    # The disconnect: connectivity, silence, the connection's start that is no
    # longer known, and the status event (disconnected, silent: newer Home
    # Assistant lists both, older ones the last of one moment).
    assert logged.pop("event.rooftop_gateway_status") in (1, 2)
    assert logged == {
        "binary_sensor.rooftop_gateway_connectivity": 1,
        "binary_sensor.rooftop_gateway_silent": 1,
        "sensor.rooftop_gateway_connected_since": 1,
    }


async def test_end_device_uplinks_write_no_logbook_lines(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Uplinks from changing gateways write no lines; falling silent and back do."""
    await _setup_logbook(hass)
    client = await hass_ws_client(hass)
    freezer.move_to(DEVICE_START)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    async def send(f_cnt: int) -> None:
        gateway = ("rooftop", "garden", "neighbour-gw")[f_cnt % 3]
        message = uplink(
            f_cnt=f_cnt,
            payload=bytes([f_cnt]),
            gateways=((gateway, -90.0 - f_cnt, 5.0),),
            spreading_factor=7 + f_cnt % 3,
        )
        async_fire_mqtt_message(hass, topic(), encode(message))
        await hass.async_block_till_done()

    await send(1)
    freezer.tick(timedelta(seconds=1))
    since = dt_util.utcnow()
    for f_cnt in range(2, 8):
        freezer.tick(timedelta(minutes=1))
        await send(f_cnt)
    assert hass.states.get("sensor.feather_m0_1_value").state == "7"
    # A single gateway hears it: its coverage problem may turn on, once.
    coverage = "binary_sensor.feather_m0_1_no_fallback_gateway"
    assert set(await _logged_entities(hass, client, since)) <= {coverage}

    # Silent past the threshold (15 minutes at least), then back.
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(SILENT).state == STATE_ON
    await send(8)
    assert hass.states.get(SILENT).state == STATE_OFF
    logged = await _logged_entities(hass, client, since)
    assert logged.pop(SILENT) == 2
    assert set(logged) <= {coverage}
