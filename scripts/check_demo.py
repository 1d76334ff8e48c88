#!/usr/bin/env python3
"""Run ./scripts/demo as the README says, twice, and stop it with Ctrl-C.

The first run onboards Home Assistant in a fresh state folder, the second
starts from that state on other ports and runs Home Assistant's Restart
action, after which the demo must start it again ("==> Home Assistant is
back"). Each run must print "==> Ready" with every config entry loaded (the
accounts and the MQTT integration on this run's ports), and the first must
take an automation made from the silence blueprint; then each must stop
cleanly (exit 0, no traceback) on SIGINT, sent to the demo and to its
process group as `timeout -s INT` does (a terminal's Ctrl-C: the group). The ports are free ones, the state lives in
.dev/demo-check (not the demo's own .dev/demo). ./scripts/test compares
.venv's packages before and after.

    python scripts/check_demo.py [--runs N] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import contextlib
import json
import os
from pathlib import Path
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any
import urllib.parse
import urllib.request

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = REPO_ROOT / ".dev" / "demo-check"
READY = "==> Ready"
NOT_READY = "==> Not ready"
RESTARTED = "==> Home Assistant is back"
LOADED_WAIT_SECONDS = 180.0
BLUEPRINT = "ttn_gateway/gateway_silence_notify.yaml"


def free_ports(count: int, taken: set[int]) -> list[int]:
    """Ports nothing listens on now (the OS picks them), none of `taken`."""
    sockets: list[socket.socket] = []
    try:
        ports: list[int] = []
        while len(ports) < count:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
            if (port := sock.getsockname()[1]) not in taken:
                ports.append(port)
        return ports
    finally:
        for sock in sockets:
            sock.close()


def _post(
    url: str, body: dict[str, object], token: str = "", form: bool = False
) -> dict[str, Any]:
    """POST JSON (or a form) to Home Assistant; its JSON answer."""
    data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded"
        if form
        else "application/json"
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read() or b"{}")
        return answer


def login(port: int) -> str:
    """Log in as the demo's owner; the access token."""
    base = f"http://127.0.0.1:{port}"
    client = {"client_id": f"{base}/"}
    flow = _post(
        f"{base}/auth/login_flow",
        {
            **client,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{base}/?auth_callback=1",
        },
    )
    code = _post(
        f"{base}/auth/login_flow/{flow['flow_id']}",
        {**client, "username": "demo", "password": "demo-password"},
    )["result"]
    token: str = _post(
        f"{base}/auth/token",
        {**client, "grant_type": "authorization_code", "code": code},
        form=True,
    )["access_token"]
    return token


def restart_hass(port: int) -> None:
    """Log in as the demo's owner and run Home Assistant's Restart action."""
    token = login(port)
    # Home Assistant may stop before it answers.
    with contextlib.suppress(OSError, ValueError):
        _post(f"http://127.0.0.1:{port}/api/services/homeassistant/restart", {}, token)


