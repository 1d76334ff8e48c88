"""Which end devices each gateway heard lately, for the End devices heard sensor.

Every uplink the intake takes marks its device as heard by each gateway in
its radio metadata (any of them, not only the loudest; Packet Broker is not
a gateway). Only gateways something follows are indexed (a gateway's End
devices heard sensor), and only devices the intake took (within the
end-device cap) are recorded: the index holds at most one entry per followed
gateway and end device. Entries older than ``HEARD_WINDOW`` are dropped when
the gateway is read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ..tts import Uplink
from .state import DeviceKey

# How long an end device counts as heard by a gateway after its uplink.
HEARD_WINDOW = timedelta(hours=24)

type HeardListener = Callable[[], None]


class HeardIndex:
    """gateway ID -> {end device: when the gateway last heard it}."""

    def __init__(self, window: timedelta = HEARD_WINDOW) -> None:
        """Start empty; nothing is indexed until a gateway is followed."""
        self.window = window
        self._heard: dict[str, dict[DeviceKey, datetime]] = {}
        self._listeners: dict[str, list[HeardListener]] = {}

    def follow(self, gateway_id: str, listener: HeardListener) -> Callable[[], None]:
        """Index the gateway and call listener when it hears a device.

        Returns the function that stops following; the gateway's entries
        are dropped with its last listener.
        """
        self._listeners.setdefault(gateway_id, []).append(listener)
        self._heard.setdefault(gateway_id, {})

        def unfollow() -> None:
            listeners = self._listeners.get(gateway_id, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._listeners.pop(gateway_id, None)
                self._heard.pop(gateway_id, None)

        return unfollow

    def restore(self, gateway_id: str, device: DeviceKey, when: datetime) -> None:
        """Take back an entry saved before a restart, unless a newer one is there."""
        heard = self._heard.get(gateway_id)
        if heard is None or device in heard:
            return
        heard[device] = when

    def record(self, uplink: Uplink, device: DeviceKey, when: datetime) -> None:
        """The followed gateways in the uplink's metadata heard the device."""
        notified: set[str] = set()
        for rx in uplink.rx_metadata:
            gateway_id = rx.gateway_id
            if (
                gateway_id is None
                or rx.via_packet_broker
                or gateway_id in notified
                or (heard := self._heard.get(gateway_id)) is None
            ):
                continue
            known = heard.get(device)
            heard[device] = when
            # Heard again later within the window: no count or name changes
            # (the sensor's expiry timer finds the later time).
            if known is None or when < known or known <= when - self.window:
                notified.add(gateway_id)
        for gateway_id in notified:
            for listener in list(self._listeners.get(gateway_id, ())):
                listener()

    def heard_by(self, gateway_id: str, now: datetime) -> dict[DeviceKey, datetime]:
        """The devices the gateway heard within the window, and when."""
        heard = self._heard.get(gateway_id)
        if heard is None:
            return {}
        cutoff = now - self.window
        for device in [device for device, when in heard.items() if when <= cutoff]:
            del heard[device]
        return dict(heard)

    def expires_at(self, gateway_id: str) -> datetime | None:
        """When the gateway's oldest entry leaves the window; None without one."""
        heard = self._heard.get(gateway_id)
        if not heard:
            return None
        return min(heard.values()) + self.window
