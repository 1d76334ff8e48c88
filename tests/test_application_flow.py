"""Adding, reconfiguring and fixing TTS applications (config sub-entries).

The TTS client's calls are replaced here by what TTS answers; the client's
own handling of those requests is tested in ``test_tts_applications.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigSubentry,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ttn_gateway.const import (
    CONF_APPLICATION_ID,
    CONF_MQTT_HOST,
    CONF_MQTT_PORT,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DOMAIN,
    SUBENTRY_APPLICATION,
)
from custom_components.ttn_gateway.tts import (
    AuthInfo,
    KeyOwnerType,
    TTSAuthenticationError,
    TTSClient,
    TTSConnectionError,
    TTSNotFoundError,
    TTSPermissionError,
)
from custom_components.ttn_gateway.tts.client import EndDeviceListing
from custom_components.ttn_gateway.tts.models import Application

from .fake_app_mqtt import FakeAppMqtt, serving
from .fake_tts import API_KEY, FakeTTS

APP = "home-sensors"
APP_KEY = "NNSXS.APPKEYAPPKEYAPPKEY.SECRETSECRETSECRETSECRET"
NEW_KEY = "NNSXS.NEWKEYNEWKEYNEWKEY.NEWSECRETNEWSECRETNEWSECRET"
ALL_RIGHTS = frozenset(
    {
        "RIGHT_APPLICATION_INFO",
        "RIGHT_APPLICATION_TRAFFIC_READ",
        "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE",
        "RIGHT_APPLICATION_DEVICES_READ",
    }
)


def _key_of(client: TTSClient) -> str:
    return client._headers["Authorization"].removeprefix("Bearer ")


@dataclass
class FakeApplicationAPI:
    """What TTS answers about an application key."""

    owner: str = APP
    owner_type: KeyOwnerType = KeyOwnerType.APPLICATION
    rights: frozenset[str] = ALL_RIGHTS
    error: Exception | None = None
    application_error: Exception | None = None
    keys: list[str] = field(default_factory=list)

    async def get_auth_info(self, client: TTSClient) -> AuthInfo:
        self.keys.append(_key_of(client))
        if self.error is not None:
            raise self.error
        return AuthInfo(self.owner_type, self.owner, self.rights)

    async def get_application(
        self, client: TTSClient, application_id: str
    ) -> Application:
        if self.application_error is not None:
            raise self.application_error
        return Application(application_id, "Home sensors", None)

    async def list_end_devices(
        self, client: TTSClient, application_id: str
    ) -> EndDeviceListing:
        return EndDeviceListing([], complete=True)


@pytest.fixture
def app_api() -> Iterator[FakeApplicationAPI]:
    """TTS's answers to application keys."""
    api = FakeApplicationAPI()
    original = TTSClient.get_auth_info

    async def get_auth_info(client: TTSClient) -> AuthInfo:
        if _key_of(client) == API_KEY:  # the account's own key
            return await original(client)
        return await api.get_auth_info(client)

    async def get_application(client: TTSClient, application_id: str) -> Application:
        return await api.get_application(client, application_id)

    async def list_end_devices(
        client: TTSClient, application_id: str
    ) -> EndDeviceListing:
        return await api.list_end_devices(client, application_id)

    with (
        patch.object(TTSClient, "get_auth_info", get_auth_info),
        patch.object(TTSClient, "get_application", get_application),
        patch.object(TTSClient, "list_end_devices", list_end_devices),
    ):
        yield api


@pytest.fixture
def app_mqtt() -> Iterator[FakeAppMqtt]:
    """The application's MQTT server, accepting APP_KEY."""
    with serving(APP_KEY) as server:
        yield server


def _application(entry: MockConfigEntry) -> ConfigSubentry:
    """The sub-entry of the application added (beside the migrated one)."""
    return next(
        subentry for subentry in entry.subentries.values() if subentry.unique_id == APP
    )


async def _start(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APPLICATION), context={"source": SOURCE_USER}
    )


async def _submit(hass: HomeAssistant, flow_id: str, **data: Any) -> dict[str, Any]:
    return await hass.config_entries.subentries.async_configure(flow_id, data)


def _user_input(**overrides: Any) -> dict[str, Any]:
    return {
        CONF_APPLICATION_ID: APP,
        CONF_API_KEY: APP_KEY,
        CONF_TRANSPORT: "direct",
        **overrides,
    }


