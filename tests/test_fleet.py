"""The fleet at a glance: the account's own device and its counts, as they change."""

from __future__ import annotations

from datetime import datetime, timedelta

from freezegun.api import FrozenDateTimeFactory

# Imported before time is frozen: the supervisor models it pulls in cannot be
# imported under freezegun.
import homeassistant.components.mqtt.config_flow  # noqa: F401
from homeassistant.const import CONF_API_KEY, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.ttn_gateway.const import CONF_SERVER, DOMAIN

from .common import async_poll
from .compat import device_by_identifier
from .event_feed import EventFeed, LiveStream, flush, start_line
from .fake_tts import API_KEY, GATEWAY_GARDEN, GATEWAY_ROOFTOP, SERVER_URL, FakeTTS
from .test_end_devices import LPP_PAYLOAD, START, _send, _setup
from .test_gateway_state import event_line
from .uplinks import LPP_NODE, topic, uplink

CONNECTED = "sensor.jdoe_eu1_cloud_thethings_network_gateways_connected"
SILENT = "sensor.jdoe_eu1_cloud_thethings_network_gateways_silent"
END_DEVICES_SILENT = "sensor.jdoe_eu1_cloud_thethings_network_end_devices_silent"
ACCOUNT = "jdoe@eu1.cloud.thethings.network/account"
NOW = "2025-03-14T10:20:00+00:00"


def _count(hass: HomeAssistant, entity_id: str) -> int:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return int(state.state)


@pytest.fixture
async def stream(
    hass: HomeAssistant, event_feed: EventFeed, init_integration: MockConfigEntry
) -> LiveStream:
    """The integration set up with an open, healthy events stream."""
    event_feed.current.send(start_line())
    await flush(hass)
    return event_feed.current


@pytest.mark.freeze_time(NOW)
async def test_fewer_than_three_of_four_gateways_up(
    hass: HomeAssistant, stream: LiveStream
) -> None:
    """Connects and disconnects pushed by TTS change the counts at once."""
    # Rooftop and station connected; garden disconnected, one never connected.
    assert _count(hass, CONNECTED) == 2
    assert hass.states.get(CONNECTED).attributes["monitored"] == 4
    assert _count(hass, SILENT) == 2

    stream.send(
        event_line(
            "gs.gateway.connect",
            "2025-03-14T10:20:01Z",
            {"connected_at": "2025-03-14T10:20:01Z", "protocol": "udp"},
            gateway_id=GATEWAY_GARDEN,
            connection="gs:conn:01JPB0A1B2C3D4E5F6G7H8J9K0",
        )
    )
    await flush(hass)
    assert _count(hass, CONNECTED) == 3
    assert _count(hass, SILENT) == 1

    stream.send(event_line("gs.gateway.disconnect", "2025-03-14T10:20:02Z"))
    await flush(hass)
    # "Fewer than 3 of my 4 gateways are up": what an automation checks.
    assert _count(hass, CONNECTED) < 3
    assert _count(hass, SILENT) == 2
    assert hass.states.get(CONNECTED).attributes["monitored"] == 4
    assert hass.states.get(f"binary_sensor.{GATEWAY_ROOFTOP}") is None


@pytest.mark.freeze_time(NOW)
@pytest.mark.usefixtures("init_integration")
async def test_silence_counts_between_polls(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """A gateway that turns silent on its timer counts at once."""
    assert _count(hass, SILENT) == 2
    # The station's last uplink was at 10:14:59: silent from 10:44:59.
    target = datetime.fromisoformat("2025-03-14T10:45:00+00:00")
    freezer.move_to(target)
    async_fire_time_changed(hass, target)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("binary_sensor.basic_station_gw_silent").state == "on"
    assert _count(hass, SILENT) == 3
    assert _count(hass, CONNECTED) == 2


@pytest.mark.freeze_time(NOW)
async def test_account_device_stays_across_polls(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    fake_tts: FakeTTS,
) -> None:
    """The account's device is no gateway, yet a poll does not remove it."""
    registry = dr.async_get(hass)
    await async_poll(hass, freezer)
    device = device_by_identifier(
        registry, (DOMAIN, ACCOUNT), init_integration.entry_id
    )
    assert device is not None
    assert device.name == "jdoe (eu1.cloud.thethings.network)"
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    assert device.configuration_url == f"{SERVER_URL}/console"
    assert _count(hass, CONNECTED) == 2

    # While TTS cannot be read the gateway counts are unknown.
    fake_tts.fail("gateways", 503, times=2)
    await async_poll(hass, freezer)
    assert hass.states.get(CONNECTED).state == STATE_UNAVAILABLE
    assert hass.states.get(SILENT).state == STATE_UNAVAILABLE


@pytest.mark.freeze_time(NOW)
@pytest.mark.usefixtures("fake_tts")
async def test_no_end_device_count_without_applications(
    hass: HomeAssistant,
) -> None:
    """An account without applications has no End devices silent sensor."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        minor_version=3,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
    )
    entry.add_to_hass(hass)
    # Left over from when the entry had an application.
    er.async_get(hass).async_get_or_create(
        "sensor",
        DOMAIN,
        f"{ACCOUNT}/end_devices_silent",
        config_entry=entry,
        suggested_object_id="jdoe_eu1_cloud_thethings_network_end_devices_silent",
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert _count(hass, CONNECTED) == 2
    assert hass.states.get(END_DEVICES_SILENT) is None
    assert er.async_get(hass).async_get(END_DEVICES_SILENT) is None


async def test_end_devices_silent(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """End devices count silent with their Silent sensor, on its timer."""
    freezer.move_to(START)
    mock_config_entry.add_to_hass(hass)
    await _setup(hass, mock_config_entry)
    assert _count(hass, END_DEVICES_SILENT) == 0
    assert hass.states.get(END_DEVICES_SILENT).attributes["known"] == 0

    await _send(hass, uplink(f_cnt=1))
    assert _count(hass, END_DEVICES_SILENT) == 0
    assert hass.states.get(END_DEVICES_SILENT).attributes["known"] == 1
    freezer.tick(timedelta(minutes=30))
    async_fire_time_changed(hass)
    await _send(
        hass,
        uplink(device_id=LPP_NODE, f_port=2, payload=LPP_PAYLOAD),
        on=topic(device_id=LPP_NODE),
    )
    assert _count(hass, END_DEVICES_SILENT) == 0
    assert hass.states.get(END_DEVICES_SILENT).attributes["known"] == 2

    # One uplink: silent after an hour. The first device falls silent first.
    freezer.tick(timedelta(minutes=30, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.feather_m0_1_silent").state == "on"
    assert _count(hass, END_DEVICES_SILENT) == 1
    freezer.tick(timedelta(minutes=30))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _count(hass, END_DEVICES_SILENT) == 2
    assert hass.states.get(END_DEVICES_SILENT).attributes["known"] == 2

    # Renamed by the user: still counted; sending again or deleted: no longer.
    entities = er.async_get(hass)
    entities.async_update_entity(
        "binary_sensor.feather_m0_1_silent", new_entity_id="binary_sensor.feather"
    )
    await hass.async_block_till_done()
    assert _count(hass, END_DEVICES_SILENT) == 2
    await _send(hass, uplink(f_cnt=2))
    assert hass.states.get("binary_sensor.feather").state == "off"
    assert _count(hass, END_DEVICES_SILENT) == 1
    entities.async_remove("binary_sensor.lpp_node_silent")
    await hass.async_block_till_done()
    assert _count(hass, END_DEVICES_SILENT) == 0
