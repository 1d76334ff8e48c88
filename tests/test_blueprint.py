"""The silence notification blueprint: it loads, and it notifies."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint.models import (
    Blueprint,
    BlueprintInputs,
    DomainBlueprints,
)

# Imported before time is frozen: the supervisor models it pulls in cannot be
# imported under freezegun.
import homeassistant.components.mqtt.config_flow  # noqa: F401
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from .event_feed import EventFeed, start_line, stream_line
from .fake_tts import GATEWAY_ROOFTOP, FakeTTS
from .uplinks import APP, FEATHER, LPP_NODE, encode, topic, uplink

BLUEPRINTS = Path(__file__).parent.parent / "blueprints" / "automation"
BLUEPRINT = "ttn_gateway/gateway_silence_notify.yaml"

pytestmark = pytest.mark.freeze_time("2025-03-14T10:20:00+00:00")


def _inputs(**extra: object) -> dict[str, object]:
    return {
        "gateways": ["binary_sensor.rooftop_gateway_silent"],
        "duration": {"minutes": 5},
        "notify": [
            {
                "action": "notify.test",
                "data": {"title": "{{ title }}", "message": "{{ message }}"},
            }
        ],
        **extra,
    }


def test_blueprint_loads() -> None:
    """The file is a valid automation blueprint with the documented inputs."""
    blueprint = Blueprint(
        yaml_util.load_yaml_dict(BLUEPRINTS / BLUEPRINT),
        expected_domain="automation",
        path=BLUEPRINT,
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )
    assert set(blueprint.inputs) == {
        "gateways",
        "duration",
        "notify_recovery",
        "notify",
    }
    selector = blueprint.inputs["gateways"]["selector"]["entity"]
    assert selector["filter"] == [
        {
            "integration": "ttn_gateway",
            "domain": ["binary_sensor"],
            "device_class": ["problem"],
        }
    ]
    inputs = BlueprintInputs(
        blueprint, {"use_blueprint": {"path": BLUEPRINT, "input": _inputs()}}
    )
    inputs.validate()
    config = inputs.async_substitute()
    assert config["triggers"][0]["entity_id"] == [
        "binary_sensor.rooftop_gateway_silent"
    ]


async def _push(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, feed: EventFeed, line: str
) -> None:
    """Deliver stream events at the time of the first one."""
    freezer.move_to(line.split('"time":"', 1)[1].split('"', 1)[0])
    feed.current.send(line)
    for _ in range(5):
        await asyncio.sleep(0)
    await hass.async_block_till_done()


async def _at(hass: HomeAssistant, freezer: FrozenDateTimeFactory, moment: str) -> None:
    target = datetime.fromisoformat(moment)
    freezer.move_to(target)
    async_fire_time_changed(hass, target)
    await hass.async_block_till_done()


def _tts_sees(fake_tts: FakeTTS, **moments: str) -> None:
    """Make the polled stats agree with a pushed connect or disconnect.

    A poll that starts after an event is the truth, so TTS must say the same.
    """
    stats = dict(fake_tts.simulator.stats[GATEWAY_ROOFTOP])  # type: ignore[arg-type]
    stats.pop("connected_at", None)
    stats.pop("disconnected_at", None)
    fake_tts.simulator.stats[GATEWAY_ROOFTOP] = {**stats, **moments}


async def test_blueprint_notifies_on_silence_and_recovery(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Unplugging a gateway notifies after the duration, and again when it is back."""
    feed = EventFeed()
    fake_tts.events = feed
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    feed.current.send(start_line())
    calls = async_mock_service(hass, "notify", "test")
    with patch.object(
        DomainBlueprints,
        "blueprint_folder",
        new_callable=PropertyMock,
        return_value=BLUEPRINTS,
    ):
        assert await async_setup_component(
            hass,
            "automation",
            {"automation": {"use_blueprint": {"path": BLUEPRINT, "input": _inputs()}}},
        )
    await hass.async_block_till_done()

    await _push(
        hass,
        freezer,
        feed,
        stream_line("gs.gateway.disconnect", GATEWAY_ROOFTOP, "2025-03-14T10:20:01Z"),
    )
    _tts_sees(fake_tts, disconnected_at="2025-03-14T10:20:01Z")
    assert hass.states.get("binary_sensor.rooftop_gateway_silent").state == "on"
    assert calls == []
    # Other gateways' events keep the stream busy.
    await _push(
        hass,
        freezer,
        feed,
        stream_line("gs.status.receive", "basic-station-gw", "2025-03-14T10:24:00Z"),
    )
    await _at(hass, freezer, "2025-03-14T10:25:02+00:00")
    assert len(calls) == 1
    assert calls[0].data == {
        "title": "LoRaWAN gateway silent",
        "message": "Rooftop gateway is disconnected from The Things Stack.",
    }

    await _push(
        hass,
        freezer,
        feed,
        stream_line(
            "gs.gateway.connect",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:27:00Z",
            {"connected_at": "2025-03-14T10:27:00Z"},
        ),
    )
    _tts_sees(fake_tts, connected_at="2025-03-14T10:27:00Z")
    assert len(calls) == 2
    assert calls[1].data == {
        "title": "LoRaWAN gateway recovered",
        "message": "Rooftop gateway is back after 7 minutes.",
    }

    # A gateway deaf for the threshold, then the duration.
    await _at(hass, freezer, "2025-03-14T10:57:01+00:00")
    await _at(hass, freezer, "2025-03-14T11:02:02+00:00")
    assert len(calls) == 3
    assert calls[2].data["message"] == (
        "Rooftop gateway is connected but has received no uplink for 30 minutes."
    )


