"""Version 1 entries move to ids made from the account, which survive re-adding;
version 2 entries get an application sub-entry where there is something to keep;
version 3.1 entries' offline threshold becomes the end devices' silence threshold
(the Online sensors of 3.2 and before: test_silent_migration.py)."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ttn_gateway import async_migrate_entry
from custom_components.ttn_gateway.compat import device_subentry
from custom_components.ttn_gateway.const import CONF_SERVER, DOMAIN
from custom_components.ttn_gateway.end_devices.registry import async_move_device
from custom_components.ttn_gateway.identifiers import (
    migrate_identifier,
    migrate_unique_id,
)

from .fake_tts import API_KEY, GATEWAY_ROOFTOP, SERVER_URL, FakeTTS

ACCOUNT = "jdoe@eu1.cloud.thethings.network"
OLD_GATEWAY = f"01JTTNGATEWAYTESTENTRY0001_{GATEWAY_ROOFTOP}"
OLD_END_DEVICE = "01JTTNGATEWAYTESTENTRY0001_device_home-sensors_feather-m0-1"
NEW_GATEWAY = f"{ACCOUNT}/gateway/{GATEWAY_ROOFTOP}"
NEW_END_DEVICE = f"{ACCOUNT}/device/home-sensors/feather-m0-1"


def _version_1(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """Registry entries as version 1 wrote them, plus another integration's."""
    entry.add_to_hass(hass)
    other = MockConfigEntry(domain="other_integration")
    other.add_to_hass(hass)
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    gateway = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, OLD_GATEWAY)}
    )
    devices.async_update_device(gateway.id, area_id="roof")
    end_device = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, OLD_END_DEVICE)}
    )
    foreign = devices.async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other_integration", OLD_GATEWAY)}
    )
    connectivity = entities.async_get_or_create(
        "binary_sensor",
        DOMAIN,
        f"{OLD_GATEWAY}_connectivity",
        config_entry=entry,
        device_id=gateway.id,
        suggested_object_id="rooftop_gateway_connectivity",
    )
    entities.async_update_entity(
        connectivity.entity_id, name="Roof link", area_id="attic"
    )
    rssi = entities.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{OLD_END_DEVICE}_rssi",
        config_entry=entry,
        device_id=end_device.id,
        disabled_by=er.RegistryEntryDisabler.USER,
    )
    helper = entities.async_get_or_create(
        "sensor",
        "other_integration",
        f"{OLD_GATEWAY}_connectivity",
        config_entry=other,
        device_id=foreign.id,
    )
    return {
        "gateway": gateway.id,
        "end_device": end_device.id,
        "foreign": foreign.id,
        "connectivity": connectivity.entity_id,
        "rssi": rssi.entity_id,
        "helper": helper.entity_id,
    }


def _version_1_entry() -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id="01JTTNGATEWAYTESTENTRY0001",
        version=1,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id=ACCOUNT,
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
    )


async def test_migration_keeps_entities_and_their_customisations(
    hass: HomeAssistant,
) -> None:
    """Devices and entities of the entry get the new ids, nothing else changes."""
    entry = _version_1_entry()
    ids = _version_1(hass, entry)
    devices = dr.async_get(hass)
    entities = er.async_get(hass)

    assert await async_migrate_entry(hass, entry)

    assert entry.version == 3
    assert devices.async_get(ids["gateway"]).identifiers == {(DOMAIN, NEW_GATEWAY)}
    assert devices.async_get(ids["gateway"]).area_id == "roof"
    assert devices.async_get(ids["end_device"]).identifiers == {
        (DOMAIN, NEW_END_DEVICE)
    }
    assert devices.async_get(ids["foreign"]).identifiers == {
        ("other_integration", OLD_GATEWAY)
    }
    connectivity = entities.async_get(ids["connectivity"])
    assert connectivity.unique_id == f"{NEW_GATEWAY}/connectivity"
    assert (connectivity.name, connectivity.area_id) == ("Roof link", "attic")
    rssi = entities.async_get(ids["rssi"])
    assert rssi.unique_id == f"{NEW_END_DEVICE}/rssi"
    assert rssi.disabled_by is er.RegistryEntryDisabler.USER
    # The end devices went into the application sub-entry of version 3.
    (subentry_id,) = entry.subentries
    assert rssi.config_subentry_id == subentry_id
    assert device_subentry(devices.async_get(ids["end_device"]), entry.entry_id) == (
        subentry_id
    )
    assert connectivity.config_subentry_id is None
    assert entities.async_get(ids["helper"]).unique_id == f"{OLD_GATEWAY}_connectivity"
    assert len(dr.async_entries_for_config_entry(devices, entry.entry_id)) == 2
    assert len(er.async_entries_for_config_entry(entities, entry.entry_id)) == 2