def not_loaded(port: int) -> list[str]:
    """The enabled config entries that are not loaded, with their state."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/config/config_entries/entry",
        headers={"Authorization": f"Bearer {login(port)}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        entries: list[dict[str, Any]] = json.loads(response.read())
    return [
        f"{entry['title']} ({entry['domain']}) {entry['state']}"
        + (f": {entry['reason']}" if entry.get("reason") else "")
        for entry in entries
        if entry["disabled_by"] is None and entry["state"] != "loaded"
    ]


def automation_from_blueprint(port: int) -> bool:
    """Whether an automation made from the silence blueprint runs, as the editor saves it."""
    token = login(port)
    base = f"http://127.0.0.1:{port}"
    _post(
        f"{base}/api/config/automation/config/check_demo_silence",
        {
            "alias": "Gateway silence",
            "use_blueprint": {
                "path": BLUEPRINT,
                "input": {"gateways": ["binary_sensor.rooftop_gateway_silent"]},
            },
        },
        token,
    )
    request = urllib.request.Request(  # noqa: S310
        f"{base}/api/states/automation.gateway_silence",
        headers={"Authorization": f"Bearer {token}"},
    )
    deadline = time.monotonic() + 30
    while True:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(request, timeout=60) as response,  # noqa: S310
        ):
            if json.loads(response.read())["state"] == "on":
                return True
        if time.monotonic() > deadline:
            print(f"error: the automation from {BLUEPRINT} is not on")
            return False
        time.sleep(1)


def all_loaded(port: int, seconds: float) -> bool:
    """Whether every config entry is loaded within `seconds`; else say which not."""
    deadline = time.monotonic() + seconds
    while missing := not_loaded(port):
        if time.monotonic() > deadline:
            for entry in missing:
                print(f"error: not loaded: {entry}")
            return False
        time.sleep(2)
    return True


def run_once(
    state_dir: Path, timeout: float, taken: set[int], *, restart: bool = False
) -> bool:
    """Start the demo, wait for it to be ready, Ctrl-C it; True if all went well.

    Its ports are none of `taken` (the last run's), which gets this run's.
    With `restart`, Home Assistant's Restart action runs first, and the demo
    must start it again.
    """
    port, simulator_port, mqtt_port = free_ports(3, taken)
    taken.update((port, simulator_port, mqtt_port))
    argv = [
        str(REPO_ROOT / "scripts" / "demo"),
        f"--port={port}",
        f"--simulator-port={simulator_port}",
        f"--mqtt-port={mqtt_port}",
        f"--state-dir={state_dir}",
        "--gateways=2",
    ]
    print(f"$ {' '.join(argv)}", flush=True)
    output: list[str] = []
    demo = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in demo.stdout or ():
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout

    def wait_for(prefix: str) -> bool | None:
        """Whether a line starting with prefix came in time; None: the demo ended."""
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                print(
                    f"error: the demo did not print {prefix!r} within {timeout:.0f} s"
                )
                return False
            if line is None:
                print(f"error: the demo ended before {prefix!r} (exit {demo.wait()})")
                return None
            print(f"    {line.rstrip()}", flush=True)
            output.append(line)
            if line.startswith(NOT_READY):
                print("error: the demo is not ready")
                return False
            if line.startswith(prefix):
                return True

    ready = wait_for(READY)
    if ready is None:
        return False
    ready = ready and all_loaded(port, 0)
    if ready and not restart:
        ready = automation_from_blueprint(port)
    if ready and restart:
        restart_hass(port)
        ready = wait_for(RESTARTED)
        if ready is None:
            return False
        ready = ready and all_loaded(port, LOADED_WAIT_SECONDS)
    # Ctrl-C in a terminal signals the whole foreground process group;
    # `timeout -s INT` signals the demo and then its group: twice. The second
    # comes while the demo stops, as an impatient second Ctrl-C would.
    demo.send_signal(signal.SIGINT)
    time.sleep(1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(demo.pid, signal.SIGINT)
    try:
        code = demo.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        print("error: the demo did not stop within 60 s of Ctrl-C")
        return False
    while (line := lines.get()) is not None:
        print(f"    {line.rstrip()}", flush=True)
        output.append(line)
    if code != 0:
        print(f"error: the demo exited {code} after Ctrl-C")
    if any(line.startswith("Traceback") for line in output):
        print("error: the demo printed a traceback")
        return False
    return ready and code == 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600, help="per run")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    args = parser.parse_args(argv)
    shutil.rmtree(args.state_dir, ignore_errors=True)
    taken: set[int] = set()
    for run in range(1, args.runs + 1):
        print(f"==> demo run {run} of {args.runs}", flush=True)
        if not run_once(args.state_dir, args.timeout, taken, restart=run == args.runs):
            print(f"logs: {args.state_dir / 'logs'}")
            return 1
    print(
        f"./scripts/demo: {args.runs} runs on other ports each, each ready with"
        " every config entry loaded and stopped by Ctrl-C; Home Assistant's"
        " Restart in the last one"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
