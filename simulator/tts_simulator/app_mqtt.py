"""The simulator on its application's MQTT server: uplinks out, downlinks in.

As TTS's Application Server does, it publishes each uplink on
``v3/{username}/devices/{device_id}/up``, takes downlinks published on
``.../down/push`` and ``.../down/replace``, and answers each downlink it
records (also those pushed over HTTP) with ``down/queued`` at once,
``down/sent`` a moment later and, when confirmed, ``down/ack`` after that.
A downlink published over MQTT that it cannot take is dropped without a
word, as TTS does: ``connection.deliver`` in
``pkg/applicationserver/io/mqtt/mqtt.go`` only logs a message that does not
decode or a queue operation that fails (an unknown device). paho-mqtt runs
its own thread; everything that touches the `Simulator` runs on the event
loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
import json
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

from . import tts_json
from .app_broker import mqtt_username

if TYPE_CHECKING:
    from paho.mqtt.client import Client, MQTTMessage

    from .core import MqttMessage, Simulator
    from .devices import EndDevice

_LOGGER = logging.getLogger(__name__)
DOWNLINK_OPERATIONS: Final = ("push", "replace")
# Seconds from down/queued to down/sent: the device's next receive window.
SENT_DELAY: Final = 1.0
# Seconds from down/sent to down/ack of a confirmed downlink.
ACK_DELAY: Final = 1.0
MIN_F_PORT: Final = 1
MAX_F_PORT: Final = 223
PRIORITIES: Final = (
    "LOWEST",
    "LOW",
    "BELOW_NORMAL",
    "NORMAL",
    "ABOVE_NORMAL",
    "HIGH",
    "HIGHEST",
)

DownlinkListener = Callable[[dict[str, Any]], None]


class DownlinkRecorder(Protocol):
    """Where the simulator records the downlinks it was given (`core.Simulator`)."""

    downlinks: list[dict[str, Any]]
    downlink_listeners: list[DownlinkListener]

    def record_downlink(
        self,
        application_id: str,
        device_id: str,
        *,
        replace: bool,
        downlinks: list[dict[str, Any]],
        via: str,
    ) -> Any:
        """Record the downlinks and tell every listener."""


def downlink_recorder(simulator: Simulator) -> DownlinkRecorder:
    """The simulator's downlink record."""
    return simulator


@dataclass(frozen=True)
class AppMqttLogin:
    """How the simulator logs in to its application's MQTT server."""

    host: str
    port: int
    username: str
    password: str


