"""Gateway silence: disconnected or deaf, on time, with per-gateway thresholds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    mock_restore_cache_with_extra_data,
)

from .fake_tts import GATEWAY_ROOFTOP, GATEWAY_STATION, FakeTTS

ROOFTOP_SILENT = "binary_sensor.rooftop_gateway_silent"
ROOFTOP_THRESHOLD = "number.rooftop_gateway_silence_threshold"
ROOFTOP_EVENT = "event.rooftop_gateway_status"
STATION_SILENT = "binary_sensor.basic_station_gw_silent"
# The rooftop gateway's last uplink was at 10:15:38, the station's at 10:14:59.
START = "2025-03-14T10:20:00+00:00"

pytestmark = pytest.mark.freeze_time(START)


async def _at(hass: HomeAssistant, freezer: FrozenDateTimeFactory, moment: str) -> None:
    """Move the clock to a moment, firing every timer due on the way."""
    target = datetime.fromisoformat(moment)
    freezer.move_to(target)
    async_fire_time_changed(hass, target)
    await hass.async_block_till_done(wait_background_tasks=True)


def _event_types(hass: HomeAssistant, entity_id: str) -> list[str]:
    events: list[str] = []

    def record(event: Any) -> None:
        state = event.data["new_state"]
        if (
            event.data["entity_id"] == entity_id
            and state is not None
            and (event_type := state.attributes.get("event_type")) is not None
        ):
            events.append(event_type)

    hass.bus.async_listen("state_changed", record)
    return events


@pytest.mark.usefixtures("init_integration")
async def test_kinds_of_silence(hass: HomeAssistant) -> None:
    """Disconnected and never connected gateways are silent; active ones not."""
    rooftop = hass.states.get(ROOFTOP_SILENT)
    assert rooftop.state == STATE_OFF
    assert rooftop.attributes["device_class"] == "problem"
    assert rooftop.attributes["threshold"] == 30
    assert rooftop.attributes["reason"] is None
    garden = hass.states.get("binary_sensor.kerlink_garden_silent")
    assert garden.state == STATE_ON
    assert garden.attributes["reason"] == "disconnected"
    assert hass.states.get("binary_sensor.never_connected_silent").state == STATE_ON
    # Basic Station: its only status is from the connect, hours ago; the
    # uplinks count.
    assert hass.states.get(STATION_SILENT).state == STATE_OFF


@pytest.mark.usefixtures("init_integration")
async def test_deaf_after_threshold_between_polls(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """A connected gateway without uplinks turns silent when the threshold ends."""
    events = _event_types(hass, ROOFTOP_EVENT)
    await _at(hass, freezer, "2025-03-14T10:45:37+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_OFF
    # The station's threshold ended at 10:44:59.
    assert hass.states.get(STATION_SILENT).state == STATE_ON

    # 10:45:38.09 is between two polls: the timer flips it.
    await _at(hass, freezer, "2025-03-14T10:45:38.2+00:00")
    silent = hass.states.get(ROOFTOP_SILENT)
    assert silent.state == STATE_ON
    assert silent.attributes["reason"] == "no_uplink"
    assert events == ["silent"]
    assert hass.states.get(ROOFTOP_EVENT).attributes["reason"] == "no_uplink"


async def test_uplink_recovers(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A new uplink seen by a poll ends the silence."""
    await _at(hass, freezer, "2025-03-14T10:50:00+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_ON
    events = _event_types(hass, ROOFTOP_EVENT)
    stats: Any = fake_tts.stats[GATEWAY_ROOFTOP]
    stats["last_uplink_received_at"] = "2025-03-14T10:50:30Z"
    await _at(hass, freezer, "2025-03-14T10:51:01+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_OFF
    assert events == ["recovered"]


async def test_per_gateway_threshold(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A gateway's own threshold overrides the option, for that gateway only."""
    number = hass.states.get(ROOFTOP_THRESHOLD)
    assert number.state == "30.0"
    assert number.attributes["unit_of_measurement"] == "min"
    await hass.services.async_call(
        "number",
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: ROOFTOP_THRESHOLD, ATTR_VALUE: 60},
        blocking=True,
    )
    assert hass.states.get(ROOFTOP_THRESHOLD).state == "60.0"
    assert hass.states.get(ROOFTOP_SILENT).attributes["threshold"] == 60

    await _at(hass, freezer, "2025-03-14T11:00:00+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_OFF
    assert hass.states.get(STATION_SILENT).state == STATE_ON
    await _at(hass, freezer, "2025-03-14T11:15:39+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_ON

    # Lowering it below the quiet time makes the gateway silent at once.
    await hass.services.async_call(
        "number",
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: ROOFTOP_THRESHOLD, ATTR_VALUE: 1440},
        blocking=True,
    )
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_OFF


async def test_threshold_option(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The option sets every gateway's default threshold."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={"silence_threshold": 5}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(ROOFTOP_THRESHOLD).state == "5.0"
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_OFF
    await _at(hass, freezer, "2025-03-14T10:20:39+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_ON


async def test_threshold_restored(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
) -> None:
    """A threshold set on a gateway survives a restart; the others follow the option."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(ROOFTOP_THRESHOLD, "2"),
                {
                    "native_max_value": 1440,
                    "native_min_value": 5,
                    "native_step": 1,
                    "native_unit_of_measurement": "min",
                    "native_value": 2,
                },
            ),
            (
                State("number.basic_station_gw_silence_threshold", "30"),
                {
                    "native_max_value": 1440,
                    "native_min_value": 5,
                    "native_step": 1,
                    "native_unit_of_measurement": "min",
                    "native_value": None,
                },
            ),
        ],
    )
    events = _event_types(hass, ROOFTOP_EVENT)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(ROOFTOP_THRESHOLD).state == "2.0"
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_ON
    assert hass.states.get("number.basic_station_gw_silence_threshold").state == "30.0"
    # Restoring is not a transition: no event.
    assert events == []
    # The option still applies to the others once changed.
    silence = mock_config_entry.runtime_data.silence
    assert silence.override(GATEWAY_STATION) is None
    assert silence.override(GATEWAY_ROOFTOP) == timedelta(minutes=2)


async def test_no_events_while_tts_is_unreachable(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Stale data raises no alarm; the transition is reported once TTS answers."""
    events = _event_types(hass, ROOFTOP_EVENT)
    fake_tts.fail("gateways", 503, times=100)
    await _at(hass, freezer, "2025-03-14T10:21:01+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_UNAVAILABLE
    await _at(hass, freezer, "2025-03-14T10:50:00+00:00")
    assert events == []
    fake_tts.faults["gateways"].clear()
    # Two failed polls: the next one comes after twice the interval.
    await _at(hass, freezer, "2025-03-14T10:52:01+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_ON
    assert events == ["silent"]


async def test_removed_gateway_forgotten(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A gateway removed from TTS loses its timer and entities."""
    fake_tts.gateways = [
        gateway
        for gateway in fake_tts.gateways
        if gateway["ids"]["gateway_id"] != GATEWAY_ROOFTOP
    ]
    # Removed once two complete lists a poll interval apart lack it.
    await _at(hass, freezer, "2025-03-14T10:21:01+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_UNAVAILABLE
    await _at(hass, freezer, "2025-03-14T10:22:02+00:00")
    assert hass.states.get(ROOFTOP_SILENT) is None
    assert init_integration.runtime_data.silence.is_silent(GATEWAY_ROOFTOP) is None
    await _at(hass, freezer, "2025-03-14T10:50:00+00:00")


async def test_no_rights_gateway_is_unknown(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A gateway whose status the key may not read is not judged."""
    from .fake_tts import FORBIDDEN

    # A public status is readable by any key, so make it private first.
    fake_tts.gateways[0].pop("status_public")
    fake_tts.stats[GATEWAY_ROOFTOP] = FORBIDDEN
    await _at(hass, freezer, "2025-03-14T10:21:01+00:00")
    assert hass.states.get(ROOFTOP_SILENT).state == STATE_UNAVAILABLE
    assert init_integration.runtime_data.silence.reason(GATEWAY_ROOFTOP) is None
