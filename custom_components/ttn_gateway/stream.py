"""Push: the TTS events streams that feed the gateway store.

One stream is kept open per Gateway Server (cluster), for at most
STREAM_GATEWAY_LIMIT gateways each. A supervisor keeps every stream alive
whatever happens: it reopens after errors, bugs and clean closes alike, with
exponential backoff and jitter, resuming after the last event received. A bad
message is skipped and counted, never fatal. While every stream is open the
store reports push as healthy (the coordinator then relaxes its poll).

A gateway that makes TTS refuse its group (403) is found by splitting the
group. Alone, it is asked once more without uplink events (which need the
traffic right); refused again, it is left out of push (polled only). Either
way a repair issue names it and the right it lacks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
import random
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN, ISSUE_NO_EVENT_RIGHTS, LOGGER
from .issues import async_create_issue, async_delete_issue
from .store import GatewayStore
from .tts import (
    GATEWAY_EVENT_NAMES,
    ConnectionState,
    EventName,
    Right,
    StreamEvent,
    TTSClient,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
    TTSStreamIdleError,
)

# TTS checks the key's rights on every listed gateway when a stream opens;
# bounding the list keeps that check (and the request body) small.
STREAM_GATEWAY_LIMIT: Final = 100
BACKOFF_INITIAL_SECONDS: Final = 2.0
BACKOFF_MAX_SECONDS: Final = 300.0
# 2.0 * 2**8 > BACKOFF_MAX_SECONDS: larger exponents change nothing (and
# 2.0**1024 overflows a float).
BACKOFF_MAX_EXPONENT: Final = 8
# A stream that stayed open this long resets the backoff.
STABLE_STREAM_SECONDS: Final = 60.0


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before reconnect number ``attempt`` (0 based).

    Exponential with "equal jitter": half the step is fixed, half random, so
    that many Home Assistant instances do not reconnect in step.
    """
    exponent = min(max(attempt, 0), BACKOFF_MAX_EXPONENT)
    step = min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2.0**exponent)
    return step / 2 + random.uniform(0, step / 2)  # noqa: S311


@dataclass
class _Stream:
    """One events stream: a Gateway Server and the gateways asked of it."""

    base_url: str
    gateway_ids: tuple[str, ...]
    # Event names asked for; None: the entry's.
    names: tuple[str, ...] | None = None
    task: asyncio.Task[None] | None = None
    healthy: bool = False
    # Set once TTS has no events API at all: polling only, until a reload.
    given_up: bool = False
    loss_logged: bool = False
    last_event_time: datetime | None = None
    connects: int = 0
    last_error: str | None = None
    events: int = 0
    skipped: int = 0
    errors: int = 0


