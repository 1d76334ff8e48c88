"""The ApplicationUp parser: the recorded TTN uplink, edge cases and fuzzing."""

from __future__ import annotations

from datetime import UTC, datetime
import json
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.ttn_gateway.tts import (
    Location,
    RxMetadata,
    Uplink,
    UplinkError,
    VersionIds,
    parse_application_up,
)

from .common import fuzz_examples
from .fake_tts import load_json
from .uplinks import uplink


def test_recorded_ttn_uplink() -> None:
    """Every field of the real TTN eu1 capture lands where it belongs."""
    parsed = parse_application_up(load_json("mqtt-uplink.json"))
    assert isinstance(parsed, Uplink)
    assert parsed.ids.application_id == "thingsboard-ttn-demo"
    assert parsed.ids.device_id == "rs261-erik-internal"
    assert parsed.ids.dev_eui == "0025CA00000017C2"
    assert parsed.ids.join_eui == "ECC07A0000000009"
    assert parsed.ids.dev_addr == "260BDF71"
    assert parsed.f_port == 1
    assert parsed.f_cnt == 25
    assert parsed.frm_payload == bytes.fromhex("00c40015d4")
    assert parsed.decoded_payload is not None
    assert parsed.decoded_payload["Temperature"] == 21.83
    assert parsed.received_at == datetime(2025, 11, 7, 8, 52, 14, 536109, tzinfo=UTC)
    assert parsed.rx_metadata == (
        RxMetadata(gateway_id="eriks-rg186", rssi=-69.0, snr=8.25),
    )
    assert parsed.spreading_factor == 7
    assert parsed.bandwidth == 125000
    assert parsed.frequency == 868100000
    assert parsed.consumed_airtime == pytest.approx(0.051456)
    assert parsed.confirmed is True
    assert parsed.simulated is False
    assert parsed.version_ids == VersionIds(
        brand_id="ezurio",
        model_id="rs26x-int-temp-sensor",
        hardware_version="rev 1",
        firmware_version="1.0.2+1748617279",
    )
    assert parsed.cluster_address == "eu1.cloud.thethings.network"


def test_zero_fields_left_out() -> None:
    """TTS omits zero values: FPort 0, frame counter 0, no payload."""
    message = uplink(f_port=0, f_cnt=0, payload=b"")
    del message["uplink_message"]["settings"]
    del message["uplink_message"]["received_at"]
    parsed = parse_application_up(message)
    assert parsed is not None
    assert (parsed.f_port, parsed.f_cnt, parsed.frm_payload) == (0, 0, b"")
    assert parsed.spreading_factor is None
    assert parsed.frequency is None
    # The envelope's time stands in for the uplink's.
    assert parsed.received_at is not None


def test_best_gateway() -> None:
    """The loudest gateway wins; gateways without RSSI only as a last resort."""
    parsed = parse_application_up(
        uplink(gateways=(("far", -118.0, -9.0), ("near", -80.0, 9.5)))
    )
    assert parsed is not None
    assert parsed.best_rx == RxMetadata(gateway_id="near", rssi=-80.0, snr=9.5)

    message = uplink()
    message["uplink_message"]["rx_metadata"] = [
        {"gateway_ids": {"gateway_id": "odd"}, "rssi": "loud", "snr": None},
        {"channel_rssi": -101.0},
    ]
    parsed = parse_application_up(message)
    assert parsed is not None
    assert parsed.rx_metadata[0] == RxMetadata(gateway_id="odd", rssi=None, snr=None)
    assert parsed.best_rx == RxMetadata(gateway_id=None, rssi=-101.0, snr=None)

    message["uplink_message"]["rx_metadata"] = [{"snr": 3.0}]
    parsed = parse_application_up(message)
    assert parsed is not None
    assert parsed.best_rx == RxMetadata(gateway_id=None, rssi=None, snr=3.0)

    message["uplink_message"]["rx_metadata"] = []
    parsed = parse_application_up(message)
    assert parsed is not None
    assert parsed.best_rx is None


