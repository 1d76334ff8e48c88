"""The TTS applications of an entry, one config sub-entry each.

An application's uplinks arrive either directly from The Things Stack's MQTT
server or through Home Assistant's MQTT integration. An entry migrated from
before sub-entries has one sub-entry of the second kind without an
application ID: it takes every application on its topic (optionally only
those listed), as the entry did before.

An application's key is used only on the server it was checked on, which
the sub-entry stores. One whose server is not the account's (the account was
reconfigured to another server) is left out until it has a key checked on
the account's server. A sub-entry without a stored server (added before
servers were stored) counts as checked on the account's server; the
account's reconfigure stores that server in it before changing the account's.

On a cloud, an application's devices may be served by another cluster than
the account's (the Identity Server is shared): the sub-entry stores it, and
its Application Server calls and MQTT connection go there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_API_KEY

from ..const import (
    CONF_APPLICATION_ID,
    CONF_APPLICATIONS,
    CONF_CLUSTER,
    CONF_MQTT_HOST,
    CONF_MQTT_PORT,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_UPLINK_TOPIC,
    DEFAULT_UPLINK_TOPIC,
    SUBENTRY_APPLICATION,
    TRANSPORT_DIRECT,
)
from ..tts import MqttSettings, Right, TTSServer, implied_by, mqtt_settings


@dataclass(frozen=True, slots=True)
class ApplicationConfig:
    """One application sub-entry, as the end device manager uses it."""

    subentry_id: str
    title: str
    transport: str
    # None: every application on the uplink topic (a migrated entry).
    application_id: str | None
    # Never in repr: a config may end up in a log line or a traceback.
    api_key: str | None = field(default=None, repr=False)
    uplink_topic: str | None = None
    # With no application ID: only these applications, or all when empty.
    applications: frozenset[str] = frozenset()
    rights: frozenset[str] = frozenset()
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    mqtt_username: str | None = None
    mqtt_tls: bool | None = None
    # The URL of the server the key was checked on; None: the account's.
    server: str | None = None
    # The URL of the cloud cluster serving the application; None: the account's.
    cluster: str | None = None

    @classmethod
    def from_subentry(cls, subentry: ConfigSubentry) -> ApplicationConfig:
        """Read a sub-entry's data."""
        return cls.from_data(subentry.subentry_id, subentry.title, subentry.data)

    @classmethod
    def from_data(
        cls, subentry_id: str, title: str, data: Mapping[str, Any]
    ) -> ApplicationConfig:
        """Read sub-entry data (also a flow's data before it is saved)."""
        port = data.get(CONF_MQTT_PORT)
        tls = data.get(CONF_MQTT_TLS)
        return cls(
            subentry_id=subentry_id,
            title=title,
            transport=str(data.get(CONF_TRANSPORT, TRANSPORT_DIRECT)),
            application_id=data.get(CONF_APPLICATION_ID) or None,
            api_key=data.get(CONF_API_KEY) or None,
            uplink_topic=data.get(CONF_UPLINK_TOPIC) or None,
            applications=frozenset(data.get(CONF_APPLICATIONS) or ()),
            rights=frozenset(data.get(CONF_RIGHTS) or ()),
            mqtt_host=data.get(CONF_MQTT_HOST) or None,
            mqtt_port=None if port is None else int(port),
            mqtt_username=data.get(CONF_MQTT_USERNAME) or None,
            mqtt_tls=None if tls is None else bool(tls),
            server=data.get(CONF_SERVER) or None,
            cluster=data.get(CONF_CLUSTER) or None,
        )

    @property
    def direct(self) -> bool:
        """Whether uplinks come straight from TTS's MQTT server."""
        return self.transport == TRANSPORT_DIRECT and self.application_id is not None

    @property
    def topic(self) -> str:
        """The topic filter on Home Assistant's MQTT broker."""
        return self.uplink_topic or DEFAULT_UPLINK_TOPIC

    def key_belongs_to(self, server_url: str) -> bool:
        """Whether the key may be sent to the server (it was checked there)."""
        return self.api_key is None or self.server in (None, server_url)

    def grants(self, right: Right) -> bool:
        """Whether the application's key had the right when last checked."""
        return not implied_by(right).isdisjoint(self.rights)

    def takes(self, application_id: str) -> bool:
        """Whether uplinks of this application belong to this sub-entry."""
        if self.application_id is not None:
            return application_id == self.application_id
        return not self.applications or application_id in self.applications

    def application_server(self, account: TTSServer) -> TTSServer:
        """Where the application's Application Server calls go.

        Its cluster when that is one of the account's cloud (the key is
        valid there, and was checked there by the flow); else the account's
        server.
        """
        return account.same_cloud(self.cluster) or account

    def mqtt_settings(self, server: TTSServer) -> MqttSettings:
        """Where the direct connection goes: the server's, with the overrides.

        ``server`` is the application's (see ``application_server``).
        """
        if self.application_id is None:  # pragma: no cover - direct needs an ID
            raise ValueError("a direct connection needs an application ID")
        return mqtt_settings(
            server,
            self.application_id,
            host=self.mqtt_host,
            port=self.mqtt_port,
            tls=self.mqtt_tls,
            username=self.mqtt_username,
        )


def application_configs(entry: ConfigEntry) -> list[ApplicationConfig]:
    """The entry's usable application sub-entries, those with an ID first.

    Left out: those whose key was checked on another server than the entry's.
    """
    configs = [
        config
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_APPLICATION
        and (config := ApplicationConfig.from_subentry(subentry)).key_belongs_to(
            entry.data[CONF_SERVER]
        )
    ]
    return sorted(configs, key=lambda config: config.application_id is None)


def subentry_for(
    configs: Iterable[ApplicationConfig], application_id: str
) -> ApplicationConfig | None:
    """The sub-entry an application's devices belong to.

    An application with its own sub-entry belongs there; any other goes to a
    sub-entry that takes every application (a migrated entry's), if any.
    """
    return next((config for config in configs if config.takes(application_id)), None)


def console_base(
    configs: Iterable[ApplicationConfig],
    account: TTSServer,
    application_id: str,
    cluster_address: str | None,
) -> str:
    """The Console for an application's device.

    That of the cluster that served its uplink when it is of the account's
    cloud, else that of the application's cluster.
    """
    config = subentry_for(configs, application_id)
    home = account if config is None else config.application_server(account)
    return home.gateway_server_url(cluster_address)


def allowed_applications(configs: list[ApplicationConfig]) -> frozenset[str]:
    """The applications whose uplinks are taken; empty for all."""
    allowed: set[str] = set()
    for config in configs:
        if config.application_id is not None:
            allowed.add(config.application_id)
        elif not config.applications:
            return frozenset()
        else:
            allowed.update(config.applications)
    return frozenset(allowed)
