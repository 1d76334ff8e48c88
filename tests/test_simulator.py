"""The TTS simulator: what it answers, how its fleet lives, what devices send."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
import json
import random
import re
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
import pytest

from custom_components.ttn_gateway.tts import TTSClient, TTSConnectionError, TTSServer
from custom_components.ttn_gateway.tts.primitives import parse_timestamp
from tts_simulator import (
    Action,
    DeviceKind,
    EndDevice,
    Fault,
    FaultKind,
    ManualClock,
    ReconnectOrder,
    Request,
    Response,
    Simulator,
    make_devices,
    make_fleet,
    tts_json,
)
from tts_simulator.devices import lora_airtime
from tts_simulator.server import create_app, parse_fault
from tts_simulator.tts_json import api_key

from .device_repository import example_bytes, load_examples
from .fake_tts import API_KEY

BATCH = "/api/v3/gs/gateways/connection/stats"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def single(gateway_id: str) -> str:
    return f"/api/v3/gs/gateways/{gateway_id}/connection/stats"


@pytest.fixture(name="clock")
def clock_fixture() -> ManualClock:
    return ManualClock()


@pytest.fixture(name="sim")
def sim_fixture(clock: ManualClock) -> Simulator:
    """Five live gateways: rooftop, garden (LBS), barn (quiet), attic, spare."""
    simulator = Simulator(api_key=API_KEY, clock=clock)
    for gateway in make_fleet(5, clock()):
        simulator.add_gateway(gateway)
    return simulator


def get(sim: Simulator, path: str, headers: Any = AUTH, **query: str) -> Response:
    return sim.handle(Request("GET", path, query, headers))


def post(sim: Simulator, path: str, body: Any, headers: Any = AUTH) -> Response:
    return sim.handle(Request("POST", path, {}, headers, json.dumps(body).encode()))


def batch(sim: Simulator, *ids: str) -> Response:
    return post(sim, BATCH, {"gateway_ids": [{"gateway_id": i} for i in ids]})


def error_name(response: Response) -> str:
    details = response.json()["details"][0]
    return f"{details['namespace']}:{details['name']}"


# --- authentication ------------------------------------------------------------


def test_generated_keys_have_the_tts_format() -> None:
    prefix, key_id, secret = api_key(random.Random(3)).split(".")  # noqa: S311
    assert (prefix, len(key_id), len(secret)) == ("NNSXS", 39, 52)


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        (
            {"Authorization": "Basic abc"},
            401,
            "pkg/identityserver:unsupported_authorization",
        ),
        ({"Authorization": "Bearer not-a-key"}, 400, "pkg/auth:token"),
        (
            {"Authorization": "Bearer NNSXS.OTHER.SECRET"},
            401,
            "pkg/identityserver:api_key_not_found",
        ),
        (
            {"Authorization": f"Bearer {API_KEY.rsplit('.', 1)[0]}.WRONG"},
            401,
            "pkg/identityserver:invalid_authorization",
        ),
        ({}, 401, "pkg/rpcmetadata:unauthenticated"),
    ],
)
def test_auth_errors(
    sim: Simulator, headers: dict[str, str], status: int, error: str
) -> None:
    response = get(sim, single("rooftop-gateway"), headers)
    assert (response.status, error_name(response)) == (status, error)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("error:")


def test_without_auth_auth_info_and_list_are_empty(sim: Simulator) -> None:
    assert get(sim, "/api/v3/auth_info", {}).json() == {}
    assert get(sim, "/api/v3/gateways", {}).json() == {}
    info = get(sim, "/api/v3/auth_info").json()
    assert info["api_key"]["entity_ids"] == {"user_ids": {"user_id": "jdoe"}}
    assert info["api_key"]["api_key"]["id"] == API_KEY.split(".")[1]


def test_unknown_route_is_a_tts_404(sim: Simulator) -> None:
    assert get(sim, "/api/v3/nothing").json() == {
        "code": 5,
        "message": "Not Found",
        "details": [],
    }


# --- gateway registry ------------------------------------------------------------


def test_list_applies_field_mask_pagination_and_order(sim: Simulator) -> None:
    bare = get(sim, "/api/v3/gateways").json()["gateways"][0]
    assert set(bare) == {"ids", "created_at", "updated_at"}

    page = get(
        sim,
        "/api/v3/gateways",
        field_mask="name,frequency_plan_ids",
        limit="2",
        page="2",
        order="-name",
    )
    assert page.headers["X-Total-Count"] == "5"
    items = page.json()["gateways"]
    assert [item["name"] for item in items] == ["Garden gateway", "Barn gateway"]
    assert set(items[0]) == {
        "ids",
        "created_at",
        "updated_at",
        "name",
        "frequency_plan_id",
        "frequency_plan_ids",
    }
    assert (
        get(sim, "/api/v3/gateways", limit="2", page="0").json()["gateways"][0]["ids"][
            "gateway_id"
        ]
        == "attic-gateway"
    )
    assert get(sim, "/api/v3/gateways", limit="2", page="4").json() == {}
    too_many = get(sim, "/api/v3/gateways", limit="1001")
    assert (too_many.status, error_name(too_many)) == (400, "pkg/errors:validation")


def test_list_rights(sim: Simulator) -> None:
    key = sim.auth_info["api_key"]
    key["api_key"]["rights"] = ["RIGHT_USER_GATEWAYS_LIST"]
    items = get(
        sim,
        "/api/v3/gateways",
        field_mask="name,version_ids,gateway_server_address,antennas",
    ).json()["gateways"]
    rooftop = next(i for i in items if i["ids"]["gateway_id"] == "rooftop-gateway")
    barn = next(i for i in items if i["ids"]["gateway_id"] == "barn-gateway")
    # Without RIGHT_GATEWAY_INFO only public fields; status/location public opens more.
    assert set(barn) == {"ids", "created_at", "updated_at", "name"}
    assert {"antennas", "gateway_server_address"} <= set(rooftop)

    key["api_key"]["rights"] = ["RIGHT_GATEWAY_INFO"]
    denied = get(sim, "/api/v3/gateways")
    assert (denied.status, error_name(denied)) == (
        403,
        "pkg/auth/rights:insufficient_user_rights",
    )
    assert denied.json()["details"][0]["attributes"]["missing"] == [
        "RIGHT_USER_GATEWAYS_LIST"
    ]

    key["entity_ids"] = {"organization_ids": {"organization_id": "acme"}}
    key["api_key"]["rights"] = ["RIGHT_ORGANIZATION_GATEWAYS_LIST", "RIGHT_GATEWAY_ALL"]
    assert len(get(sim, "/api/v3/gateways").json()["gateways"]) == 5

    key["entity_ids"] = {"gateway_ids": {"gateway_id": "rooftop-gateway"}}
    assert get(sim, "/api/v3/gateways").json() == {}
    refused = batch(sim, "rooftop-gateway")
    assert error_name(refused) == "pkg/identityserver:neither_user_nor_organization"


# --- connection stats of a live fleet ----------------------------------------------


def test_counters_grow_with_the_clock(sim: Simulator, clock: ManualClock) -> None:
    rooftop = sim.live("rooftop-gateway")
    before = get(sim, single("rooftop-gateway")).json()
    clock.advance(10 * rooftop.uplink_interval)
    after = get(sim, single("rooftop-gateway")).json()

    assert int(after["uplink_count"]) == int(before["uplink_count"]) + 10
    assert after["connected_at"] == before["connected_at"]
    assert after["last_uplink_received_at"] > before["last_uplink_received_at"]
    assert after["protocol"] == "udp"
    assert after["last_status"]["metrics"]["rxin"] >= 1
    assert after["round_trip_times"]["median"].endswith("s")
    assert isinstance(after["round_trip_times"]["count"], int)
    assert after["sub_bands"][2]["downlink_utilization"] > 0


def test_quiet_gateway_hears_nothing(sim: Simulator, clock: ManualClock) -> None:
    before = get(sim, single("barn-gateway")).json()
    clock.advance(3600)
    after = get(sim, single("barn-gateway")).json()
    assert after["uplink_count"] == before["uplink_count"]
    assert "connected_at" in after

    sim.set_quiet("barn-gateway", False)
    clock.advance(3600)
    assert int(get(sim, single("barn-gateway")).json()["uplink_count"]) > int(
        after["uplink_count"]
    )


def test_disconnect_keeps_stats_for_48_hours(
    sim: Simulator, clock: ManualClock
) -> None:
    sim.disconnect("rooftop-gateway")
    disconnected = get(sim, single("rooftop-gateway")).json()
    assert "connected_at" not in disconnected
    assert "disconnected_at" in disconnected
    clock.advance(3600)
    assert get(sim, single("rooftop-gateway")).json() == disconnected

    clock.advance(48 * 3600)
    gone = get(sim, single("rooftop-gateway"))
    assert (gone.status, error_name(gone)) == (404, "pkg/gatewayserver:not_connected")
    assert batch(sim, "rooftop-gateway").json() == {}

    sim.connect("rooftop-gateway")
    clock.advance(1)
    fresh = get(sim, single("rooftop-gateway")).json()
    assert "disconnected_at" not in fresh
    assert "uplink_count" not in fresh  # TTS restarts counters at a connect


def test_initial_fleet_covers_every_outcome(sim: Simulator) -> None:
    assert "disconnected_at" in get(sim, single("attic-gateway")).json()
    assert get(sim, single("spare-gateway")).status == 404
    station = get(sim, single("garden-gateway")).json()
    assert station["protocol"] == "semtechws/lbslns"
    assert "station" in station["last_status"]["versions"]
    assert (
        get(sim, single("no-such-gateway")).json()["details"][0]["name"]
        == "no_gateway_rights"
    )

    sim.set_status_readable("garden-gateway", False)
    refused = get(sim, single("garden-gateway"))
    assert (refused.status, error_name(refused)) == (
        403,
        "pkg/auth/rights:insufficient_gateway_rights",
    )


def test_batch(sim: Simulator) -> None:
    entries = batch(sim, "rooftop-gateway", "attic-gateway", "spare-gateway").json()[
        "entries"
    ]
    assert set(entries) == {"rooftop-gateway", "attic-gateway"}
    # Enums are numbers in batch answers, strings in single ones.
    assert (
        entries["rooftop-gateway"]["last_status"]["antenna_locations"][0]["source"] == 1
    )
    assert (
        get(sim, single("rooftop-gateway")).json()["last_status"]["antenna_locations"][
            0
        ]["source"]
        == "SOURCE_GPS"
    )

    masked = post(
        sim,
        BATCH,
        {
            "gateway_ids": [{"gateway_id": "rooftop-gateway"}],
            "field_mask": "uplink_count,last_status.metrics",
        },
    ).json()["entries"]["rooftop-gateway"]
    assert set(masked) == {"uplink_count", "last_status"}
    assert set(masked["last_status"]) == {"metrics"}
    paths = {"paths": ["protocol"]}
    assert post(
        sim,
        BATCH,
        {"gateway_ids": [{"gateway_id": "garden-gateway"}], "field_mask": paths},
    ).json() == {"entries": {"garden-gateway": {"protocol": "semtechws/lbslns"}}}

    for ids in ([], [f"gw-{i}" for i in range(101)]):
        invalid = batch(sim, *ids)
        assert (invalid.status, error_name(invalid)) == (400, "pkg/errors:validation")
    assert batch(sim, "spare-gateway").json() == {}
    for forbidden in ("no-such-gateway", "garden-gateway"):
        sim.set_status_readable("garden-gateway", False)
        refused = batch(sim, "rooftop-gateway", forbidden)
        assert (refused.status, error_name(refused)) == (
            403,
            "pkg/identityserver:insufficient_rights",
        )
    assert post(sim, BATCH, "not json").status == 400


def test_a_fleet_of_1000(clock: ManualClock) -> None:
    sim = Simulator(api_key=API_KEY, clock=clock)
    for gateway in make_fleet(1000, clock()):
        sim.add_gateway(gateway)
    listed = get(sim, "/api/v3/gateways", limit="1000", field_mask="name")
    assert listed.headers["X-Total-Count"] == "1000"
    assert len(listed.json()["gateways"]) == 1000
    ids = sorted(sim.fleet)
    connected = 0
    for start in range(0, 1000, 100):
        connected += len(
            batch(sim, *ids[start : start + 100]).json().get("entries", {})
        )
    assert 700 < connected < 1000
    clock.advance(60)
    assert sim.advance() == []  # no devices


# --- rate limits and faults ---------------------------------------------------------


def test_rate_limit_headers_and_429(clock: ManualClock) -> None:
    sim = Simulator(api_key=API_KEY, clock=clock, rate_limit_per_minute=2)
    sim.add_gateway(make_fleet(1, clock())[0])
    first = get(sim, single("rooftop-gateway"))
    assert first.headers["X-Rate-Limit-Limit"] == "2"
    assert first.headers["X-Rate-Limit-Available"] == "1"
    get(sim, single("rooftop-gateway"))
    limited = get(sim, single("rooftop-gateway"))
    assert (limited.status, error_name(limited)) == (
        429,
        "pkg/ratelimit:rate_limit_exceeded",
    )
    assert int(limited.headers["X-Rate-Limit-Retry"]) > 0
    # Limits are per call: the list still answers.
    assert get(sim, "/api/v3/gateways").status == 200
    clock.advance(60)
    assert get(sim, single("rooftop-gateway")).status == 200


@pytest.mark.usefixtures("socket_enabled")
async def test_server_cuts_the_body_mid_way(
    sim: Simulator, aiohttp_client: Callable[[web.Application], Awaitable[TestClient]]
) -> None:
    """A cut answer reaches a real client as headers and half a body, then EOF."""
    client = await aiohttp_client(create_app(sim))
    sim.inject("gateways", Fault(FaultKind.CUT), times=2)
    async with client.get("/api/v3/gateways", headers=AUTH) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()

    # The integration's client turns it into a connection error.
    tts = TTSClient(client.session, TTSServer(str(client.make_url(""))), API_KEY)
    with pytest.raises(TTSConnectionError, match="ClientPayloadError"):
        await tts.list_gateways()
    assert len(await tts.list_gateways()) == 5


def test_faults(sim: Simulator) -> None:
    sim.inject("*", Fault(FaultKind.STATUS, status=503))
    sim.inject("gateways", Fault(FaultKind.STATUS, status=429, retry_after=30))
    sim.inject("batch", Fault(FaultKind.MALFORMED))
    sim.inject("single", Fault(FaultKind.SLOW, delay=2.5))
    sim.inject("single", Fault(FaultKind.TIMEOUT))
    sim.inject("auth_info", Fault(FaultKind.DROP), times=2)

    limited = get(sim, "/api/v3/gateways")
    assert (limited.status, limited.headers["X-Rate-Limit-Retry"]) == (429, "30")
    unavailable = get(sim, "/api/v3/gateways")
    assert (unavailable.status, error_name(unavailable)) == (
        503,
        "pkg/rpcserver:unavailable",
    )
    malformed = batch(sim, "rooftop-gateway")
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    slow = get(sim, single("rooftop-gateway"))
    assert (slow.status, slow.delay) == (200, 2.5)
    assert get(sim, single("rooftop-gateway")).action is Action.HANG
    assert get(sim, "/api/v3/auth_info").action is Action.DROP
    assert get(sim, "/api/v3/auth_info").action is Action.DROP
    assert get(sim, "/api/v3/auth_info").status == 200
    assert sim.request_counts["auth_info"] == 3
    sim.inject("auth_info", Fault(FaultKind.CUT))
    cut = get(sim, "/api/v3/auth_info")
    assert (cut.status, cut.action, cut.json()["api_key"]["api_key"]["id"]) == (
        200,
        Action.CUT,
        API_KEY.split(".")[1],
    )


def test_parse_fault_from_the_control_api() -> None:
    assert parse_fault({"kind": "429"})[1].retry_after == 30
    endpoint, fault, times = parse_fault(
        {"kind": "slow", "endpoint": "batch", "delay": 3, "times": 2}
    )
    assert (endpoint, fault.kind, fault.delay, times) == ("batch", FaultKind.SLOW, 3, 2)
    with pytest.raises(ValueError, match="explode"):
        parse_fault({"kind": "explode"})
    with pytest.raises(ValueError, match="unknown endpoint"):
        parse_fault({"endpoint": "nowhere"})


# --- events -----------------------------------------------------------------------


def stream(sim: Simulator, body: dict[str, Any], accept: str | None = None) -> Response:
    headers = {**AUTH, "Accept": accept} if accept else AUTH
    return post(sim, "/api/v3/events", body, headers)


ROOFTOP = [{"gateway_ids": {"gateway_id": "rooftop-gateway"}}]


def test_event_stream(sim: Simulator, clock: ManualClock) -> None:
    response = stream(
        sim,
        {
            "identifiers": ROOFTOP,
            "names": ["gs.gateway.disconnect", "/^gs\\.gateway\\.conn.*/"],
        },
    )
    assert response.headers["Content-Type"] == "application/json"
    start = json.loads(response.body.split(b"\n")[0])["result"]
    assert start["name"] == "events.stream.start"
    assert start["identifiers"] == ROOFTOP
    assert start["data"]["value"] == [
        "gs.gateway.connect",
        "gs.gateway.connection.stats",
        "gs.gateway.disconnect",
    ]
    assert response.events is not None
    assert response.events.poll() == b""

    sim.disconnect("rooftop-gateway")
    sim.disconnect("garden-gateway")  # not in this stream
    clock.advance(5)
    sim.connect("rooftop-gateway")
    frames = response.events.poll()
    assert frames.endswith(b"\n")
    assert not frames.endswith(b"\n\n")
    names = [json.loads(line)["result"]["name"] for line in frames.splitlines()]
    assert names == [
        "gs.gateway.disconnect",
        "gs.gateway.connection.stats",
        "gs.gateway.connect",
        "gs.gateway.connection.stats",
    ]

    sim.api_key = "NNSXS.REVOKED.KEY"
    error = json.loads(response.events.poll())
    assert error["error"]["code"] == 16
    assert response.events.closed


def test_event_stream_sse_framing_history_and_visibility(
    sim: Simulator, clock: ManualClock
) -> None:
    clock.advance(120)
    sim.advance()
    sse = stream(sim, {"identifiers": ROOFTOP, "tail": 2}, accept="text/event-stream")
    assert sse.headers["Content-Type"] == "text/event-stream"
    frames = [frame for frame in sse.body.split(b"\n\n") if frame]
    assert len(frames) == 3  # the start event and two from history
    assert "data" not in json.loads(frames[0])["result"]

    sim.auth_info["api_key"]["api_key"]["rights"] = [
        "RIGHT_USER_GATEWAYS_LIST",
        "RIGHT_GATEWAY_STATUS_READ",
    ]
    hidden = stream(sim, {"identifiers": ROOFTOP, "names": ["gs.up.receive"]})
    clock.advance(120)
    sim.advance()
    assert hidden.events is not None
    assert hidden.events.poll() == b""


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"identifiers": []}, 400, "pkg/events/grpc:no_identifiers"),
        (
            {"identifiers": ROOFTOP, "names": ["gs.nope"]},
            400,
            "pkg/events:unknown_event_name",
        ),
        (
            {"identifiers": ROOFTOP, "names": ["/^as\\./"]},
            400,
            "pkg/events:no_matching_events",
        ),
        (
            {"identifiers": [{"gateway_ids": {"gateway_id": "other"}}]},
            403,
            "pkg/auth/rights:no_gateway_rights",
        ),
    ],
)
def test_event_stream_errors(
    sim: Simulator, body: dict[str, Any], status: int, error: str
) -> None:
    response = stream(sim, body)
    assert (response.status, error_name(response)) == (status, error)


# --- end devices -----------------------------------------------------------------


def test_devices_publish_tts_uplinks(sim: Simulator, clock: ManualClock) -> None:
    sim.devices = make_devices(clock(), interval=60)
    counts = {
        gid: sim.live(gid).uplinks.count(clock(), True)
        for gid in ("rooftop-gateway", "garden-gateway")
    }
    clock.advance(10)
    messages = {message.topic: json.loads(message.payload) for message in sim.advance()}

    assert set(messages) == {
        "v3/home-sensors@ttn/devices/feather-m0/up",
        "v3/home-sensors@ttn/devices/lpp-climate-sensor/up",
        "v3/home-sensors@ttn/devices/soil-sensor/up",
        "v3/home-sensors@ttn/devices/office-desk-sensor/up",
    }
    feather = messages["v3/home-sensors@ttn/devices/feather-m0/up"]
    assert feather["end_device_ids"]["application_ids"] == {
        "application_id": "home-sensors"
    }
    uplink = feather["uplink_message"]
    assert (uplink["f_port"], uplink["f_cnt"]) == (1, 1)
    assert len(base64.b64decode(uplink["frm_payload"])) == 1
    assert "decoded_payload" not in uplink
    assert isinstance(uplink["settings"]["frequency"], str)
    receivers = [meta["gateway_ids"]["gateway_id"] for meta in uplink["rx_metadata"]]
    assert set(receivers) <= {
        "rooftop-gateway",
        "garden-gateway",
    }  # the others do not hear

    lpp = messages["v3/home-sensors@ttn/devices/lpp-climate-sensor/up"][
        "uplink_message"
    ]
    assert set(lpp["decoded_payload"]) == {
        "temperature_1",
        "relative_humidity_2",
        "barometric_pressure_3",
        "analog_in_4",
    }
    soil = messages["v3/home-sensors@ttn/devices/soil-sensor/up"]["uplink_message"]
    assert 20 < soil["decoded_payload"]["soil_moisture"] < 45
    assert "normalized_payload" not in soil
    desk = messages["v3/home-sensors@ttn/devices/office-desk-sensor/up"][
        "uplink_message"
    ]
    assert desk["f_port"] == 1
    decoded = desk["decoded_payload"]
    assert set(decoded) == {"temperature", "humidity", "x", "y", "z", "occupancy"}
    assert 19 < decoded["temperature"] < 26
    assert desk["normalized_payload"] == [
        {
            "air": {
                "temperature": decoded["temperature"],
                "relativeHumidity": decoded["humidity"],
            }
        }
    ]
    assert "normalized_payload_warnings" not in desk

    heard = sum(
        sim.live(gid).uplinks.count(clock(), True) - counts[gid] for gid in counts
    )
    background = sum(int(10 // sim.live(gid).uplink_interval) for gid in counts)
    assert heard >= 4 + background - 2

    for gateway in list(sim.fleet):
        sim.disconnect(gateway)
    clock.advance(60)
    assert sim.advance() == []  # nobody hears them


def test_paused_devices_send_nothing_and_resume_without_a_burst(
    sim: Simulator, clock: ManualClock
) -> None:
    sim.devices = make_devices(clock(), interval=60)
    clock.advance(10)
    assert len(sim.advance()) == 4

    sim.pause_devices()
    clock.advance(300)  # five intervals
    assert sim.advance() == []
    assert [device.f_cnt for device in sim.devices] == [1, 1, 1, 1]

    sim.pause_devices(paused=False)
    clock.advance(1)
    resumed = [json.loads(message.payload) for message in sim.advance()]
    assert [up["uplink_message"]["f_cnt"] for up in resumed] == [2, 2, 2, 2]
    clock.advance(30)
    assert sim.advance() == []  # next uplinks one interval later


def test_repository_codec_device_matches_the_codec_example() -> None:
    """The desk sensor decodes and normalizes the codec's example as TTS would."""
    (example,) = [
        example
        for example in load_examples()
        if example["codec_path"] == "vendor/elsys/ems-desk-codec.yaml"
    ]
    device = EndDevice(
        device_id="office-desk-sensor",
        dev_eui="A81758FFFE0412C5",
        dev_addr="260B6F08",
        kind=DeviceKind.REPOSITORY_CODEC,
        interval=600,
        next_uplink_at=0,
    )
    assert device.f_port == example["f_port"]
    decoded = device.decode(example_bytes(example))
    assert decoded == example["decoded"]
    assert device.normalize(decoded) == example["normalized"]
    # What it sends has the example's layout; only temperature and humidity vary.
    rng = random.Random(1)  # noqa: S311
    sent, original = device.payload(rng, 0), example_bytes(example)
    assert len(sent) == len(original)
    assert [sent[i] for i in (0, 3, 5, 9)] == [original[i] for i in (0, 3, 5, 9)]
    assert sent[6:] == original[6:]


