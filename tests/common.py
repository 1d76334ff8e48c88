"""Helpers shared by the tests."""

from __future__ import annotations

from datetime import timedelta
import os

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_time_changed

# The fuzz tests' examples are divided by this (at least 100 stay).
# ./scripts/test runs them in full on the newest Home Assistant, with coverage,
# and a tenth of them on the oldest: the parsers and the intake they drive are
# the same code on both, and the oldest run checks it against older APIs.
FUZZ_DIVISOR = max(1, int(os.environ.get("TTN_FUZZ_DIVISOR", "1")))


def fuzz_examples(count: int) -> int:
    """How many examples a fuzz test of count examples runs here."""
    return max(100, count // FUZZ_DIVISOR)


async def async_poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float = 61
) -> None:
    """Move the clock past the next poll and let it finish."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


# How TTS's Console labels the rights a message names (the descriptions in
# lorawan-stack api/ttn/lorawan/v3/rights.proto).
CONSOLE_LABELS = {
    "RIGHT_USER_GATEWAYS_LIST": "List gateways the user is a collaborator of",
    "RIGHT_ORGANIZATION_GATEWAYS_LIST": (
        "List the gateways the organization is a collaborator of"
    ),
    "RIGHT_GATEWAY_INFO": "View gateway information",
    "RIGHT_GATEWAY_STATUS_READ": "View gateway status",
    "RIGHT_APPLICATION_INFO": "View application information",
    "RIGHT_APPLICATION_TRAFFIC_READ": "Read application traffic (uplink and downlink)",
}


def console_labelled(names: str) -> str:
    """``"RIGHT_A, RIGHT_B"`` as a message shows them: Console label and name."""
    return ", ".join(
        f"{CONSOLE_LABELS[name]} ({name})" for name in names.split(", ") if name
    )
