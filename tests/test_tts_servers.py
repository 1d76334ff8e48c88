"""Tests of where a TTS deployment answers which call."""

from __future__ import annotations

import pytest

from custom_components.ttn_gateway.tts import (
    TTN_CLUSTERS,
    InvalidServerError,
    TTSServer,
)

TTN_EU1 = "https://eu1.cloud.thethings.network"
TTN_NAM1 = "https://nam1.cloud.thethings.network"
TTN_AU1 = "https://au1.cloud.thethings.network"
TTI_EU1 = "https://acme.eu1.cloud.thethings.industries"
TTI_NAM1 = "https://acme.nam1.cloud.thethings.industries"
SELF_HOSTED = "https://thethings.example.com"


def test_clusters() -> None:
    assert TTN_CLUSTERS == ("eu1", "nam1", "au1")


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("eu1", TTN_EU1),
        ("nam1", TTN_NAM1),
        ("au1", TTN_AU1),
        ("EU1", TTN_EU1),
        ("Nam1", TTN_NAM1),
        ("  au1 ", TTN_AU1),
        # Bare hosts get https.
        ("eu1.cloud.thethings.network", TTN_EU1),
        ("thethings.example.com", SELF_HOSTED),
        ("TheThings.Example.COM", SELF_HOSTED),
        ("thethings.example.com:8443", "https://thethings.example.com:8443"),
        ("192.168.1.20:1885", "https://192.168.1.20:1885"),
        # Full URLs.
        ("http://192.168.1.20:1885", "http://192.168.1.20:1885"),
        ("http://lorawan.local:1885/", "http://lorawan.local:1885"),
        ("https://eu1.cloud.thethings.network/", TTN_EU1),
        ("https://eu1.cloud.thethings.network/api/v3", TTN_EU1),
        ("https://eu1.cloud.thethings.network/api/v3/", TTN_EU1),
        ("https://eu1.cloud.thethings.network/console", TTN_EU1),
        ("https://eu1.cloud.thethings.network/console/", TTN_EU1),
        ("HTTPS://NAM1.CLOUD.THETHINGS.NETWORK", TTN_NAM1),
        (f"{TTI_NAM1}/api/v3", TTI_NAM1),
        (" https://thethings.example.com ", SELF_HOSTED),
        # A default port is the same server as no port.
        ("https://eu1.cloud.thethings.network:443", TTN_EU1),
        ("nam1.cloud.thethings.network:443", TTN_NAM1),
        ("http://thethings.example.com:80", "http://thethings.example.com"),
        ("http://thethings.example.com:443", "http://thethings.example.com:443"),
        ("https://thethings.example.com:80", "https://thethings.example.com:80"),
        # IPv6 literals keep their brackets.
        ("http://[fd00::20]:1885", "http://[fd00::20]:1885"),
        ("https://[fd00::20]", "https://[fd00::20]"),
    ],
)
def test_parse(value: str, url: str) -> None:
    server = TTSServer.parse(value)
    assert server.url == url
    assert server == TTSServer(url)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "ftp://eu1.cloud.thethings.network",
        "mqtts://eu1.cloud.thethings.network:8883",
        "https://thethings.example.com:99999",
        "https://thethings.example.com:abc",
        "thethings.example.com:-1",
        "https://thethings.example.com/lorawan",
        "https://thethings.example.com/api/v3/gateways",
        "https://user:secret@thethings.example.com",
        "https://user@thethings.example.com",
        "https://thethings.example.com?tenant=acme",
        "https://thethings.example.com/#console",
        "https://",
        "https:///api/v3",
        "https://my_host.example.com",
    ],
)
def test_parse_invalid(value: str) -> None:
    with pytest.raises(InvalidServerError):
        TTSServer.parse(value)


def test_invalid_server_error_is_value_error() -> None:
    assert issubclass(InvalidServerError, ValueError)


@pytest.mark.parametrize(
    ("url", "host", "is_cloud"),
    [
        (TTN_EU1, "eu1.cloud.thethings.network", True),
        (TTN_NAM1, "nam1.cloud.thethings.network", True),
        (TTI_NAM1, "acme.nam1.cloud.thethings.industries", True),
        (SELF_HOSTED, "thethings.example.com", False),
        ("http://192.168.1.20:1885", "192.168.1.20:1885", False),
        # Not the cloud's scheme or port, or not its host layout.
        ("http://eu1.cloud.thethings.network", "eu1.cloud.thethings.network", False),
        (
            "https://eu1.cloud.thethings.network:8443",
            "eu1.cloud.thethings.network:8443",
            False,
        ),
        (
            "https://a.eu1.cloud.thethings.network",
            "a.eu1.cloud.thethings.network",
            False,
        ),
        (
            "https://eu1.cloud.thethings.industries",
            "eu1.cloud.thethings.industries",
            False,
        ),
        ("https://cloud.thethings.network", "cloud.thethings.network", False),
        ("https://evilcloud.thethings.network", "evilcloud.thethings.network", False),
    ],
)
def test_host_and_is_cloud(url: str, host: str, is_cloud: bool) -> None:
    server = TTSServer(url)
    assert server.host == host
    assert server.is_cloud is is_cloud


@pytest.mark.parametrize(
    ("configured", "identity"),
    [
        (TTN_EU1, TTN_EU1),
        (TTN_NAM1, TTN_EU1),
        (TTN_AU1, TTN_EU1),
        ("https://nam1.cloud.thethings.network:443", TTN_EU1),
        (TTI_EU1, TTI_EU1),
        (TTI_NAM1, TTI_EU1),
        ("https://acme.au1.cloud.thethings.industries", TTI_EU1),
        (SELF_HOSTED, SELF_HOSTED),
        ("http://192.168.1.20:1885", "http://192.168.1.20:1885"),
    ],
)
def test_identity_server_url(configured: str, identity: str) -> None:
    assert TTSServer.parse(configured).identity_server_url == identity


