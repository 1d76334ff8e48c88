"""End devices: the simulator's uplinks reach a real Home Assistant through mosquitto.

The expected states come from the uplinks as mosquitto delivered them: a
subscriber here records every ``ApplicationUp`` the simulator publishes, and
each device's states in Home Assistant must match the uplink whose frame
counter Home Assistant shows.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import datetime
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
    END_DEVICES,
    Stack,
    entry_devices,
    simulator,
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
            f_cnt = uplink["uplink_message"].get("f_cnt", 0)
            with self._lock:
                self._uplinks.setdefault(device_id, {})[f_cnt] = uplink
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


def object_id(device_id: str) -> str:
    """The start of a device's entity IDs: its name, slugified."""
    return device_id.replace("-", "_")


def expected_states(uplink: dict[str, Any]) -> dict[str, str]:
    """What Home Assistant shows for one ``ApplicationUp``, by entity ID."""
    device = object_id(uplink["end_device_ids"]["device_id"])
    message = uplink["uplink_message"]
    loudest = max(message["rx_metadata"], key=lambda rx: (rx["rssi"], rx["snr"]))
    lora = message["settings"]["data_rate"]["lora"]
    airtime_s = float(message["consumed_airtime"].removesuffix("s"))
    states = {
        f"binary_sensor.{device}_online": "on",
        f"sensor.{device}_rssi": str(loudest["rssi"]),
        f"sensor.{device}_snr": str(loudest["snr"]),
        f"sensor.{device}_frame_counter": str(message["f_cnt"]),
        f"sensor.{device}_gateways": str(len(message["rx_metadata"])),
        f"sensor.{device}_spreading_factor": str(lora["spreading_factor"]),
        f"sensor.{device}_frequency": str(int(message["settings"]["frequency"]) / 1e6),
        f"sensor.{device}_airtime": str(round(airtime_s * 1000, 3)),
        # When the network server received it; timestamps show whole seconds.
        f"sensor.{device}_last_seen": parse_time(message["received_at"])
        .replace(microsecond=0)
        .isoformat(),
    }
    if (decoded := message.get("decoded_payload")) is not None:
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
    """The recorded uplink whose frame counter Home Assistant shows."""
    shown = states.get(f"sensor.{object_id(device_id)}_frame_counter")
    if shown is None or not shown["state"].isdecimal():
        return None
    return published.get(device_id, int(shown["state"]))


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
    feather = states["sensor.feather_m0_value"]
    assert 0 <= int(feather["state"]) <= 255
    assert states["binary_sensor.feather_m0_online"]["attributes"] == {
        "device_class": "connectivity",
        "friendly_name": "feather-m0 Online",
    }
    rssi = states["sensor.lpp_climate_sensor_rssi"]["attributes"]
    assert rssi["unit_of_measurement"] == "dBm"
    assert rssi["device_class"] == "signal_strength"
    units = {
        entity_id: state["attributes"].get("unit_of_measurement")
        for entity_id, state in states.items()
        if entity_id.startswith("sensor.soil_sensor_")
    }
    assert units["sensor.soil_sensor_snr"] == "dB"
    assert units["sensor.soil_sensor_frequency"] == "MHz"
    assert units["sensor.soil_sensor_airtime"] == "ms"
    assert units["sensor.soil_sensor_frame_counter"] is None
    # Units guessed from the payload formatter's field names.
    soil_temperature = states["sensor.soil_sensor_soil_temperature"]["attributes"]
    assert soil_temperature["unit_of_measurement"] == "°C"
    assert soil_temperature["friendly_name"] == "soil-sensor Soil temperature"
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
        assert device["name"] == device_id
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
                (await client.states()).get("binary_sensor.feather_m0_online") or {}
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
    entry_id = next(
        entry["entry_id"]
        for entry in await hass_client.config_entries()
        if entry["domain"] == "ttn_gateway"
    )
    option = f"{APPLICATION_ID}/{device_id}"
    end_device_options = {"end_devices": True, "uplink_topic": UPLINK_TOPIC}
    await hass_client.set_options(
        entry_id, "end_devices", {**end_device_options, option: "cayenne_lpp"}
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            states = await hass_client.states()
            by_name = {
                state["attributes"].get("friendly_name"): state
                for entity_id, state in states.items()
                if entity_id.startswith("sensor.lpp_climate_sensor_")
            }
            uplink = shown_uplink(states, published, device_id)
            if uplink is not None:
                wrong = {
                    name: (actual, value)
                    for name, (value, _unit) in lpp_readings(uplink).items()
                    if not same_state(
                        actual := by_name.get(f"{device_id} {name}", {}).get("state"),
                        value,
                    )
                }
                if not wrong:
                    break
            assert time.monotonic() < deadline, f"LPP values not shown: {by_name}"
            await asyncio.sleep(0.5)

        for name, (_value, unit) in lpp_readings(uplink).items():
            attributes = by_name[f"{device_id} {name}"]["attributes"]
            assert attributes.get("unit_of_measurement") == unit
        # The payload formatter's entities are gone.
        assert f"{device_id} Relative humidity 2" not in by_name
        assert f"{device_id} Barometric pressure 3" not in by_name
        # The other devices keep their decoders.
        assert "sensor.soil_sensor_soil_moisture" in states
    finally:
        await hass_client.set_options(
            entry_id, "end_devices", {**end_device_options, option: "auto"}
        )
