"""Adding, reconfiguring and fixing TTS applications (config sub-entries).

The TTS client's calls are replaced here by what TTS answers; the client's
own handling of those requests is tested in ``test_tts_applications.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
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
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
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
from custom_components.ttn_gateway.end_devices import direct
from custom_components.ttn_gateway.tts import (
    Application,
    AuthInfo,
    EndDeviceListing,
    KeyOwnerType,
    MqttConnectionInfo,
    TTSAuthenticationError,
    TTSClient,
    TTSConnectionError,
    TTSNotFoundError,
    TTSPermissionError,
)

from .common import console_labelled
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


# What The Things Network's eu1 Application Server answers to
# ``GET /api/v3/as/applications/home-sensors/mqtt-connection-info``: its
# public addresses and the application's unique ID (lorawan-stack
# pkg/applicationserver/io/grpc/grpc.go GetMQTTConnectionInfo; the addresses
# as TTN's MQTT integration page lists them).
TTN_MQTT_INFO = MqttConnectionInfo(
    public_address="eu1.cloud.thethings.network:1883",
    public_tls_address="eu1.cloud.thethings.network:8883",
    username=f"{APP}@ttn",
)
# A self-hosted The Things Stack left at its default public host
# (lorawan-stack cmd/ttn-lw-stack/commands/config.go): the username is the
# bare ID on a single-tenant deployment.
DEFAULT_MQTT_INFO = MqttConnectionInfo(
    public_address="localhost:1883",
    public_tls_address="localhost:8883",
    username=APP,
)


@dataclass
class FakeApplicationAPI:
    """What TTS answers about an application key; each call is logged."""

    owner: str = APP
    owner_type: KeyOwnerType = KeyOwnerType.APPLICATION
    rights: frozenset[str] = ALL_RIGHTS
    error: Exception | None = None
    application_error: Exception | None = None
    mqtt_info: MqttConnectionInfo = TTN_MQTT_INFO
    mqtt_info_error: Exception | None = None
    keys: list[str] = field(default_factory=list)
    # (server URL, key) of every call.
    calls: list[tuple[str, str]] = field(default_factory=list)

    def _log(self, client: TTSClient) -> None:
        self.calls.append((client.server.url, _key_of(client)))

    async def get_auth_info(self, client: TTSClient) -> AuthInfo:
        self._log(client)
        self.keys.append(_key_of(client))
        if self.error is not None:
            raise self.error
        return AuthInfo(self.owner_type, self.owner, self.rights)

    async def get_application(
        self, client: TTSClient, application_id: str
    ) -> Application:
        self._log(client)
        if self.application_error is not None:
            raise self.application_error
        return Application(application_id, "Home sensors", None)

    async def list_end_devices(
        self, client: TTSClient, application_id: str
    ) -> EndDeviceListing:
        self._log(client)
        return EndDeviceListing([], complete=True)

    async def get_mqtt_connection_info(
        self, client: TTSClient, application_id: str
    ) -> MqttConnectionInfo:
        self._log(client)
        if self.mqtt_info_error is not None:
            raise self.mqtt_info_error
        return self.mqtt_info


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

    async def get_mqtt_connection_info(
        client: TTSClient, application_id: str
    ) -> MqttConnectionInfo:
        return await api.get_mqtt_connection_info(client, application_id)

    with (
        patch.object(TTSClient, "get_auth_info", get_auth_info),
        patch.object(TTSClient, "get_application", get_application),
        patch.object(TTSClient, "list_end_devices", list_end_devices),
        patch.object(TTSClient, "get_mqtt_connection_info", get_mqtt_connection_info),
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
        CONF_SERVER: "https://eu1.cloud.thethings.network",
        # TTS's answer: its TLS address, and the username it names.
        CONF_MQTT_HOST: "eu1.cloud.thethings.network",
        CONF_MQTT_PORT: 8883,
        CONF_MQTT_TLS: True,
        CONF_MQTT_USERNAME: f"{APP}@ttn",
    }
    await hass.async_block_till_done()
    # The flow's test login, then the connection after the reload.
    assert app_mqtt.attempts == 2
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
            {"rights": console_labelled("RIGHT_APPLICATION_TRAFFIC_READ")},
        ),
        (
            {"application_error": TTSNotFoundError("404")},
            "application_not_found",
            {},
        ),
        (
            {"application_error": TTSPermissionError("403")},
            "missing_rights",
            {"rights": console_labelled("RIGHT_APPLICATION_INFO")},
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
    app_mqtt: FakeAppMqtt,
) -> None:
    """A self-hosted server: host, port, username and TLS, with defaults.

    The server answers with TTS's default public host, localhost: the
    server's own host is suggested instead.
    """
    app_api.mqtt_info = DEFAULT_MQTT_INFO
    self_hosted_entry.add_to_hass(hass)
    result = await _start(hass, self_hosted_entry)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "direct"
    suggested = {
        str(key): (key.description or {}).get("suggested_value")
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
    result = await _start(hass, init_integration)
    await _submit(hass, result["flow_id"], **_user_input())
    await hass.async_block_till_done()
    assert app_mqtt.connected
    subentry = _application(init_integration)
    issue_id = f"application_key_rejected_{subentry.subentry_id}"
    # The key is deleted in the Console: the MQTT server and auth_info refuse it.
    app_mqtt.api_key = NEW_KEY
    app_api.error = TTSAuthenticationError("401")
    app_mqtt.drop()
    for _ in range(10):
        await hass.async_block_till_done()
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


async def test_a_link_key_passes_the_application_checks(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
) -> None:
    """RIGHT_APPLICATION_LINK implies info, traffic read and downlinks.

    lorawan-stack api/ttn/lorawan/v3/rights.proto, RIGHT_APPLICATION_LINK.
    """
    app_api.rights = frozenset({"RIGHT_APPLICATION_LINK"})
    result = await _start(hass, init_integration)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_RIGHTS] == [
        "RIGHT_APPLICATION_INFO",
        "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE",
        "RIGHT_APPLICATION_TRAFFIC_READ",
    ]
    await hass.async_block_till_done()


def _suggested(result: dict[str, Any]) -> dict[str, Any]:
    return {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }


async def test_tenant_application_logs_in_as_app_at_tenant(
    hass: HomeAssistant, app_api: FakeApplicationAPI, app_mqtt: FakeAppMqtt
) -> None:
    """A The Things Industries Cloud tenant: TTS's addresses and app@tenant."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        title="admin (acme.eu1.cloud.thethings.industries)",
        unique_id="admin@acme.eu1.cloud.thethings.industries",
        data={
            CONF_SERVER: "https://acme.eu1.cloud.thethings.industries",
            CONF_API_KEY: API_KEY,
        },
    )
    entry.add_to_hass(hass)
    app_api.mqtt_info = MqttConnectionInfo(
        public_address="acme.eu1.cloud.thethings.industries:1883",
        public_tls_address="acme.eu1.cloud.thethings.industries:8883",
        username=f"{APP}@acme",
    )
    result = await _start(hass, entry)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MQTT_USERNAME] == f"{APP}@acme"
    assert result["data"][CONF_MQTT_HOST] == "acme.eu1.cloud.thethings.industries"
    assert app_mqtt.attempts == 1


