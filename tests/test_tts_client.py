"""Tests of the TTS client against the fake TTS and its payloads.

The payloads are constructed in TTS's wire format; fixtures/README.md names
the TTS source of each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from typing import Any

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)
from yarl import URL

from custom_components.ttn_gateway.tts import (
    BATCH_SIZE,
    AuthInfo,
    ConnectionState,
    Gateway,
    GatewayConnection,
    KeyOwnerType,
    TTSAuthenticationError,
    TTSClient,
    TTSConnectionError,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
    TTSServer,
)
from custom_components.ttn_gateway.tts.gateway_requests import (
    FORBIDDEN_RECHECK_SECONDS,
    GATEWAY_FIELD_MASK,
)

from .fake_tts import (
    API_KEY,
    API_KEY_SECRET,
    FORBIDDEN,
    GATEWAY_GARDEN,
    GATEWAY_NEVER,
    GATEWAY_ROOFTOP,
    GATEWAY_STATION,
    FakeTTS,
    listed_gateway,
    load_json,
)

API_KEY_ID = API_KEY.split(".")[1]
EU1_HOST = "eu1.cloud.thethings.network"
NAM1_HOST = "nam1.cloud.thethings.network"
BATCH_PATH = "/api/v3/gs/gateways/connection/stats"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """The client's clock."""
    return FakeClock()


@pytest.fixture
def client(hass: HomeAssistant, fake_tts: FakeTTS, clock: FakeClock) -> TTSClient:
    """A client of the fake TTS on eu1."""
    return TTSClient(
        async_get_clientsession(hass), TTSServer.parse("eu1"), API_KEY, clock=clock
    )


def assert_no_secret(err: BaseException) -> None:
    """The error message names neither the key nor its secret (nor its id)."""
    text = f"{err} {err!r}"
    assert API_KEY not in text
    assert API_KEY_SECRET not in text
    assert API_KEY_ID not in text


def batch_calls(aioclient_mock: AiohttpClientMocker) -> list[list[str]]:
    """The gateway ids of every batch stats request, in order."""
    return [
        [item["gateway_id"] for item in data["gateway_ids"]]
        for method, url, data, _ in aioclient_mock.mock_calls
        if method == "POST" and url.path == BATCH_PATH
    ]


def single_ids(fake: FakeTTS) -> list[str]:
    """The gateway ids of every single stats request, in order."""
    return [
        URL(url).path.split("/")[5] for name, url in fake.requests if name == "single"
    ]


def gateways_of(fake: FakeTTS) -> list[Gateway]:
    """The fake's gateways as the client models them."""
    gateways = [Gateway.from_json(item) for item in fake.gateways]
    assert None not in gateways
    return [gateway for gateway in gateways if gateway is not None]


def make_fleet(fake: FakeTTS, count: int) -> list[Gateway]:
    """Replace the fake's fleet with `count` gateways with no stats."""
    fake.gateways = [listed_gateway(f"gw-{i:04d}") for i in range(count)]
    fake.stats = {item["ids"]["gateway_id"]: 404 for item in fake.gateways}
    return gateways_of(fake)


# --- auth info ---------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False])
async def test_oversized_answer_is_refused(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, *, declared: bool
) -> None:
    """An answer over 16 MiB is not read into memory: a clear error instead."""
    body = b'{"gateways": [' + b" " * (16 << 20) + b"]}"
    headers = {"Content-Length": str(len(body))} if declared else {}
    aioclient_mock.get(
        "https://eu1.cloud.thethings.network/api/v3/auth_info",
        content=body,
        headers=headers,
    )
    client = TTSClient(async_get_clientsession(hass), TTSServer.parse("eu1"), API_KEY)
    with pytest.raises(TTSConnectionError, match="larger than 16 MiB") as err:
        await client.get_auth_info()
    assert_no_secret(err.value)


async def test_get_auth_info(
    client: TTSClient, fake_tts: FakeTTS, aioclient_mock: AiohttpClientMocker
) -> None:
    info = await client.get_auth_info()

    assert info == AuthInfo.from_json(load_json("auth-info.json"))
    assert info.owner_type is KeyOwnerType.USER
    assert info.owner_id == "jdoe"
    assert fake_tts.requests == [
        ("auth_info", "https://eu1.cloud.thethings.network/api/v3/auth_info")
    ]
    method, _, _, headers = aioclient_mock.mock_calls[0]
    assert method == "GET"
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["Accept"] == "application/json"
    assert client.request_count == 1


async def test_auth_info_goes_to_eu1(
    hass: HomeAssistant, fake_tts: FakeTTS, clock: FakeClock
) -> None:
    """The Identity Server lives in eu1 only."""
    client = TTSClient(
        async_get_clientsession(hass), TTSServer.parse("nam1"), API_KEY, clock=clock
    )
    await client.get_auth_info()
    await client.list_gateways()
    assert [URL(url).host for _, url in fake_tts.requests] == [EU1_HOST, EU1_HOST]


