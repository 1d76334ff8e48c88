"""The simulator's application MQTT server: logins, topics, uplinks and downlinks.

These run a real mosquitto (``.ci/run`` installs it) with the password file
and ACL the demo and the end-to-end tests use.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import json
from pathlib import Path
import queue
import threading
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.setup import async_setup_component
from paho.mqtt.client import Client, ConnectFlags, MQTTMessage, MQTTv311
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    mock_config_flow,
    mock_integration,
    mock_platform,
)
import voluptuous as vol

from tts_simulator import ManualClock, Simulator, make_devices, make_fleet
from tts_simulator.app_broker import (
    CONNACK_ACCEPTED,
    CONNACK_NOT_AUTHORIZED,
    AppBroker,
    connack_code,
    mosquitto_password_hash,
    mqtt_username,
)
from tts_simulator.app_mqtt import (
    AppMqttLogin,
    InvalidDownlinkError,
    downlink_recorder,
    parse_downlinks,
)
from tts_simulator.server import create_app
from tts_simulator.stack import (
    LOCALHOST,
    HomeAssistantClient,
    Processes,
    StackError,
    find_mosquitto,
    free_port,
    start_app_broker,
)
from tts_simulator.tts_json import api_key

from .fake_tts import API_KEY

USERNAME = "home-sensors@ttn"
APP_KEY = api_key(__import__("random").Random(11))
OTHER_KEY = api_key(__import__("random").Random(12))
SIM_PASSWORD = "simulator-secret"  # a test broker's login
TOPICS = f"v3/{USERNAME}/devices"
WAIT = 10.0
# What the server answers a downlink with.
ANSWERS = (
    f"{TOPICS}/+/down/queued",
    f"{TOPICS}/+/down/sent",
    f"{TOPICS}/+/down/ack",
    f"{TOPICS}/+/down/failed",
)

requires_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None,
    reason="mosquitto is not installed (.ci/run installs it with apt-get)",
)


class Probe:
    """An MQTT 3.1.1 client as an integration would be, with what it received."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.client = Client(
            CallbackAPIVersion.VERSION2, protocol=MQTTv311, client_id=""
        )
        self.client.username_pw_set(username, password)
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.answered = threading.Event()
        self.reason: ReasonCode | None = None
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect_async(LOCALHOST, port)
        self.client.loop_start()

    def _on_connect(
        self,
        _client: Client,
        _userdata: Any,
        _flags: ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.reason = reason
        self.answered.set()

    def _on_message(
        self, _client: Client, _userdata: Any, message: MQTTMessage
    ) -> None:
        self.messages.put((message.topic, json.loads(message.payload)))

    def accepted(self) -> bool:
        """Whether the server accepted the login."""
        assert self.answered.wait(WAIT), "no CONNACK"
        assert self.reason is not None
        return not self.reason.is_failure

    def subscribe(self, *topics: str) -> None:
        """Subscribe and wait until the server confirmed (or refused) it."""
        assert self.accepted()
        done = threading.Event()
        self.client.on_subscribe = lambda *_args: done.set()
        self.client.subscribe([(topic, 0) for topic in topics])
        assert done.wait(WAIT), "no SUBACK"

    def publish(self, topic: str, body: Any) -> None:
        """Publish JSON (or raw bytes) at QoS 0."""
        assert self.accepted()
        payload = body if isinstance(body, bytes) else json.dumps(body)
        self.client.publish(topic, payload, qos=0).wait_for_publish(WAIT)

    async def next(self, seconds: float = WAIT) -> tuple[str, Any]:
        """The next message; fails after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                return self.messages.get_nowait()
            except queue.Empty:
                assert time.monotonic() < deadline, "no message arrived"
                await asyncio.sleep(0.05)

    async def topics_within(self, seconds: float = 1.0) -> set[str]:
        """The topics of what arrives within `seconds`."""
        await asyncio.sleep(seconds)
        topics = set()
        while not self.messages.empty():
            topics.add(self.messages.get_nowait()[0])
        return topics

    async def nothing(self, seconds: float = 1.0) -> None:
        """Nothing arrives for `seconds`."""
        await asyncio.sleep(seconds)
        assert self.messages.empty(), self.messages.get_nowait()

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(name="probes")
def probes_fixture() -> Iterator[list[Probe]]:
    """Probes made by a test, all closed at its end."""
    made: list[Probe] = []
    yield made
    for probe in made:
        probe.close()


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path, socket_enabled: None) -> Iterator[AppBroker]:
    """The application's MQTT server (mosquitto) on a free port."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it with apt-get)")
    processes = Processes(tmp_path / "logs")
    try:
        yield start_app_broker(
            processes,
            free_port(),
            tmp_path,
            username=USERNAME,
            api_key=APP_KEY,
            sim_password=SIM_PASSWORD,
        )
    finally:
        processes.stop()


@pytest.fixture(name="clock")
def clock_fixture() -> ManualClock:
    return ManualClock()


@pytest.fixture(name="sim")
def sim_fixture(clock: ManualClock) -> Simulator:
    """Five live gateways and the four end devices, sending every 60 s."""
    simulator = Simulator(api_key=API_KEY, clock=clock)
    for gateway in make_fleet(5, clock()):
        simulator.add_gateway(gateway)
    simulator.devices = make_devices(clock(), interval=60)
    return simulator


@pytest.fixture(name="served")
async def served_fixture(
    sim: Simulator,
    broker: AppBroker,
    socket_enabled: None,
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
) -> AsyncIterator[TestClient]:
    """The simulator's server, logged in to the application's MQTT server."""
    login = AppMqttLogin(LOCALHOST, broker.port, broker.sim_user, SIM_PASSWORD)
    client = await aiohttp_client(create_app(sim, app_mqtt=login))
    # Its subscriptions are in place once a push round-trips; wait for that.
    probe = Probe(broker.port, USERNAME, APP_KEY)
    try:
        probe.subscribe(f"{TOPICS}/+/down/queued")
        deadline = time.monotonic() + WAIT
        while not downlink_recorder(sim).downlinks:
            assert time.monotonic() < deadline, "the simulator did not subscribe"
            probe.publish(f"{TOPICS}/feather-m0/down/push", {"downlinks": []})
            await asyncio.sleep(0.2)
        downlink_recorder(sim).downlinks.clear()
    finally:
        probe.close()
    return client


def test_mqtt_username() -> None:
    assert mqtt_username("home-sensors", "ttn") == "home-sensors@ttn"
    assert mqtt_username("home-sensors", "") == "home-sensors"


def test_mosquitto_hash_is_pbkdf2_sha512() -> None:
    hashed = mosquitto_password_hash("secret", salt=b"\0" * 12)
    marker, iterations, salt, digest = hashed.split("$")[1:]
    assert (marker, iterations, base64.b64decode(salt)) == ("7", "101", b"\0" * 12)
    assert len(base64.b64decode(digest)) == 64
    assert hashed != mosquitto_password_hash("secret")  # a fresh salt each time


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "downlinks"),
        ({"downlink": []}, "downlinks"),
        ({"downlinks": [{"f_port": 0, "frm_payload": "AQ=="}]}, "downlinks[0].f_port"),
        (
            {"downlinks": [{"f_port": 224, "frm_payload": "AQ=="}]},
            "downlinks[0].f_port",
        ),
        (
            {"downlinks": [{"f_port": True, "frm_payload": "AQ=="}]},
            "downlinks[0].f_port",
        ),
        (
            {"downlinks": [{"f_port": 1, "frm_payload": "***"}]},
            "downlinks[0].frm_payload",
        ),
        ({"downlinks": [{"f_port": 1}]}, "downlinks[0].frm_payload"),
        (
            {"downlinks": [{"f_port": 1, "frm_payload": "", "priority": "URGENT"}]},
            "downlinks[0].priority",
        ),
        (
            {"downlinks": [{"f_port": 1, "frm_payload": "", "confirmed": "yes"}]},
            "downlinks[0].confirmed",
        ),
        ({"downlinks": [{}, "x"]}, "downlinks[0].f_port"),
    ],
)
def test_invalid_downlinks_name_the_field(body: Any, field: str) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(InvalidDownlinkError) as refused:
        parse_downlinks(payload)
    assert refused.value.field == field