async def test_blueprint_short_silence_is_not_reported(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A reconnect within the duration sends nothing at all."""
    feed = EventFeed()
    fake_tts.events = feed
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    feed.current.send(start_line())
    calls = async_mock_service(hass, "notify", "test")
    with patch.object(
        DomainBlueprints,
        "blueprint_folder",
        new_callable=PropertyMock,
        return_value=BLUEPRINTS,
    ):
        assert await async_setup_component(
            hass,
            "automation",
            {"automation": {"use_blueprint": {"path": BLUEPRINT, "input": _inputs()}}},
        )
    await _push(
        hass,
        freezer,
        feed,
        stream_line("gs.gateway.disconnect", GATEWAY_ROOFTOP, "2025-03-14T10:20:01Z"),
    )
    await _push(
        hass,
        freezer,
        feed,
        stream_line(
            "gs.gateway.connect",
            GATEWAY_ROOFTOP,
            "2025-03-14T10:21:00Z",
            {"connected_at": "2025-03-14T10:21:00Z"},
        ),
    )
    await _at(hass, freezer, "2025-03-14T10:30:00+00:00")
    assert calls == []


async def test_blueprint_names_dependent_end_devices_and_says_how_long(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mqtt_mock: MqttMockHAClient,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The silence message lists the end devices the gateway heard; the
    recovery message says how long it was silent in words.
    """
    feed = EventFeed()
    fake_tts.events = feed
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    feed.current.send(start_line())
    for device_id in (LPP_NODE, FEATHER):
        async_fire_mqtt_message(
            hass,
            topic(device_id=device_id),
            encode(
                uplink(device_id=device_id, gateways=((GATEWAY_ROOFTOP, -90.0, 5.0),))
            ),
        )
    await hass.async_block_till_done()
    calls = async_mock_service(hass, "notify", "test")
    with patch.object(
        DomainBlueprints,
        "blueprint_folder",
        new_callable=PropertyMock,
        return_value=BLUEPRINTS,
    ):
        assert await async_setup_component(
            hass,
            "automation",
            {
                "automation": {
                    "use_blueprint": {
                        "path": BLUEPRINT,
                        "input": _inputs(duration={"seconds": 0}),
                    }
                }
            },
        )
    await hass.async_block_till_done()

    async def outage(down: str, up: str) -> str:
        """Disconnect and reconnect; what the recovery notification says.

        TTS's stats agree with each event before it is pushed, so that the
        polls in between see the same.
        """
        _tts_sees(fake_tts, disconnected_at=down)
        await _push(
            hass,
            freezer,
            feed,
            stream_line("gs.gateway.disconnect", GATEWAY_ROOFTOP, down),
        )
        _tts_sees(fake_tts, connected_at=up)
        await _push(
            hass,
            freezer,
            feed,
            stream_line(
                "gs.gateway.connect", GATEWAY_ROOFTOP, up, {"connected_at": up}
            ),
        )
        return str(calls[-1].data["message"])

    recovered = await outage("2025-03-14T10:20:01Z", "2025-03-14T10:20:31Z")
    assert calls[-2].data["message"] == (
        "Rooftop gateway is disconnected from The Things Stack. End devices it "
        f"heard in the last 24 hours: {APP}/{FEATHER}, {APP}/{LPP_NODE}."
    )
    assert recovered == "Rooftop gateway is back after less than a minute."
    recovered = await outage("2025-03-14T10:21:00Z", "2025-03-14T10:22:10Z")
    assert recovered == "Rooftop gateway is back after 1 minute."
    recovered = await outage("2025-03-14T10:23:00Z", "2025-03-14T10:40:00Z")
    assert recovered == "Rooftop gateway is back after 17 minutes."
    recovered = await outage("2025-03-14T10:41:00Z", "2025-03-14T12:46:20Z")
    assert recovered == "Rooftop gateway is back after 2 hours 5 minutes."
    assert len(calls) == 8


# Gateways already silent, or silent again after a gap: the blueprint driven by
# states alone, on registry entries as the integration makes them (a gateway
# device with its Silent sensor and its Status event).

EVENT_TYPES = ["connected", "disconnected", "silent", "recovered"]


class Gateway:
    """A gateway device with a Silent sensor and a Status event entity."""

    def __init__(self, hass: HomeAssistant, name: str) -> None:
        entry = MockConfigEntry(domain="ttn_gateway")
        entry.add_to_hass(hass)
        device = dr.async_get(hass).async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={("ttn_gateway", name)},
            name=name,
        )
        registry = er.async_get(hass)
        self.hass = hass
        self.silent = registry.async_get_or_create(
            "binary_sensor", "ttn_gateway", f"{name}-silent", device_id=device.id
        ).entity_id
        self.event = registry.async_get_or_create(
            "event", "ttn_gateway", f"{name}-status_event", device_id=device.id
        ).entity_id

    async def state(self, state: str) -> None:
        """The Silent sensor's state, as the integration writes it (now)."""
        attributes = {"device_class": "problem"}
        if state == "on":
            attributes |= {"reason": "disconnected", "threshold": 30.0}
        self.hass.states.async_set(self.silent, state, attributes)
        await self.hass.async_block_till_done()

    def last_event(self, event_type: str, at: str) -> None:
        """The Status event's latest event, as restored over a gap."""
        self.hass.states.async_set(
            self.event, at, {"event_type": event_type, "event_types": EVENT_TYPES}
        )