# --- the HTTP server --------------------------------------------------------------


@pytest.mark.usefixtures("socket_enabled")
async def test_server_control_api_and_stream(
    sim: Simulator, aiohttp_client: Callable[[web.Application], Awaitable[TestClient]]
) -> None:
    client = await aiohttp_client(create_app(sim))
    if client:
        state = await (await client.get("/sim/state")).json()
        assert len(state["gateways"]) == 5

        async with client.post(
            "/api/v3/events", headers=AUTH, json={"identifiers": ROOFTOP}
        ) as events:
            first = await events.content.readline()
            assert json.loads(first)["result"]["name"] == "events.stream.start"
            response = await client.post("/sim/gateways/rooftop-gateway/disconnect")
            assert response.status == 200
            line = await events.content.readline()
            assert json.loads(line)["result"]["name"] == "gs.gateway.disconnect"

        assert (await client.post("/sim/gateways/nope/disconnect")).status == 404
        renamed = await client.post(
            "/sim/gateways/barn-gateway/rename", json={"name": "Stable"}
        )
        assert renamed.status == 200
        listed = await client.get(
            "/api/v3/gateways", headers=AUTH, params={"field_mask": "name"}
        )
        assert "Stable" in await listed.text()

        assert (
            await client.post(
                "/sim/faults", json={"kind": "500", "endpoint": "gateways"}
            )
        ).status == 200
        assert (await client.get("/api/v3/gateways", headers=AUTH)).status == 500
        assert (await client.post("/sim/faults", json={"kind": "bad"})).status == 400
        await client.post("/sim/faults", json={"kind": "drop"})
        assert (await (await client.get("/sim/state")).json())["faults"] == {"*": 1}
        await client.delete("/sim/faults")
        assert (await client.get("/api/v3/auth_info", headers=AUTH)).status == 200
        paused = await (await client.post("/sim/devices/pause")).json()
        assert paused["devices_paused"] is True
        assert sim.devices_paused
        assert (await client.post("/sim/devices/reboot")).status == 404
        await client.post("/sim/devices/resume")
        assert (await (await client.get("/sim/state")).json())[
            "devices_paused"
        ] is False
        page = await client.get("/console/gateways/rooftop-gateway")
        assert "disconnected_at" in await page.text()


ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def _frames(response: Response) -> list[dict[str, Any]]:
    assert response.events is not None
    return [json.loads(line)["result"] for line in response.events.poll().splitlines()]