def test_valid_downlinks() -> None:
    downlinks = [
        {"f_port": 1, "frm_payload": "AQI=", "confirmed": False, "priority": "NORMAL"},
        {"f_port": 223, "decoded_payload": {"led": True}},
    ]
    assert parse_downlinks(json.dumps({"downlinks": downlinks}).encode()) == downlinks


@requires_mosquitto
def test_only_the_application_key_logs_in(broker: AppBroker) -> None:
    assert connack_code(broker.port, USERNAME, APP_KEY) == CONNACK_ACCEPTED
    assert connack_code(broker.port, USERNAME, OTHER_KEY) == CONNACK_NOT_AUTHORIZED
    assert connack_code(broker.port, "other-app@ttn", APP_KEY) == CONNACK_NOT_AUTHORIZED
    assert connack_code(broker.port, "", "") == CONNACK_NOT_AUTHORIZED
    # The simulator's own login.
    assert connack_code(broker.port, broker.sim_user, SIM_PASSWORD) == CONNACK_ACCEPTED


@requires_mosquitto
def test_a_new_key_locks_out_the_old_one(broker: AppBroker) -> None:
    broker.set_key(OTHER_KEY)
    assert connack_code(broker.port, USERNAME, APP_KEY) == CONNACK_NOT_AUTHORIZED
    assert connack_code(broker.port, USERNAME, OTHER_KEY) == CONNACK_ACCEPTED
    assert connack_code(broker.port, broker.sim_user, SIM_PASSWORD) == CONNACK_ACCEPTED


