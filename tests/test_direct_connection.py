"""Applications connected directly to The Things Stack's MQTT server.

What a user sees: end devices appear with no MQTT integration at all, go
unavailable while the connection is down and come back with it, and a
rejected key raises a repair issue whose fix flow takes a new key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import logging

import aiohttp
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.const import CONF_API_KEY, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ttn_gateway.const import (
    CONF_APPLICATION_ID,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    DOMAIN,
    MAX_RECONNECT_DELAY,
    MIN_RECONNECT_DELAY,
    SUBENTRY_APPLICATION,
    TRANSPORT_DIRECT,
)
from custom_components.ttn_gateway.end_devices.direct import STABLE_CONNECTION_SECONDS
from custom_components.ttn_gateway.tts.mqtt import UNAVAILABLE_RETRY_SECONDS

from .fake_app_mqtt import FakeAppMqtt, serving
from .fake_tts import API_KEY, SERVER_URL, FakeTTS
from .uplinks import APP, FEATHER, encode, uplink

APP_KEY = "NNSXS.APPKEYAPPKEYAPPKEYAPPKEYAPPKEYAPPKEYAPPKEY.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSE"
APP_KEY_SECRET = APP_KEY.rsplit(".", 1)[1]
SUBENTRY_ID = "01JTTNAPPLICATIONSUBENTRY1"
USERNAME = f"{APP}@ttn"
RIGHTS = ["RIGHT_APPLICATION_INFO", "RIGHT_APPLICATION_TRAFFIC_READ"]


@pytest.fixture
def app_mqtt() -> Iterator[FakeAppMqtt]:
    """The application's MQTT server, accepting APP_KEY."""
    with serving(APP_KEY) as server:
        yield server


@pytest.fixture
def direct_entry() -> MockConfigEntry:
    """An account with one application connected directly."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id="01JTTNGATEWAYTESTENTRY0001",
        version=3,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
        subentries_data=[
            ConfigSubentryData(
                data={
                    CONF_APPLICATION_ID: APP,
                    CONF_API_KEY: APP_KEY,
                    CONF_TRANSPORT: TRANSPORT_DIRECT,
                    CONF_RIGHTS: RIGHTS,
                },
                subentry_id=SUBENTRY_ID,
                subentry_type=SUBENTRY_APPLICATION,
                title="Home sensors",
                unique_id=APP,
            )
        ],
    )


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def _publish(hass: HomeAssistant, server: FakeAppMqtt, **kw: object) -> None:
    server.publish(
        f"v3/{USERNAME}/devices/{kw.get('device_id', FEATHER)}/up",
        encode(uplink(**kw)),  # type: ignore[arg-type]
    )
    await hass.async_block_till_done()


async def _until(hass: HomeAssistant, condition: Callable[[], bool]) -> None:
    """Let the connection's task run until the condition holds."""
    for _ in range(200):
        if condition():
            return
        await hass.async_block_till_done()
    raise AssertionError("the condition never held")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING
        and record.name == "custom_components.ttn_gateway"
        and "MQTT" in record.getMessage()
    ]


def _issue(issue_registry: ir.IssueRegistry) -> ir.IssueEntry | None:
    return issue_registry.async_get_issue(
        DOMAIN, f"application_key_rejected_{SUBENTRY_ID}"
    )


def _value(hass: HomeAssistant) -> str:
    state = hass.states.get("sensor.feather_m0_1_value")
    assert state is not None
    return state.state


