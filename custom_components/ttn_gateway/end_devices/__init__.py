"""End devices: the uplinks of the entry's TTS applications.

The manager ties the parts together: ``applications`` reads the application
sub-entries; each has a source of messages, ``direct`` (TTS's MQTT server)
or ``subscription`` (Home Assistant's MQTT integration), and with the right
to read devices a ``catalogue`` of its devices. ``intake`` turns messages
into device updates within the caps, ``state`` holds what is known of each
device, and ``registry`` keeps this entry's own registry entries in order.
Entities (``entity.EndDeviceEntity`` and the platforms) follow the devices
and write their state only when it changed.
"""

from .downlinks import DownlinkNotSentError
from .manager import EndDeviceManager
from .registry import (
    LAST_DOWNLINK_KEY,
    device_key_text,
    end_device_key,
    is_end_device,
)
from .state import DeviceKey, EndDevice, EndDeviceListener

__all__ = [
    "LAST_DOWNLINK_KEY",
    "DeviceKey",
    "DownlinkNotSentError",
    "EndDevice",
    "EndDeviceListener",
    "EndDeviceManager",
    "device_key_text",
    "end_device_key",
    "is_end_device",
]
