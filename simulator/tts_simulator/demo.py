"""``./scripts/demo``: Home Assistant with this integration, against the simulator.

Starts an MQTT broker, the TTS simulator and Home Assistant, onboards the
owner user, adds the MQTT and TTN Gateway integrations, prints where to log
in, and stops everything on Ctrl-C. State lives in ``.dev/demo`` (gitignored),
so a second run reuses the configuration and starts in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
from types import FrameType

import aiohttp

from . import tts_json
from .stack import (
    LOCALHOST,
    OWNER_PASSWORD,
    OWNER_USERNAME,
    REPO_ROOT,
    HomeAssistantClient,
    Processes,
    StackError,
    port_open,
    start_broker,
    start_hass,
    start_simulator,
    write_hass_config,
)

DEMO_DIR = REPO_ROOT / ".dev" / "demo"


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signum)


async def _set_up(port: int, mqtt_port: int, simulator_url: str, key: str) -> bool:
    async with aiohttp.ClientSession() as session:
        client = HomeAssistantClient(session, port)
        onboarded = await client.onboard_or_login()
        await client.ensure_entries(mqtt_port, simulator_url, key)
        return onboarded


def main() -> int:
    """Start the demo and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="./scripts/demo")
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant")
    parser.add_argument("--simulator-port", type=int, default=1885)
    parser.add_argument("--mqtt-port", type=int, default=1883)
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

    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    key_file = DEMO_DIR / "simulator-api-key"
    if not key_file.exists():
        key_file.write_text(tts_json.api_key(random.SystemRandom()) + "\n")
    key = key_file.read_text().strip()
    config_dir = DEMO_DIR / "config"
    simulator_url = f"http://{LOCALHOST}:{args.simulator_port}"

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    processes = Processes(DEMO_DIR / "logs")
    try:
        broker = start_broker(processes, args.mqtt_port, DEMO_DIR)
        start_simulator(
            processes,
            args.simulator_port,
            key,
            gateways=args.gateways,
            mqtt_port=args.mqtt_port,
            device_interval=args.device_interval,
        )
        write_hass_config(config_dir, args.port)
        start_hass(processes, config_dir, args.port)
        onboarded = asyncio.run(_set_up(args.port, args.mqtt_port, simulator_url, key))
        print(
            f"""
==> Ready in {time.time() - started:.0f} s{" (first run: owner created)" if onboarded else ""}

    Home Assistant  http://{LOCALHOST}:{args.port}
    user / password {OWNER_USERNAME} / {OWNER_PASSWORD}   (local only)
    TTS simulator   {simulator_url}  ({args.gateways} gateways; control: {simulator_url}/sim/state)
    MQTT broker     {broker} on {LOCALHOST}:{args.mqtt_port}
    logs            {processes.log_dir}

    Try: curl -X POST {simulator_url}/sim/gateways/rooftop-gateway/disconnect
    Stop with Ctrl-C.""",
            flush=True,
        )
        while True:
            processes.check()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\n==> Stopping", flush=True)
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        processes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
