"""Version 3.3: the end devices' Online sensors become Silent sensors.

What a user of an earlier version finds after the update: new entity IDs in
the system's language, the registry entries' areas kept, the restored timing
kept, and a repair issue naming every entity ID that changed.
"""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import CONF_API_KEY, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
    restore_state,
)
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    mock_restore_cache_with_extra_data,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MqttMockHAClient,
)

from custom_components.ttn_gateway import async_migrate_entry
from custom_components.ttn_gateway.const import CONF_SERVER, DOMAIN
from custom_components.ttn_gateway.silent_migration import MAX_LISTED

from .fake_tts import API_KEY, SERVER_URL, FakeTTS
from .test_end_devices import _send, _setup
from .uplinks import uplink

ACCOUNT = "jdoe@eu1.cloud.thethings.network"
FEATHER = f"{ACCOUNT}/device/home-sensors/feather-m0-1"
ACCOUNT_DEVICE = f"{ACCOUNT}/account"
TITLE = "jdoe (eu1.cloud.thethings.network)"
OLD_ONLINE = "binary_sensor.feather_on_the_roof_online"
OLD_COUNT = "sensor.jdoe_eu1_cloud_thethings_network_end_devices_online"
LAST_SEEN = "2025-11-07T09:00:00+00:00"


def _entry(hass: HomeAssistant, minor_version: int = 2) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        minor_version=minor_version,
        title=TITLE,
        unique_id=ACCOUNT,
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
    )
    entry.add_to_hass(hass)
    return entry


def _version_3_2(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """What version 3.2 left in the registries, plus another integration's."""
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    feather = devices.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, FEATHER)},
        name="feather-m0-1",
    )
    devices.async_update_device(feather.id, name_by_user="Feather on the roof")
    account = devices.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, ACCOUNT_DEVICE)},
        name=TITLE,
    )
    online = entities.async_get_or_create(
        "binary_sensor",
        DOMAIN,
        f"{FEATHER}/online",
        config_entry=entry,
        device_id=feather.id,
        suggested_object_id="feather_on_the_roof_online",
        original_device_class="connectivity",
        has_entity_name=True,
        original_name="Online",
        translation_key="online",
    )
    assert online.entity_id == OLD_ONLINE
    # The user's own name and device class spoke of the old meaning.
    entities.async_update_entity(
        OLD_ONLINE, area_id="roof", name="Feather alive", device_class="connectivity"
    )
    entities.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{ACCOUNT_DEVICE}/end_devices_online",
        config_entry=entry,
        device_id=account.id,
        suggested_object_id="jdoe_eu1_cloud_thethings_network_end_devices_online",
        has_entity_name=True,
        original_name="End devices online",
        translation_key="end_devices_online",
    )
    entities.async_get_or_create(
        "sensor", DOMAIN, f"{FEATHER}/rssi", config_entry=entry, device_id=feather.id
    )
    other = MockConfigEntry(domain="other_integration")
    other.add_to_hass(hass)
    entities.async_get_or_create(
        "binary_sensor",
        "other_integration",
        f"{FEATHER}/online",
        config_entry=other,
        suggested_object_id="other_online",
    )


