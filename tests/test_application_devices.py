"""An application's devices as a user sees them: listed, renamed, deleted,
sent downlinks, and what became of each downlink.

The application's HTTP side is the simulator behind the fake TTS; its MQTT
server is the in-process fake of ``fake_app_mqtt``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_API_KEY, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator
import voluptuous as vol

from custom_components.ttn_gateway.const import (
    CONF_APPLICATION_ID,
    CONF_MAX_END_DEVICES,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DOMAIN,
    SUBENTRY_APPLICATION,
    TRANSPORT_DIRECT,
    TRANSPORT_MQTT,
)
from custom_components.ttn_gateway.tts import (
    EndDeviceListing,
    TTSClient,
    application_requests,
)
from tts_simulator import make_devices

from .fake_app_mqtt import FakeAppMqtt, serving
from .fake_tts import API_KEY, GATEWAY_ROOFTOP, SERVER_URL, FakeTTS
from .uplinks import encode, uplink

APP = "home-sensors"
USERNAME = f"{APP}@ttn"
FEATHER = "feather-m0"
ALL_RIGHTS = [
    "RIGHT_APPLICATION_DEVICES_READ",
    "RIGHT_APPLICATION_INFO",
    "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE",
    "RIGHT_APPLICATION_TRAFFIC_READ",
]
READ_RIGHTS = ["RIGHT_APPLICATION_DEVICES_READ", "RIGHT_APPLICATION_TRAFFIC_READ"]


def _entry(
    app_key: str, transport: str = TRANSPORT_DIRECT, **data: Any
) -> MockConfigEntry:
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
                    CONF_API_KEY: app_key,
                    CONF_TRANSPORT: transport,
                    CONF_RIGHTS: ALL_RIGHTS,
                    **data,
                },
                subentry_id="01JTTNAPPLICATIONSUBENTRY1",
                subentry_type=SUBENTRY_APPLICATION,
                title="Home sensors",
                unique_id=APP,
            )
        ],
    )


@pytest.fixture
def app_key(fake_tts: FakeTTS) -> str:
    """The simulated application's key; its four devices exist in TTS."""
    fake_tts.simulator.devices = make_devices(fake_tts.clock())
    return fake_tts.simulator.application.api_key


@pytest.fixture
def app_mqtt(app_key: str) -> Iterator[FakeAppMqtt]:
    """The application's MQTT server, accepting its key."""
    with serving(app_key) as server:
        yield server


async def _send_downlink(hass: HomeAssistant, data: dict[str, Any]) -> None:
    """Call the send_downlink action and wait for it."""
    await hass.services.async_call(DOMAIN, "send_downlink", data, blocking=True)


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _names(device_registry: dr.DeviceRegistry, entry: MockConfigEntry) -> set[str]:
    return {
        device.name or ""
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        if any("/device/" in identifier for _, identifier in device.identifiers)
    }


