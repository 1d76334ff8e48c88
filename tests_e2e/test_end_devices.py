"""End devices: the simulator's uplinks reach a real Home Assistant through mosquitto.

The expected states come from the uplinks as mosquitto delivered them: a
subscriber here records every ``ApplicationUp`` the simulator publishes, and
each device's states in Home Assistant must match the uplink whose time
(*Last seen*) Home Assistant shows. The radio figures are disabled by
default, so they are checked in the entity registry only.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime
import json
import struct
import threading
import time
from typing import Any

import aiohttp
import pytest

from tts_simulator.stack import LOCALHOST, HomeAssistantClient

from .conftest import (
    APPLICATION_ID,
    END_DEVICE_NAMES,
    END_DEVICES,
    Stack,
    entry_devices,
    object_id,
    simulator,
    wait_for_state,
)

UPLINK_TOPIC = "v3/+/devices/+/up"
# Long enough for a few uplinks of every device (DEVICE_INTERVAL apart).
WAIT_SECONDS = 60


class PublishedUplinks:
    """Every uplink mosquitto delivers, by device ID and frame counter."""

    def __init__(self, port: int) -> None:
        """Subscribe to the uplinks on the broker at 127.0.0.1:port."""
        from paho.mqtt.client import Client, MQTTMessage
        from paho.mqtt.enums import CallbackAPIVersion

        self._lock = threading.Lock()
        self._uplinks: dict[str, dict[int, dict[str, Any]]] = {}
        self._by_time: dict[str, dict[str, dict[str, Any]]] = {}
        self._latest: dict[str, dict[str, Any]] = {}
        self.count = 0
        self._subscribed = threading.Event()

        def on_connect(client: Client, *_args: Any) -> None:
            client.subscribe(UPLINK_TOPIC)

        def on_subscribe(*_args: Any) -> None:
            self._subscribed.set()

        def on_message(_client: Client, _userdata: Any, message: MQTTMessage) -> None:
            uplink = json.loads(message.payload)
            device_id = uplink["end_device_ids"]["device_id"]
            if device_id not in END_DEVICES:
                return
            f_cnt = uplink["uplink_message"].get("f_cnt", 0)
            seen = last_seen_state(uplink["uplink_message"]["received_at"])
            with self._lock:
                self._uplinks.setdefault(device_id, {})[f_cnt] = uplink
                self._by_time.setdefault(device_id, {})[seen] = uplink
                self._latest[device_id] = uplink
                self.count += 1

        self._client = Client(CallbackAPIVersion.VERSION2, client_id="e2e-recorder")
        self._client.on_connect = on_connect
        self._client.on_subscribe = on_subscribe
        self._client.on_message = on_message
        self._client.connect(LOCALHOST, port)
        self._client.loop_start()
        if not self._subscribed.wait(30):
            raise TimeoutError("could not subscribe to the uplinks")

    def get(self, device_id: str, f_cnt: int) -> dict[str, Any] | None:
        """The uplink of a device with this frame counter, if one was seen."""
        with self._lock:
            return self._uplinks.get(device_id, {}).get(f_cnt)

    def shown_at(self, device_id: str, last_seen: str) -> dict[str, Any] | None:
        """The uplink of a device that TTS received at this Last seen state."""
        with self._lock:
            return self._by_time.get(device_id, {}).get(last_seen)

    def uplinks(self, device_id: str) -> list[dict[str, Any]]:
        """Every uplink of a device seen (one per frame counter)."""
        with self._lock:
            return list(self._uplinks.get(device_id, {}).values())

    def latest(self, device_id: str) -> dict[str, Any] | None:
        """The device's latest uplink."""
        with self._lock:
            return self._latest.get(device_id)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture(scope="module")
def published(stack: Stack) -> Iterator[PublishedUplinks]:
    """Record what the simulator publishes from now on."""
    recorder = PublishedUplinks(stack.mqtt_port)
    yield recorder
    recorder.close()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def last_seen_state(received_at: str) -> str:
    """The Last seen state of an uplink TTS received then (whole seconds)."""
    return parse_time(received_at).replace(microsecond=0).isoformat()


# Radio figures: diagnostic entities, disabled by default.
RADIO_FIGURES = (
    "rssi",
    "snr",
    "frame_counter",
    "gateways",
    "spreading_factor",
    "frequency",
    "airtime",
)


# Normalized air fields the simulator's vendor sensor sends, and their entities.
NORMALIZED_AIR = {
    "temperature": "air_temperature",
    "relativeHumidity": "relative_humidity",
}


