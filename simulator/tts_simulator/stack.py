"""Run MQTT brokers, the simulator and Home Assistant locally, and set HA up.

Used by ``./scripts/demo`` and by the end-to-end tests. Every process is
started in its own session and stopped by its PID (SIGTERM, then SIGKILL),
so nothing is left running. Home Assistant is set up the way a user does it
in the browser: onboarding, then config flows through the REST API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import contextlib
from dataclasses import dataclass, field
from http import HTTPStatus
import json
import os
from pathlib import Path
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import IO, TYPE_CHECKING, Any, Final

import aiohttp

if TYPE_CHECKING:
    from .app_broker import AppBroker
    from .cluster import ClusterTLS

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
SIMULATOR_DIR: Final = REPO_ROOT / "simulator"
DOMAIN: Final = "ttn_gateway"
# Integrations onboarding adds that need the internet; removed again.
ONBOARDING_EXTRAS: Final = ("met", "radio_browser", "google_translate", "shopping_list")
LOCALHOST: Final = "127.0.0.1"
# Local-only credentials of the demo's owner user (documented in the README).
OWNER_NAME: Final = "Demo"
OWNER_USERNAME: Final = "demo"
OWNER_PASSWORD: Final = "demo-password"  # noqa: S105  # documented, local only
STOP_TIMEOUT: Final = 20.0
# What Home Assistant exits with to be started again (homeassistant.const
# RESTART_EXIT_CODE): its Restart action, without a supervisor to do it.
RESTART_EXIT_CODE: Final = 100
# The simulator's own login on the application's MQTT server.
APP_BROKER_SIM_USER: Final = "tts-simulator"
# Home Assistant's environment for the simulator's TTN cluster, in its config dir.
CLUSTER_ENV_FILE: Final = "tts-simulator-cluster.json"


class StackError(RuntimeError):
    """A process did not start or Home Assistant refused a step."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOCALHOST, port)) == 0


def find_mosquitto() -> str | None:
    """The mosquitto binary (Debian puts it in /usr/sbin), or None."""
    return shutil.which("mosquitto") or shutil.which(
        "mosquitto", path="/usr/sbin:/usr/local/sbin"
    )