async def test_listed_devices_appear_with_their_tts_names_before_sending(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Names and models at once; renames follow; deleted devices go after two
    lists an hour apart."""
    entry = await _set_up(hass, _entry(app_key))
    assert _names(device_registry, entry) == {
        "Feather M0 on the balcony",
        "Climate sensor",
        "Soil sensor",
        "Office desk sensor",
    }
    feather = next(
        device
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        if device.name == "Feather M0 on the balcony"
    )
    assert (feather.manufacturer, feather.model) == (
        "Adafruit Industries",  # the Device Repository's name
        "feather-m0-lora",  # not in it
    )
    assert hass.states.get("binary_sensor.feather_m0_on_the_balcony_silent") is not None

    # An hour later: one renamed in TTS, one deleted there.
    from tts_simulator import core

    core.DEVICE_NAMES["feather-m0"] = (
        "Feather on the roof",
        core.DEVICE_NAMES["feather-m0"][1],
    )
    try:
        fake_tts.simulator.devices = [
            device
            for device in fake_tts.simulator.devices
            if device.device_id != "soil-sensor"
        ]
        await _next_listing(hass, freezer)
        # The deleted one goes once a second list, an hour later, lacks it too.
        assert _names(device_registry, entry) == {
            "Feather on the roof",
            "Climate sensor",
            "Office desk sensor",
            "Soil sensor",
        }
        await _next_listing(hass, freezer)
    finally:
        core.DEVICE_NAMES["feather-m0"] = (
            "Feather M0 on the balcony",
            core.DEVICE_NAMES["feather-m0"][1],
        )
    assert _names(device_registry, entry) == {
        "Feather on the roof",
        "Climate sensor",
        "Office desk sensor",
    }


async def test_a_gateways_only_heard_list_follows_a_rename_in_tts(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    entity_registry_enabled_by_default: None,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A device renamed in TTS is listed by its new name on the gateway that
    alone hears it, with no uplink in between."""
    await _set_up(hass, _entry(app_key))
    app_mqtt.publish(
        f"v3/{USERNAME}/devices/{FEATHER}/up",
        encode(
            uplink(
                application_id=APP,
                device_id=FEATHER,
                gateways=((GATEWAY_ROOFTOP, -97.0, 7.5),),
            )
        ),
    )
    await hass.async_block_till_done()
    only_here = "sensor.rooftop_gateway_end_devices_only_this_gateway_hears"
    state = hass.states.get(only_here)
    assert state is not None
    assert state.attributes["end_devices_only_here"] == ["Feather M0 on the balcony"]

    from tts_simulator import core

    core.DEVICE_NAMES["feather-m0"] = (
        "Feather on the roof",
        core.DEVICE_NAMES["feather-m0"][1],
    )
    try:
        await _next_listing(hass, freezer)
    finally:
        core.DEVICE_NAMES["feather-m0"] = (
            "Feather M0 on the balcony",
            core.DEVICE_NAMES["feather-m0"][1],
        )
    state = hass.states.get(only_here)
    assert state is not None
    assert (state.state, state.attributes["end_devices_only_here"]) == (
        "1",
        ["Feather on the roof"],
    )


async def test_device_list_failure_keeps_what_is_known(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed hourly list removes nothing; a missing right is said once."""
    entry = await _set_up(hass, _entry(app_key))
    assert len(_names(device_registry, entry)) == 4
    fake_tts.simulator.set_application(rights=["RIGHT_APPLICATION_TRAFFIC_READ"])
    for _ in range(2):
        freezer.tick(timedelta(hours=1, seconds=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert len(_names(device_registry, entry)) == 4
    assert caplog.text.count("Cannot list the end devices") == 1


async def test_each_application_has_its_own_availability(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """Uplinks update a listed device; a lost connection makes it unavailable."""
    await _set_up(hass, _entry(app_key))
    app_mqtt.publish(
        f"v3/{USERNAME}/devices/{FEATHER}/up",
        encode(uplink(application_id=APP, device_id=FEATHER, payload=b"\x2a")),
    )
    await hass.async_block_till_done()
    assert hass.states.get("sensor.feather_m0_on_the_balcony_value").state == "42"
    app_mqtt.reachable = False
    app_mqtt.drop()
    await hass.async_block_till_done()
    assert (
        hass.states.get("sensor.feather_m0_on_the_balcony_value").state
        == STATE_UNAVAILABLE
    )
    # The gateways keep going.
    assert hass.states.get("binary_sensor.rooftop_gateway_connectivity").state == "on"


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    return next(
        device.id
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if device.name == name
    )


async def test_send_downlink_through_the_http_api_when_connected_directly(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """With the right to write downlinks, TTS's HTTP API takes them (its errors
    come back); the MQTT session is not used. TTS's answers show on the sensor."""
    entry = await _set_up(hass, _entry(app_key))
    device_id = _device_id(hass, entry, "Feather M0 on the balcony")
    await _send_downlink(
        hass,
        {"device_id": device_id, "f_port": 1, "payload": "01 FF", "confirmed": True},
    )
    await _send_downlink(
        hass,
        {
            "device_id": device_id,
            "f_port": 2.0,
            "decoded_payload": {"led": True},
            "mode": "replace",
            "priority": "HIGH",
        },
    )
    assert app_mqtt.published == []
    first, second = fake_tts.simulator.downlinks
    assert (first["device_id"], first["via"], first["replace"]) == (
        FEATHER,
        "http",
        False,
    )
    assert first["downlinks"] == [
        {"f_port": 1, "frm_payload": "Af8=", "confirmed": True, "priority": "NORMAL"}
    ]
    assert (second["replace"], second["downlinks"][0]["decoded_payload"]) == (
        True,
        {"led": True},
    )

    ids = {"device_id": FEATHER, "application_ids": {"application_id": APP}}
    for name, body in (
        ("queued", {"downlink_queued": {"f_port": 1}}),
        ("sent", {"downlink_sent": {"f_port": 1, "f_cnt": 4}}),
    ):
        app_mqtt.publish(
            f"v3/{USERNAME}/devices/{FEATHER}/down/{name}",
            json.dumps({"end_device_ids": ids, **body}),
        )
        await hass.async_block_till_done()
        state = hass.states.get("sensor.feather_m0_on_the_balcony_last_downlink")
        assert state is not None
        assert state.state == name
    assert state.attributes["frame_counter"] == 4
    app_mqtt.publish(
        f"v3/{USERNAME}/devices/{FEATHER}/down/failed",
        json.dumps(
            {
                "end_device_ids": ids,
                "downlink_failed": {
                    "downlink": {"f_port": 1},
                    "error": {"message_format": "no device session"},
                },
            }
        ),
    )
    await hass.async_block_till_done()
    state = hass.states.get("sensor.feather_m0_on_the_balcony_last_downlink")
    assert (state.state, state.attributes["error"]) == ("failed", "no device session")


# HA's MQTT client leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_send_downlink_through_the_http_api(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    mqtt_mock: Any,
) -> None:
    """Through HA's MQTT: the downlink goes to TTS's HTTP API."""
    entry = await _set_up(
        hass,
        _entry(
            app_key,
            transport=TRANSPORT_MQTT,
            **{CONF_UPLINK_TOPIC: f"v3/{USERNAME}/devices/+/up"},
        ),
    )
    device_id = _device_id(hass, entry, "Soil sensor")
    # A template gives text: a whole number in it is taken.
    await _send_downlink(
        hass, {"device_id": device_id, "f_port": "10", "payload": "AQID"}
    )
    (record,) = fake_tts.simulator.downlinks
    assert (record["device_id"], record["via"], record["replace"]) == (
        "soil-sensor",
        "http",
        False,
    )
    assert record["downlinks"][0]["frm_payload"] == "AQID"
    assert record["downlinks"][0]["f_port"] == 10


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"f_port": 0, "payload": "01"}, "downlink_invalid_f_port"),
        ({"f_port": 224, "payload": "01"}, "downlink_invalid_f_port"),
        ({"f_port": 1}, "downlink_payload_or_object"),
        (
            {"f_port": 1, "payload": "01", "decoded_payload": {}},
            "downlink_payload_or_object",
        ),
        ({"f_port": 1, "payload": "zz!"}, "downlink_invalid_payload"),
        ({"f_port": 1, "payload": " "}, "downlink_empty_payload"),
        ({"f_port": 1, "payload": "00" * 243}, "downlink_payload_too_long"),
        (
            {"f_port": 1, "decoded_payload": {"text": "x" * 4096}},
            "downlink_decoded_payload_too_large",
        ),
        (
            {"f_port": 1, "decoded_payload": {"level": float("nan")}},
            "downlink_invalid_decoded_payload",
        ),
        (
            {"f_port": 1, "decoded_payload": {"at": timedelta(seconds=1)}},
            "downlink_invalid_decoded_payload",
        ),
    ],
)
async def test_invalid_downlinks_are_refused_before_sending(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    data: dict[str, Any],
    key: str,
) -> None:
    """A clear, translated validation error; nothing published."""
    entry = await _set_up(hass, _entry(app_key))
    device_id = _device_id(hass, entry, "Feather M0 on the balcony")
    with pytest.raises(ServiceValidationError) as err:
        await _send_downlink(hass, {"device_id": device_id, **data})
    assert err.value.translation_key == key
    # Said once: no detail that repeats the message ("…: the payload is …").
    assert ": the " not in str(err.value)
    assert app_mqtt.published == []