def expected_states(uplink: dict[str, Any]) -> dict[str, str]:
    """What Home Assistant shows for one ``ApplicationUp``, by entity ID."""
    device = object_id(uplink["end_device_ids"]["device_id"])
    message = uplink["uplink_message"]
    states = {
        f"binary_sensor.{device}_silent": "off",
        # When the network server received it; timestamps show whole seconds.
        f"sensor.{device}_last_seen": last_seen_state(message["received_at"]),
    }
    if normalized := message.get("normalized_payload"):
        # The normalized payload wins (its temperature and humidity by name;
        # the formatter's copies of them are merged away).
        air = normalized[-1].get("air", {})
        for field, name in NORMALIZED_AIR.items():
            if field in air:
                states[f"sensor.{device}_{name}"] = str(air[field])
    elif (decoded := message.get("decoded_payload")) is not None:
        # The payload formatter's output wins: one sensor per field.
        for field, value in decoded.items():
            states[f"sensor.{device}_{field}"] = str(value)
    else:
        # The Feather M0 sketch: one unsigned byte on FPort 1.
        assert message["f_port"] == 1
        (value,) = base64.b64decode(message["frm_payload"])
        states[f"sensor.{device}_value"] = str(value)
    return states


def same_state(actual: str | None, expected: str) -> bool:
    """Equal states; numbers by value (TTS sends RSSI as a float: -66 is -66.0)."""
    if actual == expected:
        return True
    try:
        return actual is not None and float(actual) == float(expected)
    except ValueError:
        return False


def mismatches(
    states: dict[str, dict[str, Any]], expected: dict[str, str]
) -> dict[str, tuple[str | None, str]]:
    """Entities whose state differs from the expected one: (actual, expected)."""
    return {
        entity_id: (actual, want)
        for entity_id, want in expected.items()
        if not same_state(actual := states.get(entity_id, {}).get("state"), want)
    }


def shown_uplink(
    states: dict[str, dict[str, Any]], published: PublishedUplinks, device_id: str
) -> dict[str, Any] | None:
    """The recorded uplink whose time (Last seen) Home Assistant shows."""
    shown = states.get(f"sensor.{object_id(device_id)}_last_seen")
    if shown is None:
        return None
    return published.shown_at(device_id, shown["state"])