def _summary(frames: list[dict[str, Any]], old: str, new: str) -> list[str]:
    """Each event as "name connection [data]", the connection named old or new."""
    names = {old: "old", new: "new"}
    rows = []
    for frame in frames:
        ids = frame.get("correlation_ids", [])
        assert all(ULID.fullmatch(item.rpartition(":")[2]) for item in ids)
        assert ULID.fullmatch(frame["unique_id"])
        connection = names.get(ids[0], "?") if ids else "-"
        data = frame.get("data", {})
        shown = "end" if "disconnected_at" in data else "data" if data else ""
        rows.append(f"{frame['name']} {connection} {shown}".strip())
    return rows


OLD_END = ["gs.gateway.disconnect old data", "gs.gateway.connection.stats old end"]
NEW_START = ["gs.gateway.connect new", "gs.gateway.connection.stats new data"]


@pytest.mark.parametrize(
    ("order", "at_once", "later"),
    [
        (ReconnectOrder.ONE_SERVER, [*OLD_END, *NEW_START], []),
        (ReconnectOrder.CLUSTER, NEW_START, OLD_END),
        (
            ReconnectOrder.CLUSTER_STATS_AFTER_END,
            NEW_START[:1],
            [*OLD_END, NEW_START[1]],
        ),
        (ReconnectOrder.CLUSTER_CONNECT_AFTER_END, [], [*OLD_END, *NEW_START]),
    ],
)
def test_reconnect_orders(
    sim: Simulator,
    clock: ManualClock,
    order: ReconnectOrder,
    at_once: list[str],
    later: list[str],
) -> None:
    """Every event of a connection carries its gs:conn id; the end comes as ordered."""
    response = stream(sim, {"identifiers": ROOFTOP})
    _frames(response)
    old = sim.live("rooftop-gateway").connection_id
    sim.reconnect("rooftop-gateway", late_disconnect=5, order=order)
    new = sim.live("rooftop-gateway").connection_id
    assert new != old
    assert ULID.fullmatch(new.removeprefix("gs:conn:"))
    assert _summary(_frames(response), old, new) == at_once
    clock.advance(6)
    sim.advance()
    frames = _frames(response)
    assert _summary(frames, old, new) == later
    assert sim.live("rooftop-gateway").connected
    if order is not ReconnectOrder.ONE_SERVER:
        # The old connection's end is later than the new connection's start.
        ends = [f for f in frames if f["name"] == "gs.gateway.disconnect"]
        ended = parse_timestamp(ends[0]["time"])
        assert ended is not None
        assert ended.timestamp() > sim.live("rooftop-gateway").session_start