@pytest.mark.parametrize(
    ("status", "key", "text"),
    [
        (
            404,
            "downlink_not_in_tts",
            "The Things Stack does not know Feather M0 on the balcony: it may have"
            " been deleted there",
        ),
        (
            429,
            "downlink_rate_limited",
            "The Things Stack rate limited the downlink to Feather M0 on the"
            " balcony; try again in 30 s",
        ),
        (500, "downlink_failed", "The downlink to Feather M0 on the balcony failed: "),
    ],
)
async def test_downlink_refused_by_tts_says_why(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    status: int,
    key: str,
    text: str,
) -> None:
    """TTS's refusals, each in its own words, naming the device by its name."""
    entry = await _set_up(hass, _entry(app_key))
    device_id = _device_id(hass, entry, "Feather M0 on the balcony")
    # TTS's 429 carries X-Rate-Limit-Retry (pkg/ratelimit/http.go).
    fake_tts.fail("downlink", status, headers={"X-Rate-Limit-Retry": "30"})
    with pytest.raises(HomeAssistantError) as err:
        await _send_downlink(
            hass, {"device_id": device_id, "f_port": 1, "payload": "01"}
        )
    assert err.value.translation_key == key
    assert str(err.value).startswith(text)


@pytest.mark.parametrize("f_port", [1.9, "1.9", True, "one", None])
async def test_fport_must_be_a_whole_number(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    f_port: Any,
) -> None:
    """1.9 is refused, not cut to 1; nothing is sent."""
    entry = await _set_up(hass, _entry(app_key))
    device_id = _device_id(hass, entry, "Feather M0 on the balcony")
    with pytest.raises(vol.Invalid, match="FPort must be a whole number"):
        await _send_downlink(
            hass, {"device_id": device_id, "f_port": f_port, "payload": "01"}
        )
    assert fake_tts.simulator.downlinks == []
    assert app_mqtt.published == []


