"""The application's MQTT server, as The Things Stack's Application Server offers it.

TTS lets an application's API key log in to its MQTT server as
``{application_id}@{tenant}`` (the bare ID on a self-hosted stack) and read
and write only ``v3/{username}/#``. Here that is mosquitto with a password
file and an ACL, or the Python broker amqtt where mosquitto is missing; the
simulator itself logs in as a privileged user to publish uplinks and take
downlinks. Changing the key makes the broker refuse the old one for new
connections, as revoking a key does.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass, field
import hashlib
import json
import os
from pathlib import Path
import pwd
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .stack import Processes

LOCALHOST: Final = "127.0.0.1"
PROCESS_NAME: Final = "app-broker"
# mosquitto 2's default for its PBKDF2-SHA512 ("$7$") password hashes.
MOSQUITTO_HASH_ITERATIONS: Final = 101
MOSQUITTO_SALT_BYTES: Final = 12
# CONNACK return codes of MQTT 3.1.1.
CONNACK_ACCEPTED: Final = 0
CONNACK_NOT_AUTHORIZED: Final = 5
RELOAD_TIMEOUT: Final = 10.0
# amqtt checks sha512-crypt hashes with passlib, which comes with it; hashing
# runs in the interpreter that runs amqtt.
_AMQTT_HASH: Final = (
    "import sys\n"
    "from passlib.apps import custom_app_context\n"
    "for line in sys.stdin.read().splitlines():\n"
    "    print(custom_app_context.hash(line))\n"
)


def mqtt_username(application_id: str, tenant: str) -> str:
    """The MQTT username of an application: ``app@tenant``, or the bare ID."""
    return f"{application_id}@{tenant}" if tenant else application_id


def mosquitto_password_hash(password: str, salt: bytes | None = None) -> str:
    """A mosquitto 2 password file hash (``$7$``: PBKDF2-SHA512), as mosquitto_passwd writes."""
    salt = os.urandom(MOSQUITTO_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), salt, MOSQUITTO_HASH_ITERATIONS
    )
    return (
        f"$7${MOSQUITTO_HASH_ITERATIONS}$"
        f"{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )


def connack_code(port: int, username: str, password: str, timeout: float = 5) -> int:
    """Log in to the broker on 127.0.0.1:port with MQTT 3.1.1; the CONNACK return code."""

    def text(value: str) -> bytes:
        data = value.encode()
        return struct.pack("!H", len(data)) + data

    # Protocol "MQTT" level 4, flags: username, password, clean session; keep-alive 10 s.
    body = text("MQTT") + bytes((4, 0xC2)) + struct.pack("!H", 10)
    body += text("") + text(username) + text(password)
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        connack = b""
        while len(connack) < 4:  # fixed header and two bytes
            if not (chunk := sock.recv(4 - len(connack))):
                raise ConnectionError("the broker closed the connection before CONNACK")
            connack += chunk
        with contextlib.suppress(OSError):
            sock.sendall(b"\xe0\x00")  # DISCONNECT
    return connack[3]


def _remaining_length(length: int) -> bytes:
    """MQTT's variable-length encoding of a packet's remaining length."""
    encoded = bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


@dataclass
class AppBroker:
    """The application's MQTT server on 127.0.0.1:port, run as a process of `processes`.

    `username` logs in with `api_key`, may read ``v3/{username}/#`` and
    publish only downlinks (``.../down/push|replace``), as on TTS;
    `sim_user` (the simulator) may use every topic.
    """

    processes: Processes
    port: int
    work_dir: Path
    username: str
    api_key: str
    sim_user: str
    sim_password: str
    mosquitto: str | None = None
    # "mosquitto" or "amqtt" once started.
    kind: str = ""
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def downlink_topics(self) -> list[str]:
        """What the application may publish: downlinks to push or to replace the queue."""
        return [
            f"v3/{self.username}/devices/+/down/{operation}"
            for operation in ("push", "replace")
        ]

    @property
    def password_file(self) -> Path:
        """The broker's password file."""
        return self.work_dir / "app-broker.passwd"

    def start(self) -> None:
        """Write the configuration, start the broker, wait until it listens."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.mosquitto:
            self.kind = "mosquitto"
            config = self.work_dir / "app-broker.conf"
            acl = self.work_dir / "app-broker.acl"
            acl.write_text(
                f"user {self.username}\ntopic read v3/{self.username}/#\n"
                + "".join(f"topic write {topic}\n" for topic in self.downlink_topics)
                + f"\nuser {self.sim_user}\ntopic readwrite #\n"
            )
            # Started as root, mosquitto would switch to the user "mosquitto",
            # who cannot read these files; stay whoever starts it.
            config.write_text(
                f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
                f"listener {self.port} {LOCALHOST}\n"
                "allow_anonymous false\npersistence false\n"
                f"password_file {self.password_file}\nacl_file {acl}\n"
            )
            self._write_passwords()
            argv = [self.mosquitto, "-c", str(config)]
        else:
            self.kind = "amqtt"
            self._write_passwords()
            config = self.work_dir / "app-broker.yaml"
            read_topics = json.dumps([f"v3/{self.username}/#"])
            write_topics = json.dumps(self.downlink_topics)
            config.write_text(
                "listeners:\n  default:\n    type: tcp\n"
                f"    bind: {LOCALHOST}:{self.port}\n"
                "plugins:\n"
                "  amqtt.plugins.authentication.FileAuthPlugin:\n"
                f"    password_file: {self.password_file}\n"
                "  amqtt.plugins.topic_checking.TopicAccessControlListPlugin:\n"
                "    acl:\n"
                f'      "{self.username}": {read_topics}\n'
                f'      "{self.sim_user}": ["#"]\n'
                "    publish_acl:\n"
                f'      "{self.username}": {write_topics}\n'
                f'      "{self.sim_user}": ["#"]\n'
            )
            amqtt = Path(sys.executable).with_name("amqtt")
            argv = [str(amqtt), "-c", str(config)]
        self._process = self.processes.start(PROCESS_NAME, argv)
        self.processes.wait_for_port(self.port, 30)

    def set_key(self, api_key: str) -> None:
        """Accept only `api_key` for the application's user from now on.

        mosquitto rereads its password file on SIGHUP; amqtt reads it only
        at start, so it is restarted (its clients reconnect).
        """
        self.api_key = api_key
        self._write_passwords()
        if self.kind == "mosquitto" and self._process is not None:
            self._process.send_signal(signal.SIGHUP)
            self._wait_until_accepted(api_key)
        else:
            self.processes.stop_one(PROCESS_NAME)
            self.start()

    def _wait_until_accepted(self, api_key: str) -> None:
        """Wait until the reloaded password file is in force."""
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while connack_code(self.port, self.username, api_key) != CONNACK_ACCEPTED:
            if time.monotonic() > deadline:
                raise RuntimeError("the application broker kept refusing the new key")
            time.sleep(0.1)

    def _write_passwords(self) -> None:
        users = {self.username: self.api_key, self.sim_user: self.sim_password}
        if self.kind == "mosquitto":
            hashes = [mosquitto_password_hash(password) for password in users.values()]
        else:
            hashes = subprocess.run(  # noqa: S603
                [sys.executable, "-c", _AMQTT_HASH],
                input="\n".join(users.values()),
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        lines = [
            f"{user}:{hashed}\n" for user, hashed in zip(users, hashes, strict=True)
        ]
        # Written aside and renamed, so a reload never sees half a file.
        staging = self.password_file.with_suffix(".new")
        staging.write_text("".join(lines))
        staging.chmod(0o600)
        staging.replace(self.password_file)
