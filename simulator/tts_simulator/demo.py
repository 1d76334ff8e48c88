"""``./scripts/demo``: Home Assistant with this integration, against the simulator.

Starts the application's MQTT server (as TTS offers it), the TTS simulator
and Home Assistant, onboards the owner user, adds the TTN Gateway integration
and its application, and a second account on the simulator as a TTN
cluster (``demo_setup.py``), prints where to log in, and stops everything on
Ctrl-C. State lives in ``.dev/demo`` (gitignored), so a second run reuses the
configuration and starts in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
import random
import signal
import sys
import time
from types import FrameType

from . import tts_json
from .cluster import make_cluster_tls
from .demo_setup import (
    APPLICATION_USERNAME,
    TTN_ACCOUNT_TITLE,
    TTN_CLUSTER,
    set_up,
    wait_until_loaded,
)
from .stack import (
    LOCALHOST,
    OWNER_PASSWORD,
    OWNER_USERNAME,
    REPO_ROOT,
    RESTART_EXIT_CODE,
    Processes,
    StackError,
    free_port,
    port_open,
    start_app_broker,
    start_hass,
    start_simulator,
    write_hass_config,
)

DEMO_DIR = REPO_ROOT / ".dev" / "demo"
# The newest Home Assistant's state: it migrates what it stores, which the
# oldest then cannot read.
NEWEST_DEMO_DIR = REPO_ROOT / ".dev" / "demo-newest"


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


def _key(path: Path) -> str:
    """The key kept in `path`, made on the first run."""
    if not path.exists():
        path.write_text(tts_json.api_key(random.SystemRandom()) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _all_loaded(port: int) -> bool:
    """Wait until every config entry is loaded; print those that are not."""
    missing = asyncio.run(wait_until_loaded(port))
    for entry in missing:
        print(f"==> Not loaded: {entry}", flush=True)
    return not missing


def main() -> int:
    """Start the demo and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="./scripts/demo")
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant")
    parser.add_argument("--simulator-port", type=int, default=1885)
    parser.add_argument(
        "--mqtt-port", type=int, default=1883, help="the application's MQTT server"
    )
    parser.add_argument(
        "--newest",
        action="store_true",
        help="the newest Home Assistant (.venv-newest; scripts/demo picks it)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"configuration, keys and logs (default {DEMO_DIR}, "
        f"with --newest {NEWEST_DEMO_DIR})",
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

    state_dir: Path = (
        args.state_dir or (NEWEST_DEMO_DIR if args.newest else DEMO_DIR)
    ).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    key = _key(state_dir / "simulator-api-key")
    application_key = _key(state_dir / "application-api-key")
    config_dir = state_dir / "config"
    simulator_url = f"http://{LOCALHOST}:{args.simulator_port}"
    # The simulator's https port as TTN's clusters, for Home Assistant only.
    cluster = make_cluster_tls(state_dir / "cluster", free_port())

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
            cluster=cluster,
        )
        write_hass_config(config_dir, args.port, cluster)
        start_hass(processes, config_dir, args.port)
        onboarded, done = asyncio.run(
            set_up(
                args.port,
                args.mqtt_port,
                simulator_url,
                key,
                application_key,
            )
        )
        for line in done:
            print(f"==> {line}", flush=True)
        ready = "==> Ready" if _all_loaded(args.port) else "==> Not ready"
        print(
            f"""
{ready} in {time.time() - started:.0f} s{" (first run: owner created)" if onboarded else ""}

    Home Assistant  http://{LOCALHOST}:{args.port}
    user / password {OWNER_USERNAME} / {OWNER_PASSWORD}   (local only)
    TTS simulator   {simulator_url}  ({args.gateways} gateways; control: {simulator_url}/sim/state)
    TTS MQTT server mqtt://{LOCALHOST}:{args.mqtt_port} ({broker.kind}), user {APPLICATION_USERNAME},
                    password: the application key in {state_dir / "application-api-key"}
    TTN account     {TTN_ACCOUNT_TITLE}: the simulator as TTN's {TTN_CLUSTER} cluster
                    (https on 127.0.0.1:{cluster.port}, for Home Assistant only)
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
                back = "" if _all_loaded(args.port) else ", not ready"
                print(f"==> Home Assistant is back{back}", flush=True)
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
