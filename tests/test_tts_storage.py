"""Stored uplinks: the client against the simulator's Storage Integration.

The simulator runs as a real HTTP server here, so the answers arrive as TTS
sends them: chunked, in its framing (``tts_simulator/storage.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
import pytest

from custom_components.ttn_gateway.tts import (
    TTSClient,
    TTSConnectionError,
    TTSPermissionError,
    TTSServer,
    TTSStorageNotEnabledError,
)
from custom_components.ttn_gateway.tts.storage import (
    STORED_BODY_MAX_BYTES,
    STORED_LINE_MAX_BYTES,
)
from tts_simulator import Fault, FaultKind, ManualClock, Request, Simulator
from tts_simulator.server import create_app

from .fake_tts import API_KEY
from .uplinks import APP, FEATHER, encode, uplink

APP_KEY = "NNSXS.STORAGEKEYSTORAGEKEYSTORAGEKEYSTORAGEKEYSTOR.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSE"
PATH = f"/api/v3/as/applications/{APP}/packages/storage/uplink_message"
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

type Client = Callable[[web.Application], Awaitable[TestClient]]


def _sim() -> Simulator:
    """The application home-sensors with three stored uplinks a minute apart."""
    simulator = Simulator(api_key=API_KEY, clock=ManualClock(), application_key=APP_KEY)
    for f_cnt in (1, 2, 3):
        simulator.storage.keep(
            uplink(f_cnt=f_cnt, received_at=START + timedelta(minutes=f_cnt))
        )
    return simulator


@pytest.fixture(name="sim")
def sim_fixture() -> Simulator:
    """The application home-sensors with three stored uplinks."""
    return _sim()


async def _tts(sim: Simulator, aiohttp_client: Client) -> TTSClient:
    client = await aiohttp_client(create_app(sim))
    return TTSClient(client.session, TTSServer(str(client.make_url(""))), APP_KEY)


def _get(sim: Simulator, accept: str | None = None, **query: str) -> Any:
    headers = {"Authorization": f"Bearer {APP_KEY}"}
    if accept:
        headers["Accept"] = accept
    return sim.handle(Request("GET", PATH, query, headers))


def test_simulator_frames_as_tts() -> None:
    """``{"result": …}`` per message, two newlines for text/event-stream."""
    sim = _sim()
    plain = _get(sim)
    assert plain.headers["Content-Type"] == "application/json"
    lines = plain.body.split(b"\n")
    assert lines[-1] == b""
    assert [
        json.loads(line)["result"]["uplink_message"]["f_cnt"] for line in lines[:-1]
    ] == [1, 2, 3]

    stream = _get(sim, "text/event-stream", order="-received_at", limit="2")
    assert stream.headers["Content-Type"] == "text/event-stream"
    messages = stream.body.split(b"\n\n")
    assert messages[-1] == b""
    assert [
        json.loads(m)["result"]["uplink_message"]["f_cnt"] for m in messages[:-1]
    ] == [3, 2]

    after = (START + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    newer = _get(sim, after=after).body.split(b"\n")[:-1]
    # received_at carries nanoseconds: the uplink at 08:02:00.000…123 is after.
    assert [json.loads(m)["result"]["uplink_message"]["f_cnt"] for m in newer] == [2, 3]


def test_simulator_refuses_as_tts() -> None:
    """Validation (the .proto's rules), rights, and the integration switched off."""
    sim = _sim()
    assert _get(sim, order="f_cnt").status == 400
    assert _get(sim, last="1h", after="2026-12-01T00:00:00Z").status == 400
    assert _get(sim, limit="-1").status == 400
    sim.set_application(rights=["RIGHT_APPLICATION_INFO"])
    refused = _get(sim)
    assert refused.status == 403
    assert refused.json()["details"][0]["attributes"]["missing"] == [
        "RIGHT_APPLICATION_TRAFFIC_READ"
    ]
    sim.set_application(rights=["RIGHT_APPLICATION_TRAFFIC_READ"])
    sim.storage.enabled = False
    off = _get(sim)
    assert off.status == 404
    assert off.json() == {"code": 5, "message": "Not Found", "details": []}
    # Switched off, it keeps nothing either.
    sim.storage.keep(uplink(f_cnt=9, received_at=START))
    assert len(sim.storage.messages) == 3


@pytest.mark.usefixtures("socket_enabled")
async def test_client_reads_the_newest_oldest_first(
    sim: Simulator, aiohttp_client: Client
) -> None:
    """Newest first from TTS (so a long outage keeps its end), oldest first here."""
    tts = await _tts(sim, aiohttp_client)
    result = await tts.get_stored_uplinks(APP, after=START, limit=2)
    assert [u.f_cnt for u in result.uplinks] == [2, 3]
    assert result.full
    result = await tts.get_stored_uplinks(APP, after=START)
    assert [u.f_cnt for u in result.uplinks] == [1, 2, 3]
    assert (result.full, result.skipped) == (False, 0)
    assert result.uplinks[0].ids.device_id == FEATHER


@pytest.mark.usefixtures("socket_enabled")
async def test_client_maps_tts_errors(sim: Simulator, aiohttp_client: Client) -> None:
    """404: no Storage Integration; 403: the right is missing; 5xx: try later."""
    tts = await _tts(sim, aiohttp_client)
    sim.storage.enabled = False
    with pytest.raises(TTSStorageNotEnabledError, match="home-sensors"):
        await tts.get_stored_uplinks(APP, after=START)
    sim.storage.enabled = True
    sim.set_application(rights=["RIGHT_APPLICATION_INFO"])
    with pytest.raises(TTSPermissionError) as refused:
        await tts.get_stored_uplinks(APP, after=START)
    assert refused.value.missing_rights == ("RIGHT_APPLICATION_TRAFFIC_READ",)
    sim.set_application(rights=["RIGHT_APPLICATION_TRAFFIC_READ"])
    sim.inject("storage", Fault(FaultKind.STATUS, status=503))
    with pytest.raises(TTSConnectionError, match="503"):
        await tts.get_stored_uplinks(APP, after=START)
    sim.inject("storage", Fault(FaultKind.CUT))
    with pytest.raises(TTSConnectionError):
        await tts.get_stored_uplinks(APP, after=START)
    # None of it shows the key.
    assert APP_KEY.rsplit(".", 1)[1] not in str(refused.value)


@pytest.mark.usefixtures("socket_enabled")
async def test_client_skips_bad_lines_and_bounds_the_answer(
    sim: Simulator, aiohttp_client: Client
) -> None:
    """A bad or overlong line is skipped; an endless answer is refused."""
    tts = await _tts(sim, aiohttp_client)
    good = b'{"result":' + encode(uplink(f_cnt=7, received_at=START)).encode() + b"}"
    # Longer than the bound, and longer than what one read returns.
    long_line = b'{"result":"' + b"x" * (STORED_LINE_MAX_BYTES * 4) + b'"}'
    body = b"\n\n".join([b"{broken", long_line, b'{"result": 5}', good]) + b"\n\n"
    sim.inject("storage", Fault(FaultKind.STATUS, status=200, raw=body))
    result = await tts.get_stored_uplinks(APP, after=START)
    assert [u.f_cnt for u in result.uplinks] == [7]
    assert result.skipped == 3

    huge = good + b"\n" + b"\n".join([good] * (STORED_BODY_MAX_BYTES // len(good)))
    sim.inject("storage", Fault(FaultKind.STATUS, status=200, raw=huge))
    with pytest.raises(TTSConnectionError, match="larger than"):
        await tts.get_stored_uplinks(APP, after=START)

    error = b'{"error":{"code":14,"message":"unavailable","details":[]}}\n'
    sim.inject("storage", Fault(FaultKind.STATUS, status=200, raw=good + b"\n" + error))
    with pytest.raises(TTSConnectionError, match="ended"):
        await tts.get_stored_uplinks(APP, after=START)