async def _soon(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, moment: str
) -> None:
    """Move time on while a run may still be waiting."""
    target = datetime.fromisoformat(moment)
    freezer.move_to(target)
    async_fire_time_changed(hass, target)
    for _ in range(10):
        await asyncio.sleep(0)


async def _blueprint_automation(hass: HomeAssistant, gateways: list[str]) -> None:
    with patch.object(
        DomainBlueprints,
        "blueprint_folder",
        new_callable=PropertyMock,
        return_value=BLUEPRINTS,
    ):
        assert await async_setup_component(
            hass,
            "automation",
            {
                "automation": {
                    "use_blueprint": {
                        "path": BLUEPRINT,
                        "input": _inputs(gateways=gateways),
                    }
                }
            },
        )
    await hass.async_block_till_done()


SILENT = {
    "title": "LoRaWAN gateway silent",
    "message": "Rooftop is disconnected from The Things Stack.",
}


@pytest.mark.parametrize(
    ("last_event", "notified"),
    [
        # Never an event, or recovered since: a silence this run has not seen.
        (None, [SILENT]),
        (("recovered", "2025-03-14T09:00:00+00:00"), [SILENT]),
        # Silent for 20 minutes before the restart: reported then.
        (("silent", "2025-03-14T10:00:00+00:00"), []),
        (("connected", "2025-03-14T10:00:00+00:00"), []),
        # Silent for 2 minutes before the restart: not reported yet.
        (("silent", "2025-03-14T10:18:00+00:00"), [SILENT]),
    ],
)
async def test_blueprint_gateway_silent_when_home_assistant_starts(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    last_event: tuple[str, str] | None,
    notified: list[dict[str, str]],
) -> None:
    """A gateway silent before the automation listens is reported after the
    duration, once: not when its silence was already reported before.
    """
    hass.set_state(CoreState.not_running)
    calls = async_mock_service(hass, "notify", "test")
    rooftop, garden = Gateway(hass, "Rooftop"), Gateway(hass, "Garden")
    await rooftop.state("on")
    await garden.state("off")
    if last_event is not None:
        rooftop.last_event(*last_event)
    await _blueprint_automation(hass, [rooftop.silent, garden.silent])
    # Automations attach their triggers as Home Assistant starts. (No
    # async_block_till_done: the run waits out the duration.)
    await hass.async_start()
    await _soon(hass, freezer, "2025-03-14T10:24:59+00:00")
    assert calls == []
    await _at(hass, freezer, "2025-03-14T10:25:01+00:00")
    assert [call.data for call in calls] == notified