class GatewayEventStreams:
    """Keeps the events streams of one config entry open."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: TTSClient,
        store: GatewayStore,
        polling_interval: timedelta,
    ) -> None:
        """Prepare the streams; async_start opens them."""
        self._polling_seconds = polling_interval.total_seconds()
        self._hass = hass
        self._entry = entry
        self._client = client
        self._store = store
        self.names: tuple[str, ...] = GATEWAY_EVENT_NAMES
        self._streams: dict[tuple[str, ...], _Stream] = {}
        # Gateways TTS refuses to stream (no right at all on them), and those
        # streamed without uplink events (no traffic right on them).
        self.refused: set[str] = set()
        self.without_uplinks: set[str] = set()
        self._stopped = False

    async def async_start(self) -> None:
        """Learn which events the key may see and open the streams."""
        try:
            auth = await self._client.get_auth_info()
        except TTSError as err:
            LOGGER.debug("Cannot read the API key's rights, no uplink events: %s", err)
        else:
            if auth.grants(Right.GATEWAY_TRAFFIC_READ):
                self.names = (*GATEWAY_EVENT_NAMES, EventName.GATEWAY_UPLINK)
        self._entry.async_on_unload(
            self._store.async_subscribe_gateway_set(self._async_sync_streams)
        )
        self._entry.async_on_unload(self._async_stop)
        self._async_sync_streams()

    @callback
    def _async_stop(self) -> None:
        self._stopped = True
        for stream in self._streams.values():
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()
        async_delete_issue(self._hass, self._issue_id)

    @property
    def healthy(self) -> bool:
        """Whether every monitored gateway's events arrive by push."""
        return bool(self._streams) and all(
            stream.healthy for stream in self._streams.values()
        )

    def diagnostics(self) -> list[dict[str, Any]]:
        """State of each stream, for the diagnostics download."""
        return [
            {
                "server": stream.base_url,
                "gateways": len(stream.gateway_ids),
                "healthy": stream.healthy,
                "given_up": stream.given_up,
                "connects": stream.connects,
                "events": stream.events,
                "skipped_messages": stream.skipped,
                "errors": stream.errors,
                "last_event_time": stream.last_event_time,
                "last_error": stream.last_error,
            }
            for stream in self._streams.values()
        ]

    def _wanted(self) -> dict[tuple[str, ...], tuple[str, tuple[str, ...] | None]]:
        """The streams wanted: per Gateway Server, in slices of the limit.

        Each maps its gateways to (Gateway Server, event names or None for
        the entry's); a gateway without the traffic right streams alone.
        """
        by_server: dict[str, list[str]] = {}
        wanted: dict[tuple[str, ...], tuple[str, tuple[str, ...] | None]] = {}
        without_uplinks = tuple(
            name for name in self.names if name != EventName.GATEWAY_UPLINK
        )
        for gateway_id, data in self._store.snapshot().items():
            if (
                gateway_id in self.refused
                or data.connection.state is ConnectionState.NO_RIGHTS
            ):
                continue
            base_url = self._client.server.gateway_server_url(
                data.gateway.gateway_server_address
            )
            if gateway_id in self.without_uplinks:
                wanted[(gateway_id,)] = (base_url, without_uplinks)
                continue
            by_server.setdefault(base_url, []).append(gateway_id)
        for base_url, gateway_ids in by_server.items():
            gateway_ids.sort()
            for start in range(0, len(gateway_ids), STREAM_GATEWAY_LIMIT):
                wanted[tuple(gateway_ids[start : start + STREAM_GATEWAY_LIMIT])] = (
                    base_url,
                    None,
                )
        return wanted

    @callback
    def _async_sync_streams(self) -> None:
        """Open or close streams when the monitored gateways change."""
        if self._stopped:
            return
        wanted = self._wanted()
        for key, stream in list(self._streams.items()):
            if wanted.get(key) != (stream.base_url, stream.names):
                if stream.task is not None:
                    stream.task.cancel()
                del self._streams[key]
        for key, (base_url, names) in wanted.items():
            if key not in self._streams:
                self._open(base_url, key, names)
        self._report_health()

    def _open(
        self,
        base_url: str,
        gateway_ids: tuple[str, ...],
        names: tuple[str, ...] | None = None,
    ) -> None:
        stream = _Stream(base_url=base_url, gateway_ids=gateway_ids, names=names)
        self._streams[gateway_ids] = stream
        stream.task = self._entry.async_create_background_task(
            self._hass,
            self._async_supervise(stream),
            name=f"{DOMAIN} events stream {base_url} {gateway_ids[0]}",
        )

    def _report_health(self) -> None:
        self._store.async_set_push_healthy(self.healthy)

    async def _async_supervise(self, stream: _Stream) -> None:
        """Keep one stream open until the entry unloads, whatever goes wrong."""
        loop = asyncio.get_running_loop()
        host = self._client.server.host
        attempt = 0
        while True:
            opened_at: float | None = None
            floor = 0.0
            quiet = False
            try:
                opened_at = await self._async_read(stream, loop)
                error = "closed by the server"
            except TTSNotFoundError as err:
                stream.given_up = True
                stream.last_error = str(err)
                LOGGER.warning(
                    "%s has no events API (%s); gateways are polled every %.0f s",
                    host,
                    err,
                    self._polling_seconds,
                )
                self._set_healthy(stream, healthy=False)
                return
            except TTSPermissionError as err:
                if self._split_refused(stream):
                    return
                error = str(err)
            except TTSStreamIdleError as err:
                # Normal for an account whose gateways are all quiet.
                error = str(err)
                quiet = True
            except TTSRateLimitError as err:
                error = str(err)
                floor = err.retry_after
            except TTSError as err:
                error = str(err)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                # A bug must not end push for good: log it once, then reopen.
                stream.errors += 1
                error = "unexpected error"
                if stream.errors == 1:
                    LOGGER.exception(
                        "Unexpected error in the events stream from %s; reopening",
                        host,
                    )
            stream.last_error = error
            if opened_at is not None and loop.time() - opened_at >= (
                STABLE_STREAM_SECONDS
            ):
                attempt = 0
            delay = max(backoff_delay(attempt), floor)
            attempt += 1
            if not stream.loss_logged and not quiet:
                stream.loss_logged = True
                LOGGER.info(
                    "Events stream from %s %s (%s); polling every %.0f s until"
                    " it is back",
                    host,
                    "lost" if stream.healthy else "unavailable",
                    error,
                    self._polling_seconds,
                )
            LOGGER.debug("Reopening the events stream from %s in %.1f s", host, delay)
            self._set_healthy(stream, healthy=False)
            await asyncio.sleep(delay)

    async def _async_read(
        self, stream: _Stream, loop: asyncio.AbstractEventLoop
    ) -> float | None:
        """Read one stream until it ends; return when it opened (loop time)."""
        opened_at: float | None = None

        def skipped() -> None:
            stream.skipped += 1

        async for event in self._client.stream_events(
            stream.base_url,
            stream.gateway_ids,
            stream.names or self.names,
            after=stream.last_event_time,
            on_skipped=skipped,
        ):
            if event.time is not None and (
                stream.last_event_time is None or event.time > stream.last_event_time
            ):
                stream.last_event_time = event.time
            if event.name == EventName.STREAM_START:
                opened_at = loop.time()
                stream.connects += 1
                self._set_healthy(stream, healthy=True)
                continue
            stream.events += 1
            self._apply(event)
        return opened_at

    def _apply(self, event: StreamEvent) -> None:
        changed = self._store.async_apply_event(event)
        if changed:
            LOGGER.debug("%s applied to %s", event.name, ", ".join(changed))

    def _set_healthy(self, stream: _Stream, *, healthy: bool) -> None:
        if stream.healthy == healthy:
            return
        stream.healthy = healthy
        if healthy and stream.loss_logged:
            stream.loss_logged = False
            LOGGER.info("Events stream from %s is back", self._client.server.host)
        self._report_health()

    def _split_refused(self, stream: _Stream) -> bool:
        """Split a group TTS refused; True when this stream is done for.

        A refused single gateway is left out of push and named in a repair
        issue; a larger group is split in two, each half its own stream.
        """
        if self._streams.get(stream.gateway_ids) is not stream:
            return True
        del self._streams[stream.gateway_ids]
        ids = stream.gateway_ids
        names = stream.names or self.names
        if len(ids) == 1 and EventName.GATEWAY_UPLINK in names:
            # Perhaps only the traffic right is missing: try without uplinks.
            self.without_uplinks.add(ids[0])
            self._open(
                stream.base_url,
                ids,
                tuple(name for name in names if name != EventName.GATEWAY_UPLINK),
            )
            self._sync_refused_issue()
        elif len(ids) == 1:
            self.without_uplinks.discard(ids[0])
            self.refused.add(ids[0])
            LOGGER.warning(
                "The API key may not stream the events of gateway %s;"
                " it is polled only",
                ids[0],
            )
            self._sync_refused_issue()
        else:
            middle = len(ids) // 2
            self._open(stream.base_url, ids[:middle])
            self._open(stream.base_url, ids[middle:])
        self._report_health()
        return True

    @property
    def _issue_id(self) -> str:
        return f"{ISSUE_NO_EVENT_RIGHTS}_{self._entry.entry_id}"

    def _sync_refused_issue(self) -> None:
        gateways = self.refused | self.without_uplinks
        if not gateways:
            async_delete_issue(self._hass, self._issue_id)
            return
        right = (
            Right.GATEWAY_STATUS_READ if self.refused else Right.GATEWAY_TRAFFIC_READ
        )
        async_create_issue(
            self._hass,
            self._issue_id,
            fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_NO_EVENT_RIGHTS,
            placeholders={
                "gateways": ", ".join(sorted(gateways)),
                "right": right,
                "title": self._entry.title,
            },
        )