OWN_HOST = "https://lns.example.com"


@pytest.mark.parametrize(
    ("info_error", "username"),
    [
        # An Enterprise tenant on its own host: TTS names the tenant.
        (None, f"{APP}@acme"),
        # No answer: the username follows from the server (no tenant in it).
        (TTSNotFoundError("404"), APP),
        (TTSPermissionError("403", ("RIGHT_APPLICATION_INFO",)), APP),
        (TTSConnectionError("timeout"), APP),
    ],
)
async def test_connection_info_or_the_fallback_suggests_the_direct_settings(
    hass: HomeAssistant,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
    info_error: Exception | None,
    username: str,
) -> None:
    """TTS's answer fills the direct step; without one, the server does."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        title="admin (lns.example.com)",
        unique_id="admin@lns.example.com",
        data={CONF_SERVER: OWN_HOST, CONF_API_KEY: API_KEY},
    )
    entry.add_to_hass(hass)
    app_api.mqtt_info = MqttConnectionInfo(
        public_address="lns.example.com:1883",
        public_tls_address="lns.example.com:8883",
        username=f"{APP}@acme",
    )
    app_api.mqtt_info_error = info_error
    result = await _start(hass, entry)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["step_id"] == "direct"
    assert _suggested(result) == {
        CONF_MQTT_HOST: "lns.example.com",
        CONF_MQTT_PORT: 8883,
        CONF_MQTT_USERNAME: username,
        CONF_MQTT_TLS: True,
    }
    result = await _submit(hass, result["flow_id"], **_suggested(result))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MQTT_USERNAME] == username
    assert result["data"][CONF_SERVER] == OWN_HOST


async def test_mqtt_login_failing_in_the_flow_is_named(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
) -> None:
    """Unreachable, then refused: named on the form; nothing saved until it works."""
    app_mqtt.reachable = False
    result = await _start(hass, init_integration)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "mqtt_cannot_connect"}
    assert "connection refused" in result["description_placeholders"]["error"]

    app_mqtt.reachable = True
    app_mqtt.api_key = NEW_KEY  # the server takes another key only
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["errors"] == {"base": "mqtt_invalid_auth"}
    assert result["description_placeholders"]["username"] == f"{APP}@ttn"
    # The key entered is not sent back with the form.
    assert _suggested(result)[CONF_API_KEY] is None
    assert not any(
        subentry.unique_id == APP for subentry in _subentries(init_integration)
    )

    app_mqtt.api_key = APP_KEY
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


def _subentries(entry: MockConfigEntry) -> list[ConfigSubentry]:
    return list(entry.subentries.values())


async def test_mqtt_login_failing_on_the_direct_step(
    hass: HomeAssistant,
    self_hosted_entry: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
) -> None:
    """A self-hosted server: the direct step names the failure."""
    app_api.mqtt_info = DEFAULT_MQTT_INFO
    self_hosted_entry.add_to_hass(hass)
    result = await _start(hass, self_hosted_entry)
    result = await _submit(hass, result["flow_id"], **_user_input())
    app_mqtt.reachable = False
    result = await _submit(hass, result["flow_id"], **_suggested(result))
    assert result["step_id"] == "direct"
    assert result["errors"] == {"base": "mqtt_cannot_connect"}
    app_mqtt.reachable = True
    result = await _submit(hass, result["flow_id"], **_suggested(result))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_mqtt_login_without_answer_is_named(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
) -> None:
    """A login that times out counts as unreachable."""

    @asynccontextmanager
    async def no_answer(*args: Any, **kwargs: Any) -> AsyncIterator[None]:
        raise TimeoutError
        yield  # pragma: no cover

    with patch.object(direct, "CONNECT", no_answer):
        result = await _start(hass, init_integration)
        result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["errors"] == {"base": "mqtt_cannot_connect"}
    assert result["description_placeholders"]["error"] == (
        "eu1.cloud.thethings.network:8883: no answer"
    )


async def test_cleartext_to_a_remote_host_is_warned_about(
    hass: HomeAssistant, app_api: FakeApplicationAPI, app_mqtt: FakeAppMqtt
) -> None:
    """TLS off to a host outside the network: a warning, then it is accepted."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        title="admin (tts.example.com)",
        unique_id="admin@tts.example.com",
        data={CONF_SERVER: "http://tts.example.com", CONF_API_KEY: API_KEY},
    )
    entry.add_to_hass(hass)
    app_api.mqtt_info_error = TTSNotFoundError("404")
    result = await _start(hass, entry)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["step_id"] == "direct"
    assert _suggested(result)[CONF_MQTT_TLS] is False
    assert result["errors"] == {}
    # The suggested settings as they are: warned, not tried.
    attempts = app_mqtt.attempts
    result = await _submit(hass, result["flow_id"], **_suggested(result))
    assert result["errors"] == {"base": "mqtt_cleartext"}
    assert app_mqtt.attempts == attempts

    # TLS on: no warning; then off again for another host: warned first.
    settings = {**_suggested(result), CONF_MQTT_TLS: True, CONF_MQTT_PORT: 8883}
    app_mqtt.reachable = False
    result = await _submit(hass, result["flow_id"], **settings)
    assert result["errors"] == {"base": "mqtt_cannot_connect"}
    app_mqtt.reachable = True
    settings = {**settings, CONF_MQTT_TLS: False, CONF_MQTT_HOST: "mqtt.example.net"}
    attempts = app_mqtt.attempts
    result = await _submit(hass, result["flow_id"], **settings)
    assert result["step_id"] == "direct"
    assert result["errors"] == {"base": "mqtt_cleartext"}
    assert app_mqtt.attempts == attempts
    result = await _submit(hass, result["flow_id"], **settings)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MQTT_HOST] == "mqtt.example.net"
    assert result["data"][CONF_MQTT_TLS] is False