async def test_add_a_direct_application(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
) -> None:
    """ID, key, direct: saved with the key's rights, connected at once."""
    result = await _start(hass, init_integration)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await _submit(
        hass, result["flow_id"], **_user_input(api_key=f"  Bearer {APP_KEY} ")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Home sensors"
    assert result["data"] == {
        CONF_APPLICATION_ID: APP,
        CONF_API_KEY: APP_KEY,
        CONF_TRANSPORT: "direct",
        CONF_RIGHTS: sorted(ALL_RIGHTS),
    }
    await hass.async_block_till_done()
    subentry = _application(init_integration)
    assert subentry.unique_id == APP
    # The account reloaded and the application connected.
    assert app_mqtt.connected
    assert app_mqtt.sessions[0].settings.username == f"{APP}@ttn"


async def test_application_through_home_assistant_mqtt(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
) -> None:
    """Through HA's MQTT: a topic step, refusing an invalid filter."""
    result = await _start(hass, init_integration)
    result = await _submit(hass, result["flow_id"], **_user_input(transport="mqtt"))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "mqtt"
    assert result["description_placeholders"] == {
        "default_topic": f"v3/{APP}@ttn/devices/+/up"
    }
    result = await _submit(hass, result["flow_id"], uplink_topic="v3/#/up")
    assert result["errors"] == {CONF_UPLINK_TOPIC: "invalid_topic"}
    result = await _submit(
        hass, result["flow_id"], uplink_topic=" ttn/v3/home-sensors@ttn/devices/+/up "
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_UPLINK_TOPIC] == "ttn/v3/home-sensors@ttn/devices/+/up"
    assert result["data"][CONF_TRANSPORT] == "mqtt"
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("answer", "error", "placeholders"),
    [
        ({"error": TTSAuthenticationError("401")}, "invalid_auth", {}),
        (
            {"error": TTSConnectionError("timeout")},
            "cannot_connect",
            {"error": "timeout"},
        ),
        ({"owner": "other-app"}, "wrong_application", {"owner": "other-app"}),
        ({"owner": "", "owner_type": KeyOwnerType.UNKNOWN}, "invalid_auth", {}),
        (
            {"rights": frozenset({"RIGHT_APPLICATION_INFO"})},
            "missing_rights",
            {"rights": "RIGHT_APPLICATION_TRAFFIC_READ"},
        ),
        (
            {"application_error": TTSNotFoundError("404")},
            "application_not_found",
            {},
        ),
        (
            {"application_error": TTSPermissionError("403")},
            "missing_rights",
            {"rights": "RIGHT_APPLICATION_INFO"},
        ),
        ({"error": RuntimeError("bug")}, "unknown", {}),
    ],
)
async def test_application_errors_then_corrected(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
    answer: dict[str, Any],
    error: str,
    placeholders: dict[str, str],
) -> None:
    """Each error is named on the form; the corrected input is saved."""
    for name, value in answer.items():
        setattr(app_api, name, value)
    result = await _start(hass, init_integration)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    for name, value in placeholders.items():
        assert result["description_placeholders"][name] == value
    assert APP_KEY.rsplit(".", 1)[1] not in str(result)

    corrected = FakeApplicationAPI()
    for name in answer:
        setattr(app_api, name, getattr(corrected, name))
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("application_id", "api_key", "errors"),
    [
        ("Not An ID", APP_KEY, {CONF_APPLICATION_ID: "invalid_application_id"}),
        (APP, "not-a-key", {"base": "invalid_auth"}),
    ],
)
async def test_malformed_input_is_refused_before_asking_tts(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
    application_id: str,
    api_key: str,
    errors: dict[str, str],
) -> None:
    """An ID that is no TTS ID, a key of the wrong shape; then a good one."""
    result = await _start(hass, init_integration)
    result = await _submit(
        hass,
        result["flow_id"],
        **_user_input(application_id=application_id, api_key=api_key),
    )
    assert result["errors"] == errors
    assert app_api.keys == []
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_an_application_is_added_once(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
) -> None:
    """The same application ID again is refused."""
    result = await _start(hass, init_integration)
    await _submit(hass, result["flow_id"], **_user_input())
    await hass.async_block_till_done()
    result = await _start(hass, init_integration)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.fixture
