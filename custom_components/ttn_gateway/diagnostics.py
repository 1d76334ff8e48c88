"""Diagnostics of a TTS account: what TTS answered, with secrets and IPs redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from .decoders import describe_reading
from .end_devices import EndDeviceManager, device_key_text
from .end_devices.applications import ApplicationConfig
from .end_devices.direct import DirectConnection
from .end_devices.intake import MAX_ENTITIES_PER_DEVICE
from .runtime import TTSConfigEntry

# Gateways' antenna coordinates place someone's home: never in a download.
TO_REDACT = {CONF_API_KEY, "remote_ip", "ip", "latitude", "longitude", "altitude"}


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


# Diagnostics keep the shape of a reading but not where a device is.
def _reading_for_diagnostics(key: str, value: Any) -> Any:
    description = describe_reading(key)
    return REDACTED if description is not None and description.location else value


def _application_diagnostics(
    manager: EndDeviceManager, config: ApplicationConfig
) -> dict[str, Any]:
    """One application's sub-entry and source, without its key."""
    source = manager.sources[config.subentry_id]
    details: dict[str, Any] = {
        "subentry_id": config.subentry_id,
        "application_id": config.application_id,
        "transport": config.transport,
        "rights": sorted(config.rights),
        "available": source.available,
        "subscribed": source.subscribed,
    }
    if isinstance(source, DirectConnection):
        settings = source.settings
        details.update(
            mqtt_host=settings.host,
            mqtt_port=settings.port,
            mqtt_tls=settings.tls,
            connects=source.connects,
            failures=source.failures,
            last_error=source.last_error,
            key_rejected=source.rejected,
        )
    else:
        details.update(topic=source.topic, applications=sorted(config.applications))
    details["messages_for_other_sources"] = {
        application_id: count
        for (source, application_id), count in sorted(
            manager.counters.other_source.items()
        )
        if source == config.subentry_id
    }
    if (catalogue := manager.catalogues.get(config.subentry_id)) is not None:
        details.update(
            devices_listed=catalogue.listed,
            device_list_complete=catalogue.complete,
            device_list_error=catalogue.last_error,
        )
    if (catch_up := manager.catch_ups.get(config.subentry_id)) is not None:
        details["stored_uplinks"] = catch_up.diagnostics()
    return details


def end_device_diagnostics(manager: EndDeviceManager) -> dict[str, Any]:
    """What the manager receives and knows, for the diagnostics download."""
    counters = manager.counters
    return {
        "enabled": manager.enabled,
        "receiving": manager.receiving,
        "max_devices": manager.max_devices,
        "max_entities_per_device": MAX_ENTITIES_PER_DEVICE,
        "applications": [
            _application_diagnostics(manager, config) for config in manager.applications
        ],
        "silence_threshold_minutes": (
            None
            if manager.silence_threshold_option is None
            else manager.silence_threshold_option.total_seconds() / 60
        ),
        "decoders": {
            device: str(decoder) for device, decoder in manager.decoders.items()
        },
        "messages": {
            "received": counters.received,
            "uplinks": counters.uplinks,
            "repeats": counters.repeats,
            "older": counters.older,
            "ignored": counters.ignored,
            "dropped": counters.dropped,
            "undecodable": counters.undecodable,
            "over_device_cap": counters.over_device_cap,
            "over_entity_cap": counters.over_entity_cap,
            "drop_reasons": dict(counters.drop_reasons),
        },
        "devices": {
            device_key_text(key): {
                "decoder": str(device.decoder),
                "decoder_used": None
                if device.decoder_used is None
                else str(device.decoder_used),
                "formatter_warnings": list(device.warnings),
                "formatter_failed": device.formatter_failed,
                "last_seen": device.last_seen,
                "uplink_interval_seconds": device.uplink_interval,
                "silence_threshold_seconds": manager.silence_threshold(
                    device
                ).total_seconds(),
                "f_port": None if device.uplink is None else device.uplink.f_port,
                "f_cnt": None if device.uplink is None else device.uplink.f_cnt,
                "readings": {
                    reading_key: _reading_for_diagnostics(reading_key, reading.value)
                    for reading_key, reading in device.readings.items()
                },
                "entities": {
                    str(platform): sorted(keys)
                    for platform, keys in device.entity_keys.items()
                },
            }
            for key, device in manager.devices.items()
        },
    }
