"""The send_downlink action: queue a downlink for an end device."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr
import voluptuous as vol

from .compat import device_config_entries
from .const import DOMAIN
from .end_devices import DeviceKey, DownlinkNotSentError, EndDeviceManager
from .runtime import TTSConfigEntry
from .tts import (
    MAX_DOWNLINK_F_PORT,
    MIN_DOWNLINK_F_PORT,
    Downlink,
    DownlinkError,
    Priority,
    parse_payload,
)

SERVICE_SEND_DOWNLINK = "send_downlink"
ATTR_F_PORT = "f_port"
ATTR_PAYLOAD = "payload"
ATTR_DECODED_PAYLOAD = "decoded_payload"
ATTR_CONFIRMED = "confirmed"
ATTR_PRIORITY = "priority"
ATTR_MODE = "mode"
MODE_PUSH = "push"
MODE_REPLACE = "replace"


def _whole_number(value: Any) -> int:
    """An FPort as a whole number: 2, 2.0 and "2" are 2; 1.9 is refused."""
    if isinstance(value, bool):
        raise vol.Invalid("FPort must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value.strip())
    raise vol.Invalid("FPort must be a whole number")


SEND_DOWNLINK_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_DEVICE_ID): cv.string,
        vol.Required(ATTR_F_PORT): _whole_number,
        vol.Optional(ATTR_PAYLOAD): cv.string,
        vol.Optional(ATTR_DECODED_PAYLOAD): dict,
        vol.Optional(ATTR_CONFIRMED, default=False): cv.boolean,
        # The selector's options are lowercase (translation keys must be);
        # TTS's names are uppercase. Either is accepted.
        vol.Optional(ATTR_PRIORITY, default=Priority.NORMAL.value.lower()): vol.All(
            cv.string,
            vol.Lower,
            vol.In([priority.value.lower() for priority in Priority]),
        ),
        vol.Optional(ATTR_MODE, default=MODE_PUSH): vol.In([MODE_PUSH, MODE_REPLACE]),
    }
)


def _end_device(
    hass: HomeAssistant, device_id: str
) -> tuple[EndDeviceManager, DeviceKey, str]:
    """The loaded manager, key and name of a registry device that is an end device."""
    device = dr.async_get(hass).async_get(device_id)
    name = device_id
    if isinstance(device, dr.DeviceEntry):
        name = device.name_by_user or device.name or device_id
        for entry in hass.config_entries.async_entries(DOMAIN):
            if entry.entry_id not in device_config_entries(device):
                continue
            if entry.state is not ConfigEntryState.LOADED:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="downlink_not_loaded",
                    translation_placeholders={"title": entry.title},
                )
            typed: TTSConfigEntry = entry
            manager = typed.runtime_data.end_devices
            if (key := manager.key_of(device)) is not None:
                return manager, key, name
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="downlink_not_an_end_device",
        translation_placeholders={"device": name},
    )


def _downlink(data: dict[str, Any]) -> Downlink:
    """The downlink the action asks for; a validation error says what is wrong."""
    f_port = data[ATTR_F_PORT]
    if not MIN_DOWNLINK_F_PORT <= f_port <= MAX_DOWNLINK_F_PORT:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="downlink_invalid_f_port",
            translation_placeholders={
                "f_port": str(f_port),
                "min": str(MIN_DOWNLINK_F_PORT),
                "max": str(MAX_DOWNLINK_F_PORT),
            },
        )
    payload = data.get(ATTR_PAYLOAD)
    decoded = data.get(ATTR_DECODED_PAYLOAD)
    if (payload is None) == (decoded is None):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="downlink_payload_or_object"
        )
    try:
        return Downlink(
            f_port=f_port,
            frm_payload=None if payload is None else parse_payload(payload),
            decoded_payload=decoded,
            confirmed=data[ATTR_CONFIRMED],
            priority=Priority(data[ATTR_PRIORITY].upper()),
        )
    except DownlinkError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=f"downlink_{err.reason}",
            translation_placeholders={"error": str(err)},
        ) from err


async def _async_send_downlink(call: ServiceCall) -> None:
    manager, key, name = _end_device(call.hass, call.data[ATTR_DEVICE_ID])
    downlink = _downlink(dict(call.data))
    try:
        await manager.async_send_downlink(
            key, [downlink], replace=call.data[ATTR_MODE] == MODE_REPLACE
        )
    except DownlinkNotSentError as err:
        placeholders = {
            "device": name,
            "error": err.detail,
            "seconds": f"{err.seconds:.0f}",
        }
        if err.reason in (
            "downlink_failed",
            "downlink_not_connected",
            "downlink_rate_limited",
        ):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key=err.reason,
                translation_placeholders=placeholders,
            ) from err
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=err.reason,
            translation_placeholders=placeholders,
        ) from err


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, for every entry)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SEND_DOWNLINK,
        _async_send_downlink,
        schema=SEND_DOWNLINK_SCHEMA,
    )