async def test_downlink_refusals_name_the_reason(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """A gateway; a downlink TTS refuses over HTTP, said to the caller."""
    entry = _entry(app_key)
    await _set_up(hass, entry)
    gateway = next(
        device.id
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if device.name == "Rooftop gateway"
    )
    with pytest.raises(ServiceValidationError) as err:
        await _send_downlink(hass, {"device_id": gateway, "f_port": 1, "payload": "01"})
    assert err.value.translation_key == "downlink_not_an_end_device"
    # (Home Assistant drops a translated message's final full stop.)
    assert str(err.value).rstrip(".") == (
        "Rooftop gateway is not an end device of The Things Stack"
    )

    device_id = _device_id(hass, entry, "Feather M0 on the balcony")
    fake_tts.simulator.set_application(rights=["RIGHT_APPLICATION_TRAFFIC_READ"])
    with pytest.raises(ServiceValidationError) as err:
        await _send_downlink(
            hass, {"device_id": device_id, "f_port": 1, "payload": "01"}
        )
    # TTS refused for a missing right: the device by its name, the right once.
    assert err.value.translation_key == "downlink_no_right"
    assert str(err.value).rstrip(".") == (
        "The application key of Feather M0 on the balcony may not send downlinks."
        " In the Console, grant it Write downlink application traffic, then"
        " reconfigure the application"
    )
    assert app_mqtt.published == []


async def test_send_downlink_over_mqtt_only_without_the_right_recorded(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """Recorded rights without downlinks: the direct connection carries it
    (TTS checks the key's rights there); while it is down, that is said."""
    entry = await _set_up(hass, _entry(app_key, **{CONF_RIGHTS: READ_RIGHTS}))
    device_id = _device_id(hass, entry, "Feather M0 on the balcony")
    await _send_downlink(
        hass,
        {"device_id": device_id, "f_port": 1, "payload": "01 FF", "mode": "replace"},
    )
    ((topic, payload),) = app_mqtt.published
    assert topic == f"v3/{USERNAME}/devices/{FEATHER}/down/replace"
    assert json.loads(payload) == {
        "downlinks": [
            {
                "f_port": 1,
                "frm_payload": "Af8=",
                "confirmed": False,
                "priority": "NORMAL",
            }
        ]
    }
    assert fake_tts.simulator.downlinks == []

    app_mqtt.publish_fails = True
    with pytest.raises(HomeAssistantError) as err:
        await _send_downlink(
            hass, {"device_id": device_id, "f_port": 1, "payload": "01"}
        )
    assert err.value.translation_key == "downlink_not_connected"
    app_mqtt.drop()
    app_mqtt.reachable = False
    await hass.async_block_till_done()
    with pytest.raises(HomeAssistantError) as err:
        await _send_downlink(
            hass, {"device_id": device_id, "f_port": 1, "payload": "01"}
        )
    assert err.value.translation_key == "downlink_not_connected"


# HA's MQTT client leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_no_downlink_without_the_right_through_home_assistants_mqtt(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    mqtt_mock: Any,
) -> None:
    """Nothing to fall back on: the missing right is said."""
    entry = await _set_up(
        hass,
        _entry(
            app_key,
            transport=TRANSPORT_MQTT,
            **{
                CONF_UPLINK_TOPIC: f"v3/{USERNAME}/devices/+/up",
                CONF_RIGHTS: READ_RIGHTS,
            },
        ),
    )
    device_id = _device_id(hass, entry, "Soil sensor")
    with pytest.raises(ServiceValidationError) as err:
        await _send_downlink(
            hass, {"device_id": device_id, "f_port": 10, "payload": "AQID"}
        )
    assert err.value.translation_key == "downlink_no_right"
    assert fake_tts.simulator.downlinks == []


async def test_downlink_events_late_and_unknown(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
) -> None:
    """A late event does not win; other devices' events are ignored."""
    await _set_up(hass, _entry(app_key))
    ids = {"device_id": FEATHER, "application_ids": {"application_id": APP}}

    def event(name: str, at: str, device: dict[str, Any] = ids) -> str:
        return json.dumps(
            {"end_device_ids": device, "received_at": at, name: {"f_port": 1}}
        )

    topic = f"v3/{USERNAME}/devices/{FEATHER}/down"
    app_mqtt.publish(f"{topic}/sent", event("downlink_sent", "2026-11-28T10:00:02Z"))
    app_mqtt.publish(
        f"{topic}/queued", event("downlink_queued", "2026-11-28T10:00:01Z")
    )
    app_mqtt.publish(
        f"v3/{USERNAME}/devices/unknown-device/down/sent",
        event(
            "downlink_sent",
            "2026-11-28T10:00:03Z",
            {"device_id": "unknown-device", "application_ids": {"application_id": APP}},
        ),
    )
    await hass.async_block_till_done()
    state = hass.states.get("sensor.feather_m0_on_the_balcony_last_downlink")
    assert state is not None
    assert state.state == "sent"


# HA's MQTT client leaves its housekeeping timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_http_downlink_refused_by_tts(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    mqtt_mock: Any,
) -> None:
    """TTS refusing the HTTP push: an error that says what TTS said."""
    entry = await _set_up(
        hass,
        _entry(
            app_key,
            transport=TRANSPORT_MQTT,
            **{CONF_UPLINK_TOPIC: f"v3/{USERNAME}/devices/+/up"},
        ),
    )
    device_id = _device_id(hass, entry, "Soil sensor")
    fake_tts.simulator.set_application(rights=["RIGHT_APPLICATION_INFO"])
    with pytest.raises(HomeAssistantError) as err:
        await _send_downlink(
            hass, {"device_id": device_id, "f_port": 10, "payload": "AQID"}
        )
    assert err.value.translation_key == "downlink_no_right"
    assert "Soil sensor" in str(err.value)
    assert app_key.rsplit(".", 1)[1] not in str(err.value)
    assert fake_tts.simulator.downlinks == []