async def wait_until_shown(
    client: HomeAssistantClient,
    published: PublishedUplinks,
    *,
    latest: bool = False,
    newer_than: dict[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Wait until every device shows a recorded uplink.

    `latest`: the device's latest; `newer_than`: one with a higher frame
    counter than the one given for the device.

    Returns the uplinks by device ID. One ``/api/states`` answer is one
    snapshot of the state machine, so a device's states all belong together.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        states = await client.states()
        uplinks: dict[str, dict[str, Any]] = {}
        problems: dict[str, Any] = {}
        for device_id in END_DEVICES:
            uplink = (
                published.latest(device_id)
                if latest
                else shown_uplink(states, published, device_id)
            )
            if uplink is None:
                problems[device_id] = "no recorded uplink shown yet"
            elif newer_than and (
                uplink["uplink_message"]["f_cnt"] <= newer_than[device_id]
            ):
                problems[device_id] = "no new uplink shown yet"
            elif wrong := mismatches(states, expected_states(uplink)):
                problems[device_id] = wrong
            else:
                uplinks[device_id] = uplink
        if not problems:
            return uplinks
        assert time.monotonic() < deadline, problems
        await asyncio.sleep(0.5)


async def test_devices_show_the_published_uplinks(
    hass_client: HomeAssistantClient, published: PublishedUplinks
) -> None:
    await wait_until_shown(hass_client, published)

    states = await hass_client.states()
    feather = states["sensor.feather_m0_on_the_balcony_value"]
    assert 0 <= int(feather["state"]) <= 255
    silent = states["binary_sensor.feather_m0_on_the_balcony_silent"]["attributes"]
    # The threshold is automatic: three uplink intervals, 15 minutes at least.
    assert silent.pop("threshold") >= 15
    assert silent == {
        "device_class": "problem",
        "friendly_name": "Feather M0 on the balcony Silent",
    }
    # Radio figures are there, diagnostic and disabled until the user wants them.
    (entities,) = await hass_client.websocket({"type": "config/entity_registry/list"})
    by_id = {entity["entity_id"]: entity for entity in entities}
    for device_id in END_DEVICES:
        for figure in RADIO_FIGURES:
            entity = by_id[f"sensor.{object_id(device_id)}_{figure}"]
            assert entity["disabled_by"] == "integration"
            assert entity["entity_category"] == "diagnostic"
            assert f"sensor.{object_id(device_id)}_{figure}" not in states
    # Units guessed from the payload formatter's field names.
    soil_temperature = states["sensor.soil_sensor_soil_temperature"]["attributes"]
    assert soil_temperature["unit_of_measurement"] == "°C"
    assert soil_temperature["friendly_name"] == "Soil sensor Soil temperature"
    battery = states["sensor.soil_sensor_battery_voltage"]["attributes"]
    assert (battery["device_class"], battery["unit_of_measurement"]) == (
        "voltage",
        "V",
    )


async def test_devices_in_the_device_registry(
    hass_client: HomeAssistantClient, published: PublishedUplinks
) -> None:
    await wait_until_shown(hass_client, published)
    entries = await hass_client.config_entries()
    entry_id = next(e["entry_id"] for e in entries if e["domain"] == "ttn_gateway")
    devices, entities = await hass_client.websocket(
        {"type": "config/device_registry/list"},
        {"type": "config/entity_registry/list"},
    )
    end_devices = entry_devices(devices, entry_id).end_devices
    assert set(end_devices) == set(END_DEVICES)
    for device_id, device in end_devices.items():
        uplink = published.latest(device_id)
        assert uplink is not None
        # Named from the application's device list in TTS.
        assert device["name"] == END_DEVICE_NAMES[device_id]
        assert device["serial_number"] == uplink["end_device_ids"]["dev_eui"]
        assert device["configuration_url"].endswith(
            f"/console/applications/{APPLICATION_ID}/devices/{device_id}"
        )
        device_entities = {
            entity["entity_id"]
            for entity in entities
            if entity["device_id"] == device["id"]
        }
        assert set(expected_states(uplink)) <= device_entities
        assert {
            f"sensor.{object_id(device_id)}_{figure}" for figure in RADIO_FIGURES
        } <= device_entities


async def test_restart_restores_devices_before_any_uplink(
    stack: Stack, hass_client: HomeAssistantClient, published: PublishedUplinks
) -> None:
    await simulator(stack, "POST", "/sim/devices/pause")
    try:
        await asyncio.sleep(1)  # an uplink published just before the pause
        shown = await wait_until_shown(hass_client, published, latest=True)
        before = await hass_client.states()
        sent = published.count

        await asyncio.to_thread(stack.restart_hass)
        async with aiohttp.ClientSession() as session:
            client = HomeAssistantClient(session, stack.hass_port)
            await client.onboard_or_login()
            # Available once the MQTT integration is set up again.
            deadline = time.monotonic() + WAIT_SECONDS
            while (
                (await client.states()).get(
                    "binary_sensor.feather_m0_on_the_balcony_silent"
                )
                or {}
            ).get("state") in (None, "unavailable"):
                assert time.monotonic() < deadline, "end devices did not come back"
                await asyncio.sleep(0.5)
            after = await client.states()

            for uplink in shown.values():
                for entity_id in expected_states(uplink):
                    assert after[entity_id]["state"] == before[entity_id]["state"], (
                        entity_id
                    )
                    assert (
                        after[entity_id]["attributes"]
                        == before[entity_id]["attributes"]
                    )
            assert published.count == sent, "an uplink was sent during the restart"

            # Uplinks after the restart reach the restarted Home Assistant.
            await simulator(stack, "POST", "/sim/devices/resume")
            await wait_until_shown(
                client,
                published,
                newer_than={
                    device_id: uplink["uplink_message"]["f_cnt"]
                    for device_id, uplink in shown.items()
                },
            )
    finally:
        await simulator(stack, "POST", "/sim/devices/resume")


def lpp_readings(uplink: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """The climate sensor's Cayenne LPP frame, decoded here from its bytes.

    By entity name: (value, unit). Channels 1 to 4: temperature (0.1 °C),
    humidity (0.5 %), barometer (0.1 hPa), analog input (0.01).
    """
    payload = base64.b64decode(uplink["uplink_message"]["frm_payload"])
    fields = struct.unpack(">BBhBBBBBHBBh", payload)
    assert fields[0:2] == (1, 0x67)
    assert fields[3:5] == (2, 0x68)
    assert fields[6:8] == (3, 0x73)
    assert fields[9:11] == (4, 0x02)
    return {
        "Temperature 1": (str(round(fields[2] / 10, 1)), "°C"),
        "Humidity 2": (str(round(fields[5] / 2, 1)), "%"),
        "Pressure 3": (str(round(fields[8] / 10, 1)), "hPa"),
        "Analog input 4": (str(round(fields[11] / 100, 2)), None),
    }


async def test_cayenne_lpp_decoder_chosen_in_the_options(
    hass_client: HomeAssistantClient, published: PublishedUplinks
) -> None:
    device_id = "lpp-climate-sensor"
    shown = END_DEVICE_NAMES[device_id]
    entry_id = next(
        entry["entry_id"]
        for entry in await hass_client.config_entries()
        if entry["domain"] == "ttn_gateway"
    )
    option = f"{APPLICATION_ID}/{device_id}"
    await hass_client.set_options(
        entry_id, "end_device_decoder", {"device": option, "decoder": "cayenne_lpp"}
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            states = await hass_client.states()
            by_name = {
                state["attributes"].get("friendly_name"): state
                for entity_id, state in states.items()
                if entity_id.startswith(f"sensor.{object_id(device_id)}_")
            }
            uplink = shown_uplink(states, published, device_id)
            if uplink is not None:
                wrong = {
                    name: (actual, value)
                    for name, (value, _unit) in lpp_readings(uplink).items()
                    if not same_state(
                        actual := by_name.get(f"{shown} {name}", {}).get("state"),
                        value,
                    )
                }
                if not wrong:
                    break
            assert time.monotonic() < deadline, f"LPP values not shown: {by_name}"
            await asyncio.sleep(0.5)

        for name, (_value, unit) in lpp_readings(uplink).items():
            attributes = by_name[f"{shown} {name}"]["attributes"]
            assert attributes.get("unit_of_measurement") == unit
        # The payload formatter's entities are gone.
        assert f"{shown} Relative humidity 2" not in by_name
        assert f"{shown} Barometric pressure 3" not in by_name
        # The other devices keep their decoders.
        assert "sensor.soil_sensor_soil_moisture" in states
    finally:
        await hass_client.set_options(
            entry_id, "end_device_decoder", {"device": option, "decoder": "auto"}
        )


FLOOD_MESSAGES = 5000
FLOOD_CAP = 20
PROBE = "flood-probe"


def probe_uplink(sequence: int, decoded: dict[str, Any] | None = None) -> bytes:
    """A valid uplink of the probe device, its sequence as a formatter field."""
    now = datetime.now(UTC)
    message = {
        "end_device_ids": {
            "device_id": PROBE,
            "application_ids": {"application_id": APPLICATION_ID},
            "dev_addr": "260B0001",
        },
        "received_at": now.isoformat().replace("+00:00", "Z"),
        "uplink_message": {
            "f_port": 2,
            "f_cnt": sequence,
            "frm_payload": base64.b64encode(bytes([sequence % 256])).decode(),
            "decoded_payload": decoded or {"sequence": sequence},
            "received_at": now.isoformat().replace("+00:00", "Z"),
        },
    }
    return json.dumps(message).encode()


def random_uplink(device_id: str, f_cnt: int) -> bytes:
    """An uplink of some device nobody owns, as a flooding publisher sends it."""
    return json.dumps(
        {
            "end_device_ids": {
                "device_id": device_id,
                "application_ids": {"application_id": APPLICATION_ID},
            },
            "uplink_message": {
                "f_port": 1,
                "f_cnt": f_cnt,
                "frm_payload": "Kg==",
                "decoded_payload": {f"field{f_cnt % 200}": f_cnt},
            },
        }
    ).encode()


class Publisher:
    """Publishes on the broker at 127.0.0.1:port (QoS 0, as TTS does)."""

    def __init__(self, port: int) -> None:
        """Connect."""
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        self._client = Client(CallbackAPIVersion.VERSION2, client_id="e2e-flood")
        self._client.max_queued_messages_set(0)
        self._client.connect(LOCALHOST, port)
        self._client.loop_start()

    def publish(self, device_id: str, payload: bytes) -> None:
        """One message on the device's uplink topic."""
        self._client.publish(
            f"v3/{APPLICATION_ID}@ttn/devices/{device_id}/up", payload, qos=0
        )

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()


async def wait_for_probe(client: HomeAssistantClient, sequence: int) -> None:
    await wait_for_state(
        client, "sensor.flood_probe_sequence", str(sequence), WAIT_SECONDS
    )


async def test_flood_of_random_devices_is_bounded(
    stack: Stack,
    hass_client: HomeAssistantClient,
    published: PublishedUplinks,
    mqtt_application: str,
) -> None:
    """5,000 uplinks of random devices and a 1 MB formatter key: bounded, responsive."""
    import random
    import string

    entry_id = next(
        entry["entry_id"]
        for entry in await hass_client.config_entries()
        if entry["domain"] == "ttn_gateway"
    )
    # The flood comes through Home Assistant's MQTT (mqtt_application), as
    # anyone who can publish on the broker could send it.
    options = {"max_end_devices": 200}
    await hass_client.set_options(
        entry_id, "end_devices", {"max_end_devices": FLOOD_CAP}
    )
    shown = await wait_until_shown(hass_client, published)
    publisher = Publisher(stack.mqtt_port)
    latencies: list[float] = []
    flooding = True

    async def measure() -> None:
        async with aiohttp.ClientSession() as session:
            client = HomeAssistantClient(session, stack.hass_port)
            await client.onboard_or_login()
            while flooding:
                started = time.monotonic()
                await client.states()
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.1)

    prober = asyncio.create_task(measure())
    rng = random.Random(10)  # noqa: S311
    try:
        sequence = 1
        publisher.publish(PROBE, probe_uplink(sequence))
        await wait_for_probe(hass_client, sequence)
        for number in range(FLOOD_MESSAGES):
            device_id = "".join(rng.choices(string.ascii_lowercase, k=12))
            publisher.publish(device_id, random_uplink(device_id, number))
            if number == FLOOD_MESSAGES // 2:
                huge = {"k" * 1_000_000: 1}
                publisher.publish(PROBE, probe_uplink(sequence + 1, huge))
            if number % 500 == 499:
                sequence += 1
                publisher.publish(PROBE, probe_uplink(sequence))
                await asyncio.sleep(0)
        await wait_for_probe(hass_client, sequence)
        # Every valid uplink in between was applied (none was dropped): all
        # sequence numbers are in the history, once the recorder has them.
        wanted = {str(n) for n in range(1, sequence + 1)}
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            history = await hass_client._json(
                "GET",
                f"/api/history/period/{datetime.now(UTC).date().isoformat()}"
                "T00:00:00Z?filter_entity_id=sensor.flood_probe_sequence"
                "&minimal_response&no_attributes",
                headers=hass_client.headers,
            )
            seen = {state["state"] for state in history[0]} if history else set()
            if wanted <= seen:
                break
            assert time.monotonic() < deadline, sorted(wanted - seen)
            await asyncio.sleep(1)
        # The simulator's devices keep going after the flood.
        await wait_until_shown(
            hass_client,
            published,
            newer_than={
                device_id: uplink["uplink_message"]["f_cnt"]
                for device_id, uplink in shown.items()
            },
        )
    finally:
        flooding = False
        await prober
        publisher.close()

    assert latencies
    print(  # noqa: T201
        f"\n{FLOOD_MESSAGES} flood uplinks: {len(latencies)} /api/states answers, "
        f"slowest {max(latencies):.3f} s"
    )
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
    (devices,) = await hass_client.websocket({"type": "config/device_registry/list"})
    ours = [
        device
        for device in devices
        if entry_id in device["config_entries"]
        and any("/device/" in identifier for _, identifier in device["identifiers"])
    ]
    assert len(ours) == FLOOD_CAP
    repairs = await hass_client.websocket({"type": "repairs/list_issues"})
    assert any(
        issue["translation_key"] == "end_device_cap" for issue in repairs[0]["issues"]
    )

    # Default options again. The entry reloads and lists the application's
    # devices in TTS: the flood's devices are not there, but one list removes
    # nothing (two complete lists an hour apart do), so all stay.
    await hass_client.set_options(entry_id, "end_devices", options)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        (devices,) = await hass_client.websocket(
            {"type": "config/device_registry/list"}
        )
        left = set(entry_devices(devices, entry_id).end_devices)
        if set(END_DEVICES) <= left:
            break
        assert time.monotonic() < deadline, sorted(left)
        await asyncio.sleep(0.5)
    assert len(left) == FLOOD_CAP

    # The user deletes the flood's devices, as the device page lets them: the
    # entry keeps the simulator's devices and the tests after this one see
    # the stack as it was.
    flood = [
        device["id"]
        for device_id, device in entry_devices(devices, entry_id).end_devices.items()
        if device_id not in END_DEVICES
    ]
    await hass_client.websocket(
        *(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": entry_id,
                "device_id": device_id,
            }
            for device_id in flood
        )
    )
    (devices,) = await hass_client.websocket({"type": "config/device_registry/list"})
    assert set(entry_devices(devices, entry_id).end_devices) == set(END_DEVICES)
