"""The end-device intake fuzzed: random topics, IDs, payloads and sources.

The intake is called directly (no Home Assistant per example). Whatever
arrives, no exception escapes, the device and entity caps hold, a message
from a source its application does not use changes nothing, and a valid
uplink sent right after each bad message is applied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.ttn_gateway.end_devices import EndDevice
from custom_components.ttn_gateway.end_devices.intake import (
    MAX_ENTITIES_PER_DEVICE,
    Intake,
    IntakeSettings,
    downlink_event_topic_ids,
    topic_ids,
)
from custom_components.ttn_gateway.end_devices.registry import STATIC_ENTITY_KEYS
from custom_components.ttn_gateway.end_devices.state import DeviceKey

from .common import fuzz_examples
from .uplinks import APP, FEATHER, encode, topic, uplink

# The device whose valid uplinks follow every fuzzed message; the fuzzed
# messages name other devices (FEATHER among them) or none.
PROBE = "probe-device"

# 10,000 examples in the unit tests' coverage run (the newest Home Assistant);
# ./scripts/test's run on the oldest divides them (tests/common.py).
settings.register_profile(
    "intake",
    max_examples=fuzz_examples(10_000),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_DEVICES = 5
START = datetime(2025, 11, 7, 9, tzinfo=UTC)
# APP is connected directly; every other application comes over a broker.
DIRECT, BROKER = "direct-subentry", "broker-subentry"
# TTS's downlink event topics and ApplicationUp fields
# (pkg/applicationserver/io/mqtt/topics/v3.go, messages.proto ApplicationUp).
DOWNLINK_EVENTS = {
    "queued": "downlink_queued",
    "sent": "downlink_sent",
    "ack": "downlink_ack",
    "nack": "downlink_nack",
    "failed": "downlink_failed",
    "invalidated": "downlink_queue_invalidated",
}


def _source_of(application_id: str) -> str:
    return DIRECT if application_id == APP else BROKER


_ids = st.one_of(
    st.sampled_from([APP, FEATHER, "node-1", "node-2", "x", "Upper", ""]),
    st.text(alphabet="abz09-", min_size=3, max_size=8),
    st.text(max_size=12),
)
_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=5,
)
# Payload formatter output: long, odd and colliding keys, nested a little.
_decoded = st.dictionaries(
    st.text(max_size=70),
    _scalars | st.dictionaries(st.text(max_size=8), _scalars, max_size=3),
    max_size=10,
)


@st.composite
def _messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """A topic and payload: garbage, or an uplink with random parts."""
    application_id, device_id = draw(_ids), draw(_ids)
    kind = draw(st.sampled_from(["uplink", "mutated", "json", "bytes", "event"]))
    if kind == "event":
        event = draw(st.sampled_from(sorted(DOWNLINK_EVENTS)))
        ids = uplink(application_id=application_id, device_id=device_id)[
            "end_device_ids"
        ]
        body = draw(_json | st.fixed_dictionaries({"f_port": st.integers(-1, 300)}))
        message = {"end_device_ids": ids, DOWNLINK_EVENTS[event]: body}
        if draw(st.booleans()):
            message["received_at"] = draw(st.text(max_size=30))
        where = topic(application_id, device_id).removesuffix("/up")
        return f"{where}/down/{event}", json.dumps(message).encode()
    if kind == "bytes":
        payload = draw(st.binary(max_size=100))
    elif kind == "json":
        payload = json.dumps(draw(_json)).encode()
    else:
        message: dict[str, Any] = uplink(
            application_id=application_id,
            device_id=device_id,
            f_cnt=draw(st.integers(0, 2**32 - 1)),
            f_port=draw(st.integers(0, 255)),
            payload=draw(st.binary(max_size=20)),
            decoded=draw(st.none() | _decoded),
            received_at=START + timedelta(seconds=draw(st.integers(-1e6, 1e6))),
        )
        if kind == "mutated":
            section = draw(st.sampled_from(["end_device_ids", "uplink_message"]))
            message[section][draw(st.text(max_size=20))] = draw(_scalars)
            if draw(st.booleans()):
                message[section] = draw(_json)
        payload = encode(message).encode()
    same_topic = draw(st.booleans())
    where = (
        topic(application_id, device_id)
        if same_topic
        else draw(
            st.sampled_from([topic(draw(_ids), draw(_ids)), draw(st.text(max_size=30))])
        )
    )
    return where, payload


def _intake() -> Intake:
    devices: dict[DeviceKey, EndDevice] = {}

    def new_device(key: DeviceKey) -> EndDevice:
        device = EndDevice(
            key=key, identifier=f"jdoe@example.com/device/{key[0]}/{key[1]}"
        )
        for platform, entity_key in STATIC_ENTITY_KEYS:
            device.entity_keys[platform].add(entity_key)
        devices[key] = device
        return device

    return Intake(
        IntakeSettings(max_devices=MAX_DEVICES, source_of=_source_of),
        devices,
        new_device,
        lambda _application, _address: "https://eu1.cloud.thethings.network",
    )


def _device_states() -> dict[DeviceKey, tuple[object, object]]:
    return {
        key: (device.uplink, device.last_downlink)
        for key, device in INTAKE.devices.items()
    }


# One intake across examples, as in a long-running Home Assistant.
INTAKE = _intake()
NOW = [START]


@settings(settings.get_profile("intake"))
@given(message=_messages(), source=st.sampled_from([DIRECT, BROKER]))
def test_intake_never_raises_and_caps_hold(
    message: tuple[str, bytes], source: str
) -> None:
    """A bad message changes nothing for the next valid uplink."""
    where, payload = message
    NOW[0] += timedelta(seconds=1)
    before = _device_states()
    INTAKE.take(where, payload, NOW[0], source)
    key = topic_ids(where) or downlink_event_topic_ids(where)
    if key is None or _source_of(key[0]) != source:
        assert _device_states() == before
    assert len(INTAKE.devices) <= MAX_DEVICES
    assert all(
        device.entity_count <= MAX_ENTITIES_PER_DEVICE
        for device in INTAKE.devices.values()
    )

    f_cnt = INTAKE.counters.received
    valid = uplink(
        device_id=PROBE,
        f_cnt=f_cnt,
        payload=bytes([f_cnt % 256]),
        received_at=NOW[0],
    )
    device = INTAKE.take(topic(device_id=PROBE), encode(valid).encode(), NOW[0], DIRECT)
    assert device is not None
    assert device.key == (APP, PROBE)
    assert device.uplink is not None
    assert device.uplink.f_cnt == f_cnt