async def test_version_1_entry_sets_up_with_the_same_entities(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """Setting up a version 1 entry reuses its entities: no duplicates."""
    entry = _version_1_entry()
    ids = _version_1(hass, entry)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.version == 3
    entities = er.async_get(hass)
    connectivity = entities.async_get(ids["connectivity"])
    assert connectivity.unique_id == f"{NEW_GATEWAY}/connectivity"
    assert connectivity.name == "Roof link"
    assert hass.states.get(ids["connectivity"]).state == "on"
    rooftop = [
        entity
        for entity in er.async_entries_for_config_entry(entities, entry.entry_id)
        if entity.domain == "binary_sensor"
        and entity.unique_id.startswith(f"{NEW_GATEWAY}/connectivity")
    ]
    assert len(rooftop) == 1
    gateways = [
        device
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if (DOMAIN, NEW_GATEWAY) in device.identifiers
    ]
    assert [device.id for device in gateways] == [ids["gateway"]]


async def test_migration_without_account_fails(hass: HomeAssistant) -> None:
    """An entry without a unique id cannot be migrated: it is left as it is."""
    entry = MockConfigEntry(domain=DOMAIN, version=1, unique_id=None)
    entry.add_to_hass(hass)
    assert not await async_migrate_entry(hass, entry)
    assert entry.version == 1


async def test_readding_the_account_gives_the_same_unique_ids(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """Removed and added again (new entry id): the unique ids are the same."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    entities = er.async_get(hass)
    before = {
        entity.unique_id
        for entity in er.async_entries_for_config_entry(
            entities, mock_config_entry.entry_id
        )
    }
    assert f"{NEW_GATEWAY}/connectivity" in before
    assert await hass.config_entries.async_remove(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    again = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        data=dict(mock_config_entry.data),
    )
    assert again.entry_id != mock_config_entry.entry_id
    again.add_to_hass(hass)
    assert await hass.config_entries.async_setup(again.entry_id)
    await hass.async_block_till_done()
    after = {
        entity.unique_id
        for entity in er.async_entries_for_config_entry(entities, again.entry_id)
    }
    assert after == before


def test_ids_not_of_version_1_are_left_alone() -> None:
    """Another entry's or an unknown id is not migrated."""
    assert migrate_identifier("entry", ACCOUNT, "other_eui-1") is None
    assert migrate_unique_id("entry", ACCOUNT, "other_eui-1_connectivity") is None
    assert migrate_unique_id("entry", ACCOUNT, "entry_device_app_dev_rssi") == (
        f"{ACCOUNT}/device/app/dev/rssi"
    )


def _version_2_entry(**options: object) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id="01JTTNGATEWAYTESTENTRY0001",
        version=2,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id=ACCOUNT,
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
        options=options,
    )


async def test_version_2_end_device_options_become_an_application(
    hass: HomeAssistant,
) -> None:
    """The topic and allow-list move into a sub-entry that holds the end devices."""
    entry = _version_2_entry(
        uplink_topic="ttn/v3/+/devices/+/up",
        applications=["home-sensors"],
        max_end_devices=50,
        scan_interval=120,
    )
    entry.add_to_hass(hass)
    devices = dr.async_get(hass)
    gateway = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, NEW_GATEWAY)}
    )
    end_device = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, NEW_END_DEVICE)}
    )

    assert await async_migrate_entry(hass, entry)

    assert entry.version == 3
    assert entry.options == {"max_end_devices": 50, "scan_interval": 120}
    (subentry,) = entry.subentries.values()
    assert subentry.subentry_type == "application"
    assert dict(subentry.data) == {
        "transport": "mqtt",
        "uplink_topic": "ttn/v3/+/devices/+/up",
        "applications": ["home-sensors"],
    }
    assert device_subentry(devices.async_get(end_device.id), entry.entry_id) == (
        subentry.subentry_id
    )
    assert device_subentry(devices.async_get(gateway.id), entry.entry_id) is None


