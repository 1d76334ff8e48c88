"""A live TTS events stream behind the fake TTS: the test writes the events."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta
import json
from typing import Any
from unittest import mock

from aiohttp.streams import StreamReader
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMockResponse,
)
from yarl import URL

from tts_simulator import Request, Simulator
from tts_simulator.core import EventSubscription

from .fake_tts import FIXTURES, SERVER_URL


def stream_line(
    name: str,
    gateway_id: str,
    time: str,
    data: dict[str, Any] | None = None,
    *,
    connection: str | None = None,
) -> str:
    """One NDJSON message of the stream, as TTS frames it.

    ``connection`` is the gs:conn correlation id every event of one gateway
    connection carries (lorawan-stack pkg/gatewayserver/gatewayserver.go,
    Connect).
    """
    event: dict[str, Any] = {
        "name": name,
        "time": time,
        "identifiers": [{"gateway_ids": {"gateway_id": gateway_id}}],
    }
    if data is not None:
        event["data"] = data
    if connection is not None:
        event["correlation_ids"] = [connection]
    return json.dumps({"result": event}, separators=(",", ":")) + "\n"


def start_line(time: str = "2025-03-14T10:20:00.5Z") -> str:
    """The events.stream.start message TTS sends first."""
    return stream_line("events.stream.start", "eui-b827ebfffe8db887", time)


# A stream in TTS's wire format; its # lines say what each message follows.
SAMPLE = "".join(
    line
    for line in (FIXTURES / "events-stream-sample.txt")
    .read_text()
    .splitlines(keepends=True)
    if not line.startswith("#")
)


class LiveStream(AiohttpClientMockResponse):
    """A 200 response whose body arrives while the test writes it."""

    def __init__(self) -> None:
        super().__init__(
            "POST",
            URL(SERVER_URL),
            headers={"Content-Type": "application/json"},
        )
        self._body = StreamReader(mock.Mock(_reading_paused=False), limit=2**16)

    @property
    def content(self) -> StreamReader:
        """The body, as aiohttp reads it."""
        return self._body

    def send(self, text: str) -> None:
        """Write to the stream."""
        self._body.feed_data(text.encode())

    def close(self) -> None:
        """End the stream, as TTS or a proxy closing the connection."""
        self._body.feed_eof()


class EventFeed:
    """Answers each POST /api/v3/events with a new live stream, or a queued fault."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.streams: list[LiveStream] = []
        self.faults: deque[AiohttpClientMockResponse] = deque()

    async def __call__(self, data: Any) -> AiohttpClientMockResponse:
        """Open a stream for a request body."""
        self.requests.append(data)
        if self.faults:
            return self.faults.popleft()
        stream = LiveStream()
        self.streams.append(stream)
        return stream

    def fail(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next request with an HTTP error instead of a stream."""
        self.faults.append(
            AiohttpClientMockResponse(
                "POST",
                URL("https://eu1.cloud.thethings.network/api/v3/events"),
                status=status,
                json={"code": 14, "message": f"HTTP {status}"},
                headers={"Content-Type": "application/json", **(headers or {})},
            )
        )

    @property
    def current(self) -> LiveStream:
        """The stream opened last."""
        return self.streams[-1]


async def flush(hass: HomeAssistant) -> None:
    """Let the stream task read what was written."""
    for _ in range(5):
        await asyncio.sleep(0)
    await hass.async_block_till_done()


async def advance(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Move the clock, fire the timers due, and let the stream catch up."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await flush(hass)


class SimulatorFeed:
    """Answers POST /api/v3/events from the simulator's own events API.

    Each open stream is a LiveStream; `pump` writes what the simulator
    published since, as its server would; `drop` closes the open streams.
    """

    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator
        self.open: list[tuple[LiveStream, EventSubscription]] = []
        self.requests = 0

    async def __call__(self, data: Any) -> AiohttpClientMockResponse:
        """Open a stream, or answer the error the simulator gives."""
        self.requests += 1
        response = self._simulator.handle(
            Request(
                "POST",
                "/api/v3/events",
                {},
                {"Authorization": f"Bearer {self._simulator.api_key}"},
                json.dumps(data).encode(),
            )
        )
        if response.events is None:
            return AiohttpClientMockResponse(
                "POST",
                URL(SERVER_URL),
                status=response.status,
                response=response.body,
                headers=response.headers,
            )
        stream = LiveStream()
        stream.send(response.body.decode())
        self.open.append((stream, response.events))
        return stream

    def pump(self) -> None:
        """Write the events published since the last pump to the open streams."""
        for stream, subscription in self.open:
            if frames := subscription.poll():
                stream.send(frames.decode())

    def drop(self) -> None:
        """Close every open stream, as a proxy dropping the connections."""
        for stream, _ in self.open:
            stream.close()
        self.open.clear()
