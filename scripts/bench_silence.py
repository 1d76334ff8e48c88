#!/usr/bin/env python3
"""Measure how fast Home Assistant sees a gateway disconnect: stream vs polling.

Runs Home Assistant in-process (the test harness's instance, with a real
aiohttp session) with this integration against a TTS API on 127.0.0.1, then
disconnects a gateway several times and prints the time from the disconnect
to the connectivity binary sensor turning off: once with the events stream,
once with polling only (the stand-in then has no events API).

By default a minimal stand-in for TTS is started in this process. To measure
against another TTS-compatible server (such as the project's simulator), give
its URL, an API key and commands that disconnect and reconnect the gateway:

    .venv/bin/python scripts/bench_silence.py --url http://127.0.0.1:1885 \\
        --api-key NNSXS.X.Y --gateway my-gw \\
        --disconnect-cmd 'curl -X POST .../disconnect' \\
        --connect-cmd 'curl -X POST .../connect'

Polling-only figures then need a server without an events API; use
--stream-only to skip them.

Usage: .venv/bin/python scripts/bench_silence.py [--samples N] [--poll-interval S]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from datetime import UTC, datetime
import json
from pathlib import Path
import random
import statistics
import sys
import tempfile
import time
from typing import Any
from unittest.mock import patch

from aiohttp import ThreadedResolver, web

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

FIXTURES = REPO_ROOT / "tests" / "fixtures"
GATEWAY_ID = "bench-gw"
API_KEY = "NNSXS.BENCHKEYID.BENCHSECRET"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StandIn:
    """The few TTS calls the integration makes, for one gateway."""

    def __init__(self, *, events_api: bool) -> None:
        self.events_api = events_api
        self.connected_at = _now()
        self.disconnected_at: str | None = None
        self.streams: list[asyncio.Queue[dict[str, Any] | None]] = []
        self.app = web.Application()
        self.app.router.add_get("/api/v3/auth_info", self._auth_info)
        self.app.router.add_get("/api/v3/gateways", self._gateways)
        self.app.router.add_post("/api/v3/gs/gateways/connection/stats", self._batch)
        self.app.router.add_post("/api/v3/events", self._events)

    async def _auth_info(self, _: web.Request) -> web.Response:
        return web.json_response(json.loads((FIXTURES / "auth-info.json").read_text()))

    async def _gateways(self, _: web.Request) -> web.Response:
        gateway = {"ids": {"gateway_id": GATEWAY_ID}, "name": "Bench gateway"}
        return web.json_response(
            {"gateways": [gateway]}, headers={"X-Total-Count": "1"}
        )

    def _stats(self) -> dict[str, Any]:
        if self.disconnected_at is not None:
            return {"disconnected_at": self.disconnected_at, "protocol": "udp"}
        return {"connected_at": self.connected_at, "protocol": "udp"}

    async def _batch(self, _: web.Request) -> web.Response:
        return web.json_response({"entries": {GATEWAY_ID: self._stats()}})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not self.events_api:
            return web.json_response({"code": 5, "message": "Not Found"}, status=404)
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.streams.append(queue)
        await queue.put(self._event("events.stream.start"))
        try:
            while (event := await queue.get()) is not None:
                await response.write(json.dumps({"result": event}).encode() + b"\n")
        finally:
            self.streams.remove(queue)
        return response

    @staticmethod
    def _event(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "name": name,
            "time": _now(),
            "identifiers": [{"gateway_ids": {"gateway_id": GATEWAY_ID}}],
        }
        if data is not None:
            event["data"] = data
        return event

    async def disconnect(self) -> None:
        """The gateway drops off the Gateway Server."""
        self.disconnected_at = _now()
        for queue in self.streams:
            await queue.put(self._event("gs.gateway.disconnect"))

    async def connect(self) -> None:
        """The gateway comes back."""
        self.connected_at, self.disconnected_at = _now(), None
        for queue in self.streams:
            await queue.put(
                self._event(
                    "gs.gateway.connect",
                    {"connected_at": self.connected_at, "protocol": "udp"},
                )
            )

    async def close_streams(self) -> None:
        """End the open streams so the server can stop."""
        for queue in self.streams:
            await queue.put(None)


async def _run_command(command: str) -> None:
    process = await asyncio.create_subprocess_shell(command)
    if await process.wait():
        raise SystemExit(f"command failed: {command}")


async def measure(
    *,
    url: str,
    api_key: str,
    gateway_id: str,
    poll_interval: int,
    samples: int,
    disconnect: Callable[[], Awaitable[None]],
    connect: Callable[[], Awaitable[None]],
) -> list[float]:
    """Seconds from each disconnect to the connectivity sensor turning off."""
    # Imported here: the harness patches Home Assistant when imported.
    from homeassistant import loader
    from homeassistant.core import Event, EventStateChangedData, callback
    from homeassistant.helpers import entity_registry as er
    from pytest_homeassistant_custom_component.common import (
        MockConfigEntry,
        async_test_home_assistant,
    )

    from custom_components.ttn_gateway.const import (
        CONF_SCAN_INTERVAL,
        CONF_SERVER,
        DOMAIN,
    )

    figures: list[float] = []
    with (
        tempfile.TemporaryDirectory() as config_dir,
        # The mDNS resolver needs the zeroconf integration; plain DNS will do.
        patch(
            "homeassistant.helpers.aiohttp_client._async_make_resolver",
            return_value=ThreadedResolver(),
        ),
    ):
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            entry = MockConfigEntry(
                domain=DOMAIN,
                title="bench",
                data={CONF_SERVER: url, "api_key": api_key},
                options={CONF_SCAN_INTERVAL: poll_interval},
            )
            entry.add_to_hass(hass)
            if not await hass.config_entries.async_setup(entry.entry_id):
                raise SystemExit(f"the integration did not set up against {url}")
            await hass.async_block_till_done()
            registry = er.async_get(hass)
            entity_id = registry.async_get_entity_id(
                "binary_sensor", DOMAIN, f"{entry.entry_id}_{gateway_id}_connectivity"
            )
            if entity_id is None:
                raise SystemExit(f"no connectivity sensor for {gateway_id}")

            changed: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

            @callback
            def on_change(event: Event[EventStateChangedData]) -> None:
                state = event.data["new_state"]
                if event.data["entity_id"] == entity_id and state is not None:
                    changed.put_nowait((state.state, time.monotonic()))

            hass.bus.async_listen("state_changed", on_change)

            async def wait_for(wanted: str) -> float:
                async with asyncio.timeout(poll_interval * 3 + 30):
                    while True:
                        state, at = await changed.get()
                        if state == wanted:
                            return at

            # Let the stream open (or fail) before the first sample.
            await asyncio.sleep(2)
            for _ in range(samples):
                # Disconnect at a random point of the poll cycle.
                await asyncio.sleep(random.uniform(0, poll_interval))  # noqa: S311
                started = time.monotonic()
                await disconnect()
                figures.append(await wait_for("off") - started)
                await connect()
                await wait_for("on")
            await hass.config_entries.async_unload(entry.entry_id)
    return figures


async def run_stand_in(args: argparse.Namespace, *, events_api: bool) -> list[float]:
    """Measure against a stand-in started on 127.0.0.1."""
    stand_in = StandIn(events_api=events_api)
    runner = web.AppRunner(stand_in.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        return await measure(
            url=f"http://127.0.0.1:{port}",
            api_key=API_KEY,
            gateway_id=GATEWAY_ID,
            poll_interval=args.poll_interval,
            samples=args.samples,
            disconnect=stand_in.disconnect,
            connect=stand_in.connect,
        )
    finally:
        await stand_in.close_streams()
        await runner.cleanup()


def _report(label: str, figures: list[float]) -> None:
    print(
        f"{label}: median {statistics.median(figures):.3f} s,"
        f" min {min(figures):.3f} s, max {max(figures):.3f} s"
        f" over {len(figures)} disconnects"
    )


async def main() -> None:
    """Parse the arguments, measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--poll-interval", type=int, default=30)
    parser.add_argument("--url", help="a TTS-compatible server instead of the stand-in")
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--gateway", default=GATEWAY_ID)
    parser.add_argument("--disconnect-cmd")
    parser.add_argument("--connect-cmd")
    parser.add_argument("--stream-only", action="store_true")
    args = parser.parse_args()

    print(f"poll interval {args.poll_interval} s, {args.samples} disconnects each")
    if args.url:
        if not (args.disconnect_cmd and args.connect_cmd):
            parser.error("--url needs --disconnect-cmd and --connect-cmd")
        stream = await measure(
            url=args.url,
            api_key=args.api_key,
            gateway_id=args.gateway,
            poll_interval=args.poll_interval,
            samples=args.samples,
            disconnect=lambda: _run_command(args.disconnect_cmd),
            connect=lambda: _run_command(args.connect_cmd),
        )
        _report(f"{args.url}", stream)
        return
    stream = await run_stand_in(args, events_api=True)
    _report("with the events stream", stream)
    if not args.stream_only:
        polling = await run_stand_in(args, events_api=False)
        _report("polling only", polling)
        print(
            f"speed-up: {statistics.median(polling) / statistics.median(stream):.0f}x"
        )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
