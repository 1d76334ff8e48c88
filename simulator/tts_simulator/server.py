"""The simulator as an HTTP server, with a control API and MQTT clients.

``/api/v3/...`` goes to `Simulator.handle`; this module only carries out what
a response asks for (wait, hang, drop the connection, stream events).
``/sim/...`` changes the simulation:

- ``GET /sim/state``: gateways, their state and counters, request counts,
  the downlinks taken (over HTTP or MQTT)
- ``POST /sim/gateways/{id}/disconnect|connect|quiet|unquiet|forbid|allow``
- ``POST /sim/gateways/{id}/reconnect`` with ``{"late": 5, "order": "cluster"}``:
  a new connection while the old one ends, in a `ReconnectOrder`: ``one-server``
  (the old end first), ``cluster`` (the old end ``late`` seconds after the new
  connect and first stats), ``cluster-stats-after-end`` (the new first stats
  after that end), ``cluster-connect-after-end`` (the connect delivered after it)
- ``POST /sim/gateways/{id}/lag`` with ``{"seconds": 120}``: stats answered
  that far behind the events (0 ends it)
- ``POST /sim/gateways/{id}/refuse-events|allow-events``: the events stream
  answers 403 for any group that holds the gateway
- ``POST /sim/stream/drop``: end every open events stream
- ``POST /sim/stream/shapes`` with ``{"connect_data": false, "stats_ids": true}``:
  connect events without data (as ``observability.go``) or with the first stats
  (newer TTS); stats events with or without the gs:conn correlation id
- ``POST /sim/stream/garbage`` with ``{"kind": "malformed|huge-counter|nested|binary"}``:
  a line that is no event, on every open stream
- ``POST /sim/gateways/{id}/rename`` with ``{"name": "..."}``
- ``POST /sim/gateways/{id}/move`` with ``{"latitude": 52.1, "longitude": 4.3}``
  (``{}``: no location)
- ``POST /sim/devices/pause|resume``: end devices stop sending, or send again
- ``POST /sim/storage/enable|disable``: the application's Storage Integration
  keeps uplinks and answers, or answers 404 (``GET /sim/state`` says how many
  it keeps)
- ``POST /sim/faults`` with ``{"kind": "429|500|503|slow|timeout|drop|cut|malformed",
  "endpoint": "*|auth_info|gateways|batch|single|events", "times": 1,
  "delay": 5, "retry_after": 30}``; ``DELETE /sim/faults`` clears them

Device uplinks go to an open broker (`MqttPublisher`) and, when given, to the
application's MQTT server (`app_mqtt.ApplicationMqtt`), which also takes
downlinks as TTS's does.
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus
import json
import logging
import math
from typing import Any, Final

from aiohttp import web

from .app_mqtt import ApplicationMqtt, AppMqttLogin
from .core import (
    STREAM_GARBAGE,
    Action,
    Endpoint,
    Fault,
    FaultKind,
    MqttMessage,
    ReconnectOrder,
    Request,
    Response,
    Simulator,
)

_LOGGER = logging.getLogger(__name__)
TICK_SECONDS: Final = 1.0
HANG_SECONDS: Final = 3600.0
GATEWAY_ACTIONS: Final = (
    "disconnect",
    "connect",
    "quiet",
    "unquiet",
    "forbid",
    "allow",
    "rename",
    "move",
    "reconnect",
    "lag",
    "refuse-events",
    "allow-events",
)
SIMULATOR_KEY: web.AppKey[Simulator] = web.AppKey("simulator", Simulator)


class MqttPublisher:
    """Publishes device uplinks to a broker with paho-mqtt, reconnecting."""

    def __init__(self, host: str, port: int) -> None:
        # Imported here: only the MQTT part of the simulator needs paho.
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        self._client = Client(CallbackAPIVersion.VERSION2, client_id="tts-simulator")
        self._client.reconnect_delay_set(1, 10)
        self._client.connect_async(host, port)
        self._client.loop_start()
        self.published = 0

    def publish(self, message: MqttMessage) -> None:
        """Publish at QoS 0, as TTS does; lost if the broker is away."""
        self._client.publish(message.topic, message.payload, qos=0)
        self.published += 1

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()


def _gateway_state(simulator: Simulator) -> list[dict[str, Any]]:
    now = simulator.clock()
    gateways = []
    for gateway in simulator.fleet.values():
        stats = gateway.connection_stats(now)
        gateways.append(
            {
                "gateway_id": gateway.gateway_id,
                "name": gateway.name,
                "protocol": gateway.protocol,
                "state": gateway.state.value,
                "quiet": gateway.quiet,
                # Its antenna's place in the registry (None: none set).
                "latitude": gateway.latitude,
                "longitude": None if gateway.latitude is None else gateway.longitude,
                "status_readable": gateway.status_readable,
                "connection_id": gateway.connection_id,
                "stats_lag": gateway.stats_lag,
                "events_refused": gateway.gateway_id in simulator.events_refused,
                "uplink_count": int(stats.get("uplink_count", 0))
                if isinstance(stats, dict)
                else None,
                "downlink_count": int(stats.get("downlink_count", 0))
                if isinstance(stats, dict)
                else None,
            }
        )
    return gateways


async def _api(request: web.Request) -> web.StreamResponse:
    simulator = request.app[SIMULATOR_KEY]
    answer = simulator.handle(
        Request(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=await request.read(),
            host=request.host,
        )
    )
    if answer.delay:
        await asyncio.sleep(answer.delay)
    if answer.action is Action.HANG:
        await asyncio.sleep(HANG_SECONDS)
    if answer.action is Action.DROP or answer.action is Action.HANG:
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=HTTPStatus.NO_CONTENT)
    if answer.action is Action.CUT:
        return await _cut(request, answer)
    if answer.events is None:
        return web.Response(
            status=answer.status, body=answer.body, headers=answer.headers
        )

    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(answer.body)
    changed = asyncio.Event()
    simulator.subscribers.append(changed.set)
    try:
        while not answer.events.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), TICK_SECONDS)
            changed.clear()
            if frames := answer.events.poll():
                await response.write(frames)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        simulator.subscribers.remove(changed.set)
    return response


async def _cut(request: web.Request, answer: Response) -> web.StreamResponse:
    """Announce the whole body, send half of it, then drop the connection."""
    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    response.content_length = len(answer.body)
    await response.prepare(request)
    await response.write(answer.body[: len(answer.body) // 2])
    if request.transport is not None:
        request.transport.close()
    return response


def _device_state(simulator: Simulator) -> list[dict[str, Any]]:
    return [
        {"device_id": device.device_id, "f_cnt": device.f_cnt}
        for device in simulator.devices
    ]


async def _device_action(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    action = request.match_info["action"]
    if action not in ("pause", "resume"):
        raise web.HTTPNotFound(text=f"no device action {action!r}")
    simulator.pause_devices(action == "pause")
    _LOGGER.info("End devices: %s", action)
    return web.json_response(
        {
            "devices": _device_state(simulator),
            "devices_paused": simulator.devices_paused,
        }
    )


async def _storage_action(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    action = request.match_info["action"]
    if action not in ("enable", "disable"):
        raise web.HTTPNotFound(text=f"no storage action {action!r}")
    simulator.storage.enabled = action == "enable"
    _LOGGER.info("Storage Integration: %s", action)
    return web.json_response(_storage_state(simulator))


def _storage_state(simulator: Simulator) -> dict[str, Any]:
    return {
        "enabled": simulator.storage.enabled,
        "stored": len(simulator.storage.messages),
    }


async def _state(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    return web.json_response(
        {
            "time": simulator.clock(),
            "gateways": _gateway_state(simulator),
            "devices": _device_state(simulator),
            "devices_paused": simulator.devices_paused,
            "requests": dict(simulator.request_counts),
            "downlinks": simulator.downlinks,
            "storage": _storage_state(simulator),
            "faults": {
                endpoint: len(queue)
                for endpoint, queue in simulator.faults.items()
                if queue
            },
        }
    )


async def _gateway_action(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    gateway_id, action = request.match_info["gateway_id"], request.match_info["action"]
    if gateway_id not in simulator.fleet or action not in GATEWAY_ACTIONS:
        raise web.HTTPNotFound(text=f"no gateway {gateway_id!r} or action {action!r}")
    if action == "disconnect":
        simulator.disconnect(gateway_id)
    elif action == "connect":
        simulator.connect(gateway_id)
    elif action in ("quiet", "unquiet"):
        simulator.set_quiet(gateway_id, action == "quiet")
    elif action in ("forbid", "allow"):
        simulator.set_status_readable(gateway_id, action == "allow")
    elif action == "reconnect":
        body = await _body(request)
        order = str(body.get("order", ReconnectOrder.CLUSTER))
        if order not in list(ReconnectOrder):
            raise web.HTTPBadRequest(text=f"no reconnect order {order!r}")
        simulator.reconnect(
            gateway_id, float(body.get("late", 5)), ReconnectOrder(order)
        )
    elif action == "lag":
        simulator.set_stats_lag(
            gateway_id, float((await _body(request)).get("seconds", 0))
        )
    elif action in ("refuse-events", "allow-events"):
        simulator.set_events_refused(gateway_id, action == "refuse-events")
    elif action == "move":
        body = await _body(request)
        latitude, longitude = body.get("latitude"), body.get("longitude", 0.0)
        if not all(
            value is None or (isinstance(value, int | float) and math.isfinite(value))
            for value in (latitude, longitude)
        ):
            raise web.HTTPBadRequest(text="latitude and longitude are numbers")
        simulator.move(
            gateway_id,
            None if latitude is None else float(latitude),
            float(longitude or 0.0),
        )
    else:
        name = str((await request.json()).get("name") or gateway_id)
        simulator.rename(gateway_id, name)
    _LOGGER.info("Gateway %s: %s", gateway_id, action)
    return web.json_response({"gateways": _gateway_state(simulator)})


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object of a control request; empty when there is none."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as err:
        raise web.HTTPBadRequest(text="the body is not JSON") from err
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="the body is not a JSON object")
    return data


async def _stream_drop(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    simulator.drop_streams()
    _LOGGER.info("Events streams dropped")
    return web.json_response({"dropped": True})


async def _stream_shapes(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    body = await _body(request)
    simulator.connect_event_data = bool(
        body.get("connect_data", simulator.connect_event_data)
    )
    simulator.stats_carry_ids = bool(body.get("stats_ids", simulator.stats_carry_ids))
    shapes = {
        "connect_data": simulator.connect_event_data,
        "stats_ids": simulator.stats_carry_ids,
    }
    _LOGGER.info("Event shapes: %s", shapes)
    return web.json_response(shapes)


async def _stream_garbage(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    kind = str((await _body(request)).get("kind", "malformed"))
    if kind not in STREAM_GARBAGE:
        raise web.HTTPNotFound(text=f"no garbage kind {kind!r}")
    simulator.send_stream_garbage(kind)
    _LOGGER.info("Stream garbage: %s", kind)
    return web.json_response({"sent": kind})


def parse_fault(data: dict[str, Any]) -> tuple[str, Fault, int]:
    """A fault from the control API's JSON: (endpoint, fault, times)."""
    kind = str(data.get("kind", "500"))
    endpoint = str(data.get("endpoint", "*"))
    if endpoint != "*" and endpoint not in list(Endpoint):
        raise ValueError(f"unknown endpoint {endpoint!r}")
    times = int(data.get("times", 1))
    if kind.isdecimal():
        status = int(kind)
        retry = data.get(
            "retry_after", 30 if status == HTTPStatus.TOO_MANY_REQUESTS else None
        )
        fault = Fault(
            FaultKind.STATUS,
            status=status,
            retry_after=float(retry) if retry is not None else None,
        )
    else:
        fault = Fault(FaultKind(kind), delay=float(data.get("delay", 5)))
    return endpoint, fault, times


