"""Entities appear as gateways and end devices do, in the right place, once."""

from __future__ import annotations

import logging

from freezegun.api import FrozenDateTimeFactory

# Imported before time is frozen: the supervisor models it pulls in cannot be
# imported under freezegun.
import homeassistant.components.mqtt.config_flow  # noqa: F401
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_API_KEY, STATE_ON, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.ttn_gateway.const import (
    CONF_APPLICATION_ID,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DOMAIN,
    SIGNAL_NEW_END_DEVICE_ENTITIES,
    SIGNAL_NEW_GATEWAY_ENTITIES,
    SUBENTRY_APPLICATION,
    TRANSPORT_MQTT,
)

from .common import async_poll
from .compat import device_by_identifier
from .fake_tts import (
    API_KEY,
    GATEWAY_ROOFTOP,
    GATEWAY_STATION,
    SERVER_URL,
    FakeTTS,
    listed_gateway,
    load_json,
)
from .uplinks import APP, FEATHER, FORMATTER_APP, FORMATTER_NODE, encode, topic, uplink

START = "2025-11-07T09:00:00+00:00"
ACCOUNT = "jdoe@eu1.cloud.thethings.network"
HOME_SENSORS = "01JTTNAPPLICATIONSUBENTRY1"
FORMATTER = "01JTTNAPPLICATIONSUBENTRY2"
# Home Assistant's complaint when a platform is given an entity twice.
DUPLICATE = "does not generate unique IDs"


def _platforms_of(
    entity_registry: er.EntityRegistry, device: dr.DeviceEntry
) -> dict[str, int]:
    """How many entities of each platform a device has."""
    counts: dict[str, int] = {}
    for entity in er.async_entries_for_device(
        entity_registry, device.id, include_disabled_entities=True
    ):
        counts[entity.domain] = counts.get(entity.domain, 0) + 1
    return counts


def _gateway_device(
    device_registry: dr.DeviceRegistry, entry_id: str, name: str
) -> dr.DeviceEntry:
    (device,) = [
        item
        for item in dr.async_entries_for_config_entry(device_registry, entry_id)
        if item.name == name
    ]
    return device


def _entity_count(entity_registry: er.EntityRegistry, entry_id: str) -> int:
    return len(er.async_entries_for_config_entry(entity_registry, entry_id))


