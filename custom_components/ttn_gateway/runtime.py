"""What a loaded config entry runs, and the config entry type that carries it.

Platforms, diagnostics and flows read the runtime data through this module;
the modules below it (store, coordinator, stream, silence, end devices) do
not import it, so the integration's modules form no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .coordinator import TTSCoordinator
from .end_devices import EndDeviceManager
from .silence import SilenceMonitor
from .store import GatewayStore
from .stream import GatewayEventStreams
from .tts import TTSClient


@dataclass(frozen=True, slots=True)
class TTSRuntimeData:
    """A loaded entry: the client, the gateway state and its sources, end devices."""

    client: TTSClient
    store: GatewayStore
    coordinator: TTSCoordinator
    streams: GatewayEventStreams
    silence: SilenceMonitor
    end_devices: EndDeviceManager


type TTSConfigEntry = ConfigEntry[TTSRuntimeData]
