"""Which cluster's Application Server serves an application.

On The Things Network and The Things Stack Cloud the Identity Server is
shared, but each end device is registered on the Application Server of one
cluster: the Identity Server's end device registry stores its address as
``application_server_address`` (``host[:port]``, empty when not set;
lorawan-stack ``api/ttn/lorawan/v3/end_device.proto``, ``EndDevice`` field 10,
"Stored in Entity Registry"). An application may name the address its new
devices should use (``Application.application_server_address``,
``application.proto`` field 13). Only the Identity Server answers these
(docs: concepts/ttn/addresses, "Identity Server APIs are only available in
the eu1 cluster").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
import re
from typing import Any, Final

from .servers import TTSServer

# The field asked of the device list and of the application.
APPLICATION_SERVER_FIELD: Final = "application_server_address"
# end_device.proto's pattern for the address: host names with an optional port.
_ADDRESS = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])(?::[0-9]{1,5})?"
)


def _host(value: Any) -> str | None:
    """The host of an address as TTS stores it; None for anything else."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        return None
    return value.split(":", 1)[0].lower()


def device_application_servers(body: Any) -> list[str]:
    """The Application Server hosts a device list page names, one per device.

    Devices without an address (or an unreadable one) are left out.
    """
    items = body.get("end_devices") if isinstance(body, Mapping) else None
    if not isinstance(items, list):
        return []
    hosts = (
        _host(item.get(APPLICATION_SERVER_FIELD))
        for item in items
        if isinstance(item, Mapping)
    )
    return [host for host in hosts if host]


def application_server(body: Any) -> str | None:
    """The Application Server host an application names for its devices."""
    if not isinstance(body, Mapping):
        return None
    return _host(body.get(APPLICATION_SERVER_FIELD))


@dataclass(frozen=True, slots=True)
class ClusterDetection:
    """The cluster an application's devices use, and how they are spread."""

    # None: no device and not the application names a cluster of the cloud.
    cluster: TTSServer | None
    # Devices per cluster host (those of this cloud only), most first.
    devices: Mapping[str, int]

    @property
    def spread(self) -> bool:
        """Whether the devices are registered on more than one cluster."""
        return len(self.devices) > 1


def detect_cluster(
    server: TTSServer, device_hosts: list[str], application_host: str | None
) -> ClusterDetection:
    """The cluster most of the application's devices use, of the server's cloud.

    Devices spread over clusters: the one with the most devices (the first
    in the list on a tie). No device names one: the application's own
    address. Addresses outside the server's cloud are ignored: the key is
    valid there only.
    """
    counts: Counter[str] = Counter()
    for host in device_hosts:
        if (cluster := server.same_cloud(host)) is not None:
            counts[cluster.host] += 1
    if counts:
        devices = dict(counts.most_common())
        return ClusterDetection(TTSServer(f"https://{next(iter(devices))}"), devices)
    return ClusterDetection(server.same_cloud(application_host), {})