@pytest.mark.usefixtures("init_integration")
async def test_a_gateway_new_in_a_poll_gets_the_entities_of_every_platform(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Sensors, binary sensors, the event, the threshold and, with a location,
    the tracker: the same as a gateway of the same kind known at start-up."""
    entry_id = mock_config_entry.entry_id
    known = _platforms_of(
        entity_registry, _gateway_device(device_registry, entry_id, "basic-station-gw")
    )
    located = listed_gateway("new-gw", "New gateway")
    # Constructed: a registry location in the list's antennas (lorawan-stack
    # api/api.md GatewayAntenna, Location).
    located["antennas"] = [
        {
            "location": {
                "latitude": 52.37,
                "longitude": 4.89,
                "source": "SOURCE_REGISTRY",
            }
        }
    ]
    fake_tts.gateways.append(located)
    fake_tts.stats["new-gw"] = load_json("gateway-connection-stats-basicstation.json")

    await async_poll(hass, freezer)

    new = _platforms_of(
        entity_registry, _gateway_device(device_registry, entry_id, "New gateway")
    )
    assert new == {**known, Platform.DEVICE_TRACKER: 1}
    assert hass.states.get("binary_sensor.new_gateway_connectivity").state == STATE_ON
    assert hass.states.get("device_tracker.new_gateway").attributes["latitude"] == 52.37


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_each_status_metric_adds_its_sensor_when_first_reported(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A metric later than the gateway brings its sensor then, and only it."""
    stats = fake_tts.stats[GATEWAY_STATION]
    assert isinstance(stats, dict)
    before = _entity_count(entity_registry, mock_config_entry.entry_id)

    # Constructed: a UDP gateway's status metrics as the stats give them
    # (lorawan-stack api/api.md GatewayStatus.MetricsEntry; the packet
    # forwarder's stat fields, pkg/ttnpb/udp/translation.go).
    stats["last_status"] = {"metrics": {"temp": 38.25}}
    await async_poll(hass, freezer)
    assert hass.states.get("sensor.basic_station_gw_temperature").state == "38.25"
    assert _entity_count(entity_registry, mock_config_entry.entry_id) == before + 1

    stats["last_status"] = {"metrics": {"temp": 38.5, "rxok": 12}}
    await async_poll(hass, freezer)
    assert _entity_count(entity_registry, mock_config_entry.entry_id) == before + 2
    assert hass.states.get("sensor.basic_station_gw_temperature").state == "38.5"
    assert DUPLICATE not in caplog.text


@pytest.mark.usefixtures("init_integration")
async def test_a_gateway_signal_sent_twice_adds_nothing_twice(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every platform has the gateway's entities already: nothing more appears."""
    before = _entity_count(entity_registry, mock_config_entry.entry_id)
    signal = SIGNAL_NEW_GATEWAY_ENTITIES.format(mock_config_entry.entry_id)
    for _ in range(2):
        async_dispatcher_send(hass, signal, GATEWAY_ROOFTOP)
        await hass.async_block_till_done()
    assert _entity_count(entity_registry, mock_config_entry.entry_id) == before
    assert DUPLICATE not in caplog.text


def _two_applications_entry() -> MockConfigEntry:
    """Two applications on Home Assistant's broker, one sub-entry each."""

    def application(subentry_id: str, application_id: str) -> ConfigSubentryData:
        return ConfigSubentryData(
            data={
                CONF_APPLICATION_ID: application_id,
                CONF_TRANSPORT: TRANSPORT_MQTT,
                CONF_UPLINK_TOPIC: f"v3/{application_id}@ttn/devices/+/up",
            },
            subentry_id=subentry_id,
            subentry_type=SUBENTRY_APPLICATION,
            title=application_id,
            unique_id=application_id,
        )

    return MockConfigEntry(
        domain=DOMAIN,
        entry_id="01JTTNGATEWAYTESTENTRY0001",
        version=3,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
        subentries_data=[
            application(HOME_SENSORS, APP),
            application(FORMATTER, FORMATTER_APP),
        ],
    )


def _subentries_of_entities(
    entity_registry: er.EntityRegistry, device: dr.DeviceEntry
) -> set[str | None]:
    return {
        entity.config_subentry_id
        for entity in er.async_entries_for_device(
            entity_registry, device.id, include_disabled_entities=True
        )
    }


@pytest.mark.usefixtures("fake_tts")
async def test_a_new_end_device_gets_its_entities_in_its_applications_subentry(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each device heard over MQTT lands, entities and all, in the sub-entry of
    its application; its uplinks and a repeated signal add nothing twice."""
    freezer.move_to(START)
    caplog.set_level(logging.WARNING)
    entry = _two_applications_entry()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    async_fire_mqtt_message(hass, topic(), encode(uplink()))
    async_fire_mqtt_message(
        hass,
        topic(FORMATTER_APP, FORMATTER_NODE),
        encode(uplink(application_id=FORMATTER_APP, device_id=FORMATTER_NODE)),
    )
    await hass.async_block_till_done()

    feather = device_by_identifier(
        device_registry, (DOMAIN, f"{ACCOUNT}/device/{APP}/{FEATHER}"), entry.entry_id
    )
    node = device_by_identifier(
        device_registry,
        (DOMAIN, f"{ACCOUNT}/device/{FORMATTER_APP}/{FORMATTER_NODE}"),
        entry.entry_id,
    )
    assert feather is not None
    assert node is not None
    assert _subentries_of_entities(entity_registry, feather) == {HOME_SENSORS}
    assert _subentries_of_entities(entity_registry, node) == {FORMATTER}
    assert hass.states.get("sensor.feather_m0_1_value").state == "42"
    before = _entity_count(entity_registry, entry.entry_id)

    # The next uplink, and the signal sent again for every device.
    async_fire_mqtt_message(hass, topic(), encode(uplink(f_cnt=2, payload=b"\x07")))
    await hass.async_block_till_done()
    signal = SIGNAL_NEW_END_DEVICE_ENTITIES.format(entry.entry_id)
    for device in list(entry.runtime_data.end_devices.devices.values()):
        async_dispatcher_send(hass, signal, device)
        async_dispatcher_send(hass, signal, device)
    await hass.async_block_till_done()

    assert _entity_count(entity_registry, entry.entry_id) == before
    assert hass.states.get("sensor.feather_m0_1_value").state == "7"
    assert DUPLICATE not in caplog.text
    assert await hass.config_entries.async_unload(entry.entry_id)
