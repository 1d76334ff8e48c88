"""API key rights and ``GET /api/v3/auth_info`` (lorawan-stack ``pkg/ttnpb/rights.go``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from .primitives import as_list, as_mapping, parse_str


class Right(StrEnum):
    """The API key rights this project asks for."""

    USER_GATEWAYS_LIST = "RIGHT_USER_GATEWAYS_LIST"
    ORGANIZATION_GATEWAYS_LIST = "RIGHT_ORGANIZATION_GATEWAYS_LIST"
    GATEWAY_INFO = "RIGHT_GATEWAY_INFO"
    GATEWAY_STATUS_READ = "RIGHT_GATEWAY_STATUS_READ"
    GATEWAY_TRAFFIC_READ = "RIGHT_GATEWAY_TRAFFIC_READ"
    APPLICATION_INFO = "RIGHT_APPLICATION_INFO"
    APPLICATION_DEVICES_READ = "RIGHT_APPLICATION_DEVICES_READ"
    APPLICATION_TRAFFIC_READ = "RIGHT_APPLICATION_TRAFFIC_READ"
    APPLICATION_TRAFFIC_DOWN_WRITE = "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE"


class KeyOwnerType(StrEnum):
    """Which kind of entity an API key belongs to."""

    USER = "user"
    ORGANIZATION = "organization"
    GATEWAY = "gateway"
    APPLICATION = "application"
    END_DEVICE = "end_device"
    CLIENT = "client"
    UNKNOWN = "unknown"


_OWNER_KEYS: tuple[tuple[str, str, KeyOwnerType], ...] = (
    ("user_ids", "user_id", KeyOwnerType.USER),
    ("organization_ids", "organization_id", KeyOwnerType.ORGANIZATION),
    ("gateway_ids", "gateway_id", KeyOwnerType.GATEWAY),
    ("application_ids", "application_id", KeyOwnerType.APPLICATION),
    ("device_ids", "device_id", KeyOwnerType.END_DEVICE),
    ("client_ids", "client_id", KeyOwnerType.CLIENT),
)


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """Who an API key belongs to and what it may do."""

    owner_type: KeyOwnerType
    owner_id: str
    rights: frozenset[str]
    key_name: str | None = None

    @classmethod
    def from_json(cls, data: object) -> AuthInfo:
        """Parse ``GET /api/v3/auth_info`` for an API key."""
        api_key = as_mapping(as_mapping(data).get("api_key"))
        entity_ids = as_mapping(api_key.get("entity_ids"))
        key = as_mapping(api_key.get("api_key"))
        owner_type, owner_id = KeyOwnerType.UNKNOWN, ""
        for container, id_field, kind in _OWNER_KEYS:
            ids = as_mapping(entity_ids.get(container))
            if (value := parse_str(ids.get(id_field))) is not None:
                owner_type, owner_id = kind, value
                break
        return cls(
            owner_type=owner_type,
            owner_id=owner_id,
            rights=frozenset(
                right for right in as_list(key.get("rights")) if isinstance(right, str)
            ),
            key_name=parse_str(key.get("name")),
        )

    def grants(self, right: Right) -> bool:
        """Whether the key has a right, directly or through a pseudo-right."""
        return not implied_by(right).isdisjoint(self.rights)

    def missing_rights(self, needed: Iterable[Right]) -> list[Right]:
        """The rights of ``needed`` that the key lacks, in the order given."""
        return [right for right in needed if not self.grants(right)]


# TTS's pseudo-rights and the group of rights each implies: every right whose
# name starts with the prefix (lorawan-stack ``pkg/ttnpb/rights.go``). A
# user's or organization's "all" right covers only that entity's own rights
# (such as listing its gateways), not rights on the gateways themselves.
# ``RIGHT_ALL`` implies every right.
_PSEUDO_RIGHTS: tuple[tuple[str, str], ...] = (
    ("RIGHT_USER_ALL", "RIGHT_USER_"),
    ("RIGHT_ORGANIZATION_ALL", "RIGHT_ORGANIZATION_"),
    ("RIGHT_GATEWAY_ALL", "RIGHT_GATEWAY_"),
    ("RIGHT_APPLICATION_ALL", "RIGHT_APPLICATION_"),
)
# Rights implied by a single ordinary right (lorawan-stack
# ``api/ttn/lorawan/v3/rights.proto``): a gateway's link right implies
# RIGHT_GATEWAY_INFO; an application's link right implies
# RIGHT_APPLICATION_INFO, RIGHT_APPLICATION_TRAFFIC_READ and
# RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE. Keyed by the right implied.
_IMPLIED_BY_RIGHT: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "RIGHT_GATEWAY_INFO": frozenset({"RIGHT_GATEWAY_LINK"}),
        "RIGHT_APPLICATION_INFO": frozenset({"RIGHT_APPLICATION_LINK"}),
        "RIGHT_APPLICATION_TRAFFIC_READ": frozenset({"RIGHT_APPLICATION_LINK"}),
        "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE": frozenset({"RIGHT_APPLICATION_LINK"}),
    }
)


def implied_by(right: Right) -> frozenset[str]:
    """Every right a key may hold that grants ``right``: itself included."""
    holders = {right.value, "RIGHT_ALL"}
    holders.update(
        pseudo for pseudo, prefix in _PSEUDO_RIGHTS if right.startswith(prefix)
    )
    holders.update(_IMPLIED_BY_RIGHT.get(right.value, ()))
    return frozenset(holders)
