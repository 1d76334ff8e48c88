"""The events stream, ``POST /api/v3/events`` (lorawan-stack ``Events.Stream``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from http import HTTPStatus
import logging
from typing import Final

import aiohttp

from .errors import TTSConnectionError, TTSStreamIdleError
from .events import StreamError, StreamEvent, parse_stream_message
from .http_core import API_PREFIX, TTSHttpCore, unexpected_error
from .primitives import format_timestamp

_LOGGER = logging.getLogger(__name__)

# TTS sends no heartbeat on the events stream: a stream silent for this long
# is presumed dead (a proxy may have dropped it) and is reopened.
STREAM_IDLE_TIMEOUT_SECONDS: Final = 300.0
# Longest stream message accepted; uplink events are a few kilobytes.
STREAM_MAX_MESSAGE_BYTES: Final = 1 << 20


class EventsStream(TTSHttpCore):
    """Streams the events of gateways over the client's session and API key."""

    async def stream_events(
        self,
        base_url: str,
        gateway_ids: Sequence[str],
        names: Sequence[str],
        *,
        after: datetime | None = None,
        idle_timeout: float = STREAM_IDLE_TIMEOUT_SECONDS,
        on_skipped: Callable[[], None] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream the events of some gateways, starting with ``events.stream.start``.

        Accepts both framings TTS uses (one or two newlines) and skips
        messages it cannot parse. Ends when TTS closes the stream or sends an
        in-band error; raises TTSConnectionError when the stream stays silent
        for ``idle_timeout`` seconds. HTTP errors raise as for other calls, but
        a 429 does not hold back the polling requests: the stream has its own
        rate limit in TTS. ``on_skipped`` is called for each skipped message.
        """
        path = "/events"
        payload: dict[str, object] = {
            "identifiers": [{"gateway_ids": {"gateway_id": i}} for i in gateway_ids],
            "names": list(names),
        }
        if after is not None:
            payload["after"] = format_timestamp(after)
        self.request_count += 1
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._session.request(
                    "POST",
                    f"{base_url}{API_PREFIX}{path}",
                    json=payload,
                    headers=self._headers,
                    # No total timeout: the stream is meant to stay open.
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=self._timeout
                    ),
                )
        except TimeoutError as err:
            raise TTSConnectionError(
                f"Timeout after {self._timeout:.0f} s waiting for POST {path}"
                f" on {self.server.host}"
            ) from err
        except aiohttp.ClientError as err:
            raise TTSConnectionError(
                f"Cannot reach {self.server.host} for POST {path}: {type(err).__name__}"
            ) from err
        except Exception as err:
            raise unexpected_error(self.server.host, "POST", path, err) from err
        try:
            async with response:
                if response.status >= HTTPStatus.BAD_REQUEST:
                    async with asyncio.timeout(self._timeout):
                        body = await response.read()
                    self._raise_for_status(
                        response.status,
                        body,
                        response.headers,
                        "POST",
                        path,
                        remember_retry=False,
                    )
                buffer = b""
                while True:
                    async with asyncio.timeout(idle_timeout):
                        chunk = await response.content.readany()
                    if not chunk:
                        return
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    if len(buffer) > STREAM_MAX_MESSAGE_BYTES:
                        raise TTSConnectionError(
                            f"Events stream message from {self.server.host} is too long"
                        )
                    for line in lines:
                        if not line.strip():
                            continue
                        message = parse_stream_message(line)
                        if isinstance(message, StreamEvent):
                            yield message
                        elif isinstance(message, StreamError):
                            _LOGGER.debug(
                                "TTS ended the events stream with error %s (code %s)",
                                message.label,
                                message.code,
                            )
                            return
                        else:
                            _LOGGER.debug(
                                "Skipping an unusable events stream message from %s",
                                self.server.host,
                            )
                            if on_skipped is not None:
                                on_skipped()
        except TimeoutError as err:
            raise TTSStreamIdleError(
                f"No data on the events stream from {self.server.host}"
                f" for {idle_timeout:.0f} s"
            ) from err
        except aiohttp.ClientError as err:
            raise TTSConnectionError(
                f"Events stream from {self.server.host} failed: {type(err).__name__}"
            ) from err
