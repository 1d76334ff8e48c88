"""Rights as The Things Stack Console shows them, for messages.

The Console labels each right with its description in lorawan-stack
``api/ttn/lorawan/v3/rights.proto`` ("The right to view gateway status." is
*View gateway status*). Messages show that label and TTS's name, so a user
finds the checkbox and the name the documentation uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .rights import Right

CONSOLE_NAMES: Final[dict[str, str]] = {
    Right.USER_GATEWAYS_LIST: "List gateways the user is a collaborator of",
    Right.ORGANIZATION_GATEWAYS_LIST: (
        "List the gateways the organization is a collaborator of"
    ),
    Right.GATEWAY_INFO: "View gateway information",
    Right.GATEWAY_STATUS_READ: "View gateway status",
    Right.GATEWAY_TRAFFIC_READ: "Read gateway traffic",
    Right.APPLICATION_INFO: "View application information",
    Right.APPLICATION_DEVICES_READ: "View devices in application",
    Right.APPLICATION_TRAFFIC_READ: "Read application traffic (uplink and downlink)",
    Right.APPLICATION_TRAFFIC_DOWN_WRITE: "Write downlink application traffic",
}


def console_rights(rights: Iterable[str]) -> str:
    """Rights as the Console labels them, each with TTS's name."""
    return ", ".join(
        f"{CONSOLE_NAMES[right]} ({right})" if right in CONSOLE_NAMES else right
        for right in rights
    )