NEW_SERVER = "https://tts.example.com"


async def _add_application(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    result = await _start(hass, entry)
    result = await _submit(hass, result["flow_id"], **_user_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def _move_account(
    hass: HomeAssistant, entry: MockConfigEntry, server: str
) -> None:
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: server, CONF_API_KEY: API_KEY}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()


def _bearer_requests(
    aioclient_mock: AiohttpClientMocker, key: str
) -> list[tuple[str, str]]:
    """(method, URL) of the HTTP requests sent with a key."""
    return [
        (str(method), str(url))
        for method, url, _data, headers in aioclient_mock.mock_calls
        if (headers or {}).get("Authorization") == f"Bearer {key}"
    ]


async def test_reconfigure_to_another_server_keeps_application_keys_home(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    aioclient_mock: AiohttpClientMocker,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The account moves: the application's key stays off the new server.

    The application is not started and a repair issue asks for a key of the
    new server; that key, checked there, brings the application back.
    """
    assert await async_setup_component(hass, "repairs", {})
    await _add_application(hass, init_integration)
    assert app_mqtt.connected
    attempts = app_mqtt.attempts
    calls = len(app_api.calls)

    await _move_account(hass, init_integration, NEW_SERVER)
    # Nothing with the application's key reached the new server.
    assert [call for call in app_api.calls[calls:] if call[1] == APP_KEY] == []
    assert [
        call
        for call in _bearer_requests(aioclient_mock, APP_KEY)
        if NEW_SERVER in call[1]
    ] == []
    assert app_mqtt.attempts == attempts
    assert not app_mqtt.connected
    subentry = _application(init_integration)
    assert subentry.data[CONF_SERVER] == "https://eu1.cloud.thethings.network"
    issue_id = f"application_key_rejected_{subentry.subentry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "application_server_changed"
    assert issue.translation_placeholders == {
        "application": "Home sensors",
        "server": "tts.example.com",
    }

    # The fix: a key of the new server, checked there, with its MQTT server.
    app_api.mqtt_info = MqttConnectionInfo(
        public_address="tts.example.com:1883",
        public_tls_address="tts.example.com:8883",
        username=APP,
    )
    app_mqtt.api_key = NEW_KEY
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    flow = await response.json()
    assert flow["step_id"] == "confirm"
    response = await client.post(
        f"/api/repairs/issues/fix/{flow['flow_id']}", json={CONF_API_KEY: NEW_KEY}
    )
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert (NEW_SERVER, NEW_KEY) in app_api.calls
    assert [
        call for call in app_api.calls if call[1] == APP_KEY and call[0] == NEW_SERVER
    ] == []
    subentry = _application(init_integration)
    assert subentry.data[CONF_SERVER] == NEW_SERVER
    assert subentry.data[CONF_API_KEY] == NEW_KEY
    assert app_mqtt.connected
    assert app_mqtt.sessions[0].settings.host == "tts.example.com"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_moving_back_to_the_keys_server_resumes_the_application(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Back on the server the key was checked on: no issue, connected again."""
    await _add_application(hass, init_integration)
    await _move_account(hass, init_integration, NEW_SERVER)
    assert not app_mqtt.connected
    await _move_account(hass, init_integration, "eu1")
    subentry = _application(init_integration)
    assert (
        issue_registry.async_get_issue(
            DOMAIN, f"application_key_rejected_{subentry.subentry_id}"
        )
        is None
    )
    assert app_mqtt.connected


async def test_an_application_from_before_servers_were_stored(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
    issue_registry: ir.IssueRegistry,
) -> None:
    """No stored server: it counts as the account's, and stays with it."""
    await _add_application(hass, init_integration)
    subentry = _application(init_integration)
    legacy = {key: value for key, value in subentry.data.items() if key != CONF_SERVER}
    hass.config_entries.async_update_subentry(init_integration, subentry, data=legacy)
    await hass.async_block_till_done()
    assert app_mqtt.connected  # used on the account's server

    calls = len(app_api.calls)
    await _move_account(hass, init_integration, NEW_SERVER)
    subentry = _application(init_integration)
    assert subentry.data[CONF_SERVER] == "https://eu1.cloud.thethings.network"
    assert [call for call in app_api.calls[calls:] if call[1] == APP_KEY] == []
    assert not app_mqtt.connected
    assert issue_registry.async_get_issue(
        DOMAIN, f"application_key_rejected_{subentry.subentry_id}"
    )


async def test_moved_application_through_home_assistant_mqtt_gets_a_new_key(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    app_api: FakeApplicationAPI,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Through HA's MQTT the key serves downlinks and lists: bound alike."""
    from custom_components.ttn_gateway.repairs import async_create_fix_flow

    result = await _start(hass, init_integration)
    result = await _submit(hass, result["flow_id"], **_user_input(transport="mqtt"))
    result = await _submit(
        hass, result["flow_id"], uplink_topic=f"v3/{APP}@ttn/devices/+/up"
    )
    assert result["data"][CONF_SERVER] == "https://eu1.cloud.thethings.network"
    await hass.async_block_till_done()
    await _move_account(hass, init_integration, NEW_SERVER)
    subentry = _application(init_integration)
    issue_id = f"application_key_rejected_{subentry.subentry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.data is not None

    flow = await async_create_fix_flow(hass, issue_id, dict(issue.data))
    flow.hass = hass
    await flow.async_step_init()
    result = await flow.async_step_confirm({CONF_API_KEY: NEW_KEY})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = _application(init_integration)
    assert subentry.data[CONF_SERVER] == NEW_SERVER
    assert subentry.data[CONF_API_KEY] == NEW_KEY
    assert subentry.data[CONF_UPLINK_TOPIC] == f"v3/{APP}@ttn/devices/+/up"
    assert CONF_MQTT_HOST not in subentry.data


async def test_reconfiguring_a_moved_application_suggests_the_new_server(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_api: FakeApplicationAPI,
    app_mqtt: FakeAppMqtt,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A new key on the application itself settles a move, with new settings."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        title="jdoe (192.168.1.10:1885)",
        unique_id="jdoe@192.168.1.10:1885",
        data={CONF_SERVER: "http://192.168.1.10:1885", CONF_API_KEY: API_KEY},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    app_api.mqtt_info = DEFAULT_MQTT_INFO
    result = await _start(hass, entry)
    result = await _submit(hass, result["flow_id"], **_user_input())
    result = await _submit(
        hass, result["flow_id"], **{**_suggested(result), CONF_MQTT_HOST: "mqtt.lan"}
    )
    assert result["data"][CONF_MQTT_HOST] == "mqtt.lan"
    await hass.async_block_till_done()

    await _move_account(hass, entry, "http://192.168.1.20:1885")
    subentry = _application(entry)
    issue_id = f"application_key_rejected_{subentry.subentry_id}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    app_mqtt.api_key = NEW_KEY
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APPLICATION),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    result = await _submit(hass, result["flow_id"], **_user_input(api_key=NEW_KEY))
    assert result["step_id"] == "direct"
    assert _suggested(result)[CONF_MQTT_HOST] == "192.168.1.20"
    result = await _submit(hass, result["flow_id"], **_suggested(result))
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert _application(entry).data[CONF_SERVER] == "http://192.168.1.20:1885"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert app_mqtt.connected


async def test_moving_the_account_leaves_an_application_without_key_alone(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A migrated application of Home Assistant's MQTT holds no key to protect."""
    from homeassistant.helpers import device_registry as dr

    entry = mock_config_entry
    entry.add_to_hass(hass)
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, f"{entry.unique_id}/device/{APP}/feather-m0")},
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    (migrated,) = _subentries(entry)
    assert CONF_API_KEY not in migrated.data

    await _move_account(hass, entry, NEW_SERVER)
    (migrated,) = _subentries(entry)
    assert migrated.subentry_type == SUBENTRY_APPLICATION
    assert CONF_SERVER not in migrated.data
    assert not [
        issue
        for (domain, _), issue in issue_registry.issues.items()
        if domain == DOMAIN and issue.translation_key == "application_server_changed"
    ]
