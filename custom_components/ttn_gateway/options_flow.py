"""Options flow: gateway polling, end devices, and one end device's decoder."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
import voluptuous as vol

from .const import (
    CONF_DECODERS,
    CONF_END_DEVICE_SILENCE_THRESHOLD,
    CONF_GATEWAYS,
    CONF_MAX_END_DEVICES,
    CONF_MONITOR_ALL,
    CONF_SCAN_INTERVAL,
    CONF_SILENCE_THRESHOLD,
    DEFAULT_MAX_END_DEVICES,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_SILENCE_THRESHOLD,
    MAX_END_DEVICE_SILENCE_THRESHOLD,
    MAX_MAX_END_DEVICES,
    MAX_SCAN_INTERVAL,
    MAX_SILENCE_THRESHOLD,
    MIN_SCAN_INTERVAL,
    MIN_SILENCE_THRESHOLD,
)
from .decoders import Decoder
from .end_devices import device_key_text, end_device_key
from .end_devices.registry import async_remove_decoder_entities
from .identifiers import account_id
from .runtime import TTSConfigEntry

DECODER_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=[decoder.value for decoder in Decoder],
        mode=SelectSelectorMode.DROPDOWN,
        translation_key="decoder",
    )
)


class TTNGatewayOptionsFlow(OptionsFlow):
    """Gateway polling and end-device options, one menu entry each."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask which options to change."""
        return self.async_show_menu(
            step_id="init",
            menu_options=["gateways", "end_devices", "end_device_decoder"],
        )

    def _save(
        self, changes: dict[str, Any], removed: tuple[str, ...] = ()
    ) -> ConfigFlowResult:
        """Store the changed options; the entry reloads to apply them."""
        entry: TTSConfigEntry = self.config_entry
        options = {
            key: value for key, value in entry.options.items() if key not in removed
        }
        options.update(changes)
        if self.hass.config_entries.async_update_entry(entry, options=options):
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data=options)

    async def async_step_gateways(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Poll interval and which gateways to monitor."""
        entry: TTSConfigEntry = self.config_entry
        errors: dict[str, str] = {}
        if user_input is not None:
            options = {
                CONF_SCAN_INTERVAL: int(user_input[CONF_SCAN_INTERVAL]),
                CONF_MONITOR_ALL: user_input[CONF_MONITOR_ALL],
                CONF_GATEWAYS: sorted(user_input.get(CONF_GATEWAYS, [])),
                CONF_SILENCE_THRESHOLD: int(user_input[CONF_SILENCE_THRESHOLD]),
            }
            if not options[CONF_MONITOR_ALL] and not options[CONF_GATEWAYS]:
                errors[CONF_GATEWAYS] = "no_gateways_selected"
            else:
                return self._save(options)

        current = {
            CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL.total_seconds(),
            CONF_MONITOR_ALL: True,
            CONF_GATEWAYS: [],
            CONF_SILENCE_THRESHOLD: DEFAULT_SILENCE_THRESHOLD,
            **entry.options,
            **(user_input or {}),
        }
        gateway_options = {
            gateway_id: gateway_id for gateway_id in current[CONF_GATEWAYS]
        }
        if (runtime := getattr(entry, "runtime_data", None)) is not None:
            for gateway in runtime.coordinator.account_gateways:
                gateway_options[gateway.gateway_id] = (
                    f"{gateway.name} ({gateway.gateway_id})"
                    if gateway.name
                    else gateway.gateway_id
                )
        schema = vol.Schema(
            {
                vol.Required(CONF_SCAN_INTERVAL): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_SCAN_INTERVAL.total_seconds(),
                        max=MAX_SCAN_INTERVAL.total_seconds(),
                        step=1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="s",
                    )
                ),
                vol.Required(CONF_MONITOR_ALL): BooleanSelector(),
                vol.Optional(CONF_GATEWAYS): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=value, label=label)
                            for value, label in sorted(
                                gateway_options.items(), key=lambda item: item[1]
                            )
                        ],
                        multiple=True,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(
                    CONF_SILENCE_THRESHOLD, default=DEFAULT_SILENCE_THRESHOLD
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_SILENCE_THRESHOLD,
                        max=MAX_SILENCE_THRESHOLD,
                        step=1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="min",
                    )
                ),
            }
        )
        return self.async_show_form(
            step_id="gateways",
            data_schema=self.add_suggested_values_to_schema(schema, current),
            errors=errors,
        )

    def _end_device_names(self) -> list[str]:
        """``application/device`` of every end device in the device registry."""
        entry: TTSConfigEntry = self.config_entry
        return sorted(
            device_key_text(key)
            for device in dr.async_entries_for_config_entry(
                dr.async_get(self.hass), entry.entry_id
            )
            if (key := end_device_key(account_id(entry), device)) is not None
        )

    async def async_step_end_devices(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """End devices of every application: the silence threshold, the cap."""
        entry: TTSConfigEntry = self.config_entry
        if user_input is not None:
            options: dict[str, Any] = {
                CONF_MAX_END_DEVICES: int(
                    user_input.get(CONF_MAX_END_DEVICES, DEFAULT_MAX_END_DEVICES)
                ),
            }
            if threshold := user_input.get(CONF_END_DEVICE_SILENCE_THRESHOLD):
                options[CONF_END_DEVICE_SILENCE_THRESHOLD] = int(threshold)
                return self._save(options)
            return self._save(options, removed=(CONF_END_DEVICE_SILENCE_THRESHOLD,))

        current = {
            CONF_MAX_END_DEVICES: DEFAULT_MAX_END_DEVICES,
            **entry.options,
        }
        fields: dict[Any, Any] = {
            vol.Optional(CONF_END_DEVICE_SILENCE_THRESHOLD): NumberSelector(
                NumberSelectorConfig(
                    min=1,
                    max=MAX_END_DEVICE_SILENCE_THRESHOLD.total_seconds() // 60,
                    step=1,
                    mode=NumberSelectorMode.BOX,
                    unit_of_measurement="min",
                )
            ),
            vol.Optional(CONF_MAX_END_DEVICES): NumberSelector(
                NumberSelectorConfig(
                    min=1, max=MAX_MAX_END_DEVICES, step=1, mode=NumberSelectorMode.BOX
                )
            ),
        }
        return self.async_show_form(
            step_id="end_devices",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), current
            ),
        )

    async def async_step_end_device_decoder(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The decoder of one end device, picked from a list of known devices.

        Choices of devices no longer in the device registry are dropped.
        Going back to Automatic removes the entities of the previous decoder;
        Automatic makes again those it decodes.
        """
        entry: TTSConfigEntry = self.config_entry
        devices = self._end_device_names()
        decoders = {
            device: decoder
            for device, decoder in entry.options.get(CONF_DECODERS, {}).items()
            if device in devices
        }
        if not devices:
            return self.async_abort(reason="no_end_devices")
        if user_input is not None:
            device = user_input["device"]
            decoder = Decoder(user_input["decoder"])
            previous = decoders.pop(device, Decoder.AUTO)
            if decoder is not Decoder.AUTO:
                decoders[device] = decoder
            elif previous != Decoder.AUTO:
                application_id, device_id = device.split("/", 1)
                async_remove_decoder_entities(
                    self.hass,
                    entry.entry_id,
                    account_id(entry),
                    (application_id, device_id),
                    Decoder(previous),
                )
            return self._save({CONF_DECODERS: decoders})
        schema = vol.Schema(
            {
                vol.Required("device"): SelectSelector(
                    SelectSelectorConfig(
                        options=devices, mode=SelectSelectorMode.DROPDOWN
                    )
                ),
                vol.Required("decoder", default=Decoder.AUTO.value): DECODER_SELECTOR,
            }
        )
        return self.async_show_form(step_id="end_device_decoder", data_schema=schema)
