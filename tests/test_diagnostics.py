"""Diagnostics download."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .fake_tts import API_KEY, API_KEY_SECRET, GATEWAY_ROOFTOP


async def test_diagnostics_redact_key_and_ips(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
) -> None:
    """The dump shows what TTS answered, without the key or IP addresses."""
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, init_integration
    )
    dump = json.dumps(diagnostics)
    assert API_KEY not in dump
    assert API_KEY_SECRET not in dump
    assert "203.0.113.17" not in dump
    assert diagnostics["entry"]["data"]["api_key"] == "**REDACTED**"
    assert (
        diagnostics["entry"]["data"]["server"] == "https://eu1.cloud.thethings.network"
    )
    rooftop = diagnostics["gateways"][GATEWAY_ROOFTOP]
    assert rooftop["connection"]["state"] == "connected"
    assert rooftop["connection"]["stats"]["uplink_count"] == 18342
    assert rooftop["connection"]["stats"]["remote_ip"] == "**REDACTED**"
    assert diagnostics["coordinator"]["last_update_success"] is True
    # The poll (list and batch), then the key's rights and the events stream,
    # which this fake TTS does not offer, and the Device Repository's names of
    # the rooftop gateway's brand and model.
    assert diagnostics["coordinator"]["requests_sent"] == 6
    streams = diagnostics["event_streams"]
    assert "gs.gateway.disconnect" in streams["names"]
    assert streams["streams"][0]["given_up"] is True
    assert diagnostics["silence"]["default_threshold_minutes"] == 30


async def test_diagnostics_leave_out_coordinates(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
) -> None:
    """The download never places a gateway: its antenna's coordinates are redacted."""
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, init_integration
    )
    dump = json.dumps(diagnostics)
    # The rooftop and garden gateways' locations in gateways-list.json.
    for coordinate in ("52.37403", "4.88969", "52.3731", "4.8922"):
        assert coordinate not in dump
    location = diagnostics["gateways"][GATEWAY_ROOFTOP]["gateway"]["location"]
    assert location["latitude"] == "**REDACTED**"
    assert location["longitude"] == "**REDACTED**"
    assert location["altitude"] == "**REDACTED**"
