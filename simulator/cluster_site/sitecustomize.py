"""The local stack's Home Assistant only: TTN cluster host names on 127.0.0.1.

``tts_simulator.stack.start_hass`` puts this directory on ``PYTHONPATH`` of
the Home Assistant it starts when the simulator also serves as a TTN
cluster (``tts_simulator/cluster.py``); Python imports it at start-up. With
``TTS_SIMULATOR_CLUSTER`` ("host:port") set, every aiohttp connector
resolves the TTN cluster host names on port 443 to that address, which is
the simulator's TLS port; every other name goes to the connector's own
resolver. Without the variable it does nothing.
"""

from __future__ import annotations

import os

_TARGET = os.environ.get("TTS_SIMULATOR_CLUSTER", "")
_HOSTS = frozenset(
    f"{cluster}.cloud.thethings.network" for cluster in ("eu1", "nam1", "au1")
)
_HTTPS_PORT = 443


def _install(address: str, target_port: int) -> None:
    import socket
    from typing import Any

    from aiohttp import TCPConnector
    from aiohttp.abc import AbstractResolver

    class ClusterResolver(AbstractResolver):
        """The cluster names to the simulator; the rest to the wrapped resolver."""

        def __init__(self, wrapped: AbstractResolver) -> None:
            self._wrapped = wrapped

        async def resolve(
            self,
            host: str,
            port: int = 0,
            family: socket.AddressFamily = socket.AF_INET,
        ) -> Any:
            if host.lower().rstrip(".") in _HOSTS and port == _HTTPS_PORT:
                return [
                    {
                        "hostname": host,
                        "host": address,
                        "port": target_port,
                        "family": socket.AF_INET,
                        "proto": 0,
                        "flags": socket.AI_NUMERICHOST,
                    }
                ]
            return await self._wrapped.resolve(host, port, family)

        async def close(self) -> None:
            await self._wrapped.close()

        def __getattr__(self, name: str) -> Any:
            # Home Assistant's resolver has more (real_close).
            return getattr(self._wrapped, name)

    original = TCPConnector.__init__

    def init(self: TCPConnector, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._resolver = ClusterResolver(self._resolver)

    TCPConnector.__init__ = init  # type: ignore[method-assign]


if _TARGET:
    _address, _, _port_text = _TARGET.rpartition(":")
    _install(_address, int(_port_text))
