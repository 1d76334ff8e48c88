#!/usr/bin/env python3
"""The benchmark's stand-in for TTS's MQTT server, in a process of its own.

    bench_publisher.py PORT

Connects to the broker on 127.0.0.1:PORT and, for each line read from
stdin naming a JSON file (a list of [topic, payload] pairs), publishes
those messages at QoS 0 (as TTS's Application Server publishes uplinks:
``pkg/applicationserver/io/mqtt/mqtt.go``) and prints ``published N``.
Its CPU time is not the benchmark's: Home Assistant runs in another process.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
import threading

from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv311


def main() -> None:
    """Publish each file named on stdin."""
    port = int(sys.argv[1])
    connected = threading.Event()
    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-tts-application-server",
        protocol=MQTTv311,
    )
    client.on_connect = lambda *_: connected.set()
    # No limit on the messages waiting to be written to the socket.
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(30):
        raise SystemExit("the broker did not accept the connection")
    print("connected", flush=True)
    for line in sys.stdin:
        messages = json.loads(Path(line.strip()).read_text())
        infos = [client.publish(topic, payload, qos=0) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
        print(f"published {len(infos)}", flush=True)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    main()
