"""Which gateways reach each end device: every gateway of every recent uplink.

Unlike the Best gateway (the loudest of the latest uplink), coverage counts
every gateway in the ``rx_metadata`` of every uplink within ``COVERAGE_WINDOW``.
Traffic Packet Broker forwarded from another network is kept under
``PACKET_BROKER``: it shows that another network reaches the device, but it is
no gateway of the user's own, so it is no fallback (the user neither sees nor
controls it, and roaming can stop at any time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from ..tts import PACKET_BROKER, Uplink
from .state import DeviceKey

# How long an uplink counts towards a device's coverage.
COVERAGE_WINDOW = timedelta(hours=24)
# Gateways remembered per device (the oldest go first): bounds the index.
MAX_GATEWAYS_PER_DEVICE = 100

type CoverageListener = Callable[[], None]


class CoverageIndex:
    """end device -> {gateway ID or PACKET_BROKER: when it last heard it}."""

    def __init__(self, window: timedelta = COVERAGE_WINDOW) -> None:
        """Start empty."""
        self.window = window
        self._heard: dict[DeviceKey, dict[str, datetime]] = {}
        # gateway -> the devices with an entry for it: a gateway's readings
        # look at its own devices, not at every device of the entry.
        self._devices_of: dict[str, dict[DeviceKey, None]] = {}
        self._device_listeners: dict[DeviceKey, list[CoverageListener]] = {}
        self._gateway_listeners: dict[str, list[CoverageListener]] = {}

    # -- Following -------------------------------------------------------------

    @staticmethod
    def _follow[K](
        listeners: dict[K, list[CoverageListener]], key: K, listener: CoverageListener
    ) -> Callable[[], None]:
        listeners.setdefault(key, []).append(listener)

        def unfollow() -> None:
            found = listeners.get(key, [])
            if listener in found:
                found.remove(listener)
            if not found:
                listeners.pop(key, None)

        return unfollow

    def follow_device(
        self, device: DeviceKey, listener: CoverageListener
    ) -> Callable[[], None]:
        """Call listener when the device's coverage changes; returns the undo."""
        return self._follow(self._device_listeners, device, listener)

    def follow_gateway(
        self, gateway_id: str, listener: CoverageListener
    ) -> Callable[[], None]:
        """Call listener when a device the gateway heard changes coverage."""
        return self._follow(self._gateway_listeners, gateway_id, listener)

    # -- Changes ---------------------------------------------------------------

    def record(self, uplink: Uplink, device: DeviceKey, when: datetime) -> None:
        """Every gateway in the uplink's metadata heard the device at when."""
        heard: dict[str, datetime] = {}
        for rx in uplink.rx_metadata:
            if rx.via_packet_broker:
                heard[PACKET_BROKER] = when
            elif rx.gateway_id is not None:
                heard[rx.gateway_id] = when
        self._take(device, heard)

    def restore(self, device: DeviceKey, heard: dict[str, datetime]) -> None:
        """Take back what was saved before a restart; newer entries stay."""
        self._take(device, heard)

    def _take(self, device: DeviceKey, heard: dict[str, datetime]) -> None:
        if not heard:
            return
        entries = self._heard.setdefault(device, {})
        before = set(entries)
        changed = joined = False
        for gateway_id, when in heard.items():
            if (known := entries.get(gateway_id)) is None or known < when:
                entries[gateway_id] = when
                changed = True
                joined = joined or known is None or known <= when - self.window
        if not changed:
            return
        # The newest entry minus the window: older ones can never count again.
        cutoff = max(entries.values()) - self.window
        for gateway_id in [key for key, when in entries.items() if when <= cutoff]:
            del entries[gateway_id]
        while len(entries) > MAX_GATEWAYS_PER_DEVICE:
            del entries[min(entries, key=entries.__getitem__)]
        for gateway_id in entries.keys() - before:
            self._devices_of.setdefault(gateway_id, {})[device] = None
        for gateway_id in before - entries.keys():
            devices = self._devices_of[gateway_id]
            del devices[device]
            if not devices:
                del self._devices_of[gateway_id]
        # A gateway that heard the device again changes no reading (its
        # expiry timers find the later time); one that joins or leaves does.
        if joined or before != entries.keys():
            self._notify(device, before | set(entries))

    def renamed(self, device: DeviceKey) -> None:
        """The device's name changed: the gateways that list it read it again."""
        if entries := self._heard.get(device):
            self._notify(device, list(entries))

    def _notify(self, device: DeviceKey, gateway_ids: Iterable[str]) -> None:
        called: list[CoverageListener] = list(self._device_listeners.get(device, ()))
        for gateway_id in gateway_ids:
            called.extend(self._gateway_listeners.get(gateway_id, ()))
        for listener in called:
            listener()

    # -- Reading ---------------------------------------------------------------

    def heard(self, device: DeviceKey, now: datetime) -> dict[str, datetime]:
        """Gateways (and PACKET_BROKER) that heard the device within the window."""
        cutoff = now - self.window
        return {
            gateway_id: when
            for gateway_id, when in self._heard.get(device, {}).items()
            if when > cutoff
        }

    def own_gateways(self, device: DeviceKey, now: datetime) -> set[str]:
        """The gateways (not Packet Broker) that heard the device lately."""
        return set(self.heard(device, now)) - {PACKET_BROKER}

    def only_heard_by(self, gateway_id: str, now: datetime) -> list[DeviceKey]:
        """The devices no other own gateway heard within the window."""
        cutoff = now - self.window
        return [
            device
            for device in self._devices_of.get(gateway_id, ())
            if self._heard[device][gateway_id] > cutoff
            and not any(
                when > cutoff
                for other, when in self._heard[device].items()
                if other not in (gateway_id, PACKET_BROKER)
            )
        ]

    def expires_at(self, device: DeviceKey, now: datetime) -> datetime | None:
        """When the device's next entry leaves the window; None without one."""
        heard = self.heard(device, now)
        return min(heard.values()) + self.window if heard else None

    def gateway_expires_at(self, gateway_id: str, now: datetime) -> datetime | None:
        """The next expiry among devices the gateway heard (it may change them)."""
        cutoff = now - self.window
        moments = [
            min(when for when in self._heard[device].values() if when > cutoff)
            for device in self._devices_of.get(gateway_id, ())
            if self._heard[device][gateway_id] > cutoff
        ]
        return min(moments) + self.window if moments else None
