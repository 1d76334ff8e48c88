"""Push: the TTS events stream applied to the coordinator's data.

One stream is kept open per Gateway Server (cluster), for at most
STREAM_GATEWAY_LIMIT gateways each, and reopened with exponential backoff and
jitter, resuming after the last event received. While every stream is healthy
the poll relaxes to RELAXED_SCAN_INTERVAL (polls then only refresh the
counters); when one drops, the poll tightens again and runs at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
import random
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import HomeAssistant, callback

from .const import DOMAIN, LOGGER, RELAXED_SCAN_INTERVAL
from .tts import (
    ConnectionState,
    EventName,
    GatewayConnection,
    GatewayConnectionStats,
    Right,
    StreamEvent,
    TTSError,
    TTSNotFoundError,
    TTSRateLimitError,
    TTSStreamIdleError,
)

if TYPE_CHECKING:
    from .coordinator import GatewayData, TTSConfigEntry, TTSCoordinator

# TTS checks the key's rights on every listed gateway when a stream opens;
# bounding the list keeps that check (and the request body) small.
STREAM_GATEWAY_LIMIT: Final = 100
BACKOFF_INITIAL_SECONDS: Final = 2.0
BACKOFF_MAX_SECONDS: Final = 300.0
# A stream that stayed open this long resets the backoff.
STABLE_STREAM_SECONDS: Final = 60.0
GATEWAY_EVENT_NAMES: Final = (
    EventName.GATEWAY_CONNECT,
    EventName.GATEWAY_DISCONNECT,
    EventName.GATEWAY_CONNECTION_STATS,
    EventName.GATEWAY_STATUS,
)


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before reconnect number ``attempt`` (0 based).

    Exponential with "equal jitter": half the step is fixed, half random, so
    that many Home Assistant instances do not reconnect in step.
    """
    step = min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2.0**attempt)
    return step / 2 + random.uniform(0, step / 2)  # noqa: S311


def _counts(stats: GatewayConnectionStats) -> tuple[int | None, int | None, int | None]:
    return (stats.uplink_count, stats.downlink_count, stats.tx_acknowledgment_count)


def _disconnected(data: GatewayData, at: datetime) -> GatewayData:
    stats = data.connection.stats
    if stats is None:
        stats = GatewayConnectionStats(disconnected_at=at)
    elif stats.connected_at is not None and at < stats.connected_at:
        return data  # the end of an earlier connection
    elif (
        stats.connected_at is None
        and stats.disconnected_at is not None
        and at <= stats.disconnected_at
    ):
        return data  # already known
    else:
        stats = replace(stats, connected_at=None, disconnected_at=at)
    return replace(
        data, connection=GatewayConnection(ConnectionState.DISCONNECTED, stats)
    )


def apply_event(data: GatewayData, event: StreamEvent) -> GatewayData:
    """Return the gateway's data with an event applied (the same object if moot).

    Events older than what is known are ignored, so applying an event twice,
    late or after a poll that already saw it changes nothing. Counters are
    never taken from an event that would make them go down.
    """
    connection = data.connection
    stats = connection.stats
    if connection.state is ConnectionState.NO_RIGHTS:
        return data
    name = event.name
    if event.stats is not None and name in (
        EventName.GATEWAY_CONNECT,
        EventName.GATEWAY_CONNECTION_STATS,
    ):
        new = event.stats
        if new.connected_at is None:
            # TTS sends stats with only disconnected_at when a gateway leaves.
            if new.disconnected_at is None:
                return data
            return _disconnected(data, new.disconnected_at)
        if stats is not None:
            known_since = stats.connected_at or stats.disconnected_at
            if known_since is not None and new.connected_at < known_since:
                return data
            if new.connected_at == stats.connected_at and any(
                after < before
                for after, before in zip(_counts(new), _counts(stats), strict=True)
                # An unreadable counter (None) says nothing about staleness.
                if after is not None and before is not None
            ):
                return data
            if new == stats:
                return data
        return replace(data, connection=GatewayConnection.from_stats(new))
    if event.time is None:
        return data
    if name == EventName.GATEWAY_DISCONNECT:
        return _disconnected(data, event.time)
    if connection.state is not ConnectionState.CONNECTED or stats is None:
        return data
    if name == EventName.GATEWAY_STATUS and event.status is not None:
        if (
            stats.last_status_received_at is not None
            and event.time <= stats.last_status_received_at
        ):
            return data
        stats = replace(
            stats, last_status=event.status, last_status_received_at=event.time
        )
    elif name == EventName.GATEWAY_UPLINK:
        if (
            stats.last_uplink_received_at is not None
            and event.time <= stats.last_uplink_received_at
        ):
            return data
        stats = replace(stats, last_uplink_received_at=event.time)
    else:
        return data
    return replace(data, connection=replace(connection, stats=stats))