@requires_mosquitto
async def test_uplinks_reach_the_application_only_on_its_topics(
    served: TestClient,
    sim: Simulator,
    clock: ManualClock,
    broker: AppBroker,
    probes: list[Probe],
) -> None:
    app = Probe(broker.port, USERNAME, APP_KEY)
    nosy = Probe(broker.port, USERNAME, APP_KEY)
    sim_login = Probe(broker.port, broker.sim_user, SIM_PASSWORD)
    refused = Probe(broker.port, USERNAME, OTHER_KEY)
    probes += [app, nosy, sim_login, refused]
    assert app.accepted()
    assert nosy.accepted()
    assert sim_login.accepted()
    assert not refused.accepted()
    assert refused.reason is not None
    assert str(refused.reason) == "Not authorized"

    app.subscribe(f"{TOPICS}/+/up")
    # Wildcards reach only v3/{username}/# (TTS rewrites them to that).
    nosy.subscribe("#", "v3/other-app@ttn/#", "v3/+/devices/+/up")
    clock.advance(61)  # every device's next uplink is due

    received = {}
    for _ in range(4):
        topic, up = await app.next()
        received[topic] = up
    assert set(received) == {
        f"{TOPICS}/{device}/up"
        for device in (
            "feather-m0",
            "lpp-climate-sensor",
            "soil-sensor",
            "office-desk-sensor",
        )
    }
    up = received[f"{TOPICS}/soil-sensor/up"]
    assert up["end_device_ids"]["application_ids"] == {"application_id": "home-sensors"}
    assert up["uplink_message"]["f_cnt"] >= 1
    desk = received[f"{TOPICS}/office-desk-sensor/up"]["uplink_message"]
    assert (
        desk["normalized_payload"][0]["air"]["relativeHumidity"]
        == (desk["decoded_payload"]["humidity"])
    )

    # Another application's traffic never reaches this application's key.
    sim_login.publish("v3/other-app@ttn/devices/x/up", {"secret": True})
    assert {
        topic
        for topic in await nosy.topics_within()
        if not topic.startswith(f"{TOPICS}/")
    } == set()
    # The key publishes only downlinks of its own application.
    sim_login.subscribe("v3/#")
    nosy.publish("v3/other-app@ttn/devices/x/down/push", {"downlinks": []})
    nosy.publish(f"{TOPICS}/feather-m0/up", {"forged": True})
    await sim_login.nothing()


