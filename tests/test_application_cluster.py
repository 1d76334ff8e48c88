"""An application whose end devices another cloud cluster serves.

The account is on The Things Network's eu1; the application's devices are
registered on nam1 (their ``application_server_address``). The simulator
behind the fake TTS answers every host: the Identity Server's calls, and each
cluster's Application Server with its own addresses (``tts_simulator``,
``Simulator.application_cluster``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
import logging
from typing import Any
from unittest.mock import patch
from urllib.parse import urlsplit

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigSubentryData,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ttn_gateway.const import (
    CONF_APPLICATION_ID,
    CONF_CLUSTER,
    CONF_MQTT_HOST,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    DOMAIN,
    SUBENTRY_APPLICATION,
    TRANSPORT_DIRECT,
    TRANSPORT_MQTT,
)
from custom_components.ttn_gateway.tts import TTSClient, TTSConnectionError
from tts_simulator import make_devices

from .fake_app_mqtt import FakeAppMqtt, serving
from .fake_tts import API_KEY, SERVER_URL, FakeTTS
from .uplinks import APP, encode, uplink

EU1 = "eu1.cloud.thethings.network"
NAM1 = "nam1.cloud.thethings.network"
AU1 = "au1.cloud.thethings.network"
SUBENTRY_ID = "01JTTNAPPLICATIONSUBENTRY1"
ENTRY_ID = "01JTTNGATEWAYTESTENTRY0001"
ALL_RIGHTS = [
    "RIGHT_APPLICATION_DEVICES_READ",
    "RIGHT_APPLICATION_INFO",
    "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE",
    "RIGHT_APPLICATION_TRAFFIC_READ",
]


@pytest.fixture
def app_key(fake_tts: FakeTTS) -> str:
    """The application's key; its four devices are registered on nam1."""
    fake_tts.simulator.devices = make_devices(fake_tts.clock())
    fake_tts.simulator.application_cluster = "nam1"
    return fake_tts.simulator.application.api_key


@pytest.fixture
def app_mqtt(app_key: str) -> Iterator[FakeAppMqtt]:
    """The application's MQTT server (any cluster's), accepting its key."""
    with serving(app_key) as server:
        yield server


def _detections(fake_tts: FakeTTS) -> list[str]:
    """The hosts asked where the application's devices are registered."""
    return [
        urlsplit(url).hostname or ""
        for _, url in fake_tts.requests
        if "field_mask=application_server_address" in url
    ]


def _hosts(fake_tts: FakeTTS, endpoint: str) -> list[str]:
    """The hosts an endpoint was asked on, in order."""
    return [
        urlsplit(url).hostname or ""
        for name, url in fake_tts.requests
        if name == endpoint
    ]


async def _add(
    hass: HomeAssistant, entry: MockConfigEntry, **data: Any
) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APPLICATION), context={"source": SOURCE_USER}
    )
    return await hass.config_entries.subentries.async_configure(result["flow_id"], data)


def _entry(app_key: str, **data: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        version=3,
        title=f"jdoe ({EU1})",
        unique_id=f"jdoe@{EU1}",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
        subentries_data=[
            ConfigSubentryData(
                data={
                    CONF_APPLICATION_ID: APP,
                    CONF_API_KEY: app_key,
                    CONF_TRANSPORT: TRANSPORT_DIRECT,
                    CONF_RIGHTS: ALL_RIGHTS,
                    CONF_SERVER: SERVER_URL,
                    **data,
                },
                subentry_id=SUBENTRY_ID,
                subentry_type=SUBENTRY_APPLICATION,
                title="Home sensors",
                unique_id=APP,
            )
        ],
    )


