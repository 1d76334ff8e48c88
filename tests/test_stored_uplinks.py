"""Uplinks missed over a restart or an outage, fetched from TTS's Storage Integration.

What a user sees: after Home Assistant starts, or the connection to The
Things Stack comes back, each device shows its newest uplink even if it was
sent while nobody listened; nothing is counted twice; an application without
the Storage Integration gets one repair issue, gone once a catch-up works.
The Storage Integration is the simulator's (``tts_simulator/storage.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.mqtt.const import MQTT_CONNECTION_STATE
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import (
    CONF_API_KEY,
    EVENT_HOMEASSISTANT_FINAL_WRITE,
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import Event, HomeAssistant, State
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    mock_restore_cache_with_extra_data,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)

from custom_components.ttn_gateway.const import (
    CONF_APPLICATION_ID,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DOMAIN,
    SUBENTRY_APPLICATION,
    TRANSPORT_DIRECT,
    TRANSPORT_MQTT,
)
from custom_components.ttn_gateway.end_devices.catchup import (
    RETRY_SECONDS,
    SETTLE_SECONDS,
)
from custom_components.ttn_gateway.tts import (
    STORAGE_DOCS_URL,
    STORED_UPLINKS_MAX,
    TTSClient,
)
from custom_components.ttn_gateway.tts.storage import StoredUplinks

from .fake_app_mqtt import FakeAppMqtt, serving
from .fake_tts import API_KEY, SERVER_URL, FakeTTS
from .uplinks import APP, FEATHER, encode, timestamp, uplink

APP_KEY = "NNSXS.APPKEYAPPKEYAPPKEYAPPKEYAPPKEYAPPKEYAPPKEY.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSE"
SUBENTRY_ID = "01JTTNAPPLICATIONSUBENTRY1"
ENTRY_ID = "01JTTNGATEWAYTESTENTRY0001"
STORE_KEY = f"{DOMAIN}.catch_up.{ENTRY_ID}"
ISSUE_ID = f"storage_not_enabled_{SUBENTRY_ID}"
RIGHTS = ["RIGHT_APPLICATION_INFO", "RIGHT_APPLICATION_TRAFFIC_READ"]
VALUE = "sensor.feather_m0_1_value"
SILENT = "binary_sensor.feather_m0_1_silent"
UP_TOPIC = f"v3/{APP}@ttn/devices/{FEATHER}/up"


@pytest.fixture
def app_mqtt(fake_tts: FakeTTS) -> Iterator[FakeAppMqtt]:
    """The application's MQTT server, and its key known to the fake TTS."""
    fake_tts.simulator.set_application(api_key=APP_KEY, rights=RIGHTS)
    with serving(APP_KEY) as server:
        yield server


def _account(transport: dict[str, Any]) -> MockConfigEntry:
    """The account with its one application, arriving as `transport` says."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        version=3,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
        subentries_data=[
            ConfigSubentryData(
                data={
                    CONF_APPLICATION_ID: APP,
                    CONF_API_KEY: APP_KEY,
                    **transport,
                    CONF_RIGHTS: RIGHTS,
                },
                subentry_id=SUBENTRY_ID,
                subentry_type=SUBENTRY_APPLICATION,
                title="Home sensors",
                unique_id=APP,
            )
        ],
    )


@pytest.fixture
def entry() -> MockConfigEntry:
    """An account with one application connected directly."""
    return _account({CONF_TRANSPORT: TRANSPORT_DIRECT})


def _saved(hass_storage: dict[str, Any], since: datetime) -> None:
    """What Home Assistant saved before it stopped: the last uplink's time."""
    hass_storage[STORE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORE_KEY,
        "data": {"since": {APP: since.isoformat()}},
    }


def _missed(start: datetime, *f_cnts: int) -> list[dict[str, Any]]:
    """Uplinks of the Feather a minute apart, payload = frame counter."""
    return [
        uplink(
            f_cnt=f_cnt,
            payload=bytes([f_cnt]),
            received_at=start + timedelta(minutes=index + 1),
        )
        for index, f_cnt in enumerate(f_cnts)
    ]


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def _reconnect(hass: HomeAssistant, server: FakeAppMqtt) -> None:
    """Drop the application's connection and let it connect again."""
    server.drop()
    for _ in range(10):
        await hass.async_block_till_done()
        if server.connected:
            break
    await hass.async_block_till_done()
    assert server.connected


def _storage_requests(fake_tts: FakeTTS) -> list[str]:
    return [url for name, url in fake_tts.requests if name == "storage"]


def _diagnostics(entry: MockConfigEntry) -> dict[str, Any]:
    manager = entry.runtime_data.end_devices
    return manager.catch_ups[SUBENTRY_ID].diagnostics()


