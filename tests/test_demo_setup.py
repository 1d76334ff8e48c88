"""The demo's set-up on a second run: its config entries follow the run's ports.

Home Assistant is a fake of the REST and websocket answers the demo's client
uses (homeassistant/components/config/config_entries.py): config entries,
their reconfigure flows and the application sub-entry's. Forms come as the
frontend gets them (voluptuous_serialize): a value in ``default`` or in
``description.suggested_value``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tts_simulator import demo_setup
from tts_simulator.demo_setup import (
    APPLICATION_USERNAME,
    TTN_ACCOUNT_TITLE,
    set_up,
    wait_until_loaded,
)
from tts_simulator.stack import DOMAIN, HomeAssistantClient, StackError

KEY = "NNSXS.SIMULATOR"
APPLICATION_KEY = "NNSXS.APPLICATION"
RECONFIGURED = {"type": "abort", "reason": "reconfigure_successful"}


def url(port: int) -> str:
    """The simulator's address on a port."""
    return f"http://127.0.0.1:{port}"


def value(name: str, current: Any, *, suggested: bool) -> dict[str, Any]:
    """A form field showing `current`, as a default or as a suggested value."""
    if suggested:
        return {
            "name": name,
            "required": True,
            "description": {"suggested_value": current},
        }
    return {"name": name, "required": True, "default": current}