async def test_the_cluster_of_the_devices_is_found_and_used(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """Automatic: nam1, where the devices are; the key is checked there and the
    direct connection goes there, never to eu1's MQTT server."""
    fake_tts.requests.clear()
    result = await _add(
        hass,
        init_integration,
        application_id=APP,
        api_key=app_key,
        transport=TRANSPORT_DIRECT,
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_CLUSTER] == f"https://{NAM1}"
    assert result["data"][CONF_MQTT_HOST] == NAM1
    # The device list comes from the Identity Server, the MQTT settings
    # (and so the key's check) from nam1's Application Server.
    assert _detections(fake_tts) == [EU1]
    assert _hosts(fake_tts, "mqtt_info") == [NAM1]
    await hass.async_block_till_done()
    # The flow's test login, then the connection after the reload.
    assert app_mqtt.attempts == 2
    assert [session.settings.host for session in app_mqtt.sessions] == [NAM1]


async def test_devices_on_several_clusters_use_the_most_common(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two devices on eu1, four on nam1: nam1, and a warning names the spread."""
    # Devices registered on eu1 (as the Identity Server lists them, with the
    # address and a port, end_device.proto's "host:port").
    fake_tts.simulator.device_list_extra = [
        {
            "ids": {
                "device_id": f"old-{index}",
                "application_ids": {"application_id": APP},
            },
            "application_server_address": f"{EU1}:8884",
        }
        for index in range(2)
    ]
    with caplog.at_level(logging.WARNING):
        result = await _add(
            hass,
            init_integration,
            application_id=APP,
            api_key=app_key,
            transport=TRANSPORT_DIRECT,
        )
    assert result["data"][CONF_CLUSTER] == f"https://{NAM1}"
    assert f"{NAM1}: 4, {EU1}: 2" in caplog.text
    await hass.async_block_till_done()


async def test_an_application_without_devices_takes_the_chosen_cluster(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """No device yet: the user's choice, au1; the key is checked on au1."""
    fake_tts.simulator.devices = []
    fake_tts.simulator.application_cluster = "au1"
    fake_tts.requests.clear()
    result = await _add(
        hass,
        init_integration,
        application_id=APP,
        api_key=app_key,
        transport=TRANSPORT_MQTT,
        cluster="au1",
    )
    assert result["step_id"] == "mqtt"
    # Chosen: nothing is asked to find the cluster.
    assert _detections(fake_tts) == []
    assert _hosts(fake_tts, "mqtt_info") == [AU1]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"uplink_topic": f"v3/{APP}@ttn/devices/+/up"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_CLUSTER] == f"https://{AU1}"
    await hass.async_block_till_done()


async def test_the_application_names_the_cluster_when_no_device_does(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """A key that may not list devices: the application's own address."""
    fake_tts.simulator.set_application(
        rights=["RIGHT_APPLICATION_INFO", "RIGHT_APPLICATION_TRAFFIC_READ"]
    )
    fake_tts.simulator.application_server_address = NAM1
    fake_tts.requests.clear()
    result = await _add(
        hass,
        init_integration,
        application_id=APP,
        api_key=app_key,
        transport=TRANSPORT_DIRECT,
    )
    assert result["data"][CONF_CLUSTER] == f"https://{NAM1}"
    # The application asked, not its device list.
    assert _detections(fake_tts) == [EU1]
    assert _hosts(fake_tts, "end_devices") == []
    await hass.async_block_till_done()


async def test_without_an_answer_the_account_cluster_is_taken(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """The question fails: the account's cluster, stored as no cluster."""
    fake_tts.simulator.application_cluster = "eu1"
    with patch.object(
        TTSClient,
        "list_device_application_servers",
        side_effect=TTSConnectionError("timeout"),
    ):
        result = await _add(
            hass,
            init_integration,
            application_id=APP,
            api_key=app_key,
            transport=TRANSPORT_DIRECT,
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_CLUSTER not in result["data"]
    assert result["data"][CONF_MQTT_HOST] == EU1
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, "invalid_auth"), (403, "missing_rights"), (503, "cannot_connect")],
)
async def test_a_key_the_chosen_cluster_refuses_is_not_saved(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    status: int,
    error: str,
) -> None:
    """The key goes to nam1 only once nam1 accepted it: no MQTT login."""
    fake_tts.fail("mqtt_info", status)
    result = await _add(
        hass,
        init_integration,
        application_id=APP,
        api_key=app_key,
        transport=TRANSPORT_DIRECT,
        cluster="nam1",
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert app_mqtt.attempts == 0
    assert _hosts(fake_tts, "mqtt_info") == [NAM1]


async def test_a_self_hosted_server_offers_no_cluster(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """One server answers everything: the form has no cluster field."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        unique_id="jdoe@tts.example.com",
        data={CONF_SERVER: "https://tts.example.com", CONF_API_KEY: API_KEY},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APPLICATION), context={"source": SOURCE_USER}
    )
    assert CONF_CLUSTER not in result["data_schema"].schema


async def test_reconfigure_suggests_and_changes_the_cluster(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """The stored cluster is suggested; choosing the account's stores none."""
    entry = _entry(app_key, **{CONF_CLUSTER: f"https://{NAM1}"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APPLICATION),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": SUBENTRY_ID},
    )
    assert result["step_id"] == "user"
    (marker,) = (key for key in result["data_schema"].schema if key == CONF_CLUSTER)
    assert marker.description == {"suggested_value": "nam1"}
    fake_tts.simulator.application_cluster = "eu1"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_APPLICATION_ID: APP,
            CONF_API_KEY: app_key,
            CONF_TRANSPORT: TRANSPORT_DIRECT,
            CONF_CLUSTER: "eu1",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    data = entry.subentries[SUBENTRY_ID].data
    assert CONF_CLUSTER not in data
    assert data[CONF_MQTT_HOST] == EU1
    await hass.async_block_till_done()


async def test_direct_connection_downlinks_and_catch_up_go_to_the_cluster(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    hass_storage: dict[str, Any],
) -> None:
    """A stored nam1 application: its MQTT connection, downlinks and stored
    uplinks are nam1's; its device list stays with the Identity Server."""
    stopped = dt_util.utcnow() - timedelta(hours=2)
    store_key = f"{DOMAIN}.catch_up.{ENTRY_ID}"
    hass_storage[store_key] = {
        "version": 1,
        "minor_version": 1,
        "key": store_key,
        "data": {"since": {APP: stopped.isoformat()}},
    }
    fake_tts.store(uplink(f_cnt=4, received_at=stopped + timedelta(minutes=1)))
    entry = _entry(app_key, **{CONF_CLUSTER: f"https://{NAM1}"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert [session.settings.host for session in app_mqtt.sessions] == [NAM1]
    assert _hosts(fake_tts, "storage") == [NAM1]
    assert (
        entry.runtime_data.end_devices.catch_ups[SUBENTRY_ID].diagnostics()["fetched"]
        == 1
    )
    assert set(_hosts(fake_tts, "end_devices")) == {EU1}

    device = next(
        device
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if device.name == "Feather M0 on the balcony"
    )
    await hass.services.async_call(
        DOMAIN,
        "send_downlink",
        {"device_id": device.id, "f_port": 1, "payload": "01"},
        blocking=True,
    )
    assert _hosts(fake_tts, "downlink") == [NAM1]
    (record,) = fake_tts.simulator.downlinks
    assert record["device_id"] == "feather-m0"


async def test_a_cluster_of_another_cloud_is_never_used(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """Stored data naming a host outside the account's cloud: the key stays
    with the account's server."""
    entry = _entry(app_key, **{CONF_CLUSTER: "https://tts.example.com"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert [session.settings.host for session in app_mqtt.sessions] == [EU1]
    assert "tts.example.com" not in str(fake_tts.requests)


async def test_a_new_key_from_the_repair_is_checked_on_the_cluster(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The key of a nam1 application is deleted; the new one is checked on
    nam1 (its MQTT settings there) before the application connects there."""
    assert await async_setup_component(hass, "repairs", {})
    new_key = "NNSXS.NEWKEYNEWKEYNEWKEY.NEWSECRETNEWSECRETNEWSECRET"
    fake_tts.simulator.set_application(api_key=new_key)
    app_mqtt.api_key = new_key
    entry = _entry(app_key, **{CONF_CLUSTER: f"https://{NAM1}"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    for _ in range(10):
        await hass.async_block_till_done()
    issue_id = f"application_key_rejected_{SUBENTRY_ID}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    fake_tts.requests.clear()
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    flow = await response.json()
    response = await client.post(
        f"/api/repairs/issues/fix/{flow['flow_id']}", json={CONF_API_KEY: new_key}
    )
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert _hosts(fake_tts, "mqtt_info") == [NAM1]
    assert entry.subentries[SUBENTRY_ID].data[CONF_API_KEY] == new_key
    assert entry.subentries[SUBENTRY_ID].data[CONF_CLUSTER] == f"https://{NAM1}"
    assert [session.settings.host for session in app_mqtt.sessions] == [NAM1]


@pytest.mark.parametrize(
    ("cluster_address", "console"),
    [
        # The uplink's network_ids name the cluster that served it.
        (AU1, AU1),
        # Without it (a bridge or an older server may drop it): the
        # application's cluster, not the account's.
        (None, NAM1),
        # A host outside the cloud is never linked.
        ("lns.example.com", NAM1),
    ],
)
async def test_console_link_of_a_device_on_the_cluster(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    cluster_address: str | None,
    console: str,
) -> None:
    """The device page links to the Console where the device is."""
    entry = _entry(app_key, **{CONF_CLUSTER: f"https://{NAM1}"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    message = uplink(device_id="feather-m0")
    network_ids = message["uplink_message"]["network_ids"]
    if cluster_address is None:
        del network_ids["cluster_address"]
    else:
        network_ids["cluster_address"] = cluster_address
    app_mqtt.publish(f"v3/{APP}@ttn/devices/feather-m0/up", encode(message))
    await hass.async_block_till_done()
    device = next(
        device
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if device.name == "Feather M0 on the balcony"
    )
    assert device.configuration_url == (
        f"https://{console}/console/applications/{APP}/devices/feather-m0"
    )
