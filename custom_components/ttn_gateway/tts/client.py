"""The TTS v3 HTTP API client: every request this project sends, by subject.

Each subject's requests live in their own module on the shared HTTP core
(``http_core.py``); this class puts them together for one API key.
"""

from __future__ import annotations

from .application_requests import ApplicationRequests
from .device_repository import DeviceRepositoryRequests
from .events_stream import EventsStream
from .gateway_requests import GatewayRequests
from .storage_requests import StorageRequests


class TTSClient(
    GatewayRequests,
    ApplicationRequests,
    StorageRequests,
    EventsStream,
    DeviceRepositoryRequests,
):
    """Talks to one TTS deployment with one API key.

    The session is injected and never closed here. The client remembers a
    rate-limit deadline (no request is sent before it) and the gateways whose
    stats the key may not read (they are asked again only once an hour).
    """
