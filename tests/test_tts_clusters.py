"""Tests of reading where an application's devices are registered.

Bodies are shaped as the Identity Server's device list and application
(lorawan-stack ``api/ttn/lorawan/v3/end_device.proto`` field 10 and
``application.proto`` field 13: ``host[:port]``, left out when empty).
"""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.ttn_gateway.tts import TTSServer, detect_cluster
from custom_components.ttn_gateway.tts.clusters import (
    application_server,
    device_application_servers,
)

EU1 = "eu1.cloud.thethings.network"
NAM1 = "nam1.cloud.thethings.network"
TTN = TTSServer.parse("eu1")


def _device(address: Any = None, device_id: str = "dev") -> dict[str, Any]:
    device: dict[str, Any] = {
        "ids": {"device_id": device_id, "application_ids": {"application_id": "app"}}
    }
    if address is not None:
        device["application_server_address"] = address
    return device


def test_device_hosts_skip_what_names_none() -> None:
    """Ports dropped, case folded; no address, a bad one or no object: left out."""
    body = {
        "end_devices": [
            _device(f"{NAM1}:8884"),
            _device("NAM1.Cloud.TheThings.Network"),
            _device(),
            _device(""),
            _device("nam1 cloud"),
            _device(1884),
            _device(f"https://{NAM1}"),
            "garbage",
            _device(EU1),
        ]
    }
    assert device_application_servers(body) == [NAM1, NAM1, EU1]


@pytest.mark.parametrize("body", [{}, {"end_devices": None}, [], None, "x"])
def test_no_device_list(body: Any) -> None:
    """A page past the end is ``{}`` (no devices); anything else names none."""
    assert device_application_servers(body) == []


@pytest.mark.parametrize(
    ("body", "host"),
    [
        ({"ids": {"application_id": "app"}, "application_server_address": NAM1}, NAM1),
        ({"ids": {"application_id": "app"}}, None),
        ({"application_server_address": ["x"]}, None),
        ([], None),
    ],
)
def test_application_host(body: Any, host: str | None) -> None:
    assert application_server(body) == host


def test_most_devices_win_and_the_spread_is_told() -> None:
    detection = detect_cluster(TTN, [EU1, NAM1, NAM1, "lns.example.com"], EU1)
    assert detection.cluster == TTSServer(f"https://{NAM1}")
    # Most first; a host outside the cloud is no choice.
    assert list(detection.devices.items()) == [(NAM1, 2), (EU1, 1)]
    assert detection.spread


def test_a_tie_goes_to_the_first_listed() -> None:
    detection = detect_cluster(TTN, [NAM1, EU1], None)
    assert detection.cluster == TTSServer(f"https://{NAM1}")


def test_without_devices_the_application_names_it() -> None:
    detection = detect_cluster(TTN, [], NAM1)
    assert detection.cluster == TTSServer(f"https://{NAM1}")
    assert not detection.spread


@pytest.mark.parametrize(
    ("server", "hosts", "application"),
    [
        (TTN, ["lns.example.com"], None),
        (TTN, [], "acme.nam1.cloud.thethings.industries"),
        (TTSServer.parse("tts.example.com"), ["tts.example.com"], None),
    ],
)
def test_nothing_of_the_cloud_detects_nothing(
    server: TTSServer, hosts: list[str], application: str | None
) -> None:
    """Only a cluster the key is valid on can be suggested."""
    assert detect_cluster(server, hosts, application).cluster is None
