"""Host names resolve through Home Assistant's own HTTP client session.

The unit tests reach the fake TTS by IP address and would not notice a DNS
resolver that cannot resolve anything (aiodns 3.2.0 beside pycares 5 raises
``TypeError: Channel.getaddrinfo() takes 3 positional arguments`` for every
name), while every real user's server has a name. This test resolves
``localhost`` through the session the integration uses, with HA's resolver
(aiodns), against a local server.
"""

from __future__ import annotations

from aiohttp import web
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pytest


@pytest.mark.usefixtures(
    "socket_enabled", "disable_mock_zeroconf_resolver", "mock_async_zeroconf"
)
async def test_client_session_resolves_localhost(hass: HomeAssistant) -> None:
    # The harness allows connections to 127.0.0.1 only: where localhost also
    # resolves to ::1, that attempt is refused and the client falls back.
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.host.split(":")[0]})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        session = async_get_clientsession(hass)
        async with session.get(f"http://localhost:{port}/") as response:
            assert response.status == 200
            assert await response.json() == {"hello": "localhost"}
    finally:
        await runner.cleanup()
