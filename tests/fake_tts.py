"""A fake TTS server behind HA's aiohttp client mocker, fed with recorded payloads.

It answers the calls the integration makes, as TTS encodes them: the gateway
list with pagination and ``X-Total-Count``, batch stats (enums as numbers,
unconnected gateways left out, 403 for the whole batch if any gateway is
forbidden), single stats (200, 404 ``not_connected``, 403), ``auth_info`` and
TTS error bodies. Faults can be queued per endpoint.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
import copy
from http import HTTPStatus
import json
from pathlib import Path
import re
from typing import Any

from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from yarl import URL

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

# Stats value meaning "TTS answers 403 for this gateway".
FORBIDDEN = 403
_SOURCES = {"SOURCE_GPS": 1, "SOURCE_REGISTRY": 3}


def load_json(name: str) -> Any:
    """Load a recorded TTS payload."""
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


def _batch_encoding(stats: dict[str, Any]) -> dict[str, Any]:
    """Batch entries are plain protojson: enums become numbers."""
    stats = copy.deepcopy(stats)
    for location in stats.get("last_status", {}).get("antenna_locations", []):
        if "source" in location:
            location["source"] = _SOURCES.get(location["source"], 0)
    return stats


def _error(name: str) -> AiohttpClientMockResponse:
    body = load_json(name)
    status = {16: 401, 7: 403, 5: 404, 8: 429}[body["code"]]
    return _response(status, body)


def _response(
    status: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> AiohttpClientMockResponse:
    return AiohttpClientMockResponse(
        "GET",
        URL(SERVER_URL),
        status=status,
        response=raw,
        json=body if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class FakeTTS:
    """An in-test TTS deployment: an account with gateways and their stats."""

    def __init__(self, mocker: AiohttpClientMocker) -> None:
        """Register the fake on HA's aiohttp mocker with the default fleet."""
        self._mocker = mocker
        self.api_key = API_KEY
        self.auth_info: dict[str, Any] = load_json("auth-info.json")
        listed = load_json("gateways-list.json")["gateways"]
        self.gateways: list[dict[str, Any]] = [
            *listed,
            listed_gateway(GATEWAY_NEVER, "Never connected"),
            listed_gateway(GATEWAY_STATION),
        ]
        batch = load_json("gateway-connection-stats-batch.json")["entries"]
        self.stats: dict[str, dict[str, Any] | int] = {
            GATEWAY_ROOFTOP: load_json("gateway-connection-stats.json"),
            GATEWAY_GARDEN: batch[GATEWAY_GARDEN],
            GATEWAY_NEVER: HTTPStatus.NOT_FOUND,
            GATEWAY_STATION: load_json("gateway-connection-stats-basicstation.json"),
        }
        # Queued faults per endpoint: "auth_info", "gateways", "batch", "single".
        self.faults: defaultdict[str, deque[AiohttpClientMockResponse | Exception]]
        self.faults = defaultdict(deque)
        self.requests: list[tuple[str, str]] = []
        # Answers POST /api/v3/events when set (see tests/event_feed.py);
        # without it the fake has no events API and answers 404.
        self.events: Callable[[Any], Awaitable[AiohttpClientMockResponse]] | None
        self.events = None
        for method in ("GET", "POST"):
            mocker.request(method, re.compile(r".*"), side_effect=self._handle)

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

        Without `body`, `raw` is sent as the body byte for byte (e.g. non-JSON).
        """
        for _ in range(times):
            if isinstance(fault, Exception):
                self.faults[endpoint].append(fault)
            elif body is None and raw is None and fault in (401, 403, 404, 429):
                name = {
                    401: "error-401.json",
                    403: "error-403-insufficient.json",
                    404: "error-404-not-connected.json",
                    429: "error-429.json",
                }[fault]
                response = _error(name)
                response._headers.update(headers or {})
                self.faults[endpoint].append(response)
            else:
                self.faults[endpoint].append(_response(fault, body, headers, raw))

    def count(self, endpoint: str) -> int:
        """Number of requests an endpoint received."""
        return sum(1 for name, _ in self.requests if name == endpoint)

    async def _handle(
        self, method: str, url: URL, data: Any
    ) -> AiohttpClientMockResponse:
        path = url.path.removeprefix("/api/v3")
        if method == "GET" and path == "/auth_info":
            endpoint = "auth_info"
        elif method == "GET" and path == "/gateways":
            endpoint = "gateways"
        elif method == "POST" and path == "/gs/gateways/connection/stats":
            endpoint = "batch"
        elif method == "GET" and re.fullmatch(
            r"/gs/gateways/[^/]+/connection/stats", path
        ):
            endpoint = "single"
        elif method == "POST" and path == "/events" and self.events is not None:
            endpoint = "events"
        else:
            return _response(HTTPStatus.NOT_FOUND, {"code": 5, "message": "Not Found"})
        self.requests.append((endpoint, str(url)))

        headers = self._mocker.mock_calls[-1][3] or {}
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error("error-401.json")
        if self.faults[endpoint]:
            fault = self.faults[endpoint].popleft()
            if isinstance(fault, Exception):
                raise fault
            return fault

        if endpoint == "auth_info":
            return _response(HTTPStatus.OK, self.auth_info)
        if endpoint == "gateways":
            return self._list(url)
        if endpoint == "batch":
            return self._batch(data)
        if endpoint == "events":
            assert self.events is not None
            return await self.events(data)
        return self._single(path.split("/")[3])

    def _list(self, url: URL) -> AiohttpClientMockResponse:
        limit = int(url.query.get("limit", "100"))
        page = max(int(url.query.get("page", "1")), 1)
        items = self.gateways[(page - 1) * limit : page * limit]
        body = {"gateways": items} if items else {}
        return _response(
            HTTPStatus.OK, body, {"X-Total-Count": str(len(self.gateways))}
        )

    def _batch(self, data: Any) -> AiohttpClientMockResponse:
        ids = [item["gateway_id"] for item in data["gateway_ids"]]
        if not 1 <= len(ids) <= 100:
            return _response(HTTPStatus.BAD_REQUEST, {"code": 3, "message": "invalid"})
        if any(
            self.stats.get(gateway_id, FORBIDDEN) == FORBIDDEN for gateway_id in ids
        ):
            return _error("error-403-insufficient.json")
        entries = {
            gateway_id: _batch_encoding(stats)
            for gateway_id in ids
            if isinstance(stats := self.stats[gateway_id], dict)
        }
        return _response(HTTPStatus.OK, {"entries": entries} if entries else {})

    def _single(self, gateway_id: str) -> AiohttpClientMockResponse:
        stats = self.stats.get(gateway_id, FORBIDDEN)
        if stats == FORBIDDEN:
            return _error("error-403.json")
        if stats == HTTPStatus.NOT_FOUND:
            return _error("error-404-not-connected.json")
        assert isinstance(stats, dict)
        return _response(HTTPStatus.OK, stats)
