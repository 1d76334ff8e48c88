"""The TTS client's application calls, downlinks and MQTT server connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
import random
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pytest

from custom_components.ttn_gateway.tts import (
    Downlink,
    DownlinkError,
    DownlinkStatus,
    EndDeviceInfo,
    KeyOwnerType,
    MqttConnectionInfo,
    MqttNotAuthorizedError,
    MqttSettings,
    Priority,
    Right,
    TTSAuthenticationError,
    TTSClient,
    TTSConnectionError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
    TTSServer,
    UplinkError,
    application_requests,
    connect_application,
    downlink_request_json,
    mqtt_settings,
    parse_downlink_event,
    parse_payload,
)
from tts_simulator import Request, Response, make_devices
from tts_simulator.app_broker import AppBroker
from tts_simulator.stack import Processes, find_mosquitto, free_port, start_app_broker
from tts_simulator.tts_json import api_key

from .fake_tts import FakeTTS

APP = "home-sensors"
DEVICE_IDS = ["feather-m0", "lpp-climate-sensor", "office-desk-sensor", "soil-sensor"]


@pytest.fixture
def app_client(hass: HomeAssistant, fake_tts: FakeTTS) -> TTSClient:
    """A client with the simulated application's key; its devices exist."""
    fake_tts.simulator.devices = make_devices(fake_tts.clock())
    return TTSClient(
        async_get_clientsession(hass),
        TTSServer.parse("eu1"),
        fake_tts.simulator.application.api_key,
    )


async def test_auth_info_of_an_application_key(app_client: TTSClient) -> None:
    """An application key: owned by the application, with its rights."""
    auth = await app_client.get_auth_info()
    assert (auth.owner_type, auth.owner_id) == (KeyOwnerType.APPLICATION, APP)
    assert auth.grants(Right.APPLICATION_TRAFFIC_DOWN_WRITE)
    assert not auth.grants(Right.GATEWAY_INFO)


async def test_get_application(app_client: TTSClient) -> None:
    """Its name, from the Identity Server."""
    application = await app_client.get_application(APP)
    assert (application.application_id, application.name) == (APP, "Home sensors")


