"""Applications connected directly to The Things Stack's MQTT server.

What a user sees: end devices appear with no MQTT integration at all, go
unavailable while the connection is down and come back with it, and a
rejected key raises a repair issue whose fix flow takes a new key.
"""

from __future__ import annotations

from collections.abc import Iterator
import logging

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
