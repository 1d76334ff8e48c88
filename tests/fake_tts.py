"""The TTS simulator behind HA's aiohttp client mocker, fed with sample payloads.

Requests the integration sends through HA's client session are routed into
`tts_simulator.Simulator`, the same simulator that `./scripts/demo` and the
end-to-end tests run as a server. This module only sets up its data from the
payloads in ``fixtures/`` (constructed in TTS's wire format, not recorded) and
turns its answers into mock responses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
import json
from pathlib import Path
import re
from typing import Any
from unittest import mock

import aiohttp
from aiohttp.streams import StreamReader
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from yarl import URL

from tts_simulator import (
    NO_RIGHTS,
    NOT_CONNECTED,
    Action,
    Fault,
    FaultKind,
    ManualClock,
    Request,
    Simulator,
    StatsSource,
)

FIXTURES = Path(__file__).parent / "fixtures"

API_KEY = (
    "NNSXS.ZXPW62GWUYNYJIERJDHBIECRJEKYYDMACPPBEUI."
    "Q6QKWPYN3JXSHSO2GIE5SZX4OHM3Z4SSGMCTZ2XVXA4VFJZ3D5AQ"
)
API_KEY_SECRET = API_KEY.rsplit(".", 1)[1]
SERVER_URL = "https://eu1.cloud.thethings.network"

GATEWAY_ROOFTOP = "eui-b827ebfffe8db887"
GATEWAY_GARDEN = "kerlink-garden"
GATEWAY_NEVER = "never-connected-gw"
GATEWAY_STATION = "basic-station-gw"

# Stats values meaning "TTS answers 403 / 404 for this gateway".
FORBIDDEN = NO_RIGHTS
__all__ = ["FORBIDDEN", "NOT_CONNECTED"]
URL_ANY = re.compile(r".*")


def load_json(name: str) -> Any:
    """Load a sample TTS payload."""
    return json.loads((FIXTURES / name).read_text())


def listed_gateway(gateway_id: str, name: str | None = None) -> dict[str, Any]:
    """A gateway as ``GET /api/v3/gateways`` lists it."""
    item: dict[str, Any] = {
        "ids": {"gateway_id": gateway_id},
        "created_at": "2024-06-01T12:00:41.551002Z",
        "updated_at": "2024-06-01T12:00:41.551003Z",
        "gateway_server_address": "eu1.cloud.thethings.network",
        "frequency_plan_ids": ["EU_863_870_TTN"],
    }
    if name:
        item["name"] = name
    return item


class _FaultQueues:
    """``fake_tts.faults[endpoint]``: the simulator's queue of an endpoint."""

    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator

    def __getitem__(self, endpoint: str) -> Any:
        return self._simulator.faults[endpoint]

    def __iter__(self) -> Iterator[str]:
        return iter(self._simulator.faults)


class _CutResponse(AiohttpClientMockResponse):
    """Headers arrived, then the connection dropped in the middle of the body."""

    _error = aiohttp.ClientPayloadError(
        "Response payload is not completed: <ContentLengthError: 400, "
        "message='Not enough data to satisfy content length header.'>"
    )

    async def read(self) -> bytes:
        raise self._error

    @property
    def content(self) -> StreamReader:
        """A body that ends with the error after its first bytes."""
        stream = StreamReader(mock.Mock(_reading_paused=False), limit=2**16)
        stream.feed_data(b'{"gateways": [')
        stream.set_exception(self._error)
        return stream