async def test_a_link_key_reads_the_application_and_sends_downlinks(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """RIGHT_APPLICATION_LINK alone: info and downlinks, not the device list.

    lorawan-stack api/ttn/lorawan/v3/rights.proto: the link right implies
    RIGHT_APPLICATION_INFO, _TRAFFIC_READ and _TRAFFIC_DOWN_WRITE.
    """
    fake_tts.simulator.set_application(rights=["RIGHT_APPLICATION_LINK"])
    auth = await app_client.get_auth_info()
    assert auth.missing_rights(
        (
            Right.APPLICATION_INFO,
            Right.APPLICATION_TRAFFIC_READ,
            Right.APPLICATION_TRAFFIC_DOWN_WRITE,
            Right.APPLICATION_DEVICES_READ,
        )
    ) == [Right.APPLICATION_DEVICES_READ]
    assert (await app_client.get_application(APP)).name == "Home sensors"
    device_id = fake_tts.simulator.devices[0].device_id
    await app_client.push_downlinks(APP, device_id, [Downlink(1, b"\x01")])
    assert fake_tts.simulator.downlinks[-1]["device_id"] == device_id
    with pytest.raises(TTSPermissionError):
        await app_client.list_end_devices(APP)


async def test_another_applications_key_is_refused(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """403 for another application, 401 for a key TTS does not know."""
    with pytest.raises(TTSPermissionError):
        await app_client.get_application("other-app")
    fake_tts.simulator.set_application(api_key=api_key(random.Random(99)))  # noqa: S311
    with pytest.raises(TTSAuthenticationError):
        await app_client.get_application(APP)


async def test_list_end_devices_page_by_page(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """Every page is read; names and models come along."""
    with patch.object(application_requests, "LIST_PAGE_SIZE", 2):
        listing = await app_client.list_end_devices(APP)
    assert listing.complete
    assert [device.device_id for device in listing.devices] == DEVICE_IDS
    feather = listing.devices[0]
    assert feather.name == "Feather M0 on the balcony"
    assert feather.version_ids is not None
    assert feather.version_ids.brand_id == "adafruit"
    assert fake_tts.simulator.request_counts["end_devices"] == 2


@pytest.mark.parametrize("size", [1, 3])
async def test_list_end_devices_without_total_reads_to_a_short_page(
    app_client: TTSClient, fake_tts: FakeTTS, size: int
) -> None:
    """No X-Total-Count: pages are read until one is short, then it is complete."""
    fake_tts.simulator.device_list_total = False
    with patch.object(application_requests, "LIST_PAGE_SIZE", size):
        listing = await app_client.list_end_devices(APP)
    assert listing.complete
    assert [device.device_id for device in listing.devices] == DEVICE_IDS
    # Up to a short (or the empty) page after the last device.
    assert fake_tts.simulator.request_counts["end_devices"] == (
        len(DEVICE_IDS) // size + 1
    )


async def test_list_end_devices_that_keeps_moving_is_incomplete(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """Pages that shift at every request: read three times, then incomplete."""
    fake_tts.simulator.device_list_shifting = True
    with patch.object(application_requests, "LIST_PAGE_SIZE", 2):
        listing = await app_client.list_end_devices(APP)
    assert not listing.complete
    assert fake_tts.simulator.request_counts["end_devices"] == 3 * 2


@pytest.mark.parametrize("total", [True, False])
async def test_list_end_devices_read_again_after_a_shift(
    app_client: TTSClient, fake_tts: FakeTTS, total: bool
) -> None:
    """A device added in front and one deleted while the pages are read.

    TTS pages by offset (``bunstore/end_device_store.go``): after page 1, a
    new device in front pushes page 1's last device onto page 2 (read twice)
    and the deleted one keeps the total. The repeat tells the list moved.
    """
    simulator = fake_tts.simulator
    simulator.device_list_total = total
    handle = simulator.handle
    pages: list[str] = []

    def change_after_page_1(request: Request) -> Response:
        response = handle(request)
        if request.path.endswith("/devices"):
            pages.append(request.query["page"])
            if len(pages) == 1:
                new = replace(simulator.devices[0], device_id="aaa-new-sensor")
                simulator.devices = [new, *simulator.devices[:-1]]
        return response

    simulator.handle = change_after_page_1  # type: ignore[method-assign]
    with patch.object(application_requests, "LIST_PAGE_SIZE", 2):
        listing = await app_client.list_end_devices(APP)
    # Without a total, four devices end with an empty page 3.
    assert pages == (["1", "2"] if total else ["1", "2", "3"]) * 2
    assert listing.complete
    assert [device.device_id for device in listing.devices] == sorted(
        device.device_id for device in simulator.devices
    )
    assert "aaa-new-sensor" in [device.device_id for device in listing.devices]


@pytest.mark.parametrize(
    "item",
    [
        {"ids": {"device_id": "Not An ID", "application_ids": {"application_id": APP}}},
        {"ids": {"device_id": "dev-1", "application_ids": {"application_id": "other"}}},
        "not an object",
    ],
)
async def test_list_end_devices_with_an_unreadable_item_is_incomplete(
    app_client: TTSClient, fake_tts: FakeTTS, item: object
) -> None:
    """The readable devices are kept; the listing says it may lack one."""
    fake_tts.simulator.device_list_extra = [item]
    listing = await app_client.list_end_devices(APP)
    assert not listing.complete
    assert [device.device_id for device in listing.devices] == DEVICE_IDS


async def test_list_end_devices_cut_at_its_bound_is_incomplete(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """At END_DEVICE_LIST_MAX the reading stops: more may exist."""
    with (
        patch.object(application_requests, "LIST_PAGE_SIZE", 1),
        patch.object(application_requests, "END_DEVICE_LIST_MAX", 2),
    ):
        listing = await app_client.list_end_devices(APP)
    assert not listing.complete
    assert len(listing.devices) == 2


async def test_list_end_devices_unexpected_body(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """A body that is no device list is an error, not an empty list."""
    fake_tts.fail("end_devices", 200, body=["not", "an", "object"])
    with pytest.raises(TTSConnectionError):
        await app_client.list_end_devices(APP)


async def test_list_end_devices_needs_the_right(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """Without the right to view devices: a permission error naming it."""
    fake_tts.simulator.set_application(rights=["RIGHT_APPLICATION_TRAFFIC_READ"])
    with pytest.raises(TTSPermissionError) as err:
        await app_client.list_end_devices(APP)
    assert "RIGHT_APPLICATION_DEVICES_READ" in err.value.missing_rights


@pytest.mark.parametrize(
    "item",
    [
        None,
        [],
        {"ids": {"device_id": "dev-1"}},
        {"ids": {"device_id": "Not An ID", "application_ids": {"application_id": APP}}},
        {"ids": {"device_id": 7, "application_ids": {"application_id": APP}}},
    ],
)
def test_unusable_device_items_are_skipped(item: object) -> None:
    """Items without usable IDs are no device."""
    assert EndDeviceInfo.from_json(item) is None


def test_device_names_are_bounded() -> None:
    """Blank names are none; long ones are cut."""
    ids = {"device_id": "dev-1", "application_ids": {"application_id": APP}}
    assert EndDeviceInfo.from_json({"ids": ids, "name": "  "}).name is None  # type: ignore[union-attr]
    long = EndDeviceInfo.from_json({"ids": ids, "name": "x" * 1000})
    assert long is not None
    assert long.name == "x" * 255


async def test_push_and_replace_downlinks(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """The Application Server gets the downlinks as TTS JSON."""
    await app_client.push_downlinks(
        APP, "feather-m0", [Downlink(f_port=1, frm_payload=b"\x01\xff")]
    )
    await app_client.push_downlinks(
        APP,
        "feather-m0",
        [Downlink(f_port=2, decoded_payload={"led": True}, confirmed=True)],
        replace=True,
    )
    first, second = fake_tts.simulator.downlinks
    assert (first["replace"], first["via"]) == (False, "http")
    assert first["downlinks"] == [
        {"f_port": 1, "priority": "NORMAL", "confirmed": False, "frm_payload": "Af8="}
    ]
    assert second["replace"] is True
    assert second["downlinks"][0]["decoded_payload"] == {"led": True}


async def test_downlink_errors(app_client: TTSClient, fake_tts: FakeTTS) -> None:
    """Unknown device: not found; no right to write downlinks: permission."""
    with pytest.raises(TTSNotFoundError):
        await app_client.push_downlinks(
            APP, "no-such-device", [Downlink(f_port=1, frm_payload=b"\x01")]
        )
    fake_tts.simulator.set_application(rights=["RIGHT_APPLICATION_TRAFFIC_READ"])
    with pytest.raises(TTSPermissionError):
        await app_client.push_downlinks(
            APP, "feather-m0", [Downlink(f_port=1, frm_payload=b"\x01")]
        )
    assert fake_tts.simulator.downlinks == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01FF", b"\x01\xff"),
        ("01 ff", b"\x01\xff"),
        ("01:FF:10", b"\x01\xff\x10"),
        ("Af8=", b"\x01\xff"),
        ("AQID", b"\x01\x02\x03"),
    ],
)
def test_payload_as_hex_or_base64(text: str, expected: bytes) -> None:
    """Hex pairs first, else strict base64."""
    assert parse_payload(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty_payload"),
        ("  ", "empty_payload"),
        ("0", "invalid_payload"),
        ("xyz!", "invalid_payload"),
        ("Af8", "invalid_payload"),
    ],
)
def test_payload_neither_hex_nor_base64(text: str, reason: str) -> None:
    """Refused with a reason the action can translate."""
    with pytest.raises(DownlinkError) as err:
        parse_payload(text)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"f_port": 0, "frm_payload": b"\x01"}, "invalid_f_port"),
        ({"f_port": 224, "frm_payload": b"\x01"}, "invalid_f_port"),
        ({"f_port": 1}, "payload_and_object"),
        (
            {"f_port": 1, "frm_payload": b"\x01", "decoded_payload": {}},
            "payload_and_object",
        ),
        ({"f_port": 1, "frm_payload": bytes(243)}, "payload_too_long"),
    ],
)
def test_downlinks_tts_would_refuse(kwargs: dict[str, object], reason: str) -> None:
    """Refused before anything is sent."""
    with pytest.raises(DownlinkError) as err:
        Downlink(**kwargs)  # type: ignore[arg-type]
    assert err.value.reason == reason


def test_downlink_json() -> None:
    """Base64 payload, the priority by name, confirmed."""
    body = downlink_request_json(
        [Downlink(223, frm_payload=bytes(242), priority=Priority.HIGHEST)]
    )
    (downlink,) = body["downlinks"]
    assert downlink["f_port"] == 223
    assert downlink["priority"] == "HIGHEST"
    assert len(downlink["frm_payload"]) == 324


def _event(name: str, body: object) -> dict[str, object]:
    return {
        "end_device_ids": {
            "device_id": "feather-m0",
            "application_ids": {"application_id": APP},
        },
        "received_at": "2026-11-28T10:00:00.123456789Z",
        name: body,
    }


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("downlink_queued", DownlinkStatus.QUEUED),
        ("downlink_sent", DownlinkStatus.SENT),
        ("downlink_ack", DownlinkStatus.ACKNOWLEDGED),
        ("downlink_nack", DownlinkStatus.NACKED),
    ],
)
def test_downlink_events(name: str, status: DownlinkStatus) -> None:
    """Each event names the device, the status and the FPort."""
    event = parse_downlink_event(_event(name, {"f_port": 1, "f_cnt": 3}))
    assert event is not None
    assert (event.device_id, event.status, event.f_port, event.f_cnt) == (
        "feather-m0",
        status,
        1,
        3,
    )
    assert event.received_at is not None
    assert event.error is None