async def _next_listing(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    freezer.tick(timedelta(hours=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    "fault",
    ["unreadable item", "shifting pages", "cut at the bound"],
)
async def test_an_incomplete_list_deletes_nothing(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
    fault: str,
) -> None:
    """Lists that may lack devices, hours of them: no device is removed.

    Once they are complete again, a device still missing goes only after two
    of them an hour apart.
    """
    entry = await _set_up(hass, _entry(app_key))
    assert len(_names(device_registry, entry)) == 4
    simulator = fake_tts.simulator
    simulator.devices = [  # the soil sensor is deleted
        device for device in simulator.devices if device.device_id != "soil-sensor"
    ]
    with ExitStack() as faults:
        if fault == "unreadable item":
            simulator.device_list_extra = [{"ids": {"device_id": "No ID"}}]
        elif fault == "shifting pages":
            simulator.device_list_shifting = True
            faults.enter_context(
                patch.object(application_requests, "LIST_PAGE_SIZE", 1)
            )
        else:
            faults.enter_context(
                patch.object(application_requests, "END_DEVICE_LIST_MAX", 1)
            )
            faults.enter_context(
                patch.object(application_requests, "LIST_PAGE_SIZE", 1)
            )
        for _ in range(3):
            await _next_listing(hass, freezer)
            assert len(_names(device_registry, entry)) == 4
    simulator.device_list_extra = []
    simulator.device_list_shifting = False
    await _next_listing(hass, freezer)
    assert len(_names(device_registry, entry)) == 4
    await _next_listing(hass, freezer)
    assert _names(device_registry, entry) == {
        "Feather M0 on the balcony",
        "Climate sensor",
        "Office desk sensor",
    }


async def test_a_list_without_total_reads_every_page(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """No X-Total-Count: the devices past page 1 are listed, never deleted."""
    fake_tts.simulator.device_list_total = False
    with patch.object(application_requests, "LIST_PAGE_SIZE", 1):
        entry = await _set_up(hass, _entry(app_key))
        for _ in range(2):
            await _next_listing(hass, freezer)
    assert len(_names(device_registry, entry)) == 4


async def test_a_device_that_sends_while_listing_is_not_judged_by_that_list(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A device made by an uplink while the list is read is not missing from it."""
    entry = await _set_up(hass, _entry(app_key))
    manager = entry.runtime_data.end_devices
    new_key = (APP, "new-sensor")
    original = TTSClient.list_end_devices

    async def list_while_a_device_sends(
        client: TTSClient, application_id: str
    ) -> EndDeviceListing:
        listing = await original(client, application_id)
        app_mqtt.publish(
            f"v3/{USERNAME}/devices/new-sensor/up",
            encode(uplink(application_id=APP, device_id="new-sensor")),
        )
        for _ in range(100):  # until the uplink is taken
            if new_key in manager.devices:
                break
            await asyncio.sleep(0)
        return listing

    with patch.object(TTSClient, "list_end_devices", list_while_a_device_sends):
        await _next_listing(hass, freezer)
    assert new_key in manager.devices
    # The next list lacks it (created in TTS after that list was read, say):
    # that is the first of two.
    await _next_listing(hass, freezer)
    assert "new-sensor" in _names(device_registry, entry)


async def test_a_device_deleted_by_the_user_stays_away_from_lists(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Deleted in Home Assistant: not back with lists (also after a restart),
    back with its TTS name when it sends."""
    assert await async_setup_component(hass, "config", {})
    entry = await _set_up(hass, _entry(app_key))
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": entry.entry_id,
            "device_id": _device_id(hass, entry, "Feather M0 on the balcony"),
        }
    )
    assert (await client.receive_json())["success"]
    await hass.async_block_till_done()
    await _next_listing(hass, freezer)
    assert "Feather M0 on the balcony" not in _names(device_registry, entry)
    # Nor after a restart.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert "Feather M0 on the balcony" not in _names(device_registry, entry)
    app_mqtt.publish(
        f"v3/{USERNAME}/devices/{FEATHER}/up",
        encode(uplink(application_id=APP, device_id=FEATHER, payload=b"\x2a")),
    )
    await hass.async_block_till_done()
    assert "Feather M0 on the balcony" in _names(device_registry, entry)


async def test_listed_devices_that_never_sent_give_way_to_devices_that_send(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Listed devices fill only free room; a device that sends takes their place.

    Three listed devices and a cap of two: two are shown, without a repair
    issue. Devices that send then replace them one by one, with their
    entities; once only devices that send are left, further ones are dropped.
    """
    entry = _entry(app_key)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_MAX_END_DEVICES: 2})
    await _set_up(hass, entry)
    assert _names(device_registry, entry) == {
        "Feather M0 on the balcony",
        "Climate sensor",
    }
    assert not issue_registry.issues

    async def send(device_id: str) -> None:
        app_mqtt.publish(
            f"v3/{USERNAME}/devices/{device_id}/up",
            encode(uplink(application_id=APP, device_id=device_id, payload=b"\x05")),
        )
        await hass.async_block_till_done()

    await send("soil-sensor")
    assert _names(device_registry, entry) == {
        "Feather M0 on the balcony",
        "Soil sensor",
    }
    await send("new-sensor")
    assert _names(device_registry, entry) == {"Soil sensor", "new-sensor"}
    assert hass.states.get("sensor.soil_sensor_value").state == "5"
    assert hass.states.get("sensor.new_sensor_value").state == "5"
    assert hass.states.get("binary_sensor.feather_m0_on_the_balcony_silent") is None
    devices = {
        device.id
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    }
    assert all(
        entity.device_id in devices
        for entity in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    )
    assert not issue_registry.issues

    await send("another-sensor")
    assert _names(device_registry, entry) == {"Soil sensor", "new-sensor"}
    assert [issue.translation_key for issue in issue_registry.issues.values()] == [
        "end_device_cap"
    ]
    # A higher cap: the devices that send stay, a listed one fills the room.
    hass.config_entries.async_update_entry(entry, options={CONF_MAX_END_DEVICES: 3})
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert _names(device_registry, entry) == {
        "Feather M0 on the balcony",
        "Soil sensor",
        "new-sensor",
    }


async def test_deleted_devices_are_read_back_and_removed_with_the_entry(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    hass_storage: dict[str, Any],
) -> None:
    """What was saved is taken, unreadable parts skipped; gone with the entry."""
    key = "ttn_gateway.01JTTNGATEWAYTESTENTRY0001.deleted_end_devices"
    hass_storage[key] = {
        "version": 1,
        "key": key,
        "data": [[APP, FEATHER], ["half"], 7, [APP, 8], "text"],
    }
    entry = await _set_up(hass, _entry(app_key))
    assert _names(device_registry, entry) == {
        "Climate sensor",
        "Office desk sensor",
        "Soil sensor",
    }
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


async def test_unreadable_deleted_devices_are_none(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    app_key: str,
    app_mqtt: FakeAppMqtt,
    device_registry: dr.DeviceRegistry,
    hass_storage: dict[str, Any],
) -> None:
    """Saved data that is no list: every listed device appears."""
    key = "ttn_gateway.01JTTNGATEWAYTESTENTRY0001.deleted_end_devices"
    hass_storage[key] = {"version": 1, "key": key, "data": {"not": "a list"}}
    entry = await _set_up(hass, _entry(app_key))
    assert len(_names(device_registry, entry)) == 4
