"""The Storage Integration: the uplinks TTS kept while nobody was listening.

``GET /api/v3/as/applications/{id}/packages/storage/uplink_message`` is
``ApplicationUpStorage.GetStoredApplicationUp`` (lorawan-stack
``api/ttn/lorawan/v3/applicationserver_integrations_storage.proto``), a
server-streaming call that needs ``RIGHT_APPLICATION_TRAFFIC_READ``. Its query
is ``GetStoredApplicationUpRequest``: ``type`` (in the path), ``limit``,
``after``, ``before``, ``f_port``, ``order`` (``received_at`` or
``-received_at``), ``field_mask``, ``last`` and ``continuation_token``.
grpc-gateway streams it as one ``{"result": ApplicationUp}`` per message, or
an in-band ``{"error": Status}`` that ends the stream; with ``Accept:
text/event-stream`` TTS's marshaller ends each with two newlines instead of
one (lorawan-stack ``pkg/jsonpb/ttn.go`` ``TTNEventStream``), so empty lines
are skipped. TTS keeps uplinks 30 days on TTS Cloud and 24 hours on The
Things Network (docs: integrations/storage).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import json
from typing import Final

from .events import StreamError
from .uplink import Uplink, UplinkError, parse_application_up

# The path's ``type``: only data uplinks are asked for.
STORED_TYPE: Final = "uplink_message"
# Most uplinks asked for in one call (the request's ``limit``).
STORED_UPLINKS_MAX: Final = 1000
# Longest message line read: an ApplicationUp is a few kB.
STORED_LINE_MAX_BYTES: Final = 64 * 1024
# Largest answer read in one call; far more than STORED_UPLINKS_MAX uplinks.
STORED_BODY_MAX_BYTES: Final = 16 << 20
# Longest a call may take, stream included.
STORED_READ_TIMEOUT_SECONDS: Final = 60.0
# Where a user learns to enable the integration.
STORAGE_DOCS_URL: Final = (
    "https://www.thethingsindustries.com/docs/integrations/storage/enable/"
)


@dataclass(slots=True)
class StoredUplinks:
    """What one call returned: uplinks in TTS's order, and the lines skipped."""

    uplinks: list[Uplink] = field(default_factory=list)
    # Lines that were no usable uplink (bad JSON, a foreign message, too long).
    skipped: int = 0
    # Messages of other kinds (TTS answered more than uplinks).
    ignored: int = 0
    # The answer held `limit` messages: older ones may have been left out.
    full: bool = False


class StoredStreamError(Exception):
    """TTS ended the stream with an in-band error; the text says which."""


def parse_stored_line(line: bytes) -> Uplink | None:
    """One line of the answer: the uplink, or None for another message kind.

    Raises UplinkError for a line that is no usable message and
    StoredStreamError for TTS's in-band error.
    """
    if len(line) > STORED_LINE_MAX_BYTES:
        raise UplinkError(f"line longer than {STORED_LINE_MAX_BYTES} bytes")
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise UplinkError("not JSON") from err
    if not isinstance(message, Mapping):
        raise UplinkError("not a JSON object")
    if "error" in message:
        error = StreamError.from_json(message["error"])
        raise StoredStreamError(f"{error.label or 'no error details'} ({error.code})")
    return parse_application_up(message.get("result"))