def test_failed_downlink_carries_a_short_error() -> None:
    """The error's message format, cut to 200 characters."""
    event = parse_downlink_event(
        _event(
            "downlink_failed",
            {
                "downlink": {"f_port": 2},
                "error": {"name": "no_device_session", "message_format": "x" * 500},
            },
        )
    )
    assert event is not None
    assert event.status is DownlinkStatus.FAILED
    assert event.f_port == 2
    assert event.error == "x" * 200


def test_other_messages_are_no_downlink_events() -> None:
    """An uplink or a join is not a downlink event; garbage is an error."""
    assert parse_downlink_event(_event("uplink_message", {})) is None
    with pytest.raises(UplinkError):
        parse_downlink_event([1, 2])
    with pytest.raises(UplinkError):
        parse_downlink_event(_event("downlink_sent", "not an object"))
    with pytest.raises(UplinkError):
        parse_downlink_event({"downlink_sent": {}, "end_device_ids": {}})


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("eu1", MqttSettings("eu1.cloud.thethings.network", 8883, True, "app@ttn")),
        ("nam1", MqttSettings("nam1.cloud.thethings.network", 8883, True, "app@ttn")),
        ("au1", MqttSettings("au1.cloud.thethings.network", 8883, True, "app@ttn")),
        (
            "https://acme.eu1.cloud.thethings.industries",
            MqttSettings("acme.eu1.cloud.thethings.industries", 8883, True, "app@acme"),
        ),
        ("https://tts.example.org", MqttSettings("tts.example.org", 8883, True, "app")),
        ("http://192.168.1.10:1885", MqttSettings("192.168.1.10", 1883, False, "app")),
    ],
)
def test_mqtt_settings_follow_the_server(server: str, expected: MqttSettings) -> None:
    """Host, port, TLS and username as TTS's MQTT server expects them."""
    assert mqtt_settings(TTSServer.parse(server), "app") == expected


