"""Device registry fields are strings or None (HA 2026.12 makes others an error).

TTS's JSON can carry a version or an EUI as a number; Home Assistant 2026.12
rejects a device whose manufacturer, model, model id, hardware or firmware
version or serial number is not a ``str``.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ttn_gateway.const import DOMAIN
from custom_components.ttn_gateway.tts import parse_application_up

from .compat import device_by_identifier
from .fake_tts import FakeTTS
from .uplinks import uplink

STR_FIELDS = (
    "manufacturer",
    "model",
    "model_id",
    "hw_version",
    "sw_version",
    "serial_number",
)


def _non_strings(device: dr.DeviceEntry) -> dict[str, Any]:
    return {
        name: value
        for name in STR_FIELDS
        if (value := getattr(device, name, None)) is not None
        and not isinstance(value, str)
    }


async def test_gateway_device_fields_are_strings(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    numbers = {
        "brand_id": 7248,
        "model_id": 7248,
        "hardware_version": 1,
        "firmware_version": 4.2,
    }
    for gateway in fake_tts.gateways:
        gateway["version_ids"] = dict(numbers)
    fake_tts.gateways[0]["ids"]["eui"] = 13279355283437254791
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    devices = dr.async_entries_for_config_entry(
        device_registry, mock_config_entry.entry_id
    )
    # Each gateway, and the account's own device.
    assert len(devices) == len(fake_tts.gateways) + 1
    assert {device.name: _non_strings(device) for device in devices} == {
        device.name: {} for device in devices
    }
    # The default fleet's real strings still arrive.
    fake_names = {device.name for device in devices}
    assert "Rooftop gateway" in fake_names


def test_end_device_versions_are_strings() -> None:
    message = uplink(version_ids={"brand_id": "adafruit", "model_id": "feather-m0"})
    message["end_device_ids"]["dev_eui"] = 8102512346357407154
    message["uplink_message"]["version_ids"] = {
        "brand_id": 12,
        "model_id": 34,
        "hardware_version": 1,
        "firmware_version": 1.5,
    }
    parsed = parse_application_up(message)
    assert parsed is not None
    versions = parsed.version_ids
    assert versions is not None
    values = (
        parsed.ids.dev_eui,
        versions.brand_id,
        versions.model_id,
        versions.hardware_version,
        versions.firmware_version,
    )
    assert all(value is None or isinstance(value, str) for value in values)


async def test_gateway_device_info_built_once_per_gateway(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """A gateway's entities share its device info; the store's data is reused.

    The names are looked up once per gateway, not once per entity, and the
    store hands out the same data until the gateway changes.
    """
    mock_config_entry.add_to_hass(hass)
    with patch(
        "custom_components.ttn_gateway.coordinator.DeviceNames.readable",
        autospec=True,
        side_effect=lambda _names, info: info,
    ) as readable:
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    store = mock_config_entry.runtime_data.store
    assert readable.call_count == len(store.gateway_ids)
    coordinator = mock_config_entry.runtime_data.coordinator
    registry = dr.async_get(hass)
    for gateway_id in store.gateway_ids:
        identifier = (DOMAIN, coordinator.device_identifier(gateway_id))
        assert (
            device_by_identifier(registry, identifier, mock_config_entry.entry_id)
            is not None
        )
    gateway_id = sorted(store.gateway_ids)[0]
    assert store.get(gateway_id) is store.get(gateway_id)