async def _faults(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    if request.method == "DELETE":
        simulator.faults.clear()
        return web.json_response({"faults": {}})
    try:
        endpoint, fault, times = parse_fault(await request.json())
    except (ValueError, TypeError) as err:
        raise web.HTTPBadRequest(text=str(err)) from err
    simulator.inject(endpoint, fault, times)
    _LOGGER.info("Fault %s x%d on %s", fault.kind, times, endpoint)
    return web.json_response({"faults": {endpoint: len(simulator.faults[endpoint])}})


async def _console(request: web.Request) -> web.Response:
    """Where the device page's "Visit" link of a gateway leads."""
    simulator = request.app[SIMULATOR_KEY]
    gateway_id = request.match_info["gateway_id"]
    stats = simulator.stats_of(gateway_id)
    text = json.dumps(stats, indent=2) if isinstance(stats, dict) else str(stats)
    body = (
        f"<!doctype html><title>{gateway_id}</title>"
        f"<h1>Simulated gateway {gateway_id}</h1><pre>{text}</pre>"
    )
    return web.Response(text=body, content_type="text/html")


def create_app(
    simulator: Simulator,
    publisher: MqttPublisher | None = None,
    *,
    app_mqtt: AppMqttLogin | None = None,
) -> web.Application:
    """The aiohttp application, with a task that moves the simulation on.

    Uplinks go to `publisher` (an open broker) and, with `app_mqtt`, to the
    application's MQTT server, which also carries downlinks.
    """
    app = web.Application()
    app[SIMULATOR_KEY] = simulator
    app.router.add_route("*", "/api/v3/{tail:.*}", _api)
    app.router.add_get("/sim/state", _state)
    app.router.add_post("/sim/gateways/{gateway_id}/{action}", _gateway_action)
    app.router.add_post("/sim/devices/{action}", _device_action)
    app.router.add_post("/sim/storage/{action}", _storage_action)
    app.router.add_post("/sim/stream/garbage", _stream_garbage)
    app.router.add_post("/sim/stream/drop", _stream_drop)
    app.router.add_post("/sim/stream/shapes", _stream_shapes)
    app.router.add_route("POST", "/sim/faults", _faults)
    app.router.add_route("DELETE", "/sim/faults", _faults)
    app.router.add_get("/console/gateways/{gateway_id}", _console)

    async def ticker(app: web.Application) -> Any:
        application = (
            ApplicationMqtt(simulator, app_mqtt, asyncio.get_running_loop())
            if app_mqtt is not None
            else None
        )

        async def tick() -> None:
            while True:
                for message in simulator.advance():
                    if publisher is not None:
                        publisher.publish(message)
                    if application is not None:
                        application.publish(message)
                await asyncio.sleep(TICK_SECONDS)

        task = asyncio.create_task(tick())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if publisher is not None:
            publisher.close()
        if application is not None:
            application.close()

    app.cleanup_ctx.append(ticker)
    return app
