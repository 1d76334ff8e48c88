"""``./scripts/demo``: Home Assistant with this integration, against the simulator.

Starts the application's MQTT server (as TTS offers it), the TTS simulator
and Home Assistant, onboards the owner user, adds the TTN Gateway integration
and its application, prints where to log in, and stops everything on Ctrl-C. State lives in ``.dev/demo`` (gitignored),
so a second run reuses the configuration and starts in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path
import random
import signal
import sys
import time
from types import FrameType

import aiohttp

from . import tts_json
from .app_broker import mqtt_username
from .stack import (
    DOMAIN,
    LOCALHOST,
    OWNER_PASSWORD,
    OWNER_USERNAME,
    REPO_ROOT,
    RESTART_EXIT_CODE,
    HomeAssistantClient,
    Processes,
    StackError,
    port_open,
    start_app_broker,
    start_hass,
    start_simulator,
    write_hass_config,
)

DEMO_DIR = REPO_ROOT / ".dev" / "demo"
# The simulator's application, on the TTN tenant as the simulator serves it.
APPLICATION_ID = "home-sensors"
APPLICATION_USERNAME = mqtt_username(APPLICATION_ID, "ttn")


def _stop(signum: int, _frame: FrameType | None) -> None:
    _ignore_stop_signals()
    raise KeyboardInterrupt(signum)


def _ignore_stop_signals() -> None:
    """Let nothing cut the stopping short.

    Not a second Ctrl-C, nor the signal again to the whole process group (as
    `timeout -s INT` sends it).
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


# How long the first run watches for onboarding's own integrations, and how
# many quiet checks in a row end the watch once some were removed.
ONBOARDING_SETTLE_SECONDS = 15.0
ONBOARDING_POLL_SECONDS = 0.5
QUIET_CHECKS = 4


async def _remove_onboarding_extras(client: HomeAssistantClient) -> None:
    """Remove what onboarding adds (Met.no, Radio Browser, ...) as it appears.

    Onboarding starts those config flows as background tasks, so their
    entries can appear after the demo's first clean-up; without network they
    would show as "Failed setup" cards. Watch the entries for a while after
    onboarding and delete each as it appears.
    """
    deadline = time.monotonic() + ONBOARDING_SETTLE_SECONDS
    removed_any = False
    quiet = 0
    while time.monotonic() < deadline and not (removed_any and quiet >= QUIET_CHECKS):
        if await client.remove_onboarding_extras():
            removed_any, quiet = True, 0
        else:
            quiet += 1
        await asyncio.sleep(ONBOARDING_POLL_SECONDS)


async def _add_application(
    client: HomeAssistantClient, mqtt_port: int, application_key: str
) -> str:
    """Add the application sub-entry unless there is one; what happened, in words.

    The simulator is a self-hosted stack, so the flow asks where its MQTT
    server is. An integration without application sub-entries leaves the
    demo running without them.
    """
    entry_id = next(
        entry["entry_id"]
        for entry in await client.config_entries()
        if entry["domain"] == DOMAIN
    )
    with contextlib.suppress(StackError):  # HA or integration without sub-entries
        (subentries,) = await client.websocket(
            {"type": "config_entries/subentries/list", "entry_id": entry_id}
        )
        if any(item["subentry_type"] == "application" for item in subentries):
            return "application already added"
    try:
        await client.add_subentry(
            entry_id,
            "application",
            [
                {
                    "application_id": APPLICATION_ID,
                    "api_key": application_key,
                    "transport": "direct",
                },
                {
                    "mqtt_host": LOCALHOST,
                    "mqtt_port": mqtt_port,
                    "mqtt_username": APPLICATION_USERNAME,
                    "mqtt_tls": False,
                },
            ],
        )
    except StackError as err:
        return f"application not added (the integration did not take it: {err})"
    return "application added"


async def _set_up(
    port: int, mqtt_port: int, simulator_url: str, key: str, application_key: str
) -> tuple[bool, str]:
    async with aiohttp.ClientSession() as session:
        client = HomeAssistantClient(session, port)
        onboarded = await client.onboard_or_login()
        # Earlier demos fed end devices through Home Assistant's MQTT
        # integration; its broker is gone.
        if await client.remove_entries(("mqtt",)):
            print("==> removed the MQTT integration of an earlier demo", flush=True)
        await client.ensure_entries(None, simulator_url, key)
        application = await _add_application(client, mqtt_port, application_key)
        if onboarded:
            await _remove_onboarding_extras(client)
        return onboarded, application


def _key(path: Path) -> str:
    """The key kept in `path`, made on the first run."""
    if not path.exists():
        path.write_text(tts_json.api_key(random.SystemRandom()) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> int:
    """Start the demo and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="./scripts/demo")
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant")
    parser.add_argument("--simulator-port", type=int, default=1885)
    parser.add_argument(
        "--mqtt-port", type=int, default=1883, help="the application's MQTT server"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEMO_DIR,
        help=f"configuration, keys and logs (default {DEMO_DIR})",
    )
    parser.add_argument("--gateways", type=int, default=5)
    parser.add_argument(
        "--device-interval",
        type=float,
        default=60,
        help="seconds between uplinks of each simulated device",
    )
    args = parser.parse_args()
    started = float(os.environ.get("DEMO_STARTED_AT") or time.time())
    for port in (args.port, args.simulator_port, args.mqtt_port):
        if port_open(port):
            print(f"error: port {port} is in use; stop what uses it or pick another")
            return 1

    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    key = _key(state_dir / "simulator-api-key")
    application_key = _key(state_dir / "application-api-key")
    config_dir = state_dir / "config"
    simulator_url = f"http://{LOCALHOST}:{args.simulator_port}"

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    processes = Processes(state_dir / "logs")
    try:
        broker = start_app_broker(
            processes,
            args.mqtt_port,
            state_dir,
            username=APPLICATION_USERNAME,
            api_key=application_key,
        )
        start_simulator(
            processes,
            args.simulator_port,
            key,
            gateways=args.gateways,
            mqtt_port=None,
            device_interval=args.device_interval,
            app_broker=broker,
        )
        write_hass_config(config_dir, args.port)
        start_hass(processes, config_dir, args.port)
        onboarded, application = asyncio.run(
            _set_up(args.port, args.mqtt_port, simulator_url, key, application_key)
        )
        print(f"==> {application}", flush=True)
        print(
            f"""
==> Ready in {time.time() - started:.0f} s{" (first run: owner created)" if onboarded else ""}

    Home Assistant  http://{LOCALHOST}:{args.port}
    user / password {OWNER_USERNAME} / {OWNER_PASSWORD}   (local only)
    TTS simulator   {simulator_url}  ({args.gateways} gateways; control: {simulator_url}/sim/state)
    TTS MQTT server mqtt://{LOCALHOST}:{args.mqtt_port} ({broker.kind}), user {APPLICATION_USERNAME},
                    password: the application key in {state_dir / "application-api-key"}
    logs            {processes.log_dir}

    Try: curl -X POST {simulator_url}/sim/gateways/rooftop-gateway/disconnect
    Stop with Ctrl-C.""",
            flush=True,
        )
        while True:
            if processes.exit_code("hass") == RESTART_EXIT_CODE:
                # Settings → System → Restart: start it again, as a supervisor
                # does; uplinks sent meanwhile come from the Storage Integration.
                print("==> Home Assistant restarts", flush=True)
                processes.stop_one("hass")
                start_hass(processes, config_dir, args.port)
                print("==> Home Assistant is back", flush=True)
            processes.check()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\n==> Stopping", flush=True)
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        _ignore_stop_signals()
        processes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