@pytest.mark.parametrize(
    ("configured", "address", "expected"),
    [
        # The gateway's own cluster, with or without scheme and port.
        (TTN_EU1, "nam1.cloud.thethings.network", TTN_NAM1),
        (TTN_EU1, "mqtts://au1.cloud.thethings.network:8883", TTN_AU1),
        (TTN_EU1, "https://nam1.cloud.thethings.network", TTN_NAM1),
        (TTN_EU1, "nam1.cloud.thethings.network:1700", TTN_NAM1),
        (TTN_EU1, "NAM1.Cloud.TheThings.Network", TTN_NAM1),
        (TTN_NAM1, "eu1.cloud.thethings.network", TTN_EU1),
        (TTN_EU1, "eu1.cloud.thethings.network", TTN_EU1),
        (TTI_EU1, "acme.nam1.cloud.thethings.industries", TTI_NAM1),
        (TTI_NAM1, "wss://acme.eu1.cloud.thethings.industries:8887", TTI_EU1),
        # Another tenant, another cloud or a foreign host: the configured URL.
        (TTI_EU1, "other.nam1.cloud.thethings.industries", TTI_EU1),
        (TTI_EU1, "nam1.cloud.thethings.network", TTI_EU1),
        (TTN_EU1, "acme.nam1.cloud.thethings.industries", TTN_EU1),
        (TTN_EU1, "lns.example.com", TTN_EU1),
        (TTN_EU1, "a.nam1.cloud.thethings.network", TTN_EU1),
        (TTN_EU1, "nam1.cloud.thethings.network:abc", TTN_EU1),
        (TTN_EU1, "udp://", TTN_EU1),
        (TTN_EU1, "", TTN_EU1),
        (TTN_EU1, None, TTN_EU1),
        (TTN_NAM1, None, TTN_NAM1),
        # A self-hosted server answers everything itself.
        (SELF_HOSTED, "nam1.cloud.thethings.network", SELF_HOSTED),
        (SELF_HOSTED, "lns.example.com", SELF_HOSTED),
        (SELF_HOSTED, None, SELF_HOSTED),
        ("http://192.168.1.20:1885", "192.168.1.20:1700", "http://192.168.1.20:1885"),
    ],
)
def test_gateway_server_url(
    configured: str, address: str | None, expected: str
) -> None:
    assert TTSServer.parse(configured).gateway_server_url(address) == expected


@pytest.mark.parametrize(
    ("configured", "gateway_id", "address", "expected"),
    [
        (
            TTN_EU1,
            "eui-b827ebfffe8db887",
            "eu1.cloud.thethings.network",
            f"{TTN_EU1}/console/gateways/eui-b827ebfffe8db887",
        ),
        (
            TTN_EU1,
            "my-gw",
            "nam1.cloud.thethings.network",
            f"{TTN_NAM1}/console/gateways/my-gw",
        ),
        (
            TTI_EU1,
            "my-gw",
            "acme.au1.cloud.thethings.industries",
            "https://acme.au1.cloud.thethings.industries/console/gateways/my-gw",
        ),
        (
            "http://192.168.1.20:1885",
            "my-gw",
            None,
            "http://192.168.1.20:1885/console/gateways/my-gw",
        ),
        (TTN_EU1, "a/b c", None, f"{TTN_EU1}/console/gateways/a%2Fb%20c"),
    ],
)
def test_console_url(
    configured: str, gateway_id: str, address: str | None, expected: str
) -> None:
    assert TTSServer.parse(configured).console_url(gateway_id, address) == expected


@pytest.mark.parametrize(
    ("configured", "cluster_id", "clusters"),
    [
        (TTN_NAM1, "nam1", ["eu1", "nam1", "au1"]),
        # docs: cloud/addresses, the tenant and cluster selector.
        (TTI_EU1, "eu1", ["eu1", "eu2", "nam1", "au1", "as1"]),
        (SELF_HOSTED, None, [None]),
    ],
)
def test_clusters_of_a_cloud(
    configured: str, cluster_id: str | None, clusters: list[str | None]
) -> None:
    server = TTSServer.parse(configured)
    assert server.cluster_id == cluster_id
    assert [cluster.cluster_id for cluster in server.clusters] == clusters
    # Every cluster of a cloud is of the same tenant.
    assert all(server.same_cloud(cluster.host) for cluster in server.clusters) == (
        server.is_cloud
    )


@pytest.mark.parametrize(
    ("configured", "address", "expected"),
    [
        (TTN_EU1, "nam1.cloud.thethings.network", TTN_NAM1),
        (TTN_EU1, "nam1.cloud.thethings.network:8884", TTN_NAM1),
        (TTN_EU1, TTN_AU1, TTN_AU1),
        (TTI_NAM1, "acme.eu1.cloud.thethings.industries", TTI_EU1),
        # Another tenant or cloud, a foreign host, nonsense: none.
        (TTI_EU1, "other.nam1.cloud.thethings.industries", None),
        (TTN_EU1, "acme.nam1.cloud.thethings.industries", None),
        (TTN_EU1, "tts.example.com", None),
        (TTN_EU1, "nam1.cloud.thethings.network:abc", None),
        (TTN_EU1, "", None),
        (TTN_EU1, None, None),
        (SELF_HOSTED, "thethings.example.com", None),
    ],
)
def test_same_cloud(configured: str, address: str | None, expected: str | None) -> None:
    cluster = TTSServer.parse(configured).same_cloud(address)
    assert (cluster and cluster.url) == expected