def test_connect_and_stats_shapes(sim: Simulator, clock: ManualClock) -> None:
    """A connect without data (observability.go) or with the first stats, and
    stats events with or without the gs:conn id."""
    response = stream(sim, {"identifiers": ROOFTOP})
    sim.disconnect("rooftop-gateway")
    clock.advance(60)
    sim.connect("rooftop-gateway")
    connect, first = _frames(response)[-2:]
    connection = sim.live("rooftop-gateway").connection_id
    assert connect["name"] == "gs.gateway.connect"
    assert "data" not in connect
    assert connect["correlation_ids"] == first["correlation_ids"] == [connection]
    # The connect follows the connection's start (io.NewConnection).
    started = parse_timestamp(first["data"]["connected_at"])
    assert started is not None
    assert started < parse_timestamp(connect["time"])  # type: ignore[operator]

    sim.disconnect("rooftop-gateway")
    sim.connect_event_data = True
    sim.stats_carry_ids = False
    clock.advance(60)
    sim.connect("rooftop-gateway")
    connect, first = _frames(response)[-2:]
    assert connect["data"]["connected_at"] == first["data"]["connected_at"]
    assert connect["correlation_ids"] == [sim.live("rooftop-gateway").connection_id]
    assert first["name"] == "gs.gateway.connection.stats"
    assert "correlation_ids" not in first