async def test_uplinks_arrive_without_the_mqtt_integration(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The application's topics on TTS's server, with TLS, as application@ttn."""
    await _set_up(hass, direct_entry)
    assert "mqtt" not in hass.config.components
    (session,) = app_mqtt.sessions
    assert session.settings.host == "eu1.cloud.thethings.network"
    assert (session.settings.port, session.settings.tls) == (8883, True)
    assert session.settings.username == USERNAME
    assert session.subscriptions == [
        f"v3/{USERNAME}/devices/+/up",
        f"v3/{USERNAME}/devices/+/down/+",
    ]
    assert app_mqtt.ssl_contexts[0] is not None

    await _publish(hass, app_mqtt, payload=b"\x2a")
    assert _value(hass) == "42"
    device = next(
        device
        for device in dr.async_entries_for_config_entry(
            device_registry, direct_entry.entry_id
        )
        if device.name == FEATHER
    )
    # The device belongs to the application's sub-entry.
    subentries = getattr(device, "config_subentry_id", None) or next(
        iter(device.config_entries_subentries[direct_entry.entry_id])
    )
    assert subentries == SUBENTRY_ID


async def test_connection_loss_makes_devices_unavailable_until_back(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Down: unavailable, one warning; back: the devices follow uplinks again."""
    await _set_up(hass, direct_entry)
    await _publish(hass, app_mqtt, payload=b"\x01")
    assert _value(hass) == "1"

    app_mqtt.reachable = False
    app_mqtt.drop()
    await hass.async_block_till_done()
    assert _value(hass) == STATE_UNAVAILABLE
    # The gateways do not depend on the application's connection.
    assert direct_entry.state is ConfigEntryState.LOADED
    for _ in range(8):
        await hass.async_block_till_done()
    assert app_mqtt.attempts > 3
    # Doubling delays, bounded.
    delays = app_mqtt.delays
    assert delays[0] >= MIN_RECONNECT_DELAY.total_seconds()
    assert delays[1] >= 2 * MIN_RECONNECT_DELAY.total_seconds()
    assert max(delays) <= MAX_RECONNECT_DELAY.total_seconds() * 1.2
    warnings = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and "MQTT connection" in record.message
    ]
    assert len(warnings) == 1

    app_mqtt.reachable = True
    while not app_mqtt.connected:
        await hass.async_block_till_done()
    await hass.async_block_till_done()
    assert _value(hass) == "1"
    await _publish(hass, app_mqtt, payload=b"\x02", f_cnt=2)
    assert _value(hass) == "2"
    assert "Connected again" in caplog.text


