"""Entity descriptions of an end device's sensors and binary sensors.

Radio figures and timing change with every uplink: they are diagnostic and
disabled by default, so that Home Assistant's logbook (which lists every
change of a sensor without unit or state class) keeps to what a user looks
for: the device falling silent or sending again, readings and downlinks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfFrequency,
    UnitOfTime,
)

from .decoders import Decoder, ReadingDescription
from .end_devices import LAST_DOWNLINK_KEY, EndDevice
from .end_devices.registry import DECODER_KEY, SILENT_KEY
from .tts import DownlinkStatus

type SensorValue = str | int | float | datetime | None


@dataclass(frozen=True, kw_only=True)
class EndDeviceSensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of an end device."""

    value_fn: Callable[[EndDevice], SensorValue]
    # Decoded readings keep their value when an uplink does not carry them.
    keep_last: bool = False


@dataclass(frozen=True, kw_only=True)
class EndDeviceBinarySensorEntityDescription(BinarySensorEntityDescription):
    """Describes a decoded on/off reading of an end device."""

    is_on_fn: Callable[[EndDevice], bool | None]


def _best_rx[T](getter: Callable[[Any], T]) -> Callable[[EndDevice], T | None]:
    def value(device: EndDevice) -> T | None:
        if device.uplink is None or (best := device.uplink.best_rx) is None:
            return None
        return getter(best)

    return value


def _airtime_ms(device: EndDevice) -> float | None:
    if device.uplink is None or device.uplink.consumed_airtime is None:
        return None
    return round(device.uplink.consumed_airtime * 1000, 3)


def _uplink[T](getter: Callable[[Any], T]) -> Callable[[EndDevice], T | None]:
    def value(device: EndDevice) -> T | None:
        return None if device.uplink is None else getter(device.uplink)

    return value