class InvalidDownlinkError(ValueError):
    """A downlink TTS would refuse; `field` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid `{field}`: {reason}")
        self.field = field
        self.reason = reason


def parse_downlinks(payload: bytes) -> list[dict[str, Any]]:
    """The downlinks of a ``down/push`` or ``down/replace`` message.

    Raises InvalidDownlinkError for what TTS refuses: no JSON object with a
    ``downlinks`` list, an FPort outside 1..223, a payload that is neither
    base64 ``frm_payload`` nor a ``decoded_payload`` object, an unknown
    priority or a non-boolean ``confirmed``.
    """
    try:
        data = json.loads(payload)
    except ValueError as err:
        raise InvalidDownlinkError("downlinks", "the message is not JSON") from err
    if not isinstance(data, dict) or not isinstance(data.get("downlinks"), list):
        raise InvalidDownlinkError("downlinks", "expected a list of downlinks")
    downlinks: list[dict[str, Any]] = data["downlinks"]
    for index, downlink in enumerate(downlinks):
        field = f"downlinks[{index}]"
        if not isinstance(downlink, dict):
            raise InvalidDownlinkError(field, "expected an object")
        f_port = downlink.get("f_port")
        if (
            not isinstance(f_port, int)
            or isinstance(f_port, bool)
            or not MIN_F_PORT <= f_port <= MAX_F_PORT
        ):
            raise InvalidDownlinkError(
                f"{field}.f_port",
                f"value must be inside range [{MIN_F_PORT}, {MAX_F_PORT}]",
            )
        frm_payload = downlink.get("frm_payload")
        decoded = downlink.get("decoded_payload")
        if frm_payload is not None:
            try:
                base64.b64decode(str(frm_payload), validate=True)
            except (binascii.Error, ValueError) as err:
                raise InvalidDownlinkError(
                    f"{field}.frm_payload", "not base64"
                ) from err
        elif not isinstance(decoded, dict):
            raise InvalidDownlinkError(
                f"{field}.frm_payload", "expected frm_payload or decoded_payload"
            )
        if downlink.get("priority", "NORMAL") not in PRIORITIES:
            raise InvalidDownlinkError(f"{field}.priority", "unknown priority")
        if not isinstance(downlink.get("confirmed", False), bool):
            raise InvalidDownlinkError(f"{field}.confirmed", "expected a boolean")
    return downlinks


class ApplicationMqtt:
    """The simulator's client on its application's MQTT server (privileged user)."""

    def __init__(
        self,
        simulator: Simulator,
        login: AppMqttLogin,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        # Imported here: only the MQTT part of the simulator needs paho.
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        self.simulator = simulator
        self.loop = loop
        self.application_id = simulator.application_id
        self.username = mqtt_username(simulator.application_id, simulator.tenant)
        self.recorder = downlink_recorder(simulator)
        self.recorder.downlink_listeners.append(self._answer_recorded)
        self.published = 0
        self._f_cnt_down: dict[str, int] = {}
        self._pending: set[asyncio.TimerHandle] = set()
        self._client = Client(
            CallbackAPIVersion.VERSION2, client_id="tts-simulator-application"
        )
        self._client.username_pw_set(login.username, login.password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 10)
        self._client.connect_async(login.host, login.port)
        self._client.loop_start()

    def device_topic(self, device_id: str, kind: str) -> str:
        """``v3/{username}/devices/{device_id}/{kind}``."""
        return f"v3/{self.username}/devices/{device_id}/{kind}"

    @property
    def connected(self) -> bool:
        """Whether the server accepted the simulator's login and it is still on."""
        return bool(self._client.is_connected())

    def publish(self, message: MqttMessage) -> None:
        """Publish an uplink at QoS 0, as TTS does; lost if the server is away."""
        self._client.publish(message.topic, message.payload, qos=0)
        self.published += 1

    def close(self) -> None:
        """Stop answering, disconnect and stop the network thread."""
        with contextlib.suppress(ValueError):
            self.recorder.downlink_listeners.remove(self._answer_recorded)
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        self._client.disconnect()
        self._client.loop_stop()

    # --- paho's thread -------------------------------------------------------

    def _on_connect(self, client: Client, *_args: Any) -> None:
        for operation in DOWNLINK_OPERATIONS:
            client.subscribe(self.device_topic("+", f"down/{operation}"), qos=0)

    def _on_message(
        self, _client: Client, _userdata: Any, message: MQTTMessage
    ) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self.loop.call_soon_threadsafe(
                self.take_downlinks, message.topic, bytes(message.payload)
            )

    # --- the event loop ------------------------------------------------------

    def take_downlinks(self, topic: str, payload: bytes) -> None:
        """Record the downlinks of a down/push or down/replace message, or drop them.

        TTS answers nothing to a publisher whose downlinks it refuses: it
        logs them (``connection.deliver``), so the simulator logs them too.
        """
        match topic.split("/"):
            case ["v3", username, "devices", device_id, "down", operation] if (
                username == self.username and operation in DOWNLINK_OPERATIONS
            ):
                pass
            case _:
                return
        try:
            downlinks = parse_downlinks(payload)
        except InvalidDownlinkError as err:
            _LOGGER.info("Failed to decode downlink messages to %s: %s", device_id, err)
            return
        if self._device(device_id) is None:
            _LOGGER.info("Failed to handle downlink messages: no device %s", device_id)
            return
        self.recorder.record_downlink(
            self.application_id,
            device_id,
            replace=operation == "replace",
            downlinks=downlinks,
            via="mqtt",
        )

    def _answer_recorded(self, record: dict[str, Any]) -> None:
        """down/queued now and down/sent shortly after, for every downlink recorded."""
        if record.get("application_id", self.application_id) != self.application_id:
            return
        device_id = str(record["device_id"])
        for downlink in record.get("downlinks") or []:
            queued = self._queued(device_id, downlink)
            self._up(device_id, "down/queued", "downlink_queued", queued)
            handle = self.loop.call_later(SENT_DELAY, self._sent, device_id, queued)
            self._pending.add(handle)

    def _sent(self, device_id: str, queued: dict[str, Any]) -> None:
        self._forget_done()
        self._up(device_id, "down/sent", "downlink_sent", queued)
        if queued.get("confirmed"):
            # The device acknowledges in its next uplink.
            handle = self.loop.call_later(
                ACK_DELAY, self._acknowledged, device_id, queued
            )
            self._pending.add(handle)

    def _acknowledged(self, device_id: str, queued: dict[str, Any]) -> None:
        self._forget_done()
        self._up(device_id, "down/ack", "downlink_ack", queued)

    def _forget_done(self) -> None:
        now = self.loop.time()
        self._pending = {
            handle
            for handle in self._pending
            if not handle.cancelled() and handle.when() > now
        }

    def _queued(self, device_id: str, downlink: dict[str, Any]) -> dict[str, Any]:
        """The downlink as the Application Server queues it (TTS JSON field order)."""
        rng = self.simulator.rng
        f_cnt = self._f_cnt_down[device_id] = self._f_cnt_down.get(device_id, 0) + 1
        queued: dict[str, Any] = {
            "session_key_id": tts_json.b64(bytes(16)),
            "f_port": downlink["f_port"],
            "f_cnt": f_cnt,
        }
        if "frm_payload" in downlink:
            queued["frm_payload"] = downlink["frm_payload"]
        if "decoded_payload" in downlink:
            queued["decoded_payload"] = downlink["decoded_payload"]
        if downlink.get("confirmed"):
            queued["confirmed"] = True  # TTS omits false
        queued["priority"] = downlink.get("priority", "NORMAL")
        queued["correlation_ids"] = [
            *downlink.get("correlation_ids", []),
            f"as:downlink:{tts_json.ulid(self.simulator.clock(), rng)}",
        ]
        return queued

    def _up(self, device_id: str, kind: str, field: str, value: dict[str, Any]) -> None:
        """Publish an ``ApplicationUp`` of one downlink event."""
        ids: dict[str, Any] = {
            "device_id": device_id,
            "application_ids": {"application_id": self.application_id},
        }
        if device := self._device(device_id):
            ids |= {
                "dev_eui": device.dev_eui,
                "join_eui": device.join_eui,
                "dev_addr": device.dev_addr,
            }
        correlation_ids = value.get("correlation_ids") or (
            value.get("downlink", {}).get("correlation_ids") or []
        )
        body = {
            "end_device_ids": ids,
            "correlation_ids": list(correlation_ids),
            "received_at": tts_json.timestamp(self.simulator.clock()),
            field: value,
        }
        self._client.publish(
            self.device_topic(device_id, kind), tts_json.dumps(body), qos=0
        )

    def _device(self, device_id: str) -> EndDevice | None:
        return next(
            (d for d in self.simulator.devices if d.device_id == device_id), None
        )