def test_packet_broker_traffic() -> None:
    """Entries forwarded by Packet Broker say so; the gateway's own do not."""
    message = uplink(gateways=(("rooftop", -90.0, 5.0), ("packetbroker", -70.0, 8.0)))
    message["uplink_message"]["rx_metadata"][1]["packet_broker"] = {
        "message_id": "01JPB",
        "forwarder_net_id": "000013",
        "forwarder_tenant_id": "ttn",
    }
    parsed = parse_application_up(message)
    assert parsed is not None
    assert [rx.via_packet_broker for rx in parsed.rx_metadata] == [False, True]
    assert parsed.best_rx is not None
    assert parsed.best_rx.via_packet_broker

    # Without the packet_broker object, the gateway ID alone tells.
    del message["uplink_message"]["rx_metadata"][1]["packet_broker"]
    parsed = parse_application_up(message)
    assert parsed is not None
    assert parsed.rx_metadata[1].via_packet_broker


@pytest.mark.parametrize(
    ("value", "expected"),
    # None: the value left out, as TTS leaves out every zero field.
    [(87.5, 87.5), (100, 100.0), (None, 0.0), (101, None), (-1, None), ("50", None)],
)
def test_last_battery_percentage(value: object, expected: float | None) -> None:
    """The battery level TTS repeats with each uplink, within 0 to 100."""
    message = uplink(battery=1.0)
    battery = message["uplink_message"]["last_battery_percentage"]
    if value is None:
        del battery["value"]
    else:
        battery["value"] = value
    parsed = parse_application_up(message)
    assert parsed is not None
    assert parsed.last_battery_percentage == expected
    parsed = parse_application_up(uplink())
    assert parsed is not None
    assert parsed.last_battery_percentage is None


def test_locations() -> None:
    """The device's own position wins over the user's, then any other."""
    gps = {
        "latitude": 52.37,
        "longitude": 4.89,
        "altitude": 12,
        "accuracy": 5,
        "source": "SOURCE_GPS",
    }
    user = {"latitude": 48.1, "longitude": 11.6, "source": "SOURCE_REGISTRY"}
    solved = {
        "latitude": 40.0,
        "longitude": -3.7,
        "source": "SOURCE_WIFI_RSSI_GEOLOCATION",
    }
    parsed = parse_application_up(
        uplink(locations={"user": user, "frm-payload": gps, "solver": solved})
    )
    assert parsed is not None
    assert parsed.location == Location(
        latitude=52.37, longitude=4.89, altitude=12.0, accuracy=5.0, source="SOURCE_GPS"
    )
    parsed = parse_application_up(uplink(locations={"solver": solved, "user": user}))
    assert parsed is not None
    assert parsed.location is not None
    assert (parsed.location.latitude, parsed.location.longitude) == (48.1, 11.6)
    assert parsed.location.accuracy is None

    # Out of range, no fix (0, 0) and wrong types are no position at all.
    for bad in (
        {"latitude": 91.0, "longitude": 4.0},
        {"latitude": 52.0, "longitude": -180.5},
        {"latitude": 0, "longitude": 0, "source": "SOURCE_GPS"},
        {"latitude": "52", "longitude": 4.0},
        "here",
    ):
        parsed = parse_application_up(uplink(locations={"frm-payload": bad}))
        assert parsed is not None
        assert parsed.location is None, bad
    # TTS omits zero values: one coordinate missing is 0, both missing is none.
    for entry, expected in (
        ({"longitude": 4.89}, (0.0, 4.89)),
        ({"latitude": 52.37, "source": "SOURCE_GPS"}, (52.37, 0.0)),
        ({"altitude": 12, "source": "SOURCE_GPS"}, None),
        ({}, None),
    ):
        parsed = parse_application_up(uplink(locations={"frm-payload": entry}))
        assert parsed is not None
        position = parsed.location and (
            parsed.location.latitude,
            parsed.location.longitude,
        )
        assert position == expected, entry
    # A bad entry does not hide a good one.
    parsed = parse_application_up(
        uplink(locations={"frm-payload": {"latitude": 99}, "user": user})
    )
    assert parsed is not None
    assert parsed.location is not None
    assert parsed.location.latitude == 48.1


@pytest.mark.parametrize(
    "field",
    [
        "join_accept",
        "downlink_ack",
        "downlink_queued",
        "downlink_sent",
        "downlink_failed",
        "location_solved",
        "service_data",
        "uplink_normalized",
    ],
)
def test_other_message_types(field: str) -> None:
    """Other ApplicationUp messages are recognised and skipped."""
    message = {"end_device_ids": uplink()["end_device_ids"], field: {}}
    assert parse_application_up(message) is None