@dataclass
class FakeHomeAssistant:
    """The demo's config entries as the last run left them, and this run's ports."""

    server: str
    app_port: int
    hass_mqtt_port: int
    live_server: str
    live_mqtt_port: int
    # Home Assistant 2026.x's MQTT form suggests its settings; 2025.4 defaults them.
    mqtt_suggests: bool = False
    app_server: str = ""
    saved: list[str] = field(default_factory=list)
    disabled: list[tuple[str, bool]] = field(default_factory=list)
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app_server = self.app_server or self.server

    def entries(self) -> list[dict[str, Any]]:
        """As Home Assistant lists them: each loaded when it reaches its server."""
        account_ok = (
            self.server == self.live_server
            and self.app_server == self.server
            and self.app_port == self.live_mqtt_port
        )
        mqtt_ok = self.hass_mqtt_port == self.live_mqtt_port
        return [
            self._entry("account", DOMAIN, f"demo ({self.server[7:]})", account_ok),
            self._entry("mqtt", "mqtt", "127.0.0.1", mqtt_ok),
            self._entry("ttn", DOMAIN, TTN_ACCOUNT_TITLE, mqtt_ok),
        ]

    @staticmethod
    def _entry(entry_id: str, domain: str, title: str, ok: bool) -> dict[str, Any]:
        return {
            "entry_id": entry_id,
            "domain": domain,
            "title": title,
            "state": "loaded" if ok else "setup_retry",
            "reason": None if ok else "Connection refused",
            "disabled_by": None,
        }

    def start(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        flow_id = f"flow{len(self.flows)}"
        if kind == "subentries/flow":
            assert body == {"handler": ["account", "application"], "subentry_id": "app"}
            form = {
                "step_id": "user",
                "data_schema": [
                    {"name": "application_id", "required": True},
                    {"name": "api_key", "required": True},
                    {"name": "transport", "required": True},
                ],
            }
        elif body["handler"] == DOMAIN:
            assert body["entry_id"] == "account"
            form = {
                "step_id": "reconfigure",
                "data_schema": [
                    value("server", self.server, suggested=False),
                    {"name": "api_key", "required": True},
                ],
            }
        else:
            assert body == {
                "handler": "mqtt",
                "entry_id": "mqtt",
                "show_advanced_options": False,
            }
            form = {
                "step_id": "broker",
                "data_schema": [
                    value("broker", "127.0.0.1", suggested=self.mqtt_suggests),
                    value("port", self.hass_mqtt_port, suggested=self.mqtt_suggests),
                    {"name": "username", "required": False},
                    {"name": "password", "required": False},
                ],
            }
        self.flows[flow_id] = {"kind": kind, "handler": body["handler"]}
        return {"type": "form", "flow_id": flow_id, "errors": {}, **form}

    def step(self, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
        flow = self.flows[flow_id]
        if flow["handler"] == DOMAIN:
            assert data["api_key"] == KEY
            self.server = data["server"]
            self.saved.append("account")
            return RECONFIGURED
        if flow["handler"] == "mqtt":
            assert data["username"] == APPLICATION_USERNAME
            assert data["password"] == APPLICATION_KEY
            self.hass_mqtt_port = data["port"]
            self.saved.append("mqtt")
            return RECONFIGURED
        if "application_id" in data:
            assert data["api_key"] == APPLICATION_KEY
            # subentry_flow.async_step_direct: the stored settings when they
            # belong to the account's server.
            port = self.app_port if self.app_server == self.server else 1883
            return {
                "type": "form",
                "flow_id": flow_id,
                "step_id": "direct",
                "errors": {},
                "data_schema": [
                    value("mqtt_host", "127.0.0.1", suggested=True),
                    value("mqtt_port", port, suggested=True),
                    value("mqtt_username", APPLICATION_USERNAME, suggested=True),
                    value("mqtt_tls", False, suggested=True),
                ],
            }
        self.app_port = data["mqtt_port"]
        self.app_server = self.server
        self.saved.append("application")
        return RECONFIGURED

    def websocket(self, command: dict[str, Any]) -> Any:
        if command["type"] == "config_entries/subentries/list":
            return [{"subentry_id": "app", "subentry_type": "application"}]
        if command["type"] == "config_entries/disable":
            self.disabled.append(
                (command["entry_id"], command["disabled_by"] is not None)
            )
            return None
        raise StackError(f"unknown command {command['type']}")


class FakeClient(HomeAssistantClient):
    """The demo's client, its requests answered by a FakeHomeAssistant."""

    world: FakeHomeAssistant

    async def onboard_or_login(self) -> bool:
        return False

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        body = kwargs.get("json") or {}
        prefix = "/api/config/config_entries/"
        assert path.startswith(prefix), path
        rest = path.removeprefix(prefix)
        if method == "GET" and rest == "entry":
            return self.world.entries()
        kind, _, flow_id = (
            rest.rpartition("/")
            if rest.startswith(("flow/", "subentries/flow/"))
            else (rest, "", "")
        )
        if method == "POST" and not flow_id:
            return self.world.start(kind, body)
        if method == "DELETE":
            self.world.closed.append(flow_id)
            del self.world.flows[flow_id]
            return None
        return self.world.step(flow_id, body)

    async def websocket(self, *commands: dict[str, Any]) -> list[Any]:
        return [self.world.websocket(command) for command in commands]


@pytest.fixture
def home_assistant(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    """The demo's client class, on a FakeHomeAssistant set per test."""
    monkeypatch.setattr(demo_setup, "HomeAssistantClient", FakeClient)
    return FakeClient


async def _run(world: FakeHomeAssistant) -> list[str]:
    FakeClient.world = world
    _onboarded, done = await set_up(
        8123,
        world.live_mqtt_port,
        world.live_server,
        KEY,
        APPLICATION_KEY,
    )
    return done


@pytest.mark.parametrize("mqtt_suggests", [False, True], ids=["2025.4", "2026.10"])
async def test_other_ports_move_every_entry(
    home_assistant: type[FakeClient], mqtt_suggests: bool
) -> None:
    """A run on other ports leaves no entry on the last run's: all load."""
    world = FakeHomeAssistant(
        server=url(1885),
        app_port=1883,
        hass_mqtt_port=1883,
        live_server=url(41885),
        live_mqtt_port=41883,
        mqtt_suggests=mqtt_suggests,
    )
    assert demo_setup.not_loaded(world.entries())

    done = await _run(world)

    assert demo_setup.not_loaded(world.entries()) == []
    assert world.server == url(41885)
    assert (world.app_port, world.app_server) == (41883, url(41885))
    assert world.hass_mqtt_port == 41883
    assert world.saved == ["account", "application", "mqtt"]
    # The TTN account subscribes again on the new MQTT connection.
    assert world.disabled == [("ttn", True), ("ttn", False)]
    assert done[:3] == [
        f"account moved to {url(41885)}",
        "application moved to port 41883",
        "Home Assistant's MQTT integration on port 41883",
    ]


async def test_other_simulator_port_only(home_assistant: type[FakeClient]) -> None:
    """The application's key is checked on the moved server, its port kept."""
    world = FakeHomeAssistant(
        server=url(1885),
        app_port=1883,
        hass_mqtt_port=1883,
        live_server=url(41885),
        live_mqtt_port=1883,
    )

    await _run(world)

    assert demo_setup.not_loaded(world.entries()) == []
    assert world.saved == ["account", "application"]
    assert world.disabled == []


async def test_same_ports_save_nothing(home_assistant: type[FakeClient]) -> None:
    """A run on the last run's ports opens each form and closes it unsaved."""
    world = FakeHomeAssistant(
        server=url(1885),
        app_port=1883,
        hass_mqtt_port=1883,
        live_server=url(1885),
        live_mqtt_port=1883,
    )

    done = await _run(world)

    assert world.saved == []
    assert world.disabled == []
    assert world.flows == {}
    assert len(world.closed) == 3
    assert done[0] == "application already added"


async def test_wait_until_loaded_names_what_is_not(
    home_assistant: type[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Ready" only with every entry loaded: the others named, with their state."""
    FakeClient.world = FakeHomeAssistant(
        server=url(1885),
        app_port=1883,
        hass_mqtt_port=41883,
        live_server=url(1885),
        live_mqtt_port=41883,
    )
    assert await wait_until_loaded(8123, seconds=0) == [
        "demo (127.0.0.1:1885) (ttn_gateway) setup_retry: Connection refused"
    ]
    FakeClient.world.app_port = 41883
    assert await wait_until_loaded(8123, seconds=0) == []


async def test_reconfigure_not_saved_is_an_error(
    home_assistant: type[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconfigure that does not save stops the demo with what HA said."""
    world = FakeHomeAssistant(
        server=url(1885),
        app_port=1883,
        hass_mqtt_port=1883,
        live_server=url(41885),
        live_mqtt_port=1883,
    )
    monkeypatch.setattr(
        world,
        "step",
        lambda flow_id, data: {"type": "abort", "reason": "wrong_account"},
    )
    with pytest.raises(StackError, match="wrong_account"):
        await _run(world)