async def test_version_2_with_end_devices_off_has_no_application(
    hass: HomeAssistant,
) -> None:
    """End devices turned off: no sub-entry, and the option is gone."""
    entry = _version_2_entry(end_devices=False, uplink_topic="v3/+/devices/+/up")
    entry.add_to_hass(hass)

    assert await async_migrate_entry(hass, entry)

    assert entry.version == 3
    assert entry.options == {}
    assert not entry.subentries


async def test_a_newer_entry_is_not_downgraded(hass: HomeAssistant) -> None:
    """An entry written by a later version fails to load instead of breaking."""
    entry = MockConfigEntry(domain=DOMAIN, version=4, unique_id=ACCOUNT)
    entry.add_to_hass(hass)
    assert not await async_migrate_entry(hass, entry)


@pytest.mark.parametrize(
    ("options", "migrated"),
    [
        ({"offline_threshold": 45, "scan_interval": 120}, {"scan_interval": 120}),
        ({"scan_interval": 120}, {"scan_interval": 120}),
        # A run interrupted after writing the new key: the new key is kept.
        (
            {"offline_threshold": 45, "end_device_silence_threshold": 30},
            {"end_device_silence_threshold": 30},
        ),
    ],
)
async def test_version_3_1_offline_threshold_is_the_silence_threshold(
    hass: HomeAssistant, options: dict[str, int], migrated: dict[str, int]
) -> None:
    """The end devices' threshold keeps its minutes under its new name."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        minor_version=1,
        unique_id=ACCOUNT,
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
        options=options,
    )
    entry.add_to_hass(hass)

    assert await async_migrate_entry(hass, entry)

    expected = {"end_device_silence_threshold": 45, **migrated}
    if "offline_threshold" not in options:
        expected.pop("end_device_silence_threshold")
    assert entry.options == expected
    assert (entry.version, entry.minor_version) == (3, 3)


async def test_interrupted_migration_adds_one_application(
    hass: HomeAssistant,
) -> None:
    """A run that fails half-way, then the next start: one sub-entry, not two."""
    entry = _version_2_entry()
    entry.add_to_hass(hass)
    devices = dr.async_get(hass)
    end_device = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, NEW_END_DEVICE)}
    )
    calls = 0

    def move_once_failing(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("interrupted")
        async_move_device(*args)

    with (
        patch(
            "custom_components.ttn_gateway.migration.async_move_device",
            side_effect=move_once_failing,
        ),
        pytest.raises(RuntimeError),
    ):
        await async_migrate_entry(hass, entry)
    assert entry.version == 2

    with patch(
        "custom_components.ttn_gateway.migration.async_move_device",
        side_effect=move_once_failing,
    ):
        assert await async_migrate_entry(hass, entry)

    assert entry.version == 3
    (subentry,) = entry.subentries.values()
    assert device_subentry(devices.async_get(end_device.id), entry.entry_id) == (
        subentry.subentry_id
    )


async def test_gateway_only_entry_gets_no_application(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    issue_registry: ir.IssueRegistry,
) -> None:
    """No end device and no MQTT: no sub-entry and no repair issue about MQTT."""
    entry = _version_2_entry()
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.version == 3
    assert not entry.subentries
    assert not [
        issue_id
        for domain, issue_id in issue_registry.issues
        if domain == DOMAIN and issue_id.startswith("mqtt_not_set_up")
    ]
    assert hass.states.get("binary_sensor.rooftop_gateway_connectivity").state == "on"


async def test_entry_with_mqtt_keeps_its_topic_without_end_devices(
    hass: HomeAssistant,
) -> None:
    """MQTT set up but no uplink seen yet: the topic is kept in a sub-entry."""
    MockConfigEntry(domain="mqtt").add_to_hass(hass)
    entry = _version_2_entry(uplink_topic="ttn/v3/+/devices/+/up")
    entry.add_to_hass(hass)

    assert await async_migrate_entry(hass, entry)

    (subentry,) = entry.subentries.values()
    assert subentry.data["uplink_topic"] == "ttn/v3/+/devices/+/up"