def test_metadata_of_wrong_type_is_absent() -> None:
    """Radio figures of the wrong type are dropped, not the uplink."""
    message = uplink()
    body = message["uplink_message"]
    body["settings"] = {"data_rate": {"lora": "SF7"}, "frequency": 868.1}
    body["consumed_airtime"] = 0.05
    body["version_ids"] = "rak"
    body["network_ids"] = {"cluster_address": "evil.example/../x"}
    parsed = parse_application_up(message)
    assert parsed is not None
    assert parsed.spreading_factor is None
    assert parsed.frequency is None
    assert parsed.consumed_airtime is None
    assert parsed.version_ids is None
    assert parsed.cluster_address is None
    body["settings"] = "fast"
    body["network_ids"] = "eu1"
    assert parse_application_up(message) is not None


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    message = uplink()
    target = message
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return message


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ([], "not a JSON object"),
        ({}, "end_device_ids is not an object"),
        (_with(("end_device_ids", "application_ids"), "app"), "application_ids"),
        (_with(("end_device_ids", "device_id"), "Feather"), "not a TTS identifier"),
        (_with(("end_device_ids", "device_id"), "a" * 37), "not a TTS identifier"),
        (_with(("end_device_ids", "device_id"), "a--b"), "not a TTS identifier"),
        (_with(("end_device_ids", "device_id"), 7), "not a TTS identifier"),
        (_with(("uplink_message",), []), "uplink_message is not an object"),
        ({"end_device_ids": uplink()["end_device_ids"]}, "no uplink_message"),
        (_with(("uplink_message", "f_port"), 256), "f_port"),
        (_with(("uplink_message", "f_port"), True), "f_port"),
        (_with(("uplink_message", "f_cnt"), 2**32), "f_cnt"),
        (_with(("uplink_message", "f_cnt"), 1.5), "f_cnt"),
        (_with(("uplink_message", "frm_payload"), "AQ"), "not base64"),
        (_with(("uplink_message", "frm_payload"), "AQ=="[:3] + "!"), "not base64"),
        (_with(("uplink_message", "frm_payload"), None), "not a string"),
        (_with(("uplink_message", "frm_payload"), "A" * 400), "longer than 255"),
        (_with(("uplink_message", "decoded_payload"), "x"), "decoded_payload"),
        (_with(("uplink_message", "rx_metadata"), "x"), "rx_metadata"),
    ],
)
def test_rejected(message: Any, reason: str) -> None:
    """Unusable messages raise UplinkError saying why."""
    with pytest.raises(UplinkError, match=reason):
        parse_application_up(message)


def test_largest_payload_accepted() -> None:
    """255 bytes (more than LoRaWAN allows anywhere) still parse."""
    parsed = parse_application_up(uplink(payload=bytes(range(255))))
    assert parsed is not None
    assert parsed.frm_payload == bytes(range(255))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
FIELDS = st.sampled_from(
    [
        "f_port",
        "f_cnt",
        "frm_payload",
        "decoded_payload",
        "rx_metadata",
        "settings",
        "received_at",
        "consumed_airtime",
        "version_ids",
        "network_ids",
    ]
)


def _check(message: object) -> None:
    try:
        parsed = parse_application_up(message)
    except UplinkError:
        return
    if parsed is not None:
        assert isinstance(parsed, Uplink)
        assert 0 <= parsed.f_port <= 255
        assert len(parsed.frm_payload) <= 255
        json.dumps(parsed.decoded_payload)


@settings(
    max_examples=fuzz_examples(1500), suppress_health_check=[HealthCheck.too_slow]
)
@given(JSON)
def test_fuzz_any_json(message: object) -> None:
    """Any JSON value either parses or is rejected with UplinkError."""
    _check(message)


@settings(
    max_examples=fuzz_examples(1500), suppress_health_check=[HealthCheck.too_slow]
)
@given(FIELDS, JSON)
def test_fuzz_one_field_replaced(field: str, value: object) -> None:
    """A valid uplink with any one field replaced by any JSON value."""
    message = uplink()
    message["uplink_message"][field] = value
    _check(message)


@settings(max_examples=fuzz_examples(500))
@given(st.binary(max_size=255), st.integers(0, 255), st.integers(0, 2**32 - 1))
def test_fuzz_valid_uplinks_round_trip(payload: bytes, f_port: int, f_cnt: int) -> None:
    """Whatever bytes, port and counter TTS sends come back unchanged."""
    parsed = parse_application_up(uplink(payload=payload, f_port=f_port, f_cnt=f_cnt))
    assert parsed is not None
    assert (parsed.frm_payload, parsed.f_port, parsed.f_cnt) == (payload, f_port, f_cnt)