@requires_mosquitto
async def test_pushed_downlink_is_queued_then_sent(
    served: TestClient, sim: Simulator, broker: AppBroker, probes: list[Probe]
) -> None:
    app = Probe(broker.port, USERNAME, APP_KEY)
    probes.append(app)
    app.subscribe(*ANSWERS)
    downlink = {
        "f_port": 15,
        "frm_payload": "vu8=",
        "confirmed": True,
        "priority": "HIGH",
    }
    app.publish(f"{TOPICS}/feather-m0/down/push", {"downlinks": [downlink]})

    topic, queued = await app.next()
    assert topic == f"{TOPICS}/feather-m0/down/queued"
    started = time.monotonic()
    assert queued["end_device_ids"]["device_id"] == "feather-m0"
    assert queued["end_device_ids"]["dev_eui"] == "9876B6000011A1F5"
    body = queued["downlink_queued"]
    assert (
        body["f_port"],
        body["frm_payload"],
        body["confirmed"],
        body["priority"],
    ) == (
        15,
        "vu8=",
        True,
        "HIGH",
    )
    assert body["correlation_ids"][0].startswith("as:downlink:")
    assert queued["correlation_ids"] == body["correlation_ids"]

    topic, sent = await app.next()
    assert topic == f"{TOPICS}/feather-m0/down/sent"
    assert time.monotonic() - started > 0.5  # a moment later, not at once
    assert sent["downlink_sent"] == body
    # Confirmed: the device acknowledges it.
    topic, ack = await app.next()
    assert topic == f"{TOPICS}/feather-m0/down/ack"
    assert ack["downlink_ack"] == body

    (record,) = downlink_recorder(sim).downlinks
    assert (record["device_id"], record["replace"], record["via"]) == (
        "feather-m0",
        False,
        "mqtt",
    )
    assert record["downlinks"] == [downlink]

    # Replace: recorded as such; an unconfirmed downlink says nothing of it.
    app.publish(
        f"{TOPICS}/soil-sensor/down/replace",
        {"downlinks": [{"f_port": 2, "frm_payload": "AA==", "confirmed": False}]},
    )
    topic, queued = await app.next()
    assert topic == f"{TOPICS}/soil-sensor/down/queued"
    assert "confirmed" not in queued["downlink_queued"]
    assert queued["downlink_queued"]["priority"] == "NORMAL"
    assert downlink_recorder(sim).downlinks[-1]["replace"] is True
    topic, _sent = await app.next()
    assert topic == f"{TOPICS}/soil-sensor/down/sent"
    await app.nothing(1.5)  # unconfirmed: no ack


@requires_mosquitto
async def test_downlinks_recorded_over_http_are_answered_too(
    served: TestClient, sim: Simulator, broker: AppBroker, probes: list[Probe]
) -> None:
    app = Probe(broker.port, USERNAME, APP_KEY)
    probes.append(app)
    app.subscribe(*ANSWERS)
    downlink_recorder(sim).record_downlink(
        "home-sensors",
        "lpp-climate-sensor",
        replace=False,
        downlinks=[{"f_port": 3, "frm_payload": "AQ=="}],
        via="http",
    )
    assert [(await app.next())[0] for _ in range(2)] == [
        f"{TOPICS}/lpp-climate-sensor/down/queued",
        f"{TOPICS}/lpp-climate-sensor/down/sent",
    ]


