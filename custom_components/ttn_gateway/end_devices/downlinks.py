"""Downlinks: sending them, and following what TTS says became of them.

A downlink goes through TTS's HTTP API whenever the application's key may
write downlinks: TTS answers there, so a refused downlink is an error for
the caller. Over MQTT TTS drops an invalid downlink without a word and
disconnects a session over its rate limit (``connection.deliver`` in
``pkg/applicationserver/io/mqtt/mqtt.go``, ``ratelimit.Require`` with
``ApplicationMQTTDownResource``), so the direct MQTT connection carries a
downlink only when the key's recorded rights leave no other way.
"""

from __future__ import annotations

from collections.abc import Sequence

from homeassistant.helpers.json import json_bytes

from ..const import LOGGER
from ..tts import (
    Downlink,
    DownlinkEvent,
    Right,
    TTSClient,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
    downlink_request_json,
)
from .applications import ApplicationConfig
from .direct import DirectConnection, NotConnectedError
from .registry import device_key_text
from .state import DeviceKey, EndDevice
from .subscription import UplinkSubscription


class DownlinkNotSentError(Exception):
    """A downlink could not be queued; the translation key says why."""

    def __init__(self, reason: str, detail: str = "", seconds: float = 0) -> None:
        """Say why, for the user."""
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.seconds = seconds


async def async_send_downlinks(
    config: ApplicationConfig | None,
    source: DirectConnection | UplinkSubscription | None,
    client: TTSClient | None,
    key: DeviceKey,
    downlinks: Sequence[Downlink],
    *,
    replace: bool,
) -> None:
    """Queue downlinks for a device through its application.

    Raises DownlinkNotSentError with a translation key when impossible.
    """
    if config is None or config.application_id is None or client is None:
        raise DownlinkNotSentError("downlink_no_application")
    if config.grants(Right.APPLICATION_TRAFFIC_DOWN_WRITE):
        try:
            await client.push_downlinks(key[0], key[1], downlinks, replace=replace)
        except TTSError as err:
            LOGGER.debug("Downlink to %s failed: %s", device_key_text(key), err)
            raise _not_sent(err) from err
        return
    if not isinstance(source, DirectConnection):
        raise DownlinkNotSentError("downlink_no_right")
    # The rights recorded at configuration lack the right; the key may have
    # it by now, and TTS checks it on the connection (it says nothing if not).
    LOGGER.debug(
        "Downlink to %s over MQTT: the key's recorded rights do not allow the HTTP API",
        device_key_text(key),
    )
    topic = source.settings.downlink_topic(key[1], replace=replace)
    try:
        await source.async_publish(topic, json_bytes(downlink_request_json(downlinks)))
    except NotConnectedError as err:
        raise DownlinkNotSentError("downlink_not_connected") from err


def _not_sent(err: TTSError) -> DownlinkNotSentError:
    """What TTS's refusal means for the user: each cause has its own words."""
    if isinstance(err, TTSPermissionError):
        return DownlinkNotSentError("downlink_no_right")
    if isinstance(err, TTSNotFoundError):
        return DownlinkNotSentError("downlink_not_in_tts")
    if isinstance(err, TTSRateLimitError):
        return DownlinkNotSentError("downlink_rate_limited", seconds=err.retry_after)
    return DownlinkNotSentError("downlink_failed", str(err))


def track_downlink_event(device: EndDevice, event: DownlinkEvent) -> bool:
    """Take TTS's word on a downlink; False when it is older than the last.

    Newest wins: a late "queued" must not hide the "sent" after it.
    """
    last = device.last_downlink
    if (
        last is not None
        and last.received_at is not None
        and event.received_at is not None
        and event.received_at < last.received_at
    ):
        return False
    device.last_downlink = event
    return True