RADIO_SENSORS: dict[str, EndDeviceSensorEntityDescription] = {
    description.key: description
    for description in (
        EndDeviceSensorEntityDescription(
            key="rssi",
            translation_key="rssi",
            entity_registry_enabled_default=False,
            device_class=SensorDeviceClass.SIGNAL_STRENGTH,
            native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
            state_class=SensorStateClass.MEASUREMENT,
            entity_category=EntityCategory.DIAGNOSTIC,
            suggested_display_precision=0,
            value_fn=_best_rx(lambda rx: rx.rssi),
        ),
        EndDeviceSensorEntityDescription(
            key="snr",
            translation_key="snr",
            entity_registry_enabled_default=False,
            native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS,
            state_class=SensorStateClass.MEASUREMENT,
            entity_category=EntityCategory.DIAGNOSTIC,
            suggested_display_precision=1,
            value_fn=_best_rx(lambda rx: rx.snr),
        ),
        EndDeviceSensorEntityDescription(
            key="spreading_factor",
            translation_key="spreading_factor",
            entity_registry_enabled_default=False,
            state_class=SensorStateClass.MEASUREMENT,
            entity_category=EntityCategory.DIAGNOSTIC,
            value_fn=_uplink(lambda uplink: uplink.spreading_factor),
        ),
        EndDeviceSensorEntityDescription(
            key="frequency",
            translation_key="frequency",
            entity_registry_enabled_default=False,
            device_class=SensorDeviceClass.FREQUENCY,
            native_unit_of_measurement=UnitOfFrequency.MEGAHERTZ,
            suggested_display_precision=1,
            entity_category=EntityCategory.DIAGNOSTIC,
            value_fn=_uplink(
                lambda uplink: None
                if uplink.frequency is None
                else uplink.frequency / 1_000_000
            ),
        ),
        EndDeviceSensorEntityDescription(
            key="frame_counter",
            translation_key="frame_counter",
            # Restarts when the device rejoins: neither a total nor a
            # measurement, and of no use in statistics.
            entity_registry_enabled_default=False,
            entity_category=EntityCategory.DIAGNOSTIC,
            value_fn=_uplink(lambda uplink: uplink.f_cnt),
        ),
        EndDeviceSensorEntityDescription(
            key="gateway_count",
            translation_key="gateway_count",
            entity_registry_enabled_default=False,
            state_class=SensorStateClass.MEASUREMENT,
            entity_category=EntityCategory.DIAGNOSTIC,
            value_fn=_uplink(lambda uplink: len(uplink.rx_metadata)),
        ),
        EndDeviceSensorEntityDescription(
            key="airtime",
            translation_key="airtime",
            entity_registry_enabled_default=False,
            device_class=SensorDeviceClass.DURATION,
            native_unit_of_measurement=UnitOfTime.MILLISECONDS,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            entity_category=EntityCategory.DIAGNOSTIC,
            value_fn=_airtime_ms,
        ),
        EndDeviceSensorEntityDescription(
            key="last_seen",
            translation_key="last_seen",
            device_class=SensorDeviceClass.TIMESTAMP,
            entity_registry_enabled_default=False,
            entity_category=EntityCategory.DIAGNOSTIC,
            value_fn=lambda device: device.last_seen,
        ),
    )
}
LAST_DOWNLINK = EndDeviceSensorEntityDescription(
    key=LAST_DOWNLINK_KEY,
    translation_key=LAST_DOWNLINK_KEY,
    device_class=SensorDeviceClass.ENUM,
    options=[status.value for status in DownlinkStatus],
    value_fn=lambda device: (
        None if device.last_downlink is None else device.last_downlink.status.value
    ),
)
BATTERY = EndDeviceSensorEntityDescription(
    key="battery",
    translation_key="battery",
    device_class=SensorDeviceClass.BATTERY,
    native_unit_of_measurement=PERCENTAGE,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=0,
    value_fn=_uplink(lambda uplink: uplink.last_battery_percentage),
    keep_last=True,
)
DECODER = EndDeviceSensorEntityDescription(
    key=DECODER_KEY,
    translation_key=DECODER_KEY,
    device_class=SensorDeviceClass.ENUM,
    options=[decoder.value for decoder in Decoder if decoder is not Decoder.AUTO],
    entity_category=EntityCategory.DIAGNOSTIC,
    value_fn=lambda device: (
        None if device.decoder_used is None else device.decoder_used.value
    ),
    keep_last=True,
)
BEST_GATEWAY = EndDeviceSensorEntityDescription(
    key="best_gateway",
    translation_key="best_gateway",
    entity_registry_enabled_default=False,
    entity_category=EntityCategory.DIAGNOSTIC,
    # The name needs the gateway store: EndDeviceBestGatewaySensor sets it.
    value_fn=lambda _device: None,
)
# On once the device sent nothing for longer than its silence threshold; the
# name and translation are those of a gateway's Silent sensor.
SILENT = BinarySensorEntityDescription(
    key=SILENT_KEY,
    translation_key="silent",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


def _description_fields(reading: ReadingDescription) -> dict[str, Any]:
    """Entity description fields of a reading; the name only when it has one."""
    fields: dict[str, Any] = {
        "key": reading.key,
        "translation_key": reading.translation_key,
        "translation_placeholders": reading.translation_placeholders,
        "device_class": reading.device_class,
        "entity_category": reading.entity_category,
    }
    if reading.name is not None:
        fields["name"] = reading.name
    if reading.options is not None:
        fields["options"] = list(reading.options)
    return fields


def reading_sensor_description(
    reading: ReadingDescription,
) -> EndDeviceSensorEntityDescription:
    """The sensor description of a decoded reading."""
    key = reading.key

    def value(device: EndDevice) -> SensorValue:
        found = device.readings.get(key)
        return None if found is None else found.value

    return EndDeviceSensorEntityDescription(
        **_description_fields(reading),
        native_unit_of_measurement=reading.unit,
        state_class=reading.state_class,
        suggested_display_precision=reading.precision,
        value_fn=value,
        keep_last=True,
    )


def reading_binary_sensor_description(
    reading: ReadingDescription,
) -> EndDeviceBinarySensorEntityDescription:
    """The binary sensor description of a decoded on/off reading."""
    key = reading.key

    def is_on(device: EndDevice) -> bool | None:
        found = device.readings.get(key)
        return None if found is None else bool(found.value)

    return EndDeviceBinarySensorEntityDescription(
        **_description_fields(reading), is_on_fn=is_on
    )