@dataclass
class Processes:
    """Processes started here, stopped by PID in reverse order."""

    log_dir: Path
    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process with its output in ``<log_dir>/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        process = subprocess.Popen(  # noqa: S603
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.started.append((name, process))
        return process

    def check(self) -> None:
        """Raise if a started process has exited."""
        for name, process in self.started:
            if process.poll() is not None:
                raise StackError(
                    f"{name} exited with {process.returncode}; see "
                    f"{self.log_dir / (name + '.log')}"
                )

    def exit_code(self, name: str) -> int | None:
        """The exit code of the process started as `name`; None while it runs."""
        codes = [process.poll() for started, process in self.started if started == name]
        return next((code for code in codes if code is not None), None)

    def stop(self) -> None:
        """SIGTERM each process (newest first), SIGKILL what is left."""
        _terminate([process for _name, process in reversed(self.started)])
        self.started.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def stop_one(self, name: str) -> None:
        """Stop the processes started as `name`, leaving the others running."""
        _terminate([process for started, process in self.started if started == name])
        self.started = [item for item in self.started if item[0] != name]

    def wait_for_port(self, port: int, timeout: float) -> None:
        """Wait until 127.0.0.1:port accepts connections."""
        deadline = time.monotonic() + timeout
        while not port_open(port):
            self.check()
            if time.monotonic() > deadline:
                raise StackError(f"nothing listens on port {port} after {timeout} s")
            time.sleep(0.2)


def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM the processes' groups, in order; SIGKILL what is left after a while."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_broker(processes: Processes, port: int, work_dir: Path) -> str:
    """Start mosquitto, or the Python broker amqtt when it is missing."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if mosquitto := find_mosquitto():
        config = work_dir / "mosquitto.conf"
        config.write_text(
            f"listener {port} {LOCALHOST}\nallow_anonymous true\npersistence false\n"
        )
        processes.start("mosquitto", [mosquitto, "-c", str(config)])
        name = "mosquitto"
    else:
        config = work_dir / "amqtt.yaml"
        config.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: {LOCALHOST}:{port}\n"
            "auth:\n  allow-anonymous: true\n  plugins: [auth_anonymous]\n"
            "topic-check:\n  enabled: false\n"
        )
        amqtt = Path(sys.executable).with_name("amqtt")
        processes.start("amqtt", [str(amqtt), "-c", str(config)])
        name = "amqtt"
    processes.wait_for_port(port, 30)
    return name


def start_app_broker(
    processes: Processes,
    port: int,
    work_dir: Path,
    *,
    username: str,
    api_key: str,
    sim_user: str = APP_BROKER_SIM_USER,
    sim_password: str | None = None,
) -> AppBroker:
    """Start the application's MQTT server, as TTS's Application Server offers it.

    `username` (``app@tenant``) logs in with the application's `api_key` and
    may use only ``v3/{username}/#``; `sim_user` is the simulator's own
    login (a random password unless given). mosquitto when installed,
    otherwise amqtt (requirements_broker.txt).
    """
    from .app_broker import AppBroker

    broker = AppBroker(
        processes,
        port,
        work_dir,
        username=username,
        api_key=api_key,
        sim_user=sim_user,
        sim_password=sim_password or secrets.token_urlsafe(24),
        mosquitto=find_mosquitto(),
    )
    broker.start()
    return broker


def start_simulator(
    processes: Processes,
    port: int,
    api_key: str,
    *,
    gateways: int,
    mqtt_port: int | None,
    device_interval: float | None = None,
    app_broker: AppBroker | None = None,
    cluster: ClusterTLS | None = None,
) -> None:
    """Start ``python -m tts_simulator``.

    With `mqtt_port` it publishes uplinks to that open broker; with
    `app_broker` it publishes uplinks to and takes downlinks from the
    application's MQTT server, as its privileged user; with `cluster` it
    also serves https as a TTN cluster (``cluster.py``).
    """
    argv = [
        sys.executable,
        "-m",
        "tts_simulator",
        "--port",
        str(port),
        "--gateways",
        str(gateways),
        "--api-key",
        api_key,
    ]
    if mqtt_port is not None:
        argv += ["--mqtt-host", LOCALHOST, "--mqtt-port", str(mqtt_port)]
    if app_broker is not None:
        # In a file: a password on the command line shows in `ps`.
        password_file = app_broker.work_dir / "simulator-mqtt-password"
        password_file.write_text(app_broker.sim_password + "\n")
        password_file.chmod(0o600)
        argv += [
            "--app-mqtt-host",
            LOCALHOST,
            "--app-mqtt-port",
            str(app_broker.port),
            "--app-mqtt-user",
            app_broker.sim_user,
            "--app-mqtt-password-file",
            str(password_file),
        ]
        # The simulator's HTTP API takes the same application key.
        key_file = app_broker.work_dir / "simulator-application-key"
        key_file.write_text(app_broker.api_key + "\n")
        key_file.chmod(0o600)
        argv += ["--application-key-file", str(key_file)]
    if device_interval is not None:
        argv += ["--device-interval", str(device_interval)]
    if cluster is not None:
        argv += ["--tls-port", str(cluster.port)]
        argv += ["--tls-cert", str(cluster.cert), "--tls-key", str(cluster.key)]
    processes.start("simulator", argv, {"PYTHONPATH": str(SIMULATOR_DIR)})
    processes.wait_for_port(port, 30)
    if cluster is not None:
        processes.wait_for_port(cluster.port, 30)


def write_hass_config(
    config_dir: Path, port: int, cluster: ClusterTLS | None = None
) -> None:
    """A minimal configuration (no discovery, no cloud) with prometheus.

    Automations from the editor, and the project's blueprints to make them
    from.

    With `cluster`, every later `start_hass` on it reaches the TTN cluster
    host names at the simulator (``cluster.py``); without, none does.
    """
    (config_dir / "custom_components").mkdir(parents=True, exist_ok=True)
    env_file = config_dir / CLUSTER_ENV_FILE
    if cluster is None:
        env_file.unlink(missing_ok=True)
    else:
        env_file.write_text(json.dumps(cluster.hass_env(LOCALHOST)))
    link = config_dir / "custom_components" / DOMAIN
    if not link.exists():
        link.symlink_to(REPO_ROOT / "custom_components" / DOMAIN)
    _install_blueprints(config_dir)
    # What the automation editor saves; kept between runs.
    automations = config_dir / "automations.yaml"
    if not automations.exists():
        automations.write_text("[]\n")
    (config_dir / "configuration.yaml").write_text(
        f"""homeassistant:
  name: TTN Gateway demo
  latitude: 52.37403
  longitude: 4.88969
  elevation: 12
  unit_system: metric
  time_zone: Europe/Amsterdam
  country: NL
  currency: EUR

http:
  server_host: {LOCALHOST}
  server_port: {port}

frontend:
config:
history:
logbook:
prometheus:
automation: !include automations.yaml

logger:
  default: warning
  logs:
    custom_components.ttn_gateway: debug
"""
    )


def _install_blueprints(config_dir: Path) -> None:
    """Link the project's blueprints into the configuration, file by file.

    Home Assistant's search for blueprints does not follow linked folders.
    """
    source = REPO_ROOT / "blueprints"
    for blueprint in source.glob("*/*/*.yaml"):
        link = config_dir / "blueprints" / blueprint.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to(blueprint)


def start_hass(processes: Processes, config_dir: Path, port: int) -> None:
    """Start Home Assistant and wait until its HTTP server answers.

    ``--skip-pip``: Home Assistant installs nothing into the venv it runs
    from, which the unit tests share (onboarding's Met.no, Radio Browser and
    Google Translate would bring pycares 5, which breaks aiodns on 2025.4).
    requirements_dev*.txt pin what the configuration loads; onboarding's
    extras fail to load without their requirements and are removed anyway.
    """
    hass = Path(sys.executable).with_name("hass")
    env: dict[str, str] = {}
    if (env_file := config_dir / CLUSTER_ENV_FILE).exists():
        env = json.loads(env_file.read_text())
        if inherited := os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.pathsep.join((env["PYTHONPATH"], inherited))
    processes.start("hass", [str(hass), "--config", str(config_dir), "--skip-pip"], env)
    processes.wait_for_port(port, 300)


class HomeAssistantClient:
    """REST and websocket calls on a local Home Assistant, as the frontend makes them."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base_url = f"http://{LOCALHOST}:{port}"
        self.client_id = f"{self.base_url}/"
        self.token = ""

    @property
    def headers(self) -> dict[str, str]:
        """The bearer token header."""
        return {"Authorization": f"Bearer {self.token}"}

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(
            method, f"{self.base_url}{path}", **kwargs
        ) as response:
            if response.status >= 400:
                text = await response.text()
                raise StackError(f"{method} {path}: HTTP {response.status} {text}")
            return await response.json()

    async def owner_missing(self, seconds: float = 300) -> bool:
        """Wait until HA answers; whether onboarding still has to create the owner.

        Once onboarding is done HA no longer serves ``/api/onboarding`` (404).
        """
        deadline = time.monotonic() + seconds
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.get(
                    f"{self.base_url}/api/onboarding"
                ) as response:
                    if response.status == HTTPStatus.NOT_FOUND:
                        return False
                    if response.status == HTTPStatus.OK:
                        steps = await response.json()
                        return not next(
                            step["done"] for step in steps if step["step"] == "user"
                        )
            if time.monotonic() > deadline:
                raise StackError("Home Assistant did not answer in time")
            await asyncio.sleep(0.5)

    async def _token(self, code: str) -> None:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self.client_id,
        }
        self.token = (await self._json("POST", "/auth/token", data=data))[
            "access_token"
        ]

    async def onboard_or_login(self) -> bool:
        """Create the owner (first run) or log in; True if onboarded now."""
        if await self.owner_missing():
            result = await self._json(
                "POST",
                "/api/onboarding/users",
                json={
                    "client_id": self.client_id,
                    "name": OWNER_NAME,
                    "username": OWNER_USERNAME,
                    "password": OWNER_PASSWORD,
                    "language": "en",
                },
            )
            await self._token(result["auth_code"])
            await self._json(
                "POST", "/api/onboarding/core_config", headers=self.headers
            )
            await self._json("POST", "/api/onboarding/analytics", headers=self.headers)
            await self._json(
                "POST",
                "/api/onboarding/integration",
                headers=self.headers,
                json={
                    "client_id": self.client_id,
                    "redirect_uri": f"{self.base_url}/?auth_callback=1",
                },
            )
            return True
        flow = await self._json(
            "POST",
            "/auth/login_flow",
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.base_url}/?auth_callback=1",
            },
        )
        result = await self._json(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json={
                "client_id": self.client_id,
                "username": OWNER_USERNAME,
                "password": OWNER_PASSWORD,
            },
        )
        await self._token(result["result"])
        return False

    async def config_entries(self) -> list[dict[str, Any]]:
        """Every config entry."""
        entries: list[dict[str, Any]] = await self._json(
            "GET", "/api/config/config_entries/entry", headers=self.headers
        )
        return entries

    async def add_entry(
        self, handler: str, user_input: dict[str, Any]
    ) -> dict[str, Any]:
        """Run a config flow's first form with `user_input`, as the frontend does."""
        flow = await self._json(
            "POST",
            "/api/config/config_entries/flow",
            headers=self.headers,
            json={"handler": handler, "show_advanced_options": False},
        )
        if flow["type"] != "form":
            raise StackError(f"{handler} flow: expected a form, got {flow}")
        result: dict[str, Any] = await self._json(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            headers=self.headers,
            json=_with_form_defaults(flow.get("data_schema") or [], user_input),
        )
        if result["type"] != "create_entry":
            raise StackError(f"{handler} flow did not create an entry: {result}")
        return result

    async def remove_onboarding_extras(self) -> int:
        """Delete the entries onboarding adds besides ours; how many went."""
        return await self.remove_entries(ONBOARDING_EXTRAS)

    async def remove_entries(self, domains: tuple[str, ...]) -> int:
        """Delete every entry of these integrations; how many went."""
        removed = 0
        for entry in await self.config_entries():
            if entry["domain"] in domains:
                await self.remove_entry(entry["entry_id"])
                removed += 1
        return removed

    async def remove_entry(self, entry_id: str) -> None:
        """Delete a config entry, as its "Delete" menu item does."""
        await self._json(
            "DELETE",
            f"/api/config/config_entries/entry/{entry_id}",
            headers=self.headers,
        )

    async def add_subentry(
        self,
        entry_id: str,
        subentry_type: str,
        steps: list[dict[str, Any]],
        *,
        subentry_id: str | None = None,
    ) -> dict[str, Any]:
        """Add a sub-entry of `entry_id` through its flow, as the frontend does.

        Each item of `steps` fills the next form (the others keep their
        defaults); a menu step takes ``{"next_step_id": ...}``. The flow must
        end in a new sub-entry, else StackError. With `subentry_id` the flow
        reconfigures that sub-entry instead and must end saying so.
        """
        start: dict[str, Any] = {"handler": [entry_id, subentry_type]}
        if subentry_id is not None:
            start["subentry_id"] = subentry_id
        flow = await self._json(
            "POST",
            "/api/config/config_entries/subentries/flow",
            headers=self.headers,
            json=start,
        )
        path = f"/api/config/config_entries/subentries/flow/{flow['flow_id']}"
        for user_input in steps:
            if flow["type"] in ("create_entry", "abort"):
                break
            if flow["type"] == "menu":
                data = user_input
            elif flow["type"] == "form":
                data = _with_form_defaults(flow.get("data_schema") or [], user_input)
            else:
                raise StackError(f"{subentry_type} sub-entry flow ended: {flow}")
            step_id = flow.get("step_id")
            flow = await self._json("POST", path, headers=self.headers, json=data)
            if flow["type"] == "form" and flow.get("errors"):
                raise StackError(
                    f"{subentry_type} sub-entry step {step_id}: {flow['errors']}"
                )
        reconfigured = (
            subentry_id is not None
            and flow["type"] == "abort"
            and flow.get("reason") == "reconfigure_successful"
        )
        if flow["type"] != "create_entry" and not reconfigured:
            raise StackError(f"{subentry_type} sub-entry flow did not finish: {flow}")
        result: dict[str, Any] = flow
        return result

    async def start_flow(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Start a flow (`kind` ``flow`` or ``subentries/flow``); its first step.

        With ``entry_id`` (``subentry_id``) in `body` it reconfigures that one.
        """
        flow: dict[str, Any] = await self._json(
            "POST",
            f"/api/config/config_entries/{kind}",
            headers=self.headers,
            json={"show_advanced_options": False, **body} if kind == "flow" else body,
        )
        return flow

    async def flow_step(
        self, kind: str, flow: dict[str, Any], user_input: dict[str, Any]
    ) -> dict[str, Any]:
        """Submit the form `flow` shows, with what the user leaves as it is."""
        data = _with_form_defaults(flow.get("data_schema") or [], user_input)
        result: dict[str, Any] = await self._json(
            "POST",
            f"/api/config/config_entries/{kind}/{flow['flow_id']}",
            headers=self.headers,
            json=data,
        )
        return result

    async def abort_flow(self, kind: str, flow: dict[str, Any]) -> None:
        """Close a flow's form without saving, as its X does."""
        await self._json(
            "DELETE",
            f"/api/config/config_entries/{kind}/{flow['flow_id']}",
            headers=self.headers,
        )

    async def ensure_entries(
        self, mqtt_port: int | None, simulator_url: str, api_key: str
    ) -> None:
        """Add the TTN Gateway entry and the MQTT one, unless they exist.

        The MQTT entry is for an open broker on `mqtt_port`; None adds none.
        """
        await self.keep_http_config()
        await self.remove_onboarding_extras()
        entries = await self.config_entries()
        domains = {entry["domain"] for entry in entries}
        if mqtt_port is not None and "mqtt" not in domains:
            await self.add_entry("mqtt", {"broker": LOCALHOST, "port": mqtt_port})
        if DOMAIN not in domains:
            await self.add_entry(DOMAIN, {"server": simulator_url, "api_key": api_key})

    async def keep_http_config(self) -> None:
        """Confirm the HTTP settings of configuration.yaml (port, address).

        Home Assistant 2026.10 and newer take them as a trial that reverts to
        port 8123 after 5 minutes unless confirmed; older versions have no
        such trial (the command is unknown there) and nothing is pending once
        confirmed.
        """
        with contextlib.suppress(StackError):
            await self.websocket({"type": "http/config/promote"})

    async def set_options(
        self, entry_id: str, menu_step: str, user_input: dict[str, Any]
    ) -> dict[str, Any]:
        """Pick `menu_step` in an entry's options menu and submit its form."""
        flow = await self._json(
            "POST",
            "/api/config/config_entries/options/flow",
            headers=self.headers,
            json={"handler": entry_id, "show_advanced_options": False},
        )
        path = f"/api/config/config_entries/options/flow/{flow['flow_id']}"
        if flow["type"] == "menu":
            flow = await self._json(
                "POST", path, headers=self.headers, json={"next_step_id": menu_step}
            )
        if flow["type"] != "form" or flow["step_id"] != menu_step:
            raise StackError(f"options flow: expected the {menu_step} form: {flow}")
        result: dict[str, Any] = await self._json(
            "POST", path, headers=self.headers, json=user_input
        )
        if result["type"] != "create_entry":
            raise StackError(f"options flow did not save: {result}")
        return result

    async def states(self) -> dict[str, dict[str, Any]]:
        """Every entity's state, by entity id."""
        states = await self._json("GET", "/api/states", headers=self.headers)
        return {state["entity_id"]: state for state in states}

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any]
    ) -> Any:
        """Call an action."""
        return await self._json(
            "POST", f"/api/services/{domain}/{service}", headers=self.headers, json=data
        )

    async def text(self, path: str) -> str:
        """A text resource, with the token."""
        async with self.session.get(
            f"{self.base_url}{path}", headers=self.headers
        ) as response:
            response.raise_for_status()
            return await response.text()

    async def websocket(self, *commands: dict[str, Any]) -> list[Any]:
        """Send websocket commands and return their results, in order."""
        results = []
        async with self.session.ws_connect(f"{self.base_url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json())["type"] != "auth_ok":
                raise StackError("websocket authentication failed")
            for number, command in enumerate(commands, start=1):
                await ws.send_json({"id": number, **command})
                while (message := await ws.receive_json())["id"] != number:
                    pass
                if not message["success"]:
                    raise StackError(f"websocket {command}: {message}")
                results.append(message["result"])
        return results


def form_value(flow: dict[str, Any], name: str) -> Any:
    """What a form shows in field `name` (None: empty or no such field)."""
    for item in flow.get("data_schema") or []:
        if item.get("name") == name:
            return _field_default(item)
    return None


def _field_default(item: dict[str, Any]) -> Any:
    """What the frontend submits for a field the user left alone, or None.

    Its suggested value (a reconfigure form's current settings) before its
    default, as the frontend fills the form.
    """
    if item.get("type") == "expandable":
        # A collapsed section: its own fields' defaults.
        return _with_form_defaults(item.get("schema") or [], {})
    suggested = (item.get("description") or {}).get("suggested_value")
    if suggested is not None:
        return suggested
    if "default" in item:
        return item["default"]
    selector = item.get("selector") or {}
    if item.get("required") and "boolean" in selector:
        return False
    select = selector.get("select")
    if item.get("required") and select and select.get("options"):
        # A required choice without a default: the first option.
        option = select["options"][0]
        return option["value"] if isinstance(option, dict) else option
    return None


def _with_form_defaults(
    schema: list[dict[str, Any]], user_input: dict[str, Any]
) -> dict[str, Any]:
    """`user_input` with the defaults of the fields it leaves out.

    Newer Home Assistant forms have sections (the MQTT broker form's
    ``other_settings``) that the frontend always submits, even collapsed.
    """
    data = dict(user_input)
    for item in schema:
        name = item.get("name")
        if name is None or name in data:
            continue
        if (default := _field_default(item)) is not None:
            data[name] = default
    return data