class FakeTTS:
    """An in-test TTS deployment: an account with gateways and their stats."""

    def __init__(self, mocker: AiohttpClientMocker) -> None:
        """Register the simulator on HA's aiohttp mocker with the default fleet."""
        self._mocker = mocker
        self.clock = ManualClock()
        self.simulator = Simulator(api_key=API_KEY, clock=self.clock)
        self.simulator.auth_info = load_json("auth-info.json")
        listed = load_json("gateways-list.json")["gateways"]
        self.simulator.gateways = [
            *listed,
            listed_gateway(GATEWAY_NEVER, "Never connected"),
            listed_gateway(GATEWAY_STATION),
        ]
        batch = load_json("gateway-connection-stats-batch.json")["entries"]
        self.simulator.stats = {
            GATEWAY_ROOFTOP: load_json("gateway-connection-stats.json"),
            GATEWAY_GARDEN: batch[GATEWAY_GARDEN],
            GATEWAY_NEVER: NOT_CONNECTED,
            GATEWAY_STATION: load_json("gateway-connection-stats-basicstation.json"),
        }
        self.faults = _FaultQueues(self.simulator)
        self.requests: list[tuple[str, str]] = []
        # Answers POST /api/v3/events when set (see tests/event_feed.py);
        # without it the fake has no events API and answers 404.
        self.events: Callable[[Any], Awaitable[AiohttpClientMockResponse]] | None
        self.events = None
        for method in ("GET", "POST"):
            mocker.request(method, URL_ANY, side_effect=self._handle)

    # The simulator's state, under the names the tests use.
    @property
    def api_key(self) -> str:
        """The one API key the account has."""
        return self.simulator.api_key

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.simulator.api_key = value

    @property
    def auth_info(self) -> dict[str, Any]:
        """What ``/api/v3/auth_info`` answers for the key."""
        return self.simulator.auth_info

    @auth_info.setter
    def auth_info(self, value: dict[str, Any]) -> None:
        self.simulator.auth_info = value

    @property
    def gateways(self) -> list[dict[str, Any]]:
        """The registry: every gateway the key's user can see."""
        return self.simulator.gateways

    @gateways.setter
    def gateways(self, value: list[dict[str, Any]]) -> None:
        self.simulator.gateways = value

    @property
    def stats(self) -> dict[str, StatsSource]:
        """Connection stats per gateway: JSON, NOT_CONNECTED or FORBIDDEN."""
        return self.simulator.stats

    @stats.setter
    def stats(self, value: dict[str, StatsSource]) -> None:
        self.simulator.stats = value

    def fail(
        self,
        endpoint: str,
        fault: int | Exception,
        *,
        times: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Answer the next `times` calls to an endpoint with an error.

        Without `body`, `raw` is sent as the body byte for byte (e.g. non-JSON);
        without either, TTS's error body for the status.
        """
        if isinstance(fault, TimeoutError):
            injected = Fault(FaultKind.TIMEOUT, error=fault)
        elif isinstance(fault, Exception):
            injected = Fault(FaultKind.DROP, error=fault)
        else:
            injected = Fault(
                FaultKind.STATUS,
                status=fault,
                body=body,
                raw=raw,
                headers=dict(headers or {}),
            )
        self.simulator.inject(endpoint, injected, times)

    def store(self, *messages: dict[str, Any]) -> None:
        """Keep ApplicationUp messages in the application's Storage Integration."""
        for message in messages:
            self.simulator.storage.keep(message)

    def count(self, endpoint: str) -> int:
        """Number of requests an endpoint received."""
        return sum(1 for name, _ in self.requests if name == endpoint)

    async def _handle(
        self, method: str, url: URL, data: Any
    ) -> AiohttpClientMockResponse:
        headers = self._mocker.mock_calls[-1][3] or {}
        if method == "POST" and url.path == "/api/v3/events":
            # The stream tests feed events themselves (tests/event_feed.py);
            # elsewhere the fake has no events API, so the integration polls.
            if self.events is None:
                return AiohttpClientMockResponse(
                    method, url, status=404, json={"code": 5, "message": "Not Found"}
                )
            self.requests.append(("events", str(url)))
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                return AiohttpClientMockResponse(
                    method, url, status=401, json=self.simulator.error_unauthenticated()
                )
            return await self.events(data)
        request = Request(
            method=method,
            path=url.path,
            query=dict(url.query),
            headers=dict(headers),
            body=json.dumps(data).encode() if data is not None else b"",
            host=url.host or "",
        )
        if (endpoint := Simulator.endpoint_of(method, url.path)) is not None:
            self.requests.append((endpoint.value, str(url)))
        response = self.simulator.handle(request)
        if response.action is Action.HANG:
            raise response.error or TimeoutError
        if response.action is Action.DROP:
            raise response.error or aiohttp.ServerDisconnectedError()
        if response.action is Action.CUT:
            return _CutResponse(
                method, url, status=response.status, headers=response.headers
            )
        return AiohttpClientMockResponse(
            method,
            url,
            status=response.status,
            response=response.body,
            headers=response.headers,
        )
