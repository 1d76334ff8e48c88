"""Where a TTS deployment answers which call.

The Things Network and The Things Industries Cloud run several clusters. Their
Identity Server (gateway registry, ``auth_info``) lives only in ``eu1``, while
connection stats must be asked of the cluster a gateway is connected to, which
the gateway's ``gateway_server_address`` names. A self-hosted server answers
everything at the configured URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, quote, urlsplit

TTN_CLUSTERS: tuple[str, ...] = ("eu1", "nam1", "au1")
# The Things Stack Cloud's clusters (docs: cloud/addresses, its tenant and
# cluster selector).
TTI_CLUSTERS: tuple[str, ...] = ("eu1", "eu2", "nam1", "au1", "as1")
TTN_DOMAIN = "cloud.thethings.network"
TTI_DOMAIN = "cloud.thethings.industries"
IDENTITY_SERVER_CLUSTER = "eu1"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidServerError(ValueError):
    """The server is neither a TTN cluster nor a usable http(s) URL."""


def _split(value: str) -> SplitResult:
    """Split a URL or bare host; a bare host gets https."""
    text = value.strip()
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018  # validates the port
    except ValueError as err:
        raise InvalidServerError("invalid port") from err
    return parts


@dataclass(frozen=True, slots=True)
class TTSServer:
    """A TTS deployment, addressed by its normalised base URL."""

    url: str

    @classmethod
    def parse(cls, value: str) -> TTSServer:
        """Normalise a TTN cluster name, a bare host or an http(s) URL."""
        text = value.strip().lower()
        if text in TTN_CLUSTERS:
            return cls(f"https://{text}.{TTN_DOMAIN}")
        if not text:
            raise InvalidServerError("empty server")
        parts = _split(text)
        if parts.scheme not in ("http", "https"):
            raise InvalidServerError("scheme must be http or https")
        if not parts.hostname or any(c in parts.hostname for c in " _/\\@"):
            raise InvalidServerError("missing or invalid host")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise InvalidServerError("credentials, query or fragment in URL")
        path = parts.path.rstrip("/")
        for suffix in ("/api/v3", "/console"):
            path = path.removesuffix(suffix)
        if path:
            raise InvalidServerError("URL must not contain a path")
        netloc = parts.hostname
        if ":" in netloc:  # IPv6 literal
            netloc = f"[{netloc}]"
        if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
            netloc = f"{netloc}:{parts.port}"
        return cls(f"{parts.scheme}://{netloc}")

    @property
    def host(self) -> str:
        """Host and port (when not default) of the server."""
        return urlsplit(self.url).netloc

    @property
    def _cloud(self) -> tuple[str, str] | None:
        """(prefix before the cluster, cloud domain) for TTN/TTI cloud hosts."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.scheme != "https" or parts.port is not None:
            return None
        for domain in (TTN_DOMAIN, TTI_DOMAIN):
            if host.endswith(f".{domain}"):
                labels = host.removesuffix(f".{domain}").split(".")
                # TTN: <cluster>; TTI: <tenant>.<cluster>
                expected = 1 if domain == TTN_DOMAIN else 2
                if len(labels) == expected:
                    return ".".join(labels[:-1]), domain
        return None

    @property
    def hostname(self) -> str:
        """The server's host name, without port."""
        return urlsplit(self.url).hostname or ""

    @property
    def tenant(self) -> str | None:
        """The tenant of a cloud host: ``ttn`` on The Things Network, else None."""
        if (cloud := self._cloud) is None:
            return None
        tenant, domain = cloud
        return "ttn" if domain == TTN_DOMAIN else tenant

    @property
    def is_the_things_network(self) -> bool:
        """Whether this is a community cluster of The Things Network."""
        cloud = self._cloud
        return cloud is not None and cloud[1] == TTN_DOMAIN

    @property
    def is_cloud(self) -> bool:
        """Whether this is a TTN or TTI Cloud cluster."""
        return self._cloud is not None

    @property
    def identity_server_url(self) -> str:
        """Base URL for registry calls (``/gateways``, ``/auth_info``)."""
        if (cloud := self._cloud) is None:
            return self.url
        tenant, domain = cloud
        labels = [label for label in (tenant, IDENTITY_SERVER_CLUSTER) if label]
        return f"https://{'.'.join(labels)}.{domain}"

    @property
    def cluster_id(self) -> str | None:
        """The cluster of a cloud host (``nam1``), else None."""
        if (cloud := self._cloud) is None:
            return None
        return self.hostname.removesuffix(f".{cloud[1]}").rsplit(".", 1)[-1]

    @property
    def clusters(self) -> tuple[TTSServer, ...]:
        """Every known cluster of this cloud and tenant; a self-hosted server alone."""
        if (cloud := self._cloud) is None:
            return (self,)
        tenant, domain = cloud
        names = TTN_CLUSTERS if domain == TTN_DOMAIN else TTI_CLUSTERS
        return tuple(
            TTSServer(f"https://{'.'.join(filter(None, (tenant, name)))}.{domain}")
            for name in names
        )

    def same_cloud(self, address: str | None) -> TTSServer | None:
        """The cluster of this cloud and tenant an address names, else None.

        The address is ``host[:port]`` or a URL. One API key is valid on every cluster of a cloud (their Identity Server
        is shared), and on no other host.
        """
        return _same_cloud(self, address)

    def gateway_server_url(self, gateway_server_address: str | None) -> str:
        """Base URL for the connection stats of a gateway.

        On cloud hosts a gateway connected to another cluster of the same cloud
        (and tenant) is asked there; anything else goes to the configured URL.
        """
        return _gateway_server_url(self, gateway_server_address)

    def console_url(self, gateway_id: str, gateway_server_address: str | None) -> str:
        """The gateway's page in the TTS Console."""
        base = self.gateway_server_url(gateway_server_address)
        return f"{base}/console/gateways/{quote(gateway_id, safe='')}"


# Asked for every gateway at every poll, with a handful of distinct addresses.
@lru_cache(maxsize=1024)
def _gateway_server_url(server: TTSServer, gateway_server_address: str | None) -> str:
    other = _same_cloud(server, gateway_server_address)
    return server.url if other is None else other.url


def _same_cloud(server: TTSServer, address: str | None) -> TTSServer | None:
    if (cloud := server._cloud) is None or not address:
        return None
    try:
        host = _split(address).hostname or ""
    except InvalidServerError:
        return None
    other = TTSServer(f"https://{host}")
    return other if other._cloud == cloud else None
