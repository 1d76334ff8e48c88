"""Diagnostics of a TTS account: what TTS answered, with secrets and IPs redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from .end_devices import end_device_diagnostics
from .runtime import TTSConfigEntry

# Gateways' antenna coordinates place someone's home: never in a download.
TO_REDACT = {CONF_API_KEY, "remote_ip", "ip", "latitude", "longitude", "altitude"}
REDACTED = "**REDACTED**"


def _without_owner(text: str | None, owner: str) -> str | None:
    """The text with the API key's owner ID (user or organization) redacted."""
    return text.replace(owner, REDACTED) if text and owner else text


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: TTSConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    client = runtime.client
    store = runtime.store
    streams = runtime.streams
    silence = runtime.silence
    # The unique ID is <owner>@<host>; the title names the owner too.
    owner = (entry.unique_id or "").rpartition("@")[0]
    return async_redact_data(
        {
            "entry": {
                "title": _without_owner(entry.title, owner),
                "unique_id": _without_owner(entry.unique_id, owner),
                "data": dict(entry.data),
                "options": dict(entry.options),
                "subentries": [
                    {
                        "subentry_type": subentry.subentry_type,
                        "title": subentry.title,
                        "data": dict(subentry.data),
                    }
                    for subentry in entry.subentries.values()
                ],
            },
            "server": {
                "url": client.server.url,
                "identity_server_url": client.server.identity_server_url,
                "cloud": client.server.is_cloud,
            },
            "coordinator": {
                "last_update_success": coordinator.last_update_success,
                "last_exception": repr(coordinator.last_exception),
                "update_interval_seconds": (
                    coordinator.update_interval.total_seconds()
                    if coordinator.update_interval
                    else None
                ),
                "failures": coordinator.failures,
                "requests_sent": client.request_count,
                "forbidden_gateways": sorted(client.forbidden_gateways),
                "account_gateways": len(coordinator.account_gateways),
            },
            "store": {
                "poll_ok": store.poll_ok,
                "push_healthy": store.push_healthy,
                "unlisted": sorted(
                    gateway_id
                    for gateway_id in store.gateway_ids
                    if not store.is_listed(gateway_id)
                ),
            },
            "gateways": {
                gateway_id: asdict(data)
                for gateway_id, data in store.snapshot().items()
            },
            "event_streams": {
                "names": list(streams.names),
                "refused_gateways": sorted(streams.refused),
                "streams": streams.diagnostics(),
            },
            "silence": {
                "default_threshold_minutes": (
                    silence.default_threshold.total_seconds() / 60
                ),
                "silent": silence.silent_gateways,
            },
            "end_devices": end_device_diagnostics(runtime.end_devices),
        },
        TO_REDACT,
    )