def self_hosted_entry(hass: HomeAssistant) -> MockConfigEntry:
    """An account on a self-hosted server over plain http."""
    return MockConfigEntry(
        domain=DOMAIN,
        version=3,
        title="admin (192.168.1.10:1885)",
        unique_id="admin@192.168.1.10:1885",
        data={CONF_SERVER: "http://192.168.1.10:1885", CONF_API_KEY: API_KEY},
    )


async def test_self_hosted_server_asks_where_its_mqtt_server_is(
    hass: HomeAssistant,
    self_hosted_entry: MockConfigEntry,
    app_api: FakeApplicationAPI,
) -> None:
    """A self-hosted server: host, port, username and TLS, with defaults."""
    self_hosted_entry.add_to_hass(hass)
    result = await _start(hass, self_hosted_entry)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "direct"
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
    }
    assert suggested == {
        CONF_MQTT_HOST: "192.168.1.10",
        CONF_MQTT_PORT: 1883,
        CONF_MQTT_USERNAME: APP,
        CONF_MQTT_TLS: False,
    }
    result = await _submit(
        hass,
        result["flow_id"],
        mqtt_host=" mqtt.lan ",
        mqtt_port=8883,
        mqtt_username="home-sensors@acme",
        mqtt_tls=True,
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert {
        key: result["data"][key]
        for key in (CONF_MQTT_HOST, CONF_MQTT_PORT, CONF_MQTT_USERNAME, CONF_MQTT_TLS)
    } == {
        CONF_MQTT_HOST: "mqtt.lan",
        CONF_MQTT_PORT: 8883,
        CONF_MQTT_USERNAME: "home-sensors@acme",
        CONF_MQTT_TLS: True,
    }


async def test_reconfigure_an_application(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
) -> None:
    """A new key and HA's MQTT instead: saved in place, the account reloads."""
    result = await _start(hass, init_integration)
    await _submit(hass, result["flow_id"], **_user_input())
    await hass.async_block_till_done()
    subentry = _application(init_integration)

    result = await hass.config_entries.subentries.async_init(
        (init_integration.entry_id, SUBENTRY_APPLICATION),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    assert result["step_id"] == "user"
    result = await _submit(
        hass, result["flow_id"], **_user_input(api_key=NEW_KEY, transport="mqtt")
    )
    assert result["step_id"] == "mqtt"
    result = await _submit(
        hass, result["flow_id"], uplink_topic=f"v3/{APP}@ttn/devices/+/up"
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = _application(init_integration)
    assert subentry.data[CONF_API_KEY] == NEW_KEY
    assert subentry.data[CONF_TRANSPORT] == "mqtt"
    # No longer connected directly.
    assert not app_mqtt.connected


async def test_repair_flow_takes_a_new_key(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The rejected key's issue asks for a new key; then it connects."""
    assert await async_setup_component(hass, "repairs", {})
    app_mqtt.api_key = NEW_KEY
    result = await _start(hass, init_integration)
    await _submit(hass, result["flow_id"], **_user_input())
    await hass.async_block_till_done()
    subentry = _application(init_integration)
    issue_id = f"application_key_rejected_{subentry.subentry_id}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    flow = await response.json()
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["application"] == "Home sensors"
    app_api.error = TTSAuthenticationError("401")
    response = await client.post(
        f"/api/repairs/issues/fix/{flow['flow_id']}", json={CONF_API_KEY: "NNSXS.A.B"}
    )
    flow = await response.json()
    assert flow["errors"] == {"base": "invalid_auth"}
    app_api.error = None
    response = await client.post(
        f"/api/repairs/issues/fix/{flow['flow_id']}", json={CONF_API_KEY: NEW_KEY}
    )
    flow = await response.json()
    assert flow["type"] == "create_entry"
    await hass.async_block_till_done()
    subentry = _application(init_integration)
    assert subentry.data[CONF_API_KEY] == NEW_KEY
    assert app_mqtt.connected
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_repair_flow_of_a_removed_application(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
) -> None:
    """An issue whose application is gone only says so."""
    from custom_components.ttn_gateway.repairs import async_create_fix_flow

    flow = await async_create_fix_flow(
        hass,
        "application_key_rejected_gone",
        {"entry_id": init_integration.entry_id, "subentry_id": "gone"},
    )
    flow.hass = hass
    result = await flow.async_step_init()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "application_removed"