# Answers of ``mqtt-connection-info`` (lorawan-stack api/api.md,
# MQTTConnectionInfo): a TTN cluster, an Enterprise tenant on its own host,
# a self-hosted server left at TTS's default public host ``localhost``
# (cmd/ttn-lw-stack/commands/config.go), one naming only a plain address, and
# one with nothing usable.
@pytest.mark.parametrize(
    ("server", "info", "expected"),
    [
        (
            "eu1",
            MqttConnectionInfo(
                "eu1.cloud.thethings.network:1883",
                "eu1.cloud.thethings.network:8883",
                "app@ttn",
            ),
            MqttSettings("eu1.cloud.thethings.network", 8883, True, "app@ttn"),
        ),
        (
            "https://lns.example.com",
            MqttConnectionInfo(
                "mqtt.example.com:1883", "mqtt.example.com:8884", "app@acme"
            ),
            MqttSettings("mqtt.example.com", 8884, True, "app@acme"),
        ),
        (
            "http://192.168.1.10:1885",
            MqttConnectionInfo("localhost:1883", "localhost:8883", "app"),
            MqttSettings("192.168.1.10", 1883, False, "app"),
        ),
        (
            "http://localhost:1885",
            MqttConnectionInfo("localhost:1884", "localhost:8883", "app"),
            MqttSettings("localhost", 1884, False, "app"),
        ),
        (
            "https://tts.example.org",
            MqttConnectionInfo("tts.example.org:1883", None, None),
            MqttSettings("tts.example.org", 1883, False, "app"),
        ),
        (
            "https://tts.example.org",
            MqttConnectionInfo("tts.example.org:port", "", ""),
            MqttSettings("tts.example.org", 8883, True, "app"),
        ),
    ],
)
def test_mqtt_settings_from_tts_answer(
    server: str, info: MqttConnectionInfo, expected: MqttSettings
) -> None:
    """TTS's answer wins over what the server's address suggests."""
    assert mqtt_settings(TTSServer.parse(server), "app", info=info) == expected


