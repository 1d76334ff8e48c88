"""A simulator of The Things Stack v3 API, its gateways and end devices.

Run it with ``python -m tts_simulator``; use `Simulator` in-process in tests.
"""

from __future__ import annotations

from .core import (
    Action,
    Endpoint,
    EventSubscription,
    Fault,
    FaultKind,
    MqttMessage,
    ReconnectOrder,
    Request,
    Response,
    Simulator,
    StatsSource,
)
from .devices import DeviceKind, EndDevice, make_devices
from .fleet import (
    NO_RIGHTS,
    NOT_CONNECTED,
    GatewayState,
    ManualClock,
    SimGateway,
    make_fleet,
)

__all__ = [
    "NOT_CONNECTED",
    "NO_RIGHTS",
    "Action",
    "DeviceKind",
    "EndDevice",
    "Endpoint",
    "EventSubscription",
    "Fault",
    "FaultKind",
    "GatewayState",
    "ManualClock",
    "MqttMessage",
    "ReconnectOrder",
    "Request",
    "Response",
    "SimGateway",
    "Simulator",
    "StatsSource",
    "make_devices",
    "make_fleet",
]