async def test_missed_uplinks_are_applied_after_a_restart(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """The newest missed uplink ends up on the device, in one state write."""
    stopped = dt_util.utcnow() - timedelta(hours=2)
    _saved(hass_storage, stopped)
    # One uplink from before the stop (already seen) and three while stopped.
    fake_tts.store(
        uplink(f_cnt=3, payload=b"\x03", received_at=stopped - timedelta(minutes=5)),
        *_missed(stopped, 4, 5, 6),
    )
    changes: list[Event[Any]] = []
    hass.bus.async_listen(
        EVENT_STATE_CHANGED,
        lambda event: changes.append(event)
        if event.data["entity_id"] == VALUE
        else None,
    )

    await _set_up(hass, entry)

    assert hass.states.get(VALUE).state == "6"
    # One state: the newest, not a burst of older values dated now.
    assert [event.data["new_state"].state for event in changes] == ["6"]
    (url,) = _storage_requests(fake_tts)
    assert f"/api/v3/as/applications/{APP}/packages/storage/uplink_message" in url
    assert f"after={stopped.strftime('%Y-%m-%dT%H:%M:%S')}" in url
    assert "order=-received_at" in url
    assert f"limit={STORED_UPLINKS_MAX}" in url
    (headers,) = (
        call[3]
        for call in aioclient_mock.mock_calls
        if "packages/storage" in str(call[1])
    )
    assert headers["Accept"] == "text/event-stream"
    assert _diagnostics(entry)["fetched"] == 3

    # TTS writes its storage in batches: one more look a minute later.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SETTLE_SECONDS))
    await hass.async_block_till_done()
    assert len(_storage_requests(fake_tts)) == 2
    assert hass.states.get(VALUE).state == "6"
    messages = entry.runtime_data.end_devices.counters
    assert (messages.uplinks, messages.repeats) == (3, 3)


async def test_a_caught_up_uplink_keeps_the_saved_silence_threshold(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """The last uplink seen comes again from the Storage: the interval stays."""
    stopped = dt_util.utcnow() - timedelta(minutes=5)
    _saved(hass_storage, stopped - timedelta(minutes=1))
    last = uplink(f_cnt=3, payload=b"\x03", received_at=stopped)
    fake_tts.store(last)
    # Sending every 10 minutes, as the Silent sensor saved at the stop.
    mock_restore_cache_with_extra_data(
        hass,
        (
            (
                State(SILENT, STATE_OFF),
                {"last_seen": stopped.isoformat(), "uplink_interval": 600.0},
            ),
        ),
    )

    await _set_up(hass, entry)

    state = hass.states.get(SILENT)
    assert state is not None
    # Three intervals (30 minutes), not the hour of a device never heard twice.
    assert (state.state, state.attributes["threshold"]) == (STATE_OFF, 30)
    freezer.tick(timedelta(minutes=25, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(SILENT).state == STATE_ON


async def test_outage_of_the_direct_connection_is_caught_up(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
) -> None:
    """Uplinks sent while the connection was down arrive when it is back.

    The last live uplink is also in the storage: it is not counted twice.
    """
    await _set_up(hass, entry)
    # A first start fetches nothing: nothing was missed before it.
    assert _storage_requests(fake_tts) == []
    live = uplink(f_cnt=1, payload=b"\x01")
    app_mqtt.publish(UP_TOPIC, encode(live))
    await hass.async_block_till_done()
    assert hass.states.get(VALUE).state == "1"

    # The connection drops; the device sends twice; TTS stores all three.
    seen = dt_util.parse_datetime(live["uplink_message"]["received_at"])
    assert seen is not None
    fake_tts.store(live, *_missed(seen, 2, 3))
    await _reconnect(hass, app_mqtt)

    assert hass.states.get(VALUE).state == "3"
    (url,) = _storage_requests(fake_tts)
    assert f"after={seen.strftime('%Y-%m-%dT%H:%M:%S')}" in url
    messages = entry.runtime_data.end_devices.counters
    assert (messages.uplinks, messages.repeats) == (3, 1)

    # Live again: the next uplink is taken, the stored ones are not re-read.
    app_mqtt.publish(
        UP_TOPIC,
        encode(
            uplink(f_cnt=4, payload=b"\x04", received_at=seen + timedelta(minutes=3))
        ),
    )
    await hass.async_block_till_done()
    assert hass.states.get(VALUE).state == "4"
    assert messages.uplinks == 4


async def test_live_uplink_newer_than_the_stored_ones_wins(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """A stored uplink older than one already received live is left out."""
    stopped = dt_util.utcnow() - timedelta(hours=1)
    _saved(hass_storage, stopped)
    fake_tts.store(*_missed(stopped, 7))
    # Live first: the connection's first uplink is newer than the stored one.
    fake_tts.fail("storage", 500)
    await _set_up(hass, entry)
    app_mqtt.publish(UP_TOPIC, encode(uplink(f_cnt=8, payload=b"\x08")))
    await hass.async_block_till_done()
    assert hass.states.get(VALUE).state == "8"

    # The failed catch-up is tried again later, and changes nothing visible.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=RETRY_SECONDS))
    await hass.async_block_till_done()
    assert len(_storage_requests(fake_tts)) == 2
    assert hass.states.get(VALUE).state == "8"
    assert entry.runtime_data.end_devices.counters.older == 1


async def test_bad_lines_are_skipped_and_counted(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """Lines that are no uplink cost only themselves."""
    stopped = dt_util.utcnow() - timedelta(hours=1)
    _saved(hass_storage, stopped)
    first, second = _missed(stopped, 11, 12)
    # Newest first, as asked; TTS's event-stream framing (two newlines).
    stream = b"\n\n".join(
        [
            b'{"result":' + encode(second).encode() + b"}",
            b"not json",
            b'{"result":{"end_device_ids":{"device_id":"x"}}}',
            b"[1, 2]",
            b'{"result":' + encode(first).encode() + b"}",
            b'{"result":'
            + encode(uplink(application_id="other-app", f_cnt=13)).encode()
            + b"}",
            b'{"result":{"end_device_ids":{"device_id":"feather-m0-1",'
            b'"application_ids":{"application_id":"home-sensors"}},'
            b'"join_accept":{}}}',
        ]
    )
    fake_tts.fail(
        "storage",
        200,
        raw=stream + b"\n\n",
        headers={"Content-Type": "text/event-stream"},
    )

    await _set_up(hass, entry)

    assert hass.states.get(VALUE).state == "12"
    diagnostics = _diagnostics(entry)
    assert (diagnostics["fetched"], diagnostics["lines_skipped"]) == (3, 3)
    # An uplink of another application is not taken.
    drops = entry.runtime_data.end_devices.counters.drop_reasons
    assert drops["stored uplink of another application"] == 1


async def test_in_band_error_keeps_the_gap_for_later(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """TTS ending the stream with an error: nothing half-applied, tried again."""
    stopped = dt_util.utcnow() - timedelta(hours=1)
    _saved(hass_storage, stopped)
    (missed,) = _missed(stopped, 21)
    fake_tts.store(missed)
    fake_tts.fail(
        "storage",
        200,
        raw=b'{"result":'
        + encode(missed).encode()
        + b'}\n\n{"error":{"code":14,"message":"unavailable","details":[]}}\n\n',
    )

    await _set_up(hass, entry)

    assert hass.states.get(VALUE) is None
    assert "Could not fetch the stored uplinks of Home sensors" in caplog.text
    assert _diagnostics(entry)["missing_since"] == stopped
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=RETRY_SECONDS))
    await hass.async_block_till_done()
    assert hass.states.get(VALUE).state == "21"
    assert _diagnostics(entry)["missing_since"] is None


async def test_not_enabled_raises_one_issue_until_it_works(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No Storage Integration: one repair issue and one warning; live goes on."""
    stopped = dt_util.utcnow() - timedelta(hours=1)
    _saved(hass_storage, stopped)
    fake_tts.simulator.storage.enabled = False

    with caplog.at_level(logging.WARNING):
        await _set_up(hass, entry)
        issue = issue_registry.async_get_issue(DOMAIN, ISSUE_ID)
        assert issue is not None
        assert issue.translation_key == "storage_not_enabled"
        assert issue.translation_placeholders == {"application": "Home sensors"}
        assert issue.learn_more_url == STORAGE_DOCS_URL
        assert not issue.is_fixable

        # Live uplinks arrive all the same; an outage asks again, quietly.
        app_mqtt.publish(UP_TOPIC, encode(uplink(f_cnt=30, payload=b"\x1e")))
        await hass.async_block_till_done()
        assert hass.states.get(VALUE).state == "30"
        await _reconnect(hass, app_mqtt)
    assert len(_storage_requests(fake_tts)) == 2
    assert len(issue_registry.issues) == 1
    assert caplog.text.count("cannot be fetched") == 1

    # The user activates the integration; the next catch-up clears the issue.
    fake_tts.simulator.storage.enabled = True
    fake_tts.store(uplink(f_cnt=31, payload=b"\x1f"))
    await _reconnect(hass, app_mqtt)
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_ID) is None
    assert hass.states.get(VALUE).state == "31"


async def test_key_without_the_right_raises_the_issue(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    issue_registry: ir.IssueRegistry,
) -> None:
    """403 (the key lost RIGHT_APPLICATION_TRAFFIC_READ): the issue says so."""
    _saved(hass_storage, dt_util.utcnow() - timedelta(hours=1))
    fake_tts.simulator.set_application(rights=["RIGHT_APPLICATION_INFO"])

    await _set_up(hass, entry)

    issue = issue_registry.async_get_issue(DOMAIN, ISSUE_ID)
    assert issue is not None
    assert issue.translation_key == "storage_no_right"


async def test_a_long_outage_keeps_the_newest_uplinks(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """More than the bound were missed: the newest are fetched, the last wins."""
    stopped = dt_util.utcnow() - timedelta(days=2)
    _saved(hass_storage, stopped)
    fake_tts.store(
        *(
            uplink(
                f_cnt=f_cnt,
                payload=bytes([f_cnt % 256]),
                received_at=stopped + timedelta(seconds=f_cnt),
            )
            for f_cnt in range(1, STORED_UPLINKS_MAX + 11)
        )
    )

    await _set_up(hass, entry)

    assert _diagnostics(entry)["fetched"] == STORED_UPLINKS_MAX
    assert hass.states.get(VALUE).state == str((STORED_UPLINKS_MAX + 10) % 256)


async def test_the_last_uplink_time_is_kept_over_a_restart(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """The next start fetches from the last uplink this one saw."""
    await _set_up(hass, entry)
    received = dt_util.utcnow() + timedelta(seconds=30)
    app_mqtt.publish(UP_TOPIC, encode(uplink(f_cnt=40, received_at=received)))
    await hass.async_block_till_done()

    # Written at the latest when Home Assistant stops.
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    saved = hass_storage[STORE_KEY]["data"]["since"][APP]
    assert saved.startswith(timestamp(received)[:26])

    # Removing the account removes what it saved.
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert STORE_KEY not in hass_storage


# HA's MQTT client leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_home_assistant_mqtt_reconnect_is_caught_up(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mqtt_mock: Any,
    hass_storage: dict[str, Any],
) -> None:
    """Through HA's MQTT: the broker connection coming back fetches the gap."""
    fake_tts.simulator.set_application(api_key=APP_KEY, rights=RIGHTS)
    stopped = dt_util.utcnow() - timedelta(hours=1)
    _saved(hass_storage, stopped)
    fake_tts.store(*_missed(stopped, 50))
    mqtt_entry = _account(
        {
            CONF_TRANSPORT: TRANSPORT_MQTT,
            CONF_UPLINK_TOPIC: f"v3/{APP}@ttn/devices/+/up",
        }
    )
    await _set_up(hass, mqtt_entry)
    assert hass.states.get(VALUE).state == "50"
    assert len(_storage_requests(fake_tts)) == 1

    # The broker connection drops; an uplink is sent meanwhile and missed.
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, False)
    await hass.async_block_till_done()
    fake_tts.store(*_missed(stopped + timedelta(minutes=5), 51))
    assert hass.states.get(VALUE).state == "unavailable"
    assert len(_storage_requests(fake_tts)) == 1

    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, True)
    await hass.async_block_till_done()
    assert len(_storage_requests(fake_tts)) == 2
    assert hass.states.get(VALUE).state == "51"


async def test_a_stored_uplink_dated_far_ahead_hides_nothing_later(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """The next catch-up starts no later than a few minutes from now."""
    _saved(hass_storage, dt_util.utcnow() - timedelta(hours=1))
    fake_tts.store(uplink(f_cnt=60, received_at=dt_util.utcnow() + timedelta(days=10)))

    await _set_up(hass, entry)

    catch_up = entry.runtime_data.end_devices.catch_ups[SUBENTRY_ID]
    assert catch_up.seen is not None
    assert catch_up.seen < dt_util.utcnow() + timedelta(minutes=6)


async def test_an_outage_during_a_catch_up_is_fetched_again(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_mqtt: FakeAppMqtt,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """The connection drops and comes back while TTS is still answering."""
    stopped = dt_util.utcnow() - timedelta(hours=1)
    _saved(hass_storage, stopped)
    fake_tts.store(*_missed(stopped, 70))
    release = asyncio.Event()
    fetch = TTSClient.get_stored_uplinks
    calls: list[datetime] = []

    async def slow_first(
        client: TTSClient, application_id: str, **kwargs: Any
    ) -> StoredUplinks:
        calls.append(kwargs["after"])
        if len(calls) == 1:
            await release.wait()
        return await fetch(client, application_id, **kwargs)

    with patch.object(TTSClient, "get_stored_uplinks", slow_first):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(calls) == 1
        app_mqtt.drop()
        for _ in range(40):
            await asyncio.sleep(0)
        assert app_mqtt.connected
        release.set()
        await hass.async_block_till_done()

    # Fetched again from the same time: the first answer may predate the gap.
    assert calls == [stopped, stopped]
    assert hass.states.get(VALUE).state == "70"
    assert _diagnostics(entry)["missing_since"] is None