async def test_auth_info_empty_body(client: TTSClient, fake_tts: FakeTTS) -> None:
    """TTS answers `200 {}` (or no body) when it does not know who is asking."""
    fake_tts.fail("auth_info", 200, body={})
    fake_tts.fail("auth_info", 200)
    for _ in range(2):
        info = await client.get_auth_info()
        assert info.owner_type is KeyOwnerType.UNKNOWN
        assert info.rights == frozenset()


# --- gateway listing ---------------------------------------------------------


async def test_list_gateways(client: TTSClient, fake_tts: FakeTTS) -> None:
    gateways = await client.list_gateways()

    # TTS sorts by the requested order, gateway_id.
    assert [gateway.gateway_id for gateway in gateways] == [
        GATEWAY_STATION,
        GATEWAY_ROOFTOP,
        GATEWAY_GARDEN,
        GATEWAY_NEVER,
    ]
    rooftop = gateways[1]
    assert rooftop.name == "Rooftop gateway"
    assert rooftop.eui == "B827EBFFFE8DB887"
    assert rooftop.version_ids.model_id == "rak7248"
    assert rooftop.status_public is True
    assert gateways[3].name == "Never connected"
    assert gateways[0].name is None

    assert fake_tts.count("gateways") == 1
    url = URL(fake_tts.requests[0][1])
    assert url.host == EU1_HOST
    assert url.path == "/api/v3/gateways"
    assert url.query["field_mask"].split(",") == list(GATEWAY_FIELD_MASK)
    assert set(url.query["field_mask"].split(",")) == {
        "name",
        "description",
        "version_ids",
        "gateway_server_address",
        "frequency_plan_ids",
        "antennas",
        "status_public",
        "location_public",
    }
    assert url.query["limit"] == "1000"
    assert url.query["page"] == "1"
    assert url.query["order"] == "gateway_id"