def test_mqtt_settings_from_tts_answer_with_overrides() -> None:
    """The user's TLS choice picks the default port of that choice."""
    info = MqttConnectionInfo("tts.lan:1884", "tts.lan:8884", "app")
    server = TTSServer.parse("https://tts.lan")
    assert mqtt_settings(server, "app", info=info, tls=False) == MqttSettings(
        "tts.lan", 1883, False, "app"
    )
    assert mqtt_settings(server, "app", info=info, tls=True).port == 8884


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {
                "public_address": "eu1.cloud.thethings.network:1883",
                "public_tls_address": "eu1.cloud.thethings.network:8883",
                "username": "app@ttn",
            },
            MqttConnectionInfo(
                "eu1.cloud.thethings.network:1883",
                "eu1.cloud.thethings.network:8883",
                "app@ttn",
            ),
        ),
        # TTS leaves empty fields out; wrong types are ignored.
        ({"username": "app"}, MqttConnectionInfo(None, None, "app")),
        ({"public_address": 1883, "username": " "}, MqttConnectionInfo()),
        ([], MqttConnectionInfo()),
    ],
)
def test_mqtt_connection_info_parsing(
    data: object, expected: MqttConnectionInfo
) -> None:
    """Each field is text or None."""
    assert MqttConnectionInfo.from_json(data) == expected


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("tts", True),
        ("tts.local", True),
        ("192.168.1.10", True),
        ("10.0.0.2", True),
        ("127.0.0.1", True),
        ("fd00::1", True),
        ("tts.example.com", False),
        ("8.8.8.8", False),
        ("2a00:1450:4001::1", False),
    ],
)
def test_cleartext_only_on_the_local_network(host: str, local: bool) -> None:
    """Without TLS the key crosses the network in clear unless it stays local."""
    assert MqttSettings(host, 1883, False, "app").sends_key_in_clear is not local
    assert not MqttSettings(host, 8883, True, "app").sends_key_in_clear


async def test_mqtt_connection_info_of_a_cloud_application(
    app_client: TTSClient,
) -> None:
    """The simulated eu1 answers with its addresses and app@ttn."""
    info = await app_client.get_mqtt_connection_info(APP)
    assert info == MqttConnectionInfo(
        "eu1.cloud.thethings.network:1883",
        "eu1.cloud.thethings.network:8883",
        f"{APP}@ttn",
    )


