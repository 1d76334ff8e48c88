"""Gateway devices and entities as a user sees them."""

from __future__ import annotations

from types import MappingProxyType
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import (
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.ttn_gateway.const import (
    CONF_APPLICATIONS,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DEFAULT_UPLINK_TOPIC,
    DOMAIN,
    SUBENTRY_APPLICATION,
    TRANSPORT_MQTT,
)

from .common import async_poll
from .compat import device_by_identifier, snapshot_user_view
from .fake_tts import (
    GATEWAY_GARDEN,
    GATEWAY_ROOFTOP,
    GATEWAY_STATION,
    FakeTTS,
    listed_gateway,
    load_json,
)


@pytest.mark.parametrize(
    "platform",
    [Platform.SENSOR, Platform.BINARY_SENSOR, Platform.EVENT, Platform.NUMBER],
)
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities_snapshot(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Every entity of the four kinds of gateway, with its state and attributes."""
    freezer.move_to("2025-03-14T10:20:00+00:00")
    mock_config_entry.add_to_hass(hass)
    with patch("custom_components.ttn_gateway.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    snapshot_user_view(hass, entity_registry, snapshot, mock_config_entry.entry_id)


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_gateway_states(hass: HomeAssistant) -> None:
    """Connected, recently disconnected, never connected and Basic Station gateways."""
    # Connected UDP gateway with downlinks and status metrics.
    assert (
        hass.states.get("binary_sensor.rooftop_gateway_connectivity").state == STATE_ON
    )
    assert hass.states.get("sensor.rooftop_gateway_uplinks").state == "18342"
    assert hass.states.get("sensor.rooftop_gateway_downlinks").state == "57"
    assert (
        hass.states.get("sensor.rooftop_gateway_transmission_acknowledgements").state
        == "57"
    )
    assert (
        hass.states.get("sensor.rooftop_gateway_last_seen").state
        == "2025-03-14T10:15:38+00:00"
    )
    assert (
        hass.states.get("sensor.rooftop_gateway_connected_since").state
        == "2025-03-13T07:02:11+00:00"
    )
    rtt = hass.states.get("sensor.rooftop_gateway_round_trip_time")
    assert rtt.state == "56.2"
    assert rtt.attributes["unit_of_measurement"] == "ms"
    duty = hass.states.get("sensor.rooftop_gateway_downlink_duty_cycle")
    assert float(duty.state) == pytest.approx(0.00096028444 / 0.01 * 100)
    assert duty.attributes["unit_of_measurement"] == "%"
    assert hass.states.get("sensor.rooftop_gateway_temperature").state == "41.5"
    assert hass.states.get("sensor.rooftop_gateway_protocol").state == "udp"

    # Disconnected less than 48 h ago: off, last seen is the disconnect time,
    # the counters TTS kept are still shown.
    assert (
        hass.states.get("binary_sensor.kerlink_garden_connectivity").state == STATE_OFF
    )
    assert (
        hass.states.get("sensor.kerlink_garden_last_seen").state
        == "2025-03-13T22:04:19+00:00"
    )
    assert hass.states.get("sensor.kerlink_garden_uplinks").state == "9051"
    assert (
        hass.states.get("sensor.kerlink_garden_connected_since").state == STATE_UNKNOWN
    )

    # Never connected (404): off and no figures, but available.
    assert (
        hass.states.get("binary_sensor.never_connected_connectivity").state == STATE_OFF
    )
    assert hass.states.get("sensor.never_connected_uplinks").state == STATE_UNKNOWN

    # Basic Station: no status metrics, liveness from uplinks.
    assert (
        hass.states.get("binary_sensor.basic_station_gw_connectivity").state == STATE_ON
    )
    assert hass.states.get("sensor.basic_station_gw_uplinks").state == "412"
    assert (
        hass.states.get("sensor.basic_station_gw_last_seen").state
        == "2025-03-14T10:14:59+00:00"
    )
    assert hass.states.get("sensor.basic_station_gw_temperature") is None
    assert hass.states.get("sensor.basic_station_gw_round_trip_time").state == (
        STATE_UNKNOWN
    )


@pytest.mark.usefixtures("init_integration")
async def test_devices(
    hass: HomeAssistant,
    device_registry: dr.DeviceRegistry,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Each gateway is a device with its hardware and a link to the Console."""
    devices = dr.async_entries_for_config_entry(
        device_registry, mock_config_entry.entry_id
    )
    assert {device.name for device in devices} == {
        "Rooftop gateway",
        "Kerlink garden",
        "Never connected",
        "basic-station-gw",
        # The account's own device, with its fleet sensors.
        "jdoe (eu1.cloud.thethings.network)",
    }
    rooftop = device_by_identifier(
        device_registry,
        (DOMAIN, f"{mock_config_entry.unique_id}/gateway/{GATEWAY_ROOFTOP}"),
        mock_config_entry.entry_id,
    )
    assert rooftop is not None
    # The brand's name from TTS's Device Repository; the model is not in it.
    assert rooftop.manufacturer == "RAKwireless Technology Co."
    assert rooftop.model == "rak7248"
    assert rooftop.hw_version == "1.0"
    assert rooftop.sw_version == "4.2.7"
    assert rooftop.serial_number == "B827EBFFFE8DB887"
    assert rooftop.configuration_url == (
        "https://eu1.cloud.thethings.network/console/gateways/eui-b827ebfffe8db887"
    )


@pytest.mark.usefixtures("init_integration")
async def test_min_max_rtt_disabled_by_default(
    hass: HomeAssistant, entity_registry: er.EntityRegistry
) -> None:
    """Diagnostics a normal user does not need exist but are disabled."""
    for entity_id in (
        "sensor.rooftop_gateway_round_trip_time_minimum",
        "sensor.rooftop_gateway_round_trip_time_maximum",
        # The gateway's own status metrics and its protocol: diagnostics.
        "sensor.rooftop_gateway_packets_received",
        "sensor.rooftop_gateway_packets_received_with_valid_crc",
        "sensor.rooftop_gateway_downlinks_received_from_server",
        "sensor.rooftop_gateway_packets_transmitted",
        "sensor.rooftop_gateway_upstream_acknowledgement_ratio",
        "sensor.rooftop_gateway_temperature",
        "sensor.rooftop_gateway_protocol",
    ):
        entry = entity_registry.async_get(entity_id)
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert hass.states.get(entity_id) is None


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_counters_follow_tts(
    hass: HomeAssistant, fake_tts: FakeTTS, freezer: FrozenDateTimeFactory
) -> None:
    """A poll brings growing counters and a disconnect into HA."""
    stats = fake_tts.stats[GATEWAY_ROOFTOP]
    assert isinstance(stats, dict)
    stats["uplink_count"] = "18400"
    fake_tts.stats[GATEWAY_STATION] = {
        **load_json("gateway-connection-stats-basicstation.json"),
        "disconnected_at": "2025-03-14T10:30:00Z",
    }
    del fake_tts.stats[GATEWAY_STATION]["connected_at"]  # type: ignore[union-attr]
    await async_poll(hass, freezer)
    assert hass.states.get("sensor.rooftop_gateway_uplinks").state == "18400"
    assert (
        hass.states.get("binary_sensor.basic_station_gw_connectivity").state
        == STATE_OFF
    )
    assert (
        hass.states.get("sensor.basic_station_gw_last_seen").state
        == "2025-03-14T10:30:00+00:00"
    )


@pytest.mark.usefixtures("init_integration")
async def test_new_removed_and_renamed_gateways(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Gateways added, removed or renamed in TTS show up at the next poll."""
    fake_tts.gateways.append(listed_gateway("new-gw", "New gateway"))
    fake_tts.stats["new-gw"] = load_json("gateway-connection-stats-basicstation.json")
    fake_tts.gateways = [
        gateway
        for gateway in fake_tts.gateways
        if gateway["ids"]["gateway_id"] != GATEWAY_GARDEN
    ]
    fake_tts.gateways[0]["name"] = "Roof"
    await async_poll(hass, freezer)
    # A gateway missing from the list goes when the next list lacks it too.
    assert hass.states.get("binary_sensor.kerlink_garden_connectivity").state == (
        STATE_UNAVAILABLE
    )
    await async_poll(hass, freezer)

    assert hass.states.get("binary_sensor.new_gateway_connectivity").state == STATE_ON
    assert hass.states.get("sensor.new_gateway_uplinks").state == "412"
    names = {
        device.name
        for device in dr.async_entries_for_config_entry(
            device_registry, mock_config_entry.entry_id
        )
    }
    assert names == {
        "Roof",
        "Never connected",
        "basic-station-gw",
        "New gateway",
        "jdoe (eu1.cloud.thethings.network)",
    }
    assert hass.states.get("binary_sensor.kerlink_garden_connectivity") is None

    # A removed gateway that comes back gets its entities again.
    fake_tts.gateways.append(listed_gateway(GATEWAY_GARDEN, "Kerlink garden"))
    await async_poll(hass, freezer)
    assert hass.states.get("binary_sensor.kerlink_garden_connectivity").state == (
        STATE_OFF
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_status_metrics_appear_when_reported(
    hass: HomeAssistant, fake_tts: FakeTTS, freezer: FrozenDateTimeFactory
) -> None:
    """Status metric sensors are created once the gateway reports them."""
    assert hass.states.get("sensor.basic_station_gw_temperature") is None
    stats = fake_tts.stats[GATEWAY_STATION]
    assert isinstance(stats, dict)
    stats["last_status"] = {"metrics": {"temp": 38.25}}
    await async_poll(hass, freezer)
    assert hass.states.get("sensor.basic_station_gw_temperature").state == "38.25"


async def test_end_devices_heard_only_with_an_application(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """No application, no end device to hear: the gateways have no End devices
    heard sensor; the first application brings it, removing the last takes it.
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=mock_config_entry.entry_id,
        version=3,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        data=dict(mock_config_entry.data),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    heard = "sensor.rooftop_gateway_end_devices_heard"
    assert hass.states.get("sensor.rooftop_gateway_uplinks") is not None
    assert hass.states.get(heard) is None
    assert entity_registry.async_get(heard) is None

    application = ConfigSubentry(
        data=MappingProxyType(
            {
                CONF_TRANSPORT: TRANSPORT_MQTT,
                CONF_UPLINK_TOPIC: DEFAULT_UPLINK_TOPIC,
                CONF_APPLICATIONS: [],
            }
        ),
        subentry_type=SUBENTRY_APPLICATION,
        title="MQTT",
        unique_id=None,
    )
    hass.config_entries.async_add_subentry(entry, application)
    await hass.async_block_till_done()
    assert hass.states.get(heard) is not None

    hass.config_entries.async_remove_subentry(entry, application.subentry_id)
    await hass.async_block_till_done()
    assert hass.states.get(heard) is None
    assert entity_registry.async_get(heard) is None
    assert hass.states.get("sensor.rooftop_gateway_uplinks") is not None


UNREADABLE_ITEM = {"ids": {"gateway_id": 7}, "name": "???"}


@pytest.mark.parametrize("listing", ["short", "incomplete"])
async def test_first_listing_after_a_reload_deletes_no_device(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    init_integration: MockConfigEntry,
    listing: str,
) -> None:
    """A gateway the first listing after a reload lacks keeps its device."""
    entry = init_integration
    identifier = f"{entry.unique_id}/gateway/{GATEWAY_GARDEN}"
    garden = device_by_identifier(device_registry, (DOMAIN, identifier), entry.entry_id)
    assert garden is not None
    area = ar.async_get(hass).async_create("Garden")
    device_registry.async_update_device(
        garden.id, name_by_user="Shed gateway", area_id=area.id
    )
    index, item = next(
        (index, item)
        for index, item in enumerate(fake_tts.gateways)
        if item["ids"]["gateway_id"] == GATEWAY_GARDEN
    )
    if listing == "short":
        del fake_tts.gateways[index]
    else:
        fake_tts.gateways[index] = UNREADABLE_ITEM

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    kept = device_registry.async_get(garden.id)
    assert kept is not None
    assert (kept.name_by_user, kept.area_id) == ("Shed gateway", area.id)

    # A second listing a poll interval later: a complete one that still lacks
    # the gateway removes it; an incomplete one never does.
    await async_poll(hass, freezer)
    await async_poll(hass, freezer)
    if listing == "short":
        assert device_registry.async_get(garden.id) is None
        return
    assert device_registry.async_get(garden.id) is not None
    # Once the listing is readable again, the gateway is back as it was.
    fake_tts.gateways[index] = item
    await async_poll(hass, freezer)
    back = device_registry.async_get(garden.id)
    assert back is not None
    assert (back.name_by_user, back.area_id) == ("Shed gateway", area.id)
    assert (
        hass.states.get("binary_sensor.kerlink_garden_connectivity").state == STATE_OFF
    )