async def test_list_gateways_follows_pages(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    fake_tts.gateways = [listed_gateway(f"gw-{i:04d}") for i in range(2500)]

    gateways = await client.list_gateways()

    assert len(gateways) == 2500
    assert [gateway.gateway_id for gateway in gateways] == [
        f"gw-{i:04d}" for i in range(2500)
    ]
    assert [URL(url).query["page"] for _, url in fake_tts.requests] == ["1", "2", "3"]


async def test_list_gateways_exact_page_multiple(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    """With exactly 1000 gateways there is no second request."""
    fake_tts.gateways = [listed_gateway(f"gw-{i:04d}") for i in range(1000)]
    assert len(await client.list_gateways()) == 1000
    assert fake_tts.count("gateways") == 1


async def test_list_gateways_empty_account(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    fake_tts.gateways = []
    assert await client.list_gateways() == []
    assert fake_tts.count("gateways") == 1


async def test_list_gateways_stops_on_empty_page(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    """A total count that promises more than TTS delivers ends at an empty page."""
    page = {"gateways": [listed_gateway(f"gw-{i:04d}") for i in range(1000)]}
    fake_tts.fail("gateways", 200, body=page, headers={"X-Total-Count": "5000"})
    fake_tts.fail("gateways", 200, body={}, headers={"X-Total-Count": "5000"})

    gateways = await client.list_gateways()

    assert len(gateways) == 1000
    assert fake_tts.count("gateways") == 2


@pytest.mark.parametrize("headers", [None, {"X-Total-Count": "many"}])
async def test_list_gateways_stops_without_total(
    client: TTSClient, fake_tts: FakeTTS, headers: dict[str, str] | None
) -> None:
    page = {"gateways": [listed_gateway(f"gw-{i:04d}") for i in range(1000)]}
    fake_tts.fail("gateways", 200, body=page, headers=headers)

    assert len(await client.list_gateways()) == 1000
    assert fake_tts.count("gateways") == 1


async def test_list_gateways_dedupes_and_skips_bad_items(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    first = listed_gateway("gw-a", "First")
    fake_tts.gateways = [
        first,
        listed_gateway("gw-b"),
        listed_gateway("gw-a", "Duplicate"),
        {"name": "no ids"},
        "not an object",
    ]

    gateways = await client.list_gateways()

    assert [(gateway.gateway_id, gateway.name) for gateway in gateways] == [
        ("gw-a", "First"),
        ("gw-b", None),
    ]


async def test_list_gateways_dedupes_across_pages(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    """A gateway that moves to the next page while paging is listed once."""
    page_1 = [listed_gateway(f"gw-{i:04d}") for i in range(1000)]
    page_2 = [listed_gateway("gw-0999"), listed_gateway("gw-1000")]
    headers = {"X-Total-Count": "1002"}
    fake_tts.fail("gateways", 200, body={"gateways": page_1}, headers=headers)
    fake_tts.fail("gateways", 200, body={"gateways": page_2}, headers=headers)

    gateways = await client.list_gateways()

    assert len(gateways) == 1001
    assert gateways[-1].gateway_id == "gw-1000"


async def test_list_gateways_page_limit(client: TTSClient, fake_tts: FakeTTS) -> None:
    """A server that never ends its pages is not followed forever."""
    page = {"gateways": [listed_gateway("gw-endless")]}
    fake_tts.fail(
        "gateways", 200, body=page, headers={"X-Total-Count": "10000000"}, times=150
    )

    assert len(await client.list_gateways()) == 1
    assert fake_tts.count("gateways") == 100


# --- connection stats ----------------------------------------------------------


async def test_connection_stats_default_fleet(
    client: TTSClient, fake_tts: FakeTTS, aioclient_mock: AiohttpClientMocker
) -> None:
    gateways = gateways_of(fake_tts)

    result = await client.get_connection_stats(gateways)

    assert fake_tts.count("batch") == 1
    assert fake_tts.count("single") == 0
    assert batch_calls(aioclient_mock) == [
        [GATEWAY_ROOFTOP, GATEWAY_GARDEN, GATEWAY_NEVER, GATEWAY_STATION]
    ]
    assert URL(fake_tts.requests[0][1]).host == EU1_HOST

    assert set(result) == {
        GATEWAY_ROOFTOP,
        GATEWAY_GARDEN,
        GATEWAY_NEVER,
        GATEWAY_STATION,
    }
    rooftop = result[GATEWAY_ROOFTOP]
    assert rooftop.state is ConnectionState.CONNECTED
    assert rooftop.stats is not None
    assert rooftop.stats.uplink_count == 18342
    assert rooftop.stats.downlink_utilization_percent == pytest.approx(9.6028444)

    garden = result[GATEWAY_GARDEN]
    assert garden.state is ConnectionState.DISCONNECTED
    assert garden.stats is not None
    assert garden.stats.disconnected_at is not None
    assert garden.stats.uplink_count == 9051

    assert result[GATEWAY_NEVER] == GatewayConnection(ConnectionState.NOT_CONNECTED)

    station = result[GATEWAY_STATION]
    assert station.state is ConnectionState.CONNECTED
    assert station.stats is not None
    assert station.stats.protocol == "semtechws/lbslns"


async def test_connection_stats_no_gateways(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    assert await client.get_connection_stats([]) == {}
    assert fake_tts.requests == []


async def test_connection_stats_empty_batch(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    """TTS answers `{}` when none of the gateways has stats."""
    gateways = make_fleet(fake_tts, 3)

    result = await client.get_connection_stats(gateways)

    assert result == {
        gateway.gateway_id: GatewayConnection(ConnectionState.NOT_CONNECTED)
        for gateway in gateways
    }


async def test_connection_stats_batches_of_100(
    client: TTSClient, fake_tts: FakeTTS, aioclient_mock: AiohttpClientMocker
) -> None:
    gateways = make_fleet(fake_tts, 250)
    fake_tts.stats["gw-0007"] = load_json("gateway-connection-stats.json")
    fake_tts.stats["gw-0150"] = load_json("gateway-connection-stats-disconnected.json")

    result = await client.get_connection_stats(gateways)

    calls = batch_calls(aioclient_mock)
    assert [len(ids) for ids in calls] == [100, 100, 50]
    assert all(len(ids) <= BATCH_SIZE for ids in calls)
    assert [i for ids in calls for i in ids] == [g.gateway_id for g in gateways]
    assert fake_tts.count("single") == 0

    assert len(result) == 250
    assert result["gw-0007"].state is ConnectionState.CONNECTED
    assert result["gw-0150"].state is ConnectionState.DISCONNECTED
    assert result["gw-0249"] == GatewayConnection(ConnectionState.NOT_CONNECTED)
    states = [connection.state for connection in result.values()]
    assert states.count(ConnectionState.NOT_CONNECTED) == 248


async def test_connection_stats_duplicate_gateways(
    client: TTSClient, fake_tts: FakeTTS, aioclient_mock: AiohttpClientMocker
) -> None:
    gateways = gateways_of(fake_tts)

    result = await client.get_connection_stats([*gateways, gateways[0]])

    assert batch_calls(aioclient_mock) == [
        [GATEWAY_ROOFTOP, GATEWAY_GARDEN, GATEWAY_NEVER, GATEWAY_STATION]
    ]
    assert len(result) == 4


async def test_forbidden_batch_falls_back_for_that_chunk_only(
    client: TTSClient, fake_tts: FakeTTS, aioclient_mock: AiohttpClientMocker
) -> None:
    gateways = make_fleet(fake_tts, 250)
    fake_tts.stats["gw-0100"] = load_json("gateway-connection-stats.json")
    fake_tts.stats["gw-0123"] = FORBIDDEN

    result = await client.get_connection_stats(gateways)

    assert fake_tts.count("batch") == 3
    assert sorted(single_ids(fake_tts)) == [f"gw-{i:04d}" for i in range(100, 200)]
    assert result["gw-0123"] == GatewayConnection(ConnectionState.NO_RIGHTS)
    assert result["gw-0100"].state is ConnectionState.CONNECTED
    assert result["gw-0101"] == GatewayConnection(ConnectionState.NOT_CONNECTED)
    assert result["gw-0000"] == GatewayConnection(ConnectionState.NOT_CONNECTED)
    assert len(result) == 250
    assert client.forbidden_gateways == {"gw-0123"}

    # Next poll: three batches without the forbidden gateway, no single request.
    aioclient_mock.mock_calls.clear()
    fake_tts.requests.clear()
    result = await client.get_connection_stats(gateways)

    calls = batch_calls(aioclient_mock)
    assert [len(ids) for ids in calls] == [100, 100, 49]
    assert "gw-0123" not in {i for ids in calls for i in ids}
    assert fake_tts.count("single") == 0
    assert result["gw-0123"] == GatewayConnection(ConnectionState.NO_RIGHTS)
    assert result["gw-0100"].state is ConnectionState.CONNECTED


async def test_forbidden_gateway_is_rechecked_hourly(
    client: TTSClient,
    fake_tts: FakeTTS,
    clock: FakeClock,
    aioclient_mock: AiohttpClientMocker,
) -> None:
    fake_tts.stats[GATEWAY_GARDEN] = FORBIDDEN
    gateways = gateways_of(fake_tts)
    others = [GATEWAY_ROOFTOP, GATEWAY_NEVER, GATEWAY_STATION]

    # First poll: the batch is refused, every gateway of it is asked alone.
    result = await client.get_connection_stats(gateways)

    assert fake_tts.count("batch") == 1
    assert sorted(single_ids(fake_tts)) == sorted([*others, GATEWAY_GARDEN])
    assert result[GATEWAY_GARDEN] == GatewayConnection(ConnectionState.NO_RIGHTS)
    assert result[GATEWAY_ROOFTOP].state is ConnectionState.CONNECTED
    assert result[GATEWAY_NEVER] == GatewayConnection(ConnectionState.NOT_CONNECTED)
    assert result[GATEWAY_STATION].state is ConnectionState.CONNECTED
    assert client.forbidden_gateways == {GATEWAY_GARDEN}

    # Polls within the hour: one batch with the others; the forbidden one is
    # not asked at all.
    for _ in range(3):
        aioclient_mock.mock_calls.clear()
        fake_tts.requests.clear()
        clock.advance(FORBIDDEN_RECHECK_SECONDS / 4)
        result = await client.get_connection_stats(gateways)
        assert batch_calls(aioclient_mock) == [others]
        assert single_ids(fake_tts) == []
        assert result[GATEWAY_GARDEN] == GatewayConnection(ConnectionState.NO_RIGHTS)
        assert result[GATEWAY_ROOFTOP].state is ConnectionState.CONNECTED
        assert result[GATEWAY_NEVER].state is ConnectionState.NOT_CONNECTED

    # Still just short of the hour.
    aioclient_mock.mock_calls.clear()
    fake_tts.requests.clear()
    clock.advance(FORBIDDEN_RECHECK_SECONDS / 4 - 1)
    await client.get_connection_stats(gateways)
    assert single_ids(fake_tts) == []

    # The hour has passed: asked again, with one GET, and still forbidden.
    aioclient_mock.mock_calls.clear()
    fake_tts.requests.clear()
    clock.advance(1)
    result = await client.get_connection_stats(gateways)
    assert batch_calls(aioclient_mock) == [others]
    assert single_ids(fake_tts) == [GATEWAY_GARDEN]
    assert result[GATEWAY_GARDEN] == GatewayConnection(ConnectionState.NO_RIGHTS)

    # The next recheck is an hour later again.
    fake_tts.requests.clear()
    clock.advance(FORBIDDEN_RECHECK_SECONDS - 1)
    await client.get_connection_stats(gateways)
    assert single_ids(fake_tts) == []

    # Rights granted: the recheck finds stats and the gateway rejoins the batch.
    fake_tts.stats[GATEWAY_GARDEN] = load_json(
        "gateway-connection-stats-disconnected.json"
    )
    fake_tts.requests.clear()
    clock.advance(1)
    result = await client.get_connection_stats(gateways)
    assert single_ids(fake_tts) == [GATEWAY_GARDEN]
    assert result[GATEWAY_GARDEN].state is ConnectionState.DISCONNECTED
    assert client.forbidden_gateways == frozenset()

    aioclient_mock.mock_calls.clear()
    fake_tts.requests.clear()
    result = await client.get_connection_stats(gateways)
    assert batch_calls(aioclient_mock) == [
        [GATEWAY_ROOFTOP, GATEWAY_GARDEN, GATEWAY_NEVER, GATEWAY_STATION]
    ]
    assert single_ids(fake_tts) == []
    assert result[GATEWAY_GARDEN].state is ConnectionState.DISCONNECTED


async def test_forbidden_recheck_not_connected(
    client: TTSClient, fake_tts: FakeTTS, clock: FakeClock
) -> None:
    """A forbidden gateway that answers 404 on recheck is no longer forbidden."""
    fake_tts.stats[GATEWAY_GARDEN] = FORBIDDEN
    gateways = gateways_of(fake_tts)
    await client.get_connection_stats(gateways)
    assert client.forbidden_gateways == {GATEWAY_GARDEN}

    fake_tts.stats[GATEWAY_GARDEN] = 404
    clock.advance(FORBIDDEN_RECHECK_SECONDS)
    result = await client.get_connection_stats(gateways)

    assert result[GATEWAY_GARDEN] == GatewayConnection(ConnectionState.NOT_CONNECTED)
    assert client.forbidden_gateways == frozenset()


async def test_single_404_is_not_connected(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    fake_tts.fail("batch", 403)
    gateways = gateways_of(fake_tts)

    result = await client.get_connection_stats(gateways)

    assert fake_tts.count("single") == 4
    assert result[GATEWAY_NEVER] == GatewayConnection(ConnectionState.NOT_CONNECTED)
    assert result[GATEWAY_ROOFTOP].state is ConnectionState.CONNECTED
    assert result[GATEWAY_GARDEN].state is ConnectionState.DISCONNECTED
    assert client.forbidden_gateways == frozenset()


async def test_single_stats_path_is_quoted(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    fake_tts.fail("batch", 403)
    fake_tts.stats["odd id"] = 404
    gateway = Gateway("odd id")

    result = await client.get_connection_stats([gateway])

    assert result["odd id"].state is ConnectionState.NOT_CONNECTED
    assert fake_tts.requests[-1][1].endswith("/gs/gateways/odd%20id/connection/stats")


async def test_stats_go_to_the_gateways_cluster(
    client: TTSClient, fake_tts: FakeTTS, aioclient_mock: AiohttpClientMocker
) -> None:
    fake_tts.gateways[1]["gateway_server_address"] = "nam1.cloud.thethings.network"
    fake_tts.gateways[3]["gateway_server_address"] = "lns.example.com:8887"
    gateways = await client.list_gateways()
    fake_tts.requests.clear()

    await client.get_connection_stats(gateways)

    batches = {
        url.host: [item["gateway_id"] for item in data["gateway_ids"]]
        for method, url, data, _ in aioclient_mock.mock_calls
        if method == "POST"
    }
    assert batches == {
        EU1_HOST: [GATEWAY_STATION, GATEWAY_ROOFTOP, GATEWAY_NEVER],
        NAM1_HOST: [GATEWAY_GARDEN],
    }

    # The per-gateway fallback also goes to the gateway's cluster.
    fake_tts.fail("batch", 403, times=2)
    fake_tts.requests.clear()
    await client.get_connection_stats(gateways)
    hosts = {
        URL(url).path.split("/")[5]: URL(url).host
        for name, url in fake_tts.requests
        if name == "single"
    }
    assert hosts == {
        GATEWAY_ROOFTOP: EU1_HOST,
        GATEWAY_GARDEN: NAM1_HOST,
        GATEWAY_NEVER: EU1_HOST,
        GATEWAY_STATION: EU1_HOST,
    }


# --- errors ------------------------------------------------------------------


TTS_TOKEN_ERROR = {
    "code": 3,
    "message": "error:pkg/auth:token (invalid token)",
    "details": [
        {
            "@type": "type.googleapis.com/ttn.lorawan.v3.ErrorDetails",
            "namespace": "pkg/auth",
            "name": "token",
            "message_format": "invalid token",
            "correlation_id": "1c1e9f4ab0d54a7f8b9e2d3c4f5a6b7c",
            "code": 3,
        }
    ],
}
TTS_USER_RIGHTS_ERROR = {
    "code": 7,
    "message": (
        "error:pkg/auth/rights:insufficient_user_rights"
        " (insufficient rights for user `jdoe`)"
    ),
    "details": [
        {
            "@type": "type.googleapis.com/ttn.lorawan.v3.ErrorDetails",
            "namespace": "pkg/auth/rights",
            "name": "insufficient_user_rights",
            "message_format": "insufficient rights for user `{uid}`",
            "attributes": {"missing": ["RIGHT_USER_GATEWAYS_LIST"], "uid": "jdoe"},
            "correlation_id": "2d2e9f4ab0d54a7f8b9e2d3c4f5a6b7c",
            "code": 7,
        }
    ],
}


async def test_unauthorized(client: TTSClient, fake_tts: FakeTTS) -> None:
    fake_tts.fail("auth_info", 401)
    with pytest.raises(TTSAuthenticationError) as exc:
        await client.get_auth_info()
    assert "api_key_not_found" in str(exc.value)
    assert_no_secret(exc.value)


async def test_wrong_key(hass: HomeAssistant, fake_tts: FakeTTS) -> None:
    """The fake refuses another key with the 401 of fixtures/error-401.json."""
    other_key = API_KEY[:-4] + "AAAA"
    client = TTSClient(async_get_clientsession(hass), TTSServer.parse("eu1"), other_key)
    with pytest.raises(TTSAuthenticationError) as exc:
        await client.list_gateways()
    assert other_key not in str(exc.value)
    assert_no_secret(exc.value)


async def test_no_auth_error_body(client: TTSClient, fake_tts: FakeTTS) -> None:
    fake_tts.fail("batch", 401, body=load_json("error-401-no-auth.json"))
    with pytest.raises(TTSAuthenticationError) as exc:
        await client.get_connection_stats(gateways_of(fake_tts))
    assert "pkg/rpcmetadata:unauthenticated" in str(exc.value)
    assert_no_secret(exc.value)


async def test_malformed_token(client: TTSClient, fake_tts: FakeTTS) -> None:
    fake_tts.fail("auth_info", 400, body=TTS_TOKEN_ERROR)
    with pytest.raises(TTSAuthenticationError) as exc:
        await client.get_auth_info()
    assert "pkg/auth:token" in str(exc.value)
    assert_no_secret(exc.value)


async def test_other_bad_request(client: TTSClient, fake_tts: FakeTTS) -> None:
    body = {
        "code": 3,
        "details": [{"namespace": "pkg/errors", "name": "validation"}],
    }
    fake_tts.fail("batch", 400, body=body)
    with pytest.raises(TTSConnectionError) as exc:
        await client.get_connection_stats(gateways_of(fake_tts))
    assert not isinstance(exc.value, TTSAuthenticationError)
    assert "HTTP 400" in str(exc.value)
    assert_no_secret(exc.value)


async def test_listing_forbidden(client: TTSClient, fake_tts: FakeTTS) -> None:
    fake_tts.fail("gateways", 403, body=TTS_USER_RIGHTS_ERROR)
    with pytest.raises(TTSPermissionError) as exc:
        await client.list_gateways()
    assert exc.value.missing_rights == ("RIGHT_USER_GATEWAYS_LIST",)
    assert "insufficient_user_rights" in str(exc.value)
    assert_no_secret(exc.value)


async def test_forbidden_fixture_body(client: TTSClient, fake_tts: FakeTTS) -> None:
    fake_tts.fail("gateways", 403)
    with pytest.raises(TTSPermissionError) as exc:
        await client.list_gateways()
    assert exc.value.missing_rights == ("RIGHT_GATEWAY_STATUS_READ",)
    assert_no_secret(exc.value)


async def test_forbidden_single_missing_right(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    body = {
        "code": 7,
        "details": [{"name": "x", "attributes": {"missing": "RIGHT_GATEWAY_INFO"}}],
    }
    fake_tts.fail("gateways", 403, body=body)
    with pytest.raises(TTSPermissionError) as exc:
        await client.list_gateways()
    assert exc.value.missing_rights == ("RIGHT_GATEWAY_INFO",)


@pytest.mark.parametrize(
    ("body", "raw"),
    [
        (None, b""),
        (None, b"Forbidden"),
        ({"code": 7}, None),
        ({"details": []}, None),
        ({"details": ["x"]}, None),
        ({"details": [{"name": "x", "attributes": {"missing": None}}]}, None),
        ([1, 2], None),
    ],
)
async def test_forbidden_without_details(
    client: TTSClient, fake_tts: FakeTTS, body: Any, raw: bytes | None
) -> None:
    fake_tts.fail("gateways", 403, body=body, raw=raw)
    with pytest.raises(TTSPermissionError) as exc:
        await client.list_gateways()
    assert exc.value.missing_rights == ()
    assert_no_secret(exc.value)


async def test_not_found(client: TTSClient, fake_tts: FakeTTS) -> None:
    fake_tts.fail("auth_info", 404)
    with pytest.raises(TTSNotFoundError) as exc:
        await client.get_auth_info()
    assert isinstance(exc.value, TTSConnectionError)
    assert "pkg/gatewayserver:not_connected" in str(exc.value)
    assert_no_secret(exc.value)


async def test_batch_not_found_is_an_error(
    client: TTSClient, fake_tts: FakeTTS
) -> None:
    """A 404 for the batch (no Gateway Server there) is not "not connected"."""
    fake_tts.fail("batch", 404, body={"code": 5, "message": "Not Found"})
    with pytest.raises(TTSNotFoundError) as exc:
        await client.get_connection_stats(gateways_of(fake_tts))
    assert "no error details" in str(exc.value)
    assert_no_secret(exc.value)


async def test_rate_limited(
    client: TTSClient,
    fake_tts: FakeTTS,
    clock: FakeClock,
    aioclient_mock: AiohttpClientMocker,
) -> None:
    fake_tts.fail("gateways", 429, headers={"X-Rate-Limit-Retry": "30"})

    with pytest.raises(TTSRateLimitError) as exc:
        await client.list_gateways()
    assert exc.value.retry_after == 30
    assert_no_secret(exc.value)
    sent = aioclient_mock.call_count
    assert client.request_count == 1

    # Nothing at all is sent before the deadline.
    for elapsed in (0, 10, 29.5):
        clock.now = 1000.0 + elapsed
        for call in (
            client.get_auth_info(),
            client.list_gateways(),
            client.get_connection_stats(gateways_of(fake_tts)),
        ):
            with pytest.raises(TTSRateLimitError) as exc:
                await call
            assert exc.value.retry_after == pytest.approx(30 - elapsed)
            assert_no_secret(exc.value)
    assert aioclient_mock.call_count == sent
    assert fake_tts.count("gateways") == 1
    assert client.request_count == 1

    # Then requests resume.
    clock.now = 1030.0
    assert len(await client.list_gateways()) == 4
    assert len(await client.get_connection_stats(gateways_of(fake_tts))) == 4
    assert fake_tts.count("gateways") == 2
    assert fake_tts.count("batch") == 1


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        (None, 60),
        ({"X-Rate-Limit-Retry": "soon"}, 60),
        ({"X-Rate-Limit-Retry": "0"}, 60),
        ({"X-Rate-Limit-Reset": "12"}, 12),
        ({"X-Rate-Limit-Retry": "0", "X-Rate-Limit-Reset": "7"}, 7),
        ({"X-Rate-Limit-Retry": "2.5", "X-Rate-Limit-Reset": "60"}, 2.5),
    ],
)
async def test_rate_limit_retry_header(
    client: TTSClient,
    fake_tts: FakeTTS,
    clock: FakeClock,
    headers: dict[str, str] | None,
    retry_after: float,
) -> None:
    fake_tts.fail("batch", 429, headers=headers)
    with pytest.raises(TTSRateLimitError) as exc:
        await client.get_connection_stats(gateways_of(fake_tts))
    assert exc.value.retry_after == retry_after
    assert_no_secret(exc.value)

    clock.advance(retry_after - 0.1)
    with pytest.raises(TTSRateLimitError):
        await client.get_auth_info()
    assert fake_tts.count("auth_info") == 0
    clock.advance(0.1)
    await client.get_auth_info()
    assert fake_tts.count("auth_info") == 1


async def test_rate_limited_during_fallback(
    client: TTSClient, fake_tts: FakeTTS, clock: FakeClock
) -> None:
    """A 429 while asking gateway by gateway stops the poll and the others."""
    fake_tts.fail("batch", 403)
    fake_tts.fail("single", 429, headers={"X-Rate-Limit-Retry": "30"})
    with pytest.raises(TTSRateLimitError) as exc:
        await client.get_connection_stats(gateways_of(fake_tts))
    assert exc.value.retry_after == 30
    assert_no_secret(exc.value)
    await asyncio.sleep(0)
    assert fake_tts.count("single") == 1
    assert client.forbidden_gateways == frozenset()


@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("endpoint", ["auth_info", "gateways", "batch"])
async def test_server_errors(
    client: TTSClient, fake_tts: FakeTTS, status: int, endpoint: str
) -> None:
    fake_tts.fail(endpoint, status, body={"code": 14, "message": "unavailable"})
    with pytest.raises(TTSConnectionError) as exc:
        await call_endpoint(client, fake_tts, endpoint)
    assert f"HTTP {status}" in str(exc.value)
    assert type(exc.value) is TTSConnectionError
    assert_no_secret(exc.value)


async def test_server_error_in_fallback(client: TTSClient, fake_tts: FakeTTS) -> None:
    fake_tts.fail("batch", 403)
    fake_tts.fail("single", 503)
    with pytest.raises(TTSConnectionError) as exc:
        await client.get_connection_stats(gateways_of(fake_tts))
    assert_no_secret(exc.value)


async def call_endpoint(client: TTSClient, fake: FakeTTS, endpoint: str) -> Any:
    """Make the client call one endpoint of the fake."""
    if endpoint == "auth_info":
        return await client.get_auth_info()
    if endpoint == "gateways":
        return await client.list_gateways()
    if endpoint == "single":
        fake.fail("batch", 403)
    return await client.get_connection_stats(gateways_of(fake)[:1])


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError(),
        aiohttp.ClientConnectionError(),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("truncated"),
        aiohttp.ClientConnectorError(
            aiohttp.client_reqrep.ConnectionKey(
                EU1_HOST, 443, True, True, None, None, None
            ),
            OSError(111, f"refused {API_KEY}"),
        ),
    ],
)
@pytest.mark.parametrize("endpoint", ["auth_info", "gateways", "batch", "single"])
async def test_transport_errors(
    client: TTSClient, fake_tts: FakeTTS, error: Exception, endpoint: str
) -> None:
    fake_tts.fail(endpoint, error)
    with pytest.raises(TTSConnectionError) as exc:
        await call_endpoint(client, fake_tts, endpoint)
    assert exc.value.__cause__ is error
    assert EU1_HOST in str(exc.value)
    assert_no_secret(exc.value)


@pytest.mark.parametrize(
    "raw", [b"<html>502 Bad Gateway</html>", b'{"gateways": [', b"\xff\xfe"]
)
@pytest.mark.parametrize("endpoint", ["auth_info", "gateways", "batch", "single"])
async def test_malformed_json(
    client: TTSClient, fake_tts: FakeTTS, raw: bytes, endpoint: str
) -> None:
    fake_tts.fail(endpoint, 200, raw=raw)
    with pytest.raises(TTSConnectionError) as exc:
        await call_endpoint(client, fake_tts, endpoint)
    assert "Malformed JSON" in str(exc.value)
    assert_no_secret(exc.value)


@pytest.mark.parametrize("body", [[1, 2], "text", 42, None])
@pytest.mark.parametrize("endpoint", ["auth_info", "gateways", "batch", "single"])
async def test_json_not_an_object(
    client: TTSClient, fake_tts: FakeTTS, body: Any, endpoint: str
) -> None:
    raw = b"null" if body is None else None
    fake_tts.fail(endpoint, 200, body=body, raw=raw)
    with pytest.raises(TTSConnectionError) as exc:
        await call_endpoint(client, fake_tts, endpoint)
    assert "Unexpected JSON" in str(exc.value)
    assert_no_secret(exc.value)


@pytest.mark.parametrize("entries", [[], "x", 3, None])
async def test_batch_entries_not_an_object(
    client: TTSClient, fake_tts: FakeTTS, entries: Any
) -> None:
    fake_tts.fail("batch", 200, body={"entries": entries})
    with pytest.raises(TTSConnectionError) as exc:
        await client.get_connection_stats(gateways_of(fake_tts))
    assert "Unexpected batch stats" in str(exc.value)
    assert_no_secret(exc.value)


async def test_batch_entry_not_an_object(client: TTSClient, fake_tts: FakeTTS) -> None:
    entries = load_json("gateway-connection-stats-batch.json")["entries"]
    entries[GATEWAY_GARDEN] = "disconnected"
    fake_tts.fail("batch", 200, body={"entries": entries})

    result = await client.get_connection_stats(gateways_of(fake_tts))

    assert result[GATEWAY_ROOFTOP].state is ConnectionState.CONNECTED
    assert result[GATEWAY_GARDEN] == GatewayConnection(ConnectionState.NOT_CONNECTED)


@pytest.mark.parametrize("items", [{}, "x", 3, None])
async def test_gateways_not_a_list(
    client: TTSClient, fake_tts: FakeTTS, items: Any
) -> None:
    fake_tts.fail("gateways", 200, body={"gateways": items})
    with pytest.raises(TTSConnectionError) as exc:
        await client.list_gateways()
    assert "Unexpected gateway list" in str(exc.value)
    assert_no_secret(exc.value)


async def test_errors_are_tts_errors() -> None:
    for error in (
        TTSAuthenticationError,
        TTSConnectionError,
        TTSNotFoundError,
        TTSPermissionError,
        TTSRateLimitError,
    ):
        assert issubclass(error, TTSError)
    assert TTSPermissionError("x").missing_rights == ()


# --- request timeout -----------------------------------------------------------


class _SlowSession:
    """A session whose requests never answer in time."""

    def __init__(self) -> None:
        self.calls = 0

    @contextlib.asynccontextmanager
    async def request(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        self.calls += 1
        await asyncio.sleep(10)
        yield None  # pragma: no cover


async def test_request_timeout(clock: FakeClock) -> None:
    session = _SlowSession()
    client = TTSClient(
        session,  # type: ignore[arg-type]
        TTSServer.parse("eu1"),
        API_KEY,
        request_timeout=0.01,
        clock=clock,
    )
    with pytest.raises(TTSConnectionError) as exc:
        await client.get_auth_info()
    assert "Timeout" in str(exc.value)
    assert isinstance(exc.value.__cause__, TimeoutError)
    assert session.calls == 1
    assert_no_secret(exc.value)


class _BrokenSession:
    """A session whose HTTP stack fails with a non-aiohttp exception.

    Like aiodns 3.2.0 beside pycares 5, which raise a TypeError for every
    host name lookup.
    """

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Channel.getaddrinfo() takes 3 positional arguments ({kwargs})"
        )


async def test_unexpected_transport_error_is_a_connection_error(
    clock: FakeClock,
) -> None:
    client = TTSClient(
        _BrokenSession(),  # type: ignore[arg-type]
        TTSServer.parse("eu1"),
        API_KEY,
        clock=clock,
    )
    with pytest.raises(TTSConnectionError) as exc:
        await client.get_auth_info()
    assert str(exc.value) == (
        f"Cannot reach {EU1_HOST} for GET /auth_info: the HTTP client failed"
        " unexpectedly (TypeError)"
    )
    assert isinstance(exc.value.__cause__, TypeError)
    assert_no_secret(exc.value)


async def test_unexpected_transport_error_on_the_events_stream(
    clock: FakeClock,
) -> None:
    client = TTSClient(
        _BrokenSession(),  # type: ignore[arg-type]
        TTSServer.parse("eu1"),
        API_KEY,
        clock=clock,
    )
    with pytest.raises(TTSConnectionError) as exc:
        async for _ in client.stream_events(
            client.server.gateway_server_url(None), ["rooftop"], ["gs.gateway.connect"]
        ):
            pass  # pragma: no cover
    assert "the HTTP client failed unexpectedly (TypeError)" in str(exc.value)
    assert "POST /events" in str(exc.value)
    assert_no_secret(exc.value)


async def test_device_repository_names(client: TTSClient, fake_tts: FakeTTS) -> None:
    """A brand's and a model's name; an id the Device Repository lacks is 404."""
    # The simulator's names follow lorawan-devices vendor/index.yaml and
    # vendor/elsys/ers.yaml (simulator/tts_simulator/device_repository.py).
    assert await client.get_device_repository_name("rakwireless") == (
        "RAKwireless Technology Co."
    )
    assert await client.get_device_repository_name("elsys", "ers") == (
        "ERS smart building sensor"
    )
    with pytest.raises(TTSNotFoundError):
        await client.get_device_repository_name("rakwireless", "rak7248")
    assert fake_tts.count("device_repository") == 3