def test_stats_lag_behind_the_events(sim: Simulator, clock: ManualClock) -> None:
    clock.advance(600)
    now = batch(sim, "rooftop-gateway").json()["entries"]["rooftop-gateway"]
    sim.set_stats_lag("rooftop-gateway", 300)
    lagging = batch(sim, "rooftop-gateway").json()["entries"]["rooftop-gateway"]
    assert int(lagging["uplink_count"]) < int(now["uplink_count"])
    assert lagging["connected_at"] == now["connected_at"]


def test_refused_events_and_stream_garbage(sim: Simulator) -> None:
    sim.set_events_refused("garden-gateway", refused=True)
    refused = stream(
        sim,
        {
            "identifiers": [
                {"gateway_ids": {"gateway_id": "rooftop-gateway"}},
                {"gateway_ids": {"gateway_id": "garden-gateway"}},
            ]
        },
    )
    assert refused.status == 403
    assert error_name(refused) == "pkg/auth/rights:no_gateway_rights"
    sim.set_events_refused("garden-gateway", refused=False)
    response = stream(sim, {"identifiers": ROOFTOP})
    assert response.events is not None
    sim.send_stream_garbage("huge-counter")
    sim.send_stream_garbage("binary")
    lines = response.events.poll().splitlines()
    assert len(lines) == 2
    assert b"9" * 5000 in lines[0]