@dataclass
class _Stream:
    """One events stream: a Gateway Server and the gateways asked of it."""

    base_url: str
    gateway_ids: tuple[str, ...]
    task: asyncio.Task[None] | None = None
    healthy: bool = False
    # Set once TTS has no events API at all: polling only, until a reload.
    given_up: bool = False
    loss_logged: bool = False
    last_event_time: datetime | None = None
    connects: int = 0
    last_error: str | None = None
    events: int = 0


class GatewayEventStreams:
    """Keeps the events streams of one config entry open and applies their events."""

    def __init__(
        self, hass: HomeAssistant, entry: TTSConfigEntry, coordinator: TTSCoordinator
    ) -> None:
        """Prepare the streams; async_start opens them."""
        self._hass = hass
        self._entry = entry
        self._coordinator = coordinator
        self._client = coordinator.client
        self.polling_interval = coordinator.update_interval or timedelta(0)
        self.relaxed_interval = max(self.polling_interval, RELAXED_SCAN_INTERVAL)
        self.names: tuple[str, ...] = GATEWAY_EVENT_NAMES
        self._streams: dict[tuple[str, int], _Stream] = {}
        # The last event per gateway that changed its connection state.
        self._pushed: dict[str, StreamEvent] = {}

    async def async_start(self) -> None:
        """Learn which events the key may see and open the streams."""
        try:
            auth = await self._client.get_auth_info()
        except TTSError as err:
            LOGGER.debug("Cannot read the API key's rights, no uplink events: %s", err)
        else:
            if auth.grants(Right.GATEWAY_TRAFFIC_READ):
                self.names = (*GATEWAY_EVENT_NAMES, EventName.GATEWAY_UPLINK)
        self._coordinator.merge_pushed = self._merge_pushed
        self._entry.async_on_unload(
            self._coordinator.async_add_listener(self._async_sync_streams)
        )
        self._async_sync_streams()

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
                "last_event_time": stream.last_event_time,
                "last_error": stream.last_error,
            }
            for stream in self._streams.values()
        ]

    def _groups(self) -> dict[tuple[str, int], tuple[str, ...]]:
        """The streams wanted: per Gateway Server, in slices of the limit."""
        by_server: dict[str, list[str]] = {}
        for gateway_id, data in self._coordinator.data.items():
            if data.connection.state is ConnectionState.NO_RIGHTS:
                continue
            base_url = self._client.server.gateway_server_url(
                data.gateway.gateway_server_address
            )
            by_server.setdefault(base_url, []).append(gateway_id)
        groups: dict[tuple[str, int], tuple[str, ...]] = {}
        for base_url, gateway_ids in by_server.items():
            gateway_ids.sort()
            for index, start in enumerate(
                range(0, len(gateway_ids), STREAM_GATEWAY_LIMIT)
            ):
                groups[(base_url, index)] = tuple(
                    gateway_ids[start : start + STREAM_GATEWAY_LIMIT]
                )
        return groups

    @callback
    def _async_sync_streams(self) -> None:
        """Open, close or reopen streams when the monitored gateways change."""
        wanted = self._groups()
        for key, stream in list(self._streams.items()):
            if wanted.get(key) != stream.gateway_ids:
                if stream.task is not None:
                    stream.task.cancel()
                del self._streams[key]
        for key, gateway_ids in wanted.items():
            if key in self._streams:
                continue
            stream = _Stream(base_url=key[0], gateway_ids=gateway_ids)
            self._streams[key] = stream
            stream.task = self._entry.async_create_background_task(
                self._hass,
                self._async_run(stream),
                name=f"{DOMAIN} events stream {key[0]} #{key[1]}",
            )
        self._update_poll_interval()

    def _update_poll_interval(self) -> None:
        interval = self.relaxed_interval if self.healthy else self.polling_interval
        if self._coordinator.update_interval != interval:
            LOGGER.debug("Polling every %.0f s", interval.total_seconds())
            self._coordinator.update_interval = interval

    async def _async_run(self, stream: _Stream) -> None:
        """Keep one stream open until the entry unloads."""
        loop = asyncio.get_running_loop()
        host = self._client.server.host
        attempt = 0
        while True:
            opened_at: float | None = None
            floor = 0.0
            idle = False
            try:
                async for event in self._client.stream_events(
                    stream.base_url,
                    stream.gateway_ids,
                    self.names,
                    after=stream.last_event_time,
                ):
                    if event.time is not None and (
                        stream.last_event_time is None
                        or event.time > stream.last_event_time
                    ):
                        stream.last_event_time = event.time
                    if event.name == EventName.STREAM_START:
                        opened_at = loop.time()
                        stream.connects += 1
                        self._set_healthy(stream, healthy=True)
                        continue
                    stream.events += 1
                    attempt = 0
                    self._apply(event)
                error = "closed by the server"
            except TTSNotFoundError as err:
                stream.given_up = True
                stream.last_error = str(err)
                LOGGER.warning(
                    "%s has no events API (%s); gateways are polled every %.0f s",
                    host,
                    err,
                    self.polling_interval.total_seconds(),
                )
                await self._set_unhealthy(stream)
                return
            except TTSStreamIdleError as err:
                # Normal for an account whose gateways are all quiet.
                error = str(err)
                idle = True
            except TTSRateLimitError as err:
                error = str(err)
                floor = err.retry_after
            except TTSError as err:
                error = str(err)
            stream.last_error = error
            if opened_at is not None and loop.time() - opened_at >= (
                STABLE_STREAM_SECONDS
            ):
                attempt = 0
            delay = max(backoff_delay(attempt), floor)
            attempt += 1
            if not stream.loss_logged and not idle:
                stream.loss_logged = True
                LOGGER.info(
                    "Events stream from %s %s (%s); polling every %.0f s until"
                    " it is back",
                    host,
                    "lost" if stream.healthy else "unavailable",
                    error,
                    self.polling_interval.total_seconds(),
                )
            LOGGER.debug("Reopening the events stream from %s in %.1f s", host, delay)
            await self._set_unhealthy(stream)
            await asyncio.sleep(delay)

    def _set_healthy(self, stream: _Stream, *, healthy: bool) -> None:
        if stream.healthy == healthy:
            return
        stream.healthy = healthy
        if healthy and stream.loss_logged:
            stream.loss_logged = False
            LOGGER.info("Events stream from %s is back", self._client.server.host)
        self._update_poll_interval()

    async def _set_unhealthy(self, stream: _Stream) -> None:
        """Tighten the poll, and poll now: events may have been missed."""
        if not stream.healthy:
            return
        self._set_healthy(stream, healthy=False)
        await self._coordinator.async_request_refresh()

    @callback
    def _apply(self, event: StreamEvent) -> None:
        data = self._coordinator.data
        changed: dict[str, GatewayData] = {}
        for gateway_id in event.gateway_ids:
            if (current := data.get(gateway_id)) is None:
                continue
            updated = apply_event(current, event)
            if updated is current:
                continue
            changed[gateway_id] = updated
            if updated.connection.state is not current.connection.state:
                self._pushed[gateway_id] = event
        if changed:
            LOGGER.debug("%s applied to %s", event.name, ", ".join(changed))
            self._coordinator.async_set_pushed_data({**data, **changed})

    def _merge_pushed(self, data: dict[str, GatewayData]) -> dict[str, GatewayData]:
        """Re-apply pushed connects and disconnects that a poll did not see yet."""
        for gateway_id, event in self._pushed.items():
            if (current := data.get(gateway_id)) is not None:
                data[gateway_id] = apply_event(current, event)
        return data