async def test_rejected_key_raises_a_repair_issue_fixed_with_a_new_key(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """TTS refuses the key: an issue names the application; no secret logged."""
    app_mqtt.api_key = "NNSXS.OTHER.KEY"
    await _set_up(hass, direct_entry)
    issue = issue_registry.async_get_issue(
        DOMAIN, f"application_key_rejected_{SUBENTRY_ID}"
    )
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders == {"application": "Home sensors"}
    # Retried slowly while rejected.
    for _ in range(3):
        await hass.async_block_till_done()
    assert min(app_mqtt.delays) >= MAX_RECONNECT_DELAY.total_seconds()
    assert APP_KEY_SECRET not in caplog.text

    # The key works again (re-enabled in the Console): the issue goes away.
    app_mqtt.api_key = APP_KEY
    while not app_mqtt.connected:
        await hass.async_block_till_done()
    await hass.async_block_till_done()
    assert (
        issue_registry.async_get_issue(
            DOMAIN, f"application_key_rejected_{SUBENTRY_ID}"
        )
        is None
    )


async def test_garbage_does_not_stop_the_connection(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
) -> None:
    """Non-JSON, foreign topics and bad downlink events are dropped, not fatal."""
    await _set_up(hass, direct_entry)
    app_mqtt.publish(f"v3/{USERNAME}/devices/{FEATHER}/up", b"\xff\x00not json")
    app_mqtt.publish(f"v3/{USERNAME}/devices/{FEATHER}/down/sent", b"[1, 2]")
    app_mqtt.publish(f"v3/{USERNAME}/devices/{FEATHER}/down/queued", b"{")
    app_mqtt.publish("v3/other/weird", b"{}")
    await hass.async_block_till_done()
    await _publish(hass, app_mqtt, payload=b"\x07")
    assert _value(hass) == "7"
    assert app_mqtt.attempts == 1


async def test_unloading_disconnects(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
) -> None:
    """Unloading the account closes the application's connection."""
    await _set_up(hass, direct_entry)
    assert app_mqtt.connected
    assert await hass.config_entries.async_unload(direct_entry.entry_id)
    await hass.async_block_till_done()
    assert not app_mqtt.connected


async def test_every_outage_starts_with_the_shortest_delay(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A connection that held ends the outage: the next drop costs seconds again."""
    shortest = MIN_RECONNECT_DELAY.total_seconds()
    await _set_up(hass, direct_entry)
    await _publish(hass, app_mqtt, payload=b"\x01")

    # A long first outage: the delays grow.
    app_mqtt.reachable = False
    app_mqtt.drop()
    await _until(hass, lambda: app_mqtt.attempts >= 6)
    app_mqtt.reachable = True
    await _until(hass, lambda: app_mqtt.connected)
    assert app_mqtt.delays[-1] >= 16 * shortest
    await hass.async_block_till_done()
    assert _value(hass) == "1"

    # An hour later, and an hour after that: each drop is back within seconds.
    for f_cnt in (2, 3):
        app_mqtt.hold(3600)
        sleeps = len(app_mqtt.delays)
        app_mqtt.drop()
        await hass.async_block_till_done()
        assert _value(hass) == STATE_UNAVAILABLE
        await _until(hass, lambda: app_mqtt.connected)
        await hass.async_block_till_done()
        assert shortest <= app_mqtt.delays[sleeps] <= shortest * 1.2
        assert len(app_mqtt.delays) == sleeps + 1
        await _publish(hass, app_mqtt, payload=bytes([f_cnt]), f_cnt=f_cnt)
        assert _value(hass) == str(f_cnt)
    # One warning per outage.
    assert len(_warnings(caplog)) == 3


async def test_a_flapping_server_still_backs_off(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connections that drop within seconds are one outage: doubling delays."""
    await _set_up(hass, direct_entry)
    for _ in range(7):
        await _until(hass, lambda: app_mqtt.connected)
        app_mqtt.hold(STABLE_CONNECTION_SECONDS / 10)
        app_mqtt.drop()
        await hass.async_block_till_done()
    shortest = MIN_RECONNECT_DELAY.total_seconds()
    steps = [
        min(shortest * 2**n, MAX_RECONNECT_DELAY.total_seconds()) for n in range(7)
    ]
    assert len(app_mqtt.delays) == 7
    for delay, step in zip(app_mqtt.delays, steps, strict=True):
        assert step <= delay <= step * 1.2
    assert len(_warnings(caplog)) == 1


async def test_not_authorized_with_a_valid_key_is_no_rejected_key(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """TTS says "not authorized" but auth_info accepts the key: no repair issue.

    TTS answers CONNACK 5 for an unknown application, a wrong tenant or a
    server it cannot reach too (mystique pkg/session/connect.go).
    """
    fake_tts.simulator.set_application(api_key=APP_KEY)
    app_mqtt.refusing = True
    checks = fake_tts.count("auth_info")
    await _set_up(hass, direct_entry)
    await _until(hass, lambda: app_mqtt.attempts >= 4)
    assert fake_tts.count("auth_info") > checks
    assert _issue(issue_registry) is None
    # Retried on the ordinary schedule, not the rejected key's.
    assert app_mqtt.delays[0] < 2 * MIN_RECONNECT_DELAY.total_seconds()
    (warning,) = _warnings(caplog)
    assert "MQTT username (tenant)" in warning
    assert APP_KEY_SECRET not in caplog.text

    app_mqtt.refusing = False
    await _until(hass, lambda: app_mqtt.connected)
    await _publish(hass, app_mqtt, payload=b"\x05")
    assert _value(hass) == "5"


@pytest.mark.parametrize(
    ("owner", "rights", "reason"),
    [
        (None, None, "api_key_not_found"),
        (APP, ["RIGHT_APPLICATION_INFO"], "may not read the application's traffic"),
        ("other-app", None, "belongs to another application"),
    ],
    ids=["unknown key", "no traffic right", "other application"],
)
async def test_not_authorized_and_a_refused_key_is_a_rejected_key(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
    owner: str | None,
    rights: list[str] | None,
    reason: str,
) -> None:
    """auth_info answers 401, or the key cannot read uplinks: the repair issue."""
    if owner is not None:
        # TTS knows the key: auth_info names its application and rights.
        fake_tts.simulator.set_application(api_key=APP_KEY, rights=rights)
        fake_tts.simulator.application.application_id = owner
    app_mqtt.refusing = True
    await _set_up(hass, direct_entry)
    await _until(hass, lambda: app_mqtt.attempts >= 2)
    assert _issue(issue_registry) is not None
    assert min(app_mqtt.delays) >= MAX_RECONNECT_DELAY.total_seconds()
    assert reason in caplog.text
    assert APP_KEY_SECRET not in caplog.text


@pytest.mark.parametrize(
    ("fault", "headers", "least_delay"),
    [
        (aiohttp.ClientConnectionError(), None, 0.0),
        (503, None, 0.0),
        # TTS's rate limit on the check: no request before it allows one.
        (429, {"X-Rate-Limit-Retry": "100"}, 100.0),
    ],
    ids=["unreachable", "HTTP 503", "rate limited"],
)
async def test_not_authorized_and_no_answer_from_auth_info_is_retried(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
    fault: int | Exception,
    headers: dict[str, str] | None,
    least_delay: float,
) -> None:
    """The key cannot be checked: no repair issue; retried, one warning."""
    fake_tts.simulator.set_application(api_key=APP_KEY)
    await _set_up(hass, direct_entry)
    await _publish(hass, app_mqtt, payload=b"\x01")
    fake_tts.fail("auth_info", fault, times=100, headers=headers)
    app_mqtt.refusing = True
    app_mqtt.drop()
    await _until(hass, lambda: app_mqtt.attempts >= 5)
    assert _issue(issue_registry) is None
    assert _value(hass) == STATE_UNAVAILABLE
    # The drop: seconds; then the ordinary schedule, or what TTS asks for.
    assert app_mqtt.delays[0] < 2 * MIN_RECONNECT_DELAY.total_seconds()
    assert app_mqtt.delays[1] < MAX_RECONNECT_DELAY.total_seconds()
    assert min(app_mqtt.delays[1:]) >= least_delay
    # The drop was the outage's warning; the retries say why at debug.
    assert len(_warnings(caplog)) == 1
    assert "the key could not be checked" in caplog.text
    assert APP_KEY_SECRET not in caplog.text

    app_mqtt.refusing = False
    await _until(hass, lambda: app_mqtt.connected)
    await hass.async_block_till_done()
    assert _value(hass) == "1"


async def test_a_key_that_checks_out_again_clears_the_issue(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Rejected, then auth_info accepts the key: the issue goes, retries go on."""
    app_mqtt.refusing = True
    await _set_up(hass, direct_entry)
    assert _issue(issue_registry) is not None
    fake_tts.simulator.set_application(api_key=APP_KEY)
    await _until(hass, lambda: _issue(issue_registry) is None)
    assert not app_mqtt.connected


async def test_server_unavailable_waits_at_least_a_minute(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """CONNACK 3, TTS's answer to a rate limit: a minute's wait, no repair issue."""
    await _set_up(hass, direct_entry)
    app_mqtt.rate_limited = True
    app_mqtt.drop()
    await _until(hass, lambda: app_mqtt.attempts >= 4)
    # The drop: seconds; then each refusal: a minute or more.
    assert app_mqtt.delays[0] < UNAVAILABLE_RETRY_SECONDS
    assert min(app_mqtt.delays[1:]) >= UNAVAILABLE_RETRY_SECONDS
    assert _issue(issue_registry) is None
    app_mqtt.rate_limited = False
    await _until(hass, lambda: app_mqtt.connected)


async def test_an_unexpected_error_is_logged_once_and_retried(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    direct_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug does not end the connection: one traceback per outage, retried."""
    await _set_up(hass, direct_entry)
    await _publish(hass, app_mqtt, payload=b"\x01")
    app_mqtt.broken = True
    app_mqtt.drop()
    await _until(hass, lambda: app_mqtt.attempts >= 4)
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 1
    assert "RuntimeError: a bug" in caplog.text
    app_mqtt.broken = False
    await _until(hass, lambda: app_mqtt.connected)
    await hass.async_block_till_done()
    assert _value(hass) == "1"