def test_uplinks_list_every_receiving_gateway_and_their_airtime(
    sim: Simulator, clock: ManualClock
) -> None:
    """Several gateways hear most devices, the soil sensor only one; the
    airtime follows TTS's time-on-air formula (pkg/toa)."""
    sim.devices = make_devices(clock(), interval=60)
    receivers: dict[str, set[frozenset[str]]] = {}
    for _ in range(30):
        clock.advance(60)
        for message in sim.advance():
            body = json.loads(message.payload)
            device_id = body["end_device_ids"]["device_id"]
            uplink = body["uplink_message"]
            heard = frozenset(
                meta["gateway_ids"]["gateway_id"] for meta in uplink["rx_metadata"]
            )
            receivers.setdefault(device_id, set()).add(heard)
            size = len(base64.b64decode(uplink["frm_payload"]))
            spreading_factor = uplink["settings"]["data_rate"]["lora"][
                "spreading_factor"
            ]
            assert uplink["consumed_airtime"] == tts_json.duration(
                lora_airtime(size, spreading_factor)
            )
    assert receivers["soil-sensor"] == {frozenset({"garden-gateway"})}
    assert any(len(heard) > 1 for heard in receivers["feather-m0"])
    # 12 bytes at SF7, 125 kHz, 4/5: 25 PHYPayload bytes, 60.25 symbols of 1.024 ms.
    assert tts_json.duration(lora_airtime(12, 7)) == "0.061696s"


@pytest.mark.usefixtures("socket_enabled")
async def test_server_reconnect_orders_and_event_shapes(
    sim: Simulator, aiohttp_client: Callable[[web.Application], Awaitable[TestClient]]
) -> None:
    client = await aiohttp_client(create_app(sim))
    old = sim.live("rooftop-gateway").connection_id
    bad = await client.post(
        "/sim/gateways/rooftop-gateway/reconnect", json={"order": "sideways"}
    )
    assert bad.status == 400
    assert sim.live("rooftop-gateway").connection_id == old
    reconnected = await client.post(
        "/sim/gateways/rooftop-gateway/reconnect",
        json={"order": "one-server", "late": 1},
    )
    assert reconnected.status == 200
    assert sim.live("rooftop-gateway").connection_id != old
    shapes = await client.post(
        "/sim/stream/shapes", json={"connect_data": True, "stats_ids": False}
    )
    assert await shapes.json() == {"connect_data": True, "stats_ids": False}
    assert sim.connect_event_data
    assert not sim.stats_carry_ids