@pytest.mark.parametrize("gap", ["unavailable", "unknown"])
async def test_blueprint_gateway_silent_after_the_integration_was_unavailable(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, gap: str
) -> None:
    """Back from unavailable (or unknown) and silent: reported after the duration."""
    calls = async_mock_service(hass, "notify", "test")
    rooftop = Gateway(hass, "Rooftop")
    await rooftop.state(gap)
    rooftop.last_event("recovered", "2025-03-14T09:00:00+00:00")
    await _blueprint_automation(hass, [rooftop.silent])
    await _at(hass, freezer, "2025-03-14T10:21:00+00:00")
    await rooftop.state("on")
    await _at(hass, freezer, "2025-03-14T10:25:59+00:00")
    assert calls == []
    await _at(hass, freezer, "2025-03-14T10:26:01+00:00")
    assert [call.data for call in calls] == [SILENT]


async def test_blueprint_one_notification_per_silence_over_a_reload(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """on -> unavailable -> on (a reload) does not report the same silence twice;
    its recovery is reported once, and a later silence again.
    """
    calls = async_mock_service(hass, "notify", "test")
    rooftop = Gateway(hass, "Rooftop")
    await rooftop.state("off")
    await _blueprint_automation(hass, [rooftop.silent])
    rooftop.last_event("silent", "2025-03-14T10:20:00+00:00")
    await rooftop.state("on")
    await _at(hass, freezer, "2025-03-14T10:25:01+00:00")
    assert [call.data for call in calls] == [SILENT]

    await _at(hass, freezer, "2025-03-14T10:30:00+00:00")
    await rooftop.state("unavailable")
    await _at(hass, freezer, "2025-03-14T10:30:05+00:00")
    await rooftop.state("on")
    await _at(hass, freezer, "2025-03-14T10:40:00+00:00")
    assert len(calls) == 1

    rooftop.last_event("recovered", "2025-03-14T10:40:00+00:00")
    await rooftop.state("off")
    await hass.async_block_till_done()
    assert [call.data["title"] for call in calls] == [
        "LoRaWAN gateway silent",
        "LoRaWAN gateway recovered",
    ]
    await _at(hass, freezer, "2025-03-14T11:00:00+00:00")
    rooftop.last_event("silent", "2025-03-14T11:00:00+00:00")
    await rooftop.state("on")
    await _at(hass, freezer, "2025-03-14T11:05:01+00:00")
    assert len(calls) == 3
    assert calls[2].data == SILENT


async def test_blueprint_silence_cut_short_by_a_reload_is_reported(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Silent for less than the duration before a reload: reported after it."""
    calls = async_mock_service(hass, "notify", "test")
    rooftop = Gateway(hass, "Rooftop")
    await rooftop.state("off")
    await _blueprint_automation(hass, [rooftop.silent])
    rooftop.last_event("silent", "2025-03-14T10:20:00+00:00")
    await rooftop.state("on")
    await _at(hass, freezer, "2025-03-14T10:22:00+00:00")
    await rooftop.state("unavailable")
    await _at(hass, freezer, "2025-03-14T10:23:00+00:00")
    await rooftop.state("on")
    await _at(hass, freezer, "2025-03-14T10:27:59+00:00")
    assert calls == []
    await _at(hass, freezer, "2025-03-14T10:28:01+00:00")
    assert [call.data for call in calls] == [SILENT]
