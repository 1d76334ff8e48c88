"""Tests of the TTS JSON models against payloads in TTS's wire format.

fixtures/README.md says where each payload comes from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from custom_components.ttn_gateway.tts import (
    AntennaLocation,
    AuthInfo,
    ConnectionState,
    Gateway,
    GatewayConnection,
    GatewayConnectionStats,
    GatewayStatus,
    KeyOwnerType,
    Right,
    RoundTripTimes,
    SubBand,
    VersionIds,
)
from custom_components.ttn_gateway.tts.primitives import (
    parse_duration,
    parse_float,
    parse_str,
    parse_timestamp,
    parse_uint,
)

from .fake_tts import GATEWAY_GARDEN, GATEWAY_ROOFTOP, load_json


def utc(*args: int) -> datetime:
    """A UTC datetime."""
    return datetime(*args, tzinfo=UTC)


# --- scalar parsers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-13T07:02:11Z", utc(2025, 3, 13, 7, 2, 11)),
        ("2025-03-13T07:02:11.412Z", utc(2025, 3, 13, 7, 2, 11, 412000)),
        ("2025-03-13T07:02:11.412938Z", utc(2025, 3, 13, 7, 2, 11, 412938)),
        ("2025-03-13T07:02:11.412938119Z", utc(2025, 3, 13, 7, 2, 11, 412938)),
        ("2025-03-14T08:40:05.007412300Z", utc(2025, 3, 14, 8, 40, 5, 7412)),
        ("2025-03-13T07:02:11.5z", utc(2025, 3, 13, 7, 2, 11, 500000)),
        ("2025-03-13t07:02:11Z", utc(2025, 3, 13, 7, 2, 11)),
        ("2025-03-13 07:02:11Z", utc(2025, 3, 13, 7, 2, 11)),
        ("2025-03-13T09:02:11.5+02:00", utc(2025, 3, 13, 7, 2, 11, 500000)),
        ("2025-03-13T02:02:11-05:00", utc(2025, 3, 13, 7, 2, 11)),
        ("2025-03-13T07:02:11+00:00", utc(2025, 3, 13, 7, 2, 11)),
        ("2025-01-01T01:00:00.123456789+01:00", utc(2025, 1, 1, 0, 0, 0, 123456)),
    ],
)
def test_parse_timestamp(value: str, expected: datetime) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed is not None
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        None,
        5,
        1741849331.4,
        {},
        [],
        "",
        "yesterday",
        "2025-03-13",
        "2025-03-13T07:02:11",  # no offset
        "2025-03-13T07:02:11.Z",
        "2025-03-13T07:02Z",
        "2025-13-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2025-03-13T25:00:00Z",
        "2025-03-13T07:02:11+25:00",
        " 2025-03-13T07:02:11Z",
        "2025-03-13T07:02:11Z trailing",
    ],
)
def test_parse_timestamp_garbage(value: Any) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.056213964s", 0.056213964),
        ("3.788374514s", 3.788374514),
        ("3s", 3.0),
        ("0s", 0.0),
        ("-1.5s", -1.5),
    ],
)
def test_parse_duration(value: str, expected: float) -> None:
    assert parse_duration(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [None, 3, 0.5, "3", "s", "1.5 s", "1.5ms", "abc", "", "1e3s", ".5s", "1.s"],
)
def test_parse_duration_bad(value: Any) -> None:
    assert parse_duration(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("18342", 18342),
        ("0", 0),
        ("18446744073709551615", 2**64 - 1),
        # Longer than a uint64: malformed (and int() of 4,300+ digits raises).
        ("18446744073709551616", None),
        ("0" * 21, None),
        ("9" * 5000, None),
        (2**64, None),
        ("\u0661\u0662", None),
        (20, 20),
        (0, 0),
        (True, None),
        (False, None),
        (-1, None),
        ("-1", None),
        ("1.5", None),
        (1.5, None),
        ("", None),
        (" 3", None),
        ("abc", None),
        (None, None),
        ({}, None),
    ],
)
def test_parse_uint(value: Any, expected: int | None) -> None:
    assert parse_uint(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (41.5, 41.5),
        (3, 3.0),
        (0, 0.0),
        (True, None),
        ("41.5", None),
        (None, None),
        # Python's JSON reader accepts NaN and Infinity; they are no values.
        (float("nan"), None),
        (float("inf"), None),
        (float("-inf"), None),
        (10**400, None),
    ],
)
def test_parse_float(value: Any, expected: float | None) -> None:
    assert parse_float(value) == expected


def test_parse_str() -> None:
    assert parse_str("udp") == "udp"
    assert parse_str("") is None
    assert parse_str(5) is None
    assert parse_str(None) is None


# --- connection stats -------------------------------------------------------


def test_stats_single_sample() -> None:
    stats = GatewayConnectionStats.from_json(load_json("gateway-connection-stats.json"))

    assert stats.connected_at == utc(2025, 3, 13, 7, 2, 11, 412938)
    assert stats.disconnected_at is None
    assert stats.protocol == "udp"
    assert stats.last_status_received_at == utc(2025, 3, 14, 10, 15, 12, 553108)
    assert stats.last_uplink_received_at == utc(2025, 3, 14, 10, 15, 38, 94523)
    assert stats.uplink_count == 18342
    assert stats.last_downlink_received_at == utc(2025, 3, 14, 9, 58, 2, 671049)
    assert stats.downlink_count == 57
    assert stats.last_tx_acknowledgment_received_at == utc(
        2025, 3, 14, 9, 58, 3, 118224
    )
    assert stats.tx_acknowledgment_count == 57
    assert stats.remote_ip == "203.0.113.17"

    assert stats.round_trip_times == RoundTripTimes(
        min=pytest.approx(0.041277519),
        max=pytest.approx(0.394113048),
        median=pytest.approx(0.056213964),
        count=20,
    )

    status = stats.last_status
    assert status is not None
    assert status.time == utc(2025, 3, 14, 10, 15, 12)
    assert status.boot_time is None
    assert status.versions == {
        "ttn-lw-gateway-server": "3.32.1",
        "fpga": "31",
        "dsp": "31",
        "hal": "5.0.1",
    }
    assert status.metrics == {
        "rxin": 3.0,
        "rxok": 2.0,
        "rxfw": 2.0,
        "ackr": 100.0,
        "txin": 0.0,
        "txok": 0.0,
        "temp": 41.5,
        "lpps": 0.0,
    }
    assert status.ip == ("203.0.113.17",)

    assert len(stats.sub_bands) == 6
    assert stats.sub_bands[0] == SubBand(
        min_frequency=863_000_000,
        max_frequency=865_000_000,
        downlink_utilization_limit=0.001,
        downlink_utilization=0.0,
    )
    assert stats.sub_bands[2].downlink_utilization == pytest.approx(0.00096028444)

    # The uplink is the latest moment of the sample.
    assert stats.last_seen == stats.last_uplink_received_at
    # The busiest band relative to its limit is 868.0-868.6 MHz (9.6 % of 1 %);
    # 869.4-869.65 MHz uses more airtime but of a 10 % limit (4.1 %).
    assert stats.downlink_utilization_percent == pytest.approx(
        0.00096028444 / 0.01 * 100
    )

    assert GatewayConnection.from_stats(stats) == GatewayConnection(
        ConnectionState.CONNECTED, stats
    )


def test_stats_disconnected_sample() -> None:
    stats = GatewayConnectionStats.from_json(
        load_json("gateway-connection-stats-disconnected.json")
    )

    assert stats.connected_at is None
    assert stats.disconnected_at == utc(2025, 3, 14, 10, 21, 47, 903412)
    assert stats.uplink_count == 18342
    assert stats.last_seen == stats.disconnected_at
    assert stats.last_status is not None
    assert stats.last_status.metrics["temp"] == 41.5

    connection = GatewayConnection.from_stats(stats)
    assert connection.state is ConnectionState.DISCONNECTED
    assert connection.stats is stats


def test_stats_basic_station_sample() -> None:
    stats = GatewayConnectionStats.from_json(
        load_json("gateway-connection-stats-basicstation.json")
    )

    assert stats.connected_at == utc(2025, 3, 14, 8, 40, 5, 7412)
    assert stats.protocol == "semtechws/lbslns"
    assert stats.last_uplink_received_at == utc(2025, 3, 14, 10, 14, 59, 820553)
    assert stats.uplink_count == 412
    assert stats.remote_ip == "198.51.100.42"
    # Omitted zero fields.
    assert stats.downlink_count == 0
    assert stats.tx_acknowledgment_count == 0
    assert stats.last_downlink_received_at is None
    assert stats.round_trip_times is None
    assert stats.sub_bands == ()
    assert stats.downlink_utilization_percent is None
    # The status built from the station's version message: no time, no metrics.
    assert stats.last_status == GatewayStatus(
        versions={
            "station": "2.0.6(rpi/std)",
            "firmware": "1.0.0",
            "package": "",
            "platform": "rpi - Firmware 1.0.0 - Protocol 2",
        }
    )
    assert stats.last_seen == stats.last_uplink_received_at
    assert GatewayConnection.from_stats(stats).state is ConnectionState.CONNECTED


def test_stats_batch_entries() -> None:
    entries = load_json("gateway-connection-stats-batch.json")["entries"]

    rooftop = GatewayConnectionStats.from_json(entries[GATEWAY_ROOFTOP])
    # The enum written as a number in the batch form does not disturb parsing.
    assert entries[GATEWAY_ROOFTOP]["last_status"]["antenna_locations"][0][
        "source"
    ] == (1)
    assert rooftop.connected_at == utc(2025, 3, 13, 7, 2, 11, 412938)
    assert rooftop.uplink_count == 18342
    assert rooftop.downlink_count == 57
    assert rooftop.tx_acknowledgment_count == 0
    assert rooftop.last_tx_acknowledgment_received_at is None
    assert rooftop.sub_bands == ()
    assert rooftop.downlink_utilization_percent is None
    assert rooftop.round_trip_times is not None
    assert rooftop.round_trip_times.count == 20
    assert rooftop.last_status is not None
    assert rooftop.last_status.metrics["temp"] == 41.5
    assert GatewayConnection.from_stats(rooftop).state is ConnectionState.CONNECTED

    garden = GatewayConnectionStats.from_json(entries[GATEWAY_GARDEN])
    assert garden.connected_at is None
    assert garden.disconnected_at == utc(2025, 3, 13, 22, 4, 19, 118803)
    assert garden.last_status is None
    assert garden.round_trip_times is None
    assert garden.uplink_count == 9051
    assert garden.last_seen == garden.disconnected_at
    assert GatewayConnection.from_stats(garden).state is ConnectionState.DISCONNECTED


def test_stats_unknown_fields_ignored() -> None:
    data = load_json("gateway-connection-stats.json")
    expected = GatewayConnectionStats.from_json(data)
    data["brand_new_field"] = {"nested": [1, 2, 3]}
    data["last_status"]["advanced"] = {"model": "x"}
    data["round_trip_times"]["p99"] = "1s"
    data["sub_bands"][0]["future"] = True
    data["gateway_remote_address"]["port"] = 1700
    assert GatewayConnectionStats.from_json(data) == expected


def test_stats_wrong_types_are_absent() -> None:
    stats = GatewayConnectionStats.from_json(
        {
            "connected_at": 5,
            "disconnected_at": "yesterday",
            "protocol": 7,
            "last_status_received_at": ["2025-03-14T10:15:12Z"],
            "last_status": {
                "time": 1741947312,
                "boot_time": "2025-03-14T00:00:00Z",
                "versions": {"hal": "5.0.1", "fpga": 31},
                "metrics": {"temp": "hot", "rxin": 3, "flag": True, "x": None},
                "ip": ["203.0.113.17", 42],
            },
            "last_uplink_received_at": "2025-03-14T10:15:38Z",
            "uplink_count": {},
            "downlink_count": "abc",
            "tx_acknowledgment_count": -3,
            "round_trip_times": {"median": 0.05, "count": 3},
            "sub_bands": "x",
            "gateway_remote_address": "203.0.113.17",
        }
    )
    assert stats.connected_at is None
    assert stats.disconnected_at is None
    assert stats.protocol is None
    assert stats.last_status_received_at is None
    assert stats.last_uplink_received_at == utc(2025, 3, 14, 10, 15, 38)
    # An unreadable counter is unknown; only an absent one is 0.
    assert stats.uplink_count is None
    assert stats.downlink_count is None
    assert stats.tx_acknowledgment_count is None
    assert GatewayConnectionStats.from_json({}).uplink_count == 0
    assert stats.round_trip_times is None
    assert stats.sub_bands == ()
    assert stats.remote_ip is None
    assert stats.last_status == GatewayStatus(
        time=None,
        boot_time=utc(2025, 3, 14),
        versions={"hal": "5.0.1"},
        metrics={"rxin": 3.0},
        ip=("203.0.113.17",),
    )
    assert stats.last_seen == stats.last_uplink_received_at
    assert stats.downlink_utilization_percent is None


@pytest.mark.parametrize(
    "data",
    [
        {"last_status": "up", "round_trip_times": "0.05s", "sub_bands": [1, "x"]},
        {"last_status": {"metrics": "x", "versions": [], "ip": "1.2.3.4"}},
    ],
)
def test_stats_wrong_nested_types(data: dict[str, Any]) -> None:
    stats = GatewayConnectionStats.from_json(data)
    assert stats.round_trip_times is None
    assert stats.sub_bands == ()
    if isinstance(data["last_status"], dict):
        assert stats.last_status == GatewayStatus()
    else:
        assert stats.last_status is None


@pytest.mark.parametrize("data", [None, [], "stats", 3, {}])
def test_stats_not_an_object(data: Any) -> None:
    stats = GatewayConnectionStats.from_json(data)
    assert stats == GatewayConnectionStats()
    assert stats.last_seen is None
    assert stats.downlink_utilization_percent is None
    assert GatewayConnection.from_stats(stats).state is ConnectionState.DISCONNECTED


def test_round_trip_times_partial() -> None:
    assert RoundTripTimes.from_json({"median": "0.05s"}) == RoundTripTimes(
        min=0.05, max=0.05, median=0.05, count=0
    )
    assert RoundTripTimes.from_json({"min": "0.01s", "max": "0.2s"}) is None
    assert RoundTripTimes.from_json(None) is None


def test_sub_bands_without_limit_or_usage() -> None:
    stats = GatewayConnectionStats.from_json(
        {
            "sub_bands": [
                # A band without a sub-band limit, as TTS writes it.
                {"max_frequency": "18446744073709551615"},
                {"downlink_utilization_limit": 0.01, "downlink_utilization": 0.005},
                {"downlink_utilization_limit": "0.1", "downlink_utilization": 0.09},
            ]
        }
    )
    assert stats.sub_bands[0] == SubBand(
        min_frequency=0,
        max_frequency=2**64 - 1,
        downlink_utilization_limit=0.0,
        downlink_utilization=0.0,
    )
    # The string limit counts as absent, so that band is skipped.
    assert stats.sub_bands[2].downlink_utilization_limit == 0.0
    assert stats.downlink_utilization_percent == pytest.approx(50.0)


def test_last_seen_is_the_latest_moment() -> None:
    stats = GatewayConnectionStats.from_json(
        {
            "connected_at": "2025-03-14T10:00:00Z",
            "last_status_received_at": "2025-03-14T10:05:00Z",
            "last_uplink_received_at": "2025-03-14T10:01:00Z",
            "last_downlink_received_at": "2025-03-14T10:02:00Z",
            "last_tx_acknowledgment_received_at": "2025-03-14T10:03:00Z",
        }
    )
    assert stats.last_seen == utc(2025, 3, 14, 10, 5)

    stats = GatewayConnectionStats.from_json(
        {
            "connected_at": "2025-03-14T10:00:00Z",
            "last_tx_acknowledgment_received_at": "2025-03-14T12:03:00+02:00",
        }
    )
    assert stats.last_seen == utc(2025, 3, 14, 10, 3)


# --- gateways ---------------------------------------------------------------


def test_gateway_from_listing_sample() -> None:
    listed = load_json("gateways-list.json")["gateways"]
    rooftop, garden = (Gateway.from_json(item) for item in listed)

    assert rooftop == Gateway(
        gateway_id="eui-b827ebfffe8db887",
        eui="B827EBFFFE8DB887",
        name="Rooftop gateway",
        description="RAK7248 on the roof",
        version_ids=VersionIds(
            brand_id="rakwireless",
            model_id="rak7248",
            hardware_version="1.0",
            firmware_version="4.2.7",
        ),
        gateway_server_address="eu1.cloud.thethings.network",
        frequency_plan_ids=("EU_863_870_TTN",),
        status_public=True,
        location_public=True,
        location=AntennaLocation(
            latitude=52.37403, longitude=4.88969, altitude=12, source="SOURCE_REGISTRY"
        ),
    )
    assert garden == Gateway(
        gateway_id="kerlink-garden",
        eui="7076FF0056080A1B",
        name="Kerlink garden",
        gateway_server_address="eu1.cloud.thethings.network",
        frequency_plan_ids=("EU_863_870_TTN",),
        # The altitude TTS omits is 0.
        location=AntennaLocation(
            latitude=52.3731, longitude=4.8922, source="SOURCE_REGISTRY"
        ),
    )
    assert garden is not None
    assert garden.description is None
    assert garden.version_ids == VersionIds()
    assert garden.status_public is False
    assert garden.location_public is False


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "eui-b827ebfffe8db887",
        {},
        {"name": "No ids"},
        {"ids": "eui-b827ebfffe8db887"},
        {"ids": {}},
        {"ids": {"gateway_id": ""}},
        {"ids": {"gateway_id": 42}},
        {"ids": {"eui": "B827EBFFFE8DB887"}},
    ],
)
def test_gateway_without_id(data: Any) -> None:
    assert Gateway.from_json(data) is None


def test_gateway_wrong_types() -> None:
    gateway = Gateway.from_json(
        {
            "ids": {"gateway_id": "gw", "eui": 7},
            "name": 5,
            "description": "",
            "version_ids": "rak",
            "gateway_server_address": {"host": "eu1"},
            "frequency_plan_ids": ["EU_863_870_TTN", 3, None],
            "status_public": "true",
            "location_public": 1,
            "unknown": {"x": 1},
        }
    )
    assert gateway == Gateway(gateway_id="gw", frequency_plan_ids=("EU_863_870_TTN",))

    gateway = Gateway.from_json(
        {"ids": {"gateway_id": "gw"}, "frequency_plan_ids": "EU_863_870_TTN"}
    )
    assert gateway is not None
    assert gateway.frequency_plan_ids == ()


def test_version_ids_partial() -> None:
    assert VersionIds.from_json({"brand_id": "kerlink", "model_id": 3}) == (
        VersionIds(brand_id="kerlink")
    )


# --- auth info --------------------------------------------------------------


def test_auth_info_user_key() -> None:
    info = AuthInfo.from_json(load_json("auth-info.json"))
    assert info == AuthInfo(
        owner_type=KeyOwnerType.USER,
        owner_id="jdoe",
        rights=frozenset(
            {
                "RIGHT_USER_GATEWAYS_LIST",
                "RIGHT_GATEWAY_INFO",
                "RIGHT_GATEWAY_STATUS_READ",
                "RIGHT_GATEWAY_LOCATION_READ",
            }
        ),
        key_name="home-assistant",
    )
    assert Right.USER_GATEWAYS_LIST in info.rights
    assert Right.GATEWAY_STATUS_READ in info.rights
    assert Right.ORGANIZATION_GATEWAYS_LIST not in info.rights


def _auth_info(entity_ids: Any, rights: Any = (), name: Any = None) -> Any:
    key: dict[str, Any] = {"id": "KEYID", "rights": list(rights)}
    if name is not None:
        key["name"] = name
    return {"api_key": {"api_key": key, "entity_ids": entity_ids}}


@pytest.mark.parametrize(
    ("entity_ids", "owner_type", "owner_id"),
    [
        (
            {"organization_ids": {"organization_id": "acme"}},
            KeyOwnerType.ORGANIZATION,
            "acme",
        ),
        ({"gateway_ids": {"gateway_id": "my-gw"}}, KeyOwnerType.GATEWAY, "my-gw"),
        (
            {"application_ids": {"application_id": "my-app"}},
            KeyOwnerType.APPLICATION,
            "my-app",
        ),
        (
            {
                "device_ids": {
                    "device_id": "dev",
                    "application_ids": {"application_id": "my-app"},
                }
            },
            KeyOwnerType.END_DEVICE,
            "dev",
        ),
        ({"client_ids": {"client_id": "cli"}}, KeyOwnerType.CLIENT, "cli"),
        ({"user_ids": {"user_id": ""}}, KeyOwnerType.UNKNOWN, ""),
        ({"user_ids": "jdoe"}, KeyOwnerType.UNKNOWN, ""),
        ("jdoe", KeyOwnerType.UNKNOWN, ""),
    ],
)
def test_auth_info_other_owners(
    entity_ids: Any, owner_type: KeyOwnerType, owner_id: str
) -> None:
    info = AuthInfo.from_json(_auth_info(entity_ids, ["RIGHT_X"], name="k"))
    assert info.owner_type is owner_type
    assert info.owner_id == owner_id
    assert info.rights == {"RIGHT_X"}
    assert info.key_name == "k"


def test_auth_info_organization_rights() -> None:
    info = AuthInfo.from_json(
        _auth_info(
            {"organization_ids": {"organization_id": "acme"}},
            ["RIGHT_ORGANIZATION_GATEWAYS_LIST", 7, None, "RIGHT_GATEWAY_INFO"],
        )
    )
    assert info.rights == {Right.ORGANIZATION_GATEWAYS_LIST, Right.GATEWAY_INFO}
    assert info.key_name is None


@pytest.mark.parametrize("data", [{}, None, [], {"api_key": "x"}, {"user_session": {}}])
def test_auth_info_empty(data: Any) -> None:
    assert AuthInfo.from_json(data) == AuthInfo(
        owner_type=KeyOwnerType.UNKNOWN, owner_id="", rights=frozenset()
    )


def _key(*rights: str) -> AuthInfo:
    return AuthInfo(
        owner_type=KeyOwnerType.USER, owner_id="jdoe", rights=frozenset(rights)
    )


EVERY_RIGHT = tuple(Right)


@pytest.mark.parametrize(
    ("pseudo_right", "granted"),
    [
        # Everything.
        ("RIGHT_ALL", set(EVERY_RIGHT)),
        # The user's own rights: listing its gateways, not rights on them.
        ("RIGHT_USER_ALL", {Right.USER_GATEWAYS_LIST}),
        # The organization's own rights, likewise.
        ("RIGHT_ORGANIZATION_ALL", {Right.ORGANIZATION_GATEWAYS_LIST}),
        # Every right on the gateways, but not listing them.
        (
            "RIGHT_GATEWAY_ALL",
            {Right.GATEWAY_INFO, Right.GATEWAY_STATUS_READ, Right.GATEWAY_TRAFFIC_READ},
        ),
        # The link right of gateway keys implies reading the gateway's info.
        ("RIGHT_GATEWAY_LINK", {Right.GATEWAY_INFO}),
        # An application's link right implies its info, reading its traffic
        # and writing downlinks (lorawan-stack api/ttn/lorawan/v3/rights.proto),
        # not its device list.
        (
            "RIGHT_APPLICATION_LINK",
            {
                Right.APPLICATION_INFO,
                Right.APPLICATION_TRAFFIC_READ,
                Right.APPLICATION_TRAFFIC_DOWN_WRITE,
            },
        ),
        # An application's every right: its own, nothing about gateways.
        (
            "RIGHT_APPLICATION_ALL",
            {
                Right.APPLICATION_INFO,
                Right.APPLICATION_DEVICES_READ,
                Right.APPLICATION_TRAFFIC_READ,
                Right.APPLICATION_TRAFFIC_DOWN_WRITE,
            },
        ),
    ],
)
def test_pseudo_rights(pseudo_right: str, granted: set[Right]) -> None:
    key = _key(pseudo_right)
    assert {right for right in EVERY_RIGHT if key.grants(right)} == granted
    assert set(key.missing_rights(EVERY_RIGHT)) == set(EVERY_RIGHT) - granted


def test_missing_rights_in_the_order_asked() -> None:
    key = _key("RIGHT_GATEWAY_INFO")
    assert key.missing_rights(
        [Right.USER_GATEWAYS_LIST, Right.GATEWAY_INFO, Right.GATEWAY_STATUS_READ]
    ) == [Right.USER_GATEWAYS_LIST, Right.GATEWAY_STATUS_READ]
    # TTS lists rights expanded: the plain rights are enough.
    assert _key(*EVERY_RIGHT).missing_rights(EVERY_RIGHT) == []
