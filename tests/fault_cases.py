"""Faults of TTS and of the network, as the simulator injects them.

Shared by the fault tests and the secret hygiene test, so that every fault
the integration is shown to survive is also shown to leak no key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.ttn_gateway.const import DOMAIN
from tts_simulator import Fault, FaultKind

from .compat import user_visible_log
from .fake_tts import FakeTTS

# What HA logs when an exception escapes an integration instead of being handled.
UNHANDLED_MARKERS = (
    "Traceback",
    "Unexpected error",
    "Error doing job",
    "Exception in",
    "Task exception was never retrieved",
)


async def poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float = 61
) -> None:
    """Let time pass until the next poll has run."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def integration_states(hass: HomeAssistant) -> dict[str, str]:
    """The state of every entity of the integration, by entity id."""
    registry = er.async_get(hass)
    return {
        state.entity_id: state.state
        for state in hass.states.async_all()
        if (entry := registry.async_get(state.entity_id)) is not None
        and entry.platform == DOMAIN
    }


def readings(hass: HomeAssistant) -> dict[str, str]:
    """The states of what TTS reports: all but the settings (numbers).

    Nor the count of silent end devices: it follows the applications' uplinks.
    """
    return {
        entity_id: state
        for entity_id, state in integration_states(hass).items()
        if not entity_id.startswith("number.")
        and not entity_id.endswith("_end_devices_silent")
    }


def assert_handled(caplog: pytest.LogCaptureFixture) -> None:
    """No exception escaped into HA's log as an unhandled error."""
    text = user_visible_log(caplog)
    for marker in UNHANDLED_MARKERS:
        assert marker not in text, marker


@dataclass(frozen=True, kw_only=True)
class TransientFault:
    """A failure of TTS or of the network that ends by itself."""

    name: str
    # Make the next `times` requests to the endpoint fail.
    inject: Callable[[FakeTTS, int], None]
    # What the one error log line says about it.
    logged: str


def _status(endpoint: str, status: int, **kwargs: object) -> Callable[..., None]:
    def inject(fake: FakeTTS, times: int) -> None:
        fake.fail(endpoint, status, times=times, **kwargs)  # type: ignore[arg-type]

    return inject


def _error(endpoint: str, error: Exception) -> Callable[..., None]:
    def inject(fake: FakeTTS, times: int) -> None:
        fake.fail(endpoint, error, times=times)

    return inject


def _kind(endpoint: str, kind: FaultKind) -> Callable[..., None]:
    def inject(fake: FakeTTS, times: int) -> None:
        fake.simulator.inject(endpoint, Fault(kind), times)

    return inject


TRANSIENT_FAULTS: tuple[TransientFault, ...] = (
    TransientFault(
        name="500 listing", inject=_status("gateways", 500), logged="HTTP 500"
    ),
    TransientFault(name="500 stats", inject=_status("batch", 500), logged="HTTP 500"),
    TransientFault(
        name="502 stats", inject=_status("batch", 502), logged="TTS answered HTTP 502"
    ),
    TransientFault(
        name="503 listing", inject=_status("gateways", 503), logged="HTTP 503"
    ),
    TransientFault(name="503 stats", inject=_status("batch", 503), logged="HTTP 503"),
    TransientFault(
        # A proxy without the Gateway Server behind it.
        name="404 stats",
        inject=_status("batch", 404, body={"code": 5, "message": "Not Found"}),
        logged="Not found: POST /gs/gateways/connection/stats",
    ),
    TransientFault(
        name="404 listing",
        inject=_status("gateways", 404, raw=b"404 page not found"),
        logged="Not found: GET /gateways",
    ),
    TransientFault(
        name="timeout listing",
        inject=_error("gateways", TimeoutError()),
        logged="Timeout after 20 s waiting for GET /gateways",
    ),
    TransientFault(
        name="timeout stats",
        inject=_error("batch", TimeoutError()),
        logged="Timeout after 20 s waiting for POST /gs/gateways/connection/stats",
    ),
    TransientFault(
        name="connection refused",
        inject=_error("gateways", aiohttp.ClientConnectionError()),
        logged="Cannot reach eu1.cloud.thethings.network for GET /gateways",
    ),
    TransientFault(
        name="dropped before the answer",
        inject=_error("batch", aiohttp.ServerDisconnectedError()),
        logged="ServerDisconnectedError",
    ),
    TransientFault(
        name="dropped mid-body listing",
        inject=_kind("gateways", FaultKind.CUT),
        logged="GET /gateways: ClientPayloadError",
    ),
    TransientFault(
        name="dropped mid-body stats",
        inject=_kind("batch", FaultKind.CUT),
        logged="POST /gs/gateways/connection/stats: ClientPayloadError",
    ),
    TransientFault(
        name="truncated JSON",
        inject=_kind("gateways", FaultKind.MALFORMED),
        logged="Malformed JSON from eu1.cloud.thethings.network for GET /gateways",
    ),
    TransientFault(
        name="HTML instead of JSON",
        inject=_status("batch", 200, raw=b"<html><h1>502 Bad Gateway</h1></html>"),
        logged="Malformed JSON",
    ),
    TransientFault(
        name="JSON that is not an object",
        inject=_status("batch", 200, body=["not", "an", "object"]),
        logged="Unexpected JSON",
    ),
    TransientFault(
        name="gateway list of the wrong type",
        inject=_status("gateways", 200, body={"gateways": {"ids": "x"}}),
        logged="Unexpected gateway list",
    ),
    TransientFault(
        name="batch entries of the wrong type",
        inject=_status("batch", 200, body={"entries": ["x"]}),
        logged="Unexpected batch stats",
    ),
)