@requires_mosquitto
async def test_invalid_downlink_is_dropped_without_a_word(
    served: TestClient, sim: Simulator, broker: AppBroker, probes: list[Probe]
) -> None:
    """As TTS's ``connection.deliver`` (``pkg/applicationserver/io/mqtt/mqtt.go``):
    an invalid downlink, or one to an unknown device, is only logged."""
    app = Probe(broker.port, USERNAME, APP_KEY)
    probes.append(app)
    app.subscribe(*ANSWERS)
    app.publish(
        f"{TOPICS}/feather-m0/down/push",
        {"downlinks": [{"f_port": 0, "frm_payload": "AQ=="}]},
    )
    app.publish(f"{TOPICS}/feather-m0/down/push", b"{not json")
    app.publish(
        f"{TOPICS}/no-such-device/down/push",
        {"downlinks": [{"f_port": 1, "frm_payload": "AQ=="}]},
    )
    await app.nothing(0.5)
    assert downlink_recorder(sim).downlinks == []
    # A valid one after them is answered.
    app.publish(
        f"{TOPICS}/feather-m0/down/push",
        {"downlinks": [{"f_port": 1, "frm_payload": "AQ=="}]},
    )
    topic, _ = await app.next()
    assert topic == f"{TOPICS}/feather-m0/down/queued"


# --- the demo's sub-entry flow driver ----------------------------------------


class _ApplicationFlow(ConfigSubentryFlow):
    """A two-step application sub-entry flow, as the integration's."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        if user_input is None:
            return self.async_show_form(
                step_id="user",
                data_schema=vol.Schema(
                    {
                        vol.Required("application_id"): str,
                        vol.Required("api_key"): str,
                        vol.Optional("transport", default="home_assistant"): str,
                        vol.Optional("note", default="kept"): str,
                    }
                ),
            )
        self.data = user_input
        return await self.async_step_direct()

    async def async_step_direct(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        schema = vol.Schema(
            {
                vol.Required("mqtt_host"): str,
                vol.Required("mqtt_port", default=8883): int,
                vol.Optional("mqtt_tls", default=True): bool,
            }
        )
        if user_input is None:
            return self.async_show_form(step_id="direct", data_schema=schema)
        if user_input["mqtt_host"] == "unreachable":
            return self.async_show_form(
                step_id="direct", data_schema=schema, errors={"base": "cannot_connect"}
            )
        return self.async_create_entry(
            title=self.data["application_id"], data={**self.data, **user_input}
        )


class _Flow(ConfigFlow):
    VERSION = 1

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        return {"application": _ApplicationFlow}


@pytest.mark.usefixtures("socket_enabled")
async def test_add_subentry_fills_each_step_and_keeps_defaults(
    hass: HomeAssistant,
    hass_access_token: str,
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
) -> None:
    mock_integration(hass, MockModule("subentry_demo"))
    mock_platform(hass, "subentry_demo.config_flow", None)
    assert await async_setup_component(hass, "config", {})
    entry = MockConfigEntry(domain="subentry_demo")
    entry.add_to_hass(hass)
    http = await aiohttp_client(hass.http.app)
    client = HomeAssistantClient(http.session, http.port)
    client.token = hass_access_token
    steps: list[dict[str, Any]] = [
        {"application_id": "home-sensors", "api_key": APP_KEY, "transport": "direct"},
        {"mqtt_host": "127.0.0.1", "mqtt_tls": False},
    ]

    with mock_config_flow("subentry_demo", _Flow):
        result = await client.add_subentry(entry.entry_id, "application", steps)
        assert result["type"] == "create_entry"
        (subentry,) = entry.subentries.values()
        assert subentry.subentry_type == "application"
        assert dict(subentry.data) == {
            "application_id": "home-sensors",
            "api_key": APP_KEY,
            "transport": "direct",
            "note": "kept",
            "mqtt_host": "127.0.0.1",
            "mqtt_port": 8883,
            "mqtt_tls": False,
        }

        # A step the flow answers with errors stops the driver.
        steps[1]["mqtt_host"] = "unreachable"
        with pytest.raises(StackError, match="cannot_connect"):
            await client.add_subentry(entry.entry_id, "application", steps)
        # So does a flow that wants more than it was given.
        with pytest.raises(StackError, match="did not finish"):
            await client.add_subentry(entry.entry_id, "application", steps[:1])
        with pytest.raises(StackError, match="HTTP 404"):
            await client.add_subentry(entry.entry_id, "no-such-type", steps)