async def test_mqtt_connection_info_of_a_tenant_and_of_a_default_server(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """A tenant's username is app@tenant; a single-tenant server's the ID."""
    simulator = fake_tts.simulator
    client = TTSClient(
        async_get_clientsession(hass),
        TTSServer.parse("https://acme.eu1.cloud.thethings.industries"),
        simulator.application.api_key,
    )
    simulator.tenant = "acme"
    simulator.mqtt_public_address = "acme.eu1.cloud.thethings.industries:1883"
    assert (await client.get_mqtt_connection_info(APP)).username == f"{APP}@acme"
    simulator.tenant = ""
    simulator.mqtt_public_address = "localhost:1883"
    simulator.mqtt_public_tls_address = None
    info = await client.get_mqtt_connection_info(APP)
    assert info == MqttConnectionInfo("localhost:1883", None, APP)


async def test_mqtt_connection_info_missing_or_refused(
    app_client: TTSClient, fake_tts: FakeTTS
) -> None:
    """No such route: 404; a key without the right: 403."""
    fake_tts.simulator.mqtt_public_address = None
    fake_tts.simulator.mqtt_public_tls_address = None
    with pytest.raises(TTSNotFoundError):
        await app_client.get_mqtt_connection_info(APP)
    fake_tts.simulator.mqtt_public_address = "eu1.cloud.thethings.network:1883"
    fake_tts.simulator.set_application(rights=["RIGHT_APPLICATION_TRAFFIC_READ"])
    with pytest.raises(TTSPermissionError) as err:
        await app_client.get_mqtt_connection_info(APP)
    assert err.value.missing_rights == ("RIGHT_APPLICATION_INFO",)


def test_mqtt_settings_overrides_and_topics() -> None:
    """Overrides win; topics follow the username."""
    settings = mqtt_settings(
        TTSServer.parse("http://tts.lan"),
        "app",
        host="mqtt.lan",
        port=8884,
        tls=True,
        username="app@acme",
    )
    assert settings == MqttSettings("mqtt.lan", 8884, True, "app@acme")
    assert settings.uplink_topic() == "v3/app@acme/devices/+/up"
    assert settings.downlink_events_topic() == "v3/app@acme/devices/+/down/+"
    assert settings.downlink_topic("dev", replace=True) == (
        "v3/app@acme/devices/dev/down/replace"
    )


# The wire: aiomqtt against a real mosquitto with the application's login.

APP_KEY = api_key(random.Random(21))  # noqa: S311
USERNAME = f"{APP}@ttn"


@pytest.fixture
def broker(tmp_path: Path, socket_enabled: None) -> Iterator[AppBroker]:
    """The application's MQTT server (mosquitto, password file and ACL)."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it with apt-get)")
    processes = Processes(tmp_path / "logs")
    try:
        yield start_app_broker(
            processes, free_port(), tmp_path, username=USERNAME, api_key=APP_KEY
        )
    finally:
        processes.stop()


def _settings(port: int) -> MqttSettings:
    return MqttSettings("127.0.0.1", port, False, USERNAME)


async def test_session_receives_and_publishes(broker: AppBroker) -> None:
    """Subscribe, receive raw payloads, publish a downlink the server takes."""
    async with connect_application(
        _settings(broker.port), APP_KEY, ssl_context=None
    ) as session:
        await session.subscribe(f"v3/{USERNAME}/devices/+/down/push")
        messages = session.messages()
        await session.publish(f"v3/{USERNAME}/devices/dev/down/push", b'{"a":1}')
        topic, payload = await asyncio.wait_for(anext(messages), 10)
    assert (topic, payload) == (f"v3/{USERNAME}/devices/dev/down/push", b'{"a":1}')


async def test_wrong_key_is_not_authorized(broker: AppBroker) -> None:
    """Not authorized: the key is never in the message."""
    other = api_key(random.Random(22))  # noqa: S311
    with pytest.raises(MqttNotAuthorizedError) as err:
        async with connect_application(_settings(broker.port), other, ssl_context=None):
            pass
    assert other not in str(err.value)
    assert other.rsplit(".", 1)[1] not in repr(err.value)


async def test_nobody_listening_is_a_connection_error(socket_enabled: None) -> None:
    """A closed port: a connection error naming the server."""
    port = free_port()
    with pytest.raises(TTSConnectionError) as err:
        async with connect_application(_settings(port), APP_KEY, ssl_context=None):
            pass
    assert f"127.0.0.1:{port}" in str(err.value)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (3, TTSRateLimitError),
        (4, MqttNotAuthorizedError),
        (5, MqttNotAuthorizedError),
        (2, TTSConnectionError),
    ],
)
async def test_connack_codes(
    socket_enabled: None, code: int, error: type[Exception]
) -> None:
    """CONNACK refusals map to this package's errors."""

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(1024)  # CONNECT
        writer.write(bytes([0x20, 0x02, 0x00, code]))
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(error):
            async with connect_application(_settings(port), APP_KEY, ssl_context=None):
                pass
    finally:
        server.close()
        await server.wait_closed()