async def test_online_sensors_become_silent_sensors(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """New unique and entity IDs; the same registry entry; one repair issue."""
    entry = _entry(hass)
    _version_3_2(hass, entry)
    entities = er.async_get(hass)
    registry_id = entities.async_get(OLD_ONLINE).id

    assert await async_migrate_entry(hass, entry)

    assert (entry.version, entry.minor_version) == (3, 3)
    assert entities.async_get(OLD_ONLINE) is None
    assert entities.async_get(OLD_COUNT) is None
    silent = entities.async_get("binary_sensor.feather_on_the_roof_silent")
    assert silent is not None
    assert (silent.id, silent.unique_id, silent.area_id) == (
        registry_id,
        f"{FEATHER}/silent",
        "roof",
    )
    assert (silent.name, silent.device_class) == (None, None)
    assert (silent.original_name, silent.translation_key) == ("Silent", "silent")
    count = entities.async_get(
        "sensor.jdoe_eu1_cloud_thethings_network_end_devices_silent"
    )
    assert count is not None
    assert count.unique_id == f"{ACCOUNT_DEVICE}/end_devices_silent"
    # Neither another entity of the device nor another integration's moves.
    assert entities.async_get_entity_id("sensor", DOMAIN, f"{FEATHER}/rssi")
    assert entities.async_get("binary_sensor.other_online").unique_id == (
        f"{FEATHER}/online"
    )

    issue = issue_registry.async_get_issue(
        DOMAIN, f"silent_replaces_online_{entry.entry_id}"
    )
    assert issue is not None
    assert (issue.is_fixable, issue.is_persistent) == (True, True)
    assert issue.translation_placeholders == {
        "title": TITLE,
        "entities": (
            f"- `{OLD_ONLINE}` → `binary_sensor.feather_on_the_roof_silent`\n"
            f"- `{OLD_COUNT}` → "
            "`sensor.jdoe_eu1_cloud_thethings_network_end_devices_silent`"
        ),
    }

    # Run again (an interrupted start): nothing more changes.
    issue_registry.async_delete(DOMAIN, issue.issue_id)
    hass.config_entries.async_update_entry(entry, minor_version=2)
    assert await async_migrate_entry(hass, entry)
    assert entities.async_get("binary_sensor.feather_on_the_roof_silent") is not None
    assert issue_registry.async_get_issue(DOMAIN, issue.issue_id) is None


async def test_entity_ids_follow_the_system_language(hass: HomeAssistant) -> None:
    """A German system gets the German names, as a new sensor would."""
    hass.config.language = "de"
    entry = _entry(hass)
    _version_3_2(hass, entry)

    assert await async_migrate_entry(hass, entry)

    entities = er.async_get(hass)
    assert entities.async_get("binary_sensor.feather_on_the_roof_still") is not None
    assert entities.async_get(
        "sensor.jdoe_eu1_cloud_thethings_network_stille_endgerate"
    )


async def test_both_left_by_a_downgrade_keep_the_silent_sensor(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """3.3, then an older version, then 3.3 again: the Online sensor goes."""
    entry = _entry(hass)
    _version_3_2(hass, entry)
    entities = er.async_get(hass)
    entities.async_get_or_create(
        "binary_sensor",
        DOMAIN,
        f"{FEATHER}/silent",
        config_entry=entry,
        suggested_object_id="feather_on_the_roof_silent",
    )

    assert await async_migrate_entry(hass, entry)

    assert entities.async_get(OLD_ONLINE) is None
    assert entities.async_get("binary_sensor.feather_on_the_roof_silent") is not None
    issue = issue_registry.async_get_issue(
        DOMAIN, f"silent_replaces_online_{entry.entry_id}"
    )
    assert issue is not None
    assert OLD_ONLINE not in issue.translation_placeholders["entities"]


async def test_long_lists_are_cut_in_the_issue(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """An account with many devices gets a readable issue."""
    entry = _entry(hass)
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    for number in range(MAX_LISTED + 5):
        identifier = f"{ACCOUNT}/device/app/node-{number:02}"
        device = devices.async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={(DOMAIN, identifier)},
            name=f"node-{number:02}",
        )
        entities.async_get_or_create(
            "binary_sensor",
            DOMAIN,
            f"{identifier}/online",
            config_entry=entry,
            device_id=device.id,
        )

    assert await async_migrate_entry(hass, entry)

    issue = issue_registry.async_get_issue(
        DOMAIN, f"silent_replaces_online_{entry.entry_id}"
    )
    assert issue is not None
    lines = issue.translation_placeholders["entities"].split("\n")
    assert len(lines) == MAX_LISTED + 1
    assert lines[0].endswith("→ `binary_sensor.node_00_silent`")
    assert lines[-1] == "- … (+5)"


async def test_an_entry_of_this_version_is_left_alone(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """No rename and no issue once the entry is at 3.3."""
    entry = _entry(hass, minor_version=3)
    _version_3_2(hass, entry)

    assert await async_migrate_entry(hass, entry)

    assert er.async_get(hass).async_get(OLD_ONLINE) is not None
    assert not issue_registry.issues


@pytest.mark.usefixtures("fake_tts", "mqtt_mock")
async def test_the_silent_sensor_keeps_the_restored_timing(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    mqtt_mock: MqttMockHAClient,
    fake_tts: FakeTTS,
) -> None:
    """What the Online sensor saved still times the Silent sensor."""
    freezer.move_to("2025-11-07T09:30:00+00:00")
    mock_config_entry.add_to_hass(hass)
    _version_3_2(hass, mock_config_entry)
    # Last seen 30 minutes ago, sending every 20: silent in another 30.
    mock_restore_cache_with_extra_data(
        hass,
        (
            (
                State(OLD_ONLINE, STATE_ON),
                {"last_seen": LAST_SEEN, "uplink_interval": 1200.0},
            ),
        ),
    )

    await _setup(hass, mock_config_entry)

    silent = "binary_sensor.feather_on_the_roof_silent"
    state = hass.states.get(silent)
    assert state is not None
    assert (state.state, state.attributes["threshold"]) == (STATE_OFF, 60)
    assert hass.states.get(OLD_ONLINE) is None
    assert OLD_ONLINE not in restore_state.async_get(hass).last_states
    freezer.tick(timedelta(minutes=30, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(silent).state == STATE_ON
    count = "sensor.jdoe_eu1_cloud_thethings_network_end_devices_silent"
    assert hass.states.get(count).state == "1"

    await _send(hass, uplink(f_cnt=5))
    assert hass.states.get(silent).state == STATE_OFF
    assert hass.states.get(count).state == "0"


async def test_the_issue_is_confirmed_and_goes(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The issue shows the entity IDs; submitting it removes it."""
    assert await async_setup_component(hass, "repairs", {})
    entry = _entry(hass)
    _version_3_2(hass, entry)
    assert await async_migrate_entry(hass, entry)
    issue_id = f"silent_replaces_online_{entry.entry_id}"

    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    flow = await response.json()
    assert flow["step_id"] == "confirm"
    assert OLD_ONLINE in flow["description_placeholders"]["entities"]
    response = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}")
    assert (await response.json())["type"] == "create_entry"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_the_issue_goes_with_the_entry(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """Removing the account removes its issue."""
    entry = _entry(hass)
    _version_3_2(hass, entry)
    assert await async_migrate_entry(hass, entry)
    assert issue_registry.issues

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not issue_registry.async_get_issue(
        DOMAIN, f"silent_replaces_online_{entry.entry_id}"
    )
