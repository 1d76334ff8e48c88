"""Run the TTS simulator: ``python -m tts_simulator --gateways 5``."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
import random
import signal
import ssl
import sys

from aiohttp import web

from . import tts_json
from .app_mqtt import AppMqttLogin
from .core import Simulator
from .devices import make_devices
from .fleet import make_fleet
from .server import MqttPublisher, create_app


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tts_simulator",
        description="A simulated The Things Stack v3 API with live gateways.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1885)
    parser.add_argument("--gateways", type=int, default=5, help="fleet size")
    parser.add_argument("--seed", type=int, default=1, help="fleet and key seed")
    parser.add_argument(
        "--api-key", help="the account's key (default: derived from --seed)"
    )
    parser.add_argument("--api-key-file", type=Path, help="write the key here")
    parser.add_argument("--user", default="demo", help="owner of the key")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=600,
        help="requests per minute per call and gateway (0: no limit)",
    )
    parser.add_argument("--mqtt-host", help="publish device uplinks to this broker")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument(
        "--app-mqtt-port",
        type=int,
        help="the application's MQTT server on --app-mqtt-host: publish uplinks, "
        "take downlinks",
    )
    parser.add_argument("--app-mqtt-host", default="127.0.0.1")
    parser.add_argument(
        "--app-mqtt-user", default="tts-simulator", help="its privileged user"
    )
    parser.add_argument(
        "--app-mqtt-password-file",
        type=Path,
        help="file with that user's password (kept off the command line)",
    )
    parser.add_argument("--application", default="home-sensors")
    parser.add_argument(
        "--application-key-file",
        type=Path,
        help="the application's API key (default: derived from --seed)",
    )
    parser.add_argument("--tenant", default="ttn", help="'' for a bare app id")
    parser.add_argument(
        "--device-interval",
        type=float,
        help="seconds between uplinks of every device (default: each its own)",
    )
    parser.add_argument(
        "--tls-port",
        type=int,
        help="also serve https here, with --tls-cert and --tls-key (cluster.py)",
    )
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    args = parser.parse_args(argv)
    if args.tls_port and not (args.tls_cert and args.tls_key):
        parser.error("--tls-port needs --tls-cert and --tls-key")
    if not 0 <= args.gateways <= 100_000:
        parser.error("--gateways must be between 0 and 100000")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    api_key = args.api_key or tts_json.api_key(random.Random(args.seed))
    if args.api_key_file:
        args.api_key_file.write_text(api_key + "\n")
    simulator = Simulator(
        api_key=api_key,
        seed=args.seed,
        user_id=args.user,
        rate_limit_per_minute=args.rate_limit or None,
        application_id=args.application,
        tenant=args.tenant,
        application_key=(
            args.application_key_file.read_text().strip()
            if args.application_key_file
            else None
        ),
    )
    now = simulator.clock()
    for gateway in make_fleet(
        args.gateways, now, seed=args.seed, server_address=f"{args.host}:{args.port}"
    ):
        simulator.add_gateway(gateway)
    publisher = None
    app_mqtt = None
    if args.mqtt_host or args.app_mqtt_port:
        simulator.devices = make_devices(now, interval=args.device_interval)
    if args.mqtt_host:
        publisher = MqttPublisher(args.mqtt_host, args.mqtt_port)
    if args.app_mqtt_port:
        if args.app_mqtt_password_file is None:
            parser.error("--app-mqtt-port needs --app-mqtt-password-file")
        app_mqtt = AppMqttLogin(
            args.app_mqtt_host,
            args.app_mqtt_port,
            args.app_mqtt_user,
            args.app_mqtt_password_file.read_text().strip(),
        )
    print(  # noqa: T201
        f"TTS simulator: http://{args.host}:{args.port} with {args.gateways} "
        f"gateways, user {args.user}"
        + (
            f", uplinks to mqtt://{args.mqtt_host}:{args.mqtt_port}"
            if publisher
            else ""
        )
        + (
            f", application {args.application} on "
            f"mqtt://{args.app_mqtt_host}:{args.app_mqtt_port}"
            if app_mqtt
            else ""
        ),
        flush=True,
    )
    tls = None
    if args.tls_port:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    asyncio.run(
        serve(
            create_app(simulator, publisher, app_mqtt=app_mqtt),
            args.host,
            args.port,
            None if tls is None else (args.tls_port, tls),
        )
    )
    return 0


async def serve(
    app: web.Application,
    host: str,
    port: int,
    tls: tuple[int, ssl.SSLContext] | None,
) -> None:
    """Serve http on port (and https on tls's port) until SIGTERM or SIGINT."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        if tls is not None:
            await web.TCPSite(runner, host, tls[0], ssl_context=tls[1]).start()
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
