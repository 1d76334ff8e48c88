"""Catch-up from TTS's Storage Integration: no uplink lost to a restart or outage.

TTS's MQTT servers keep nothing for a client that is away (QoS 0, no
sessions). Per application, this module remembers since when uplinks may be
missing (kept in a ``Store``) and, once the source is up again, fetches the
stored ones and hands them to the manager's intake; what a user sees is in
the README (*Missed uplinks*).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from ..issues import async_create_issue, async_delete_issue
from ..tts import (
    STORAGE_DOCS_URL,
    STORED_UPLINKS_MAX,
    TTSClient,
    TTSError,
    TTSPermissionError,
    TTSStorageNotEnabledError,
    Uplink,
)
from .applications import ApplicationConfig
from .state import MAX_CLOCK_SKEW

ISSUE_STORAGE_NOT_ENABLED: Final = "storage_not_enabled"
ISSUE_STORAGE_NO_RIGHT: Final = "storage_no_right"
STORE_VERSION: Final = 1
# Live uplinks move the saved time often; write it at most this often.
SAVE_DELAY_SECONDS: Final = 30
# TTS writes stored uplinks in batches: look again this much later.
SETTLE_SECONDS: Final = 60
# A failed catch-up is tried again this much later while the source is up.
RETRY_SECONDS: Final = 300
# TTS Cloud keeps uplinks 30 days: asking for older ones is pointless.
RETENTION: Final = timedelta(days=30)

# Applies fetched uplinks (oldest first); returns how many changed a device.
type StoredUplinkApplier = Callable[[ApplicationConfig, list[Uplink]], int]


class _Outcome(Enum):
    DONE = "done"
    # No Storage Integration or no right: nothing to fetch, the gap is lost.
    UNAVAILABLE = "unavailable"
    # TTS could not be reached: try again later.
    FAILED = "failed"


def issue_id(subentry_id: str) -> str:
    """ID of an application's repair issue about its Storage Integration."""
    return f"{ISSUE_STORAGE_NOT_ENABLED}_{subentry_id}"


class CatchUpStore:
    """Per application, from when uplinks may be missing; kept over restarts."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Nothing is read until async_load."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, f"{DOMAIN}.catch_up.{entry_id}"
        )
        self._since: dict[str, datetime] = {}

    async def async_load(self) -> None:
        """Read the saved times; unreadable ones are left out."""
        data = await self._store.async_load() or {}
        since = data.get("since")
        for application_id, text in (since if isinstance(since, dict) else {}).items():
            if isinstance(text, str) and (moment := dt_util.parse_datetime(text)):
                self._since[str(application_id)] = dt_util.as_utc(moment)

    def get(self, application_id: str) -> datetime | None:
        """The saved time of an application."""
        return self._since.get(application_id)

    def set(self, application_id: str, moment: datetime) -> None:
        """Save an application's time (soon, and at the latest on stop)."""
        if self._since.get(application_id) == moment:
            return
        self._since[application_id] = moment
        self._store.async_delay_save(self._data, SAVE_DELAY_SECONDS)

    def _data(self) -> dict[str, Any]:
        return {
            "since": {app: moment.isoformat() for app, moment in self._since.items()}
        }

    async def async_remove(self) -> None:
        """Delete the saved times; the entry is removed."""
        await self._store.async_remove()


class StorageCatchUp:
    """Fetches one application's uplinks missed while its source was down."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        config: ApplicationConfig,
        client: TTSClient,
        store: CatchUpStore,
        apply: StoredUplinkApplier,
    ) -> None:
        """Nothing is fetched until the source is up."""
        if config.application_id is None:  # pragma: no cover - callers check
            raise ValueError("a catch-up needs an application ID")
        self.hass = hass
        self.entry = entry
        self.config = config
        self.application_id = config.application_id
        self._client = client
        self._store = store
        self._apply = apply
        # The newest uplink seen (live or fetched).
        self.seen: datetime | None = None
        # Uplinks after this time may be missing (None: none are).
        self.missing_since: datetime | None = store.get(self.application_id)
        if self.missing_since is None:
            # First start: nothing was missed before now.
            self.seen = dt_util.utcnow()
            store.set(self.application_id, self.seen)
        self._outages = 0
        self._running = False
        self._again = False
        self._up = False
        self._cancel_later: CALLBACK_TYPE | None = None
        # What happened, for diagnostics.
        self.catch_ups = 0
        self.fetched = 0
        self.applied = 0
        self.skipped = 0
        self.last_error: str | None = None
        self.unavailable_reason: str | None = None

    @property
    def issue_id(self) -> str:
        """ID of the repair issue about the Storage Integration."""
        return issue_id(self.config.subentry_id)

    @callback
    def async_stop(self) -> None:
        """Stop; the entry is unloading."""
        self._cancel_scheduled()
        self._up = False

    @callback
    def async_source_changed(self, available: bool) -> None:
        """The source went down (a gap opens) or came up (fetch the gap).

        The direct connection is up once subscribed; Home Assistant's MQTT
        while it is loaded and connected to its broker.
        """
        if not available:
            self._up = False
            self._outages += 1
            self._cancel_scheduled()
            if self.missing_since is None:
                self.missing_since = self.seen or dt_util.utcnow()
                self._store.set(self.application_id, self.missing_since)
            return
        self._up = True
        if self.missing_since is not None:
            self._async_schedule(self.missing_since, settle=True)

    @callback
    def async_note_uplink(self, received: datetime) -> None:
        """An uplink was applied: earlier ones are not missing."""
        # A time far ahead of this clock must not hide the uplinks until then.
        received = min(received, dt_util.utcnow() + MAX_CLOCK_SKEW)
        if self.seen is not None and received <= self.seen:
            return
        self.seen = received
        if self.missing_since is None:
            self._store.set(self.application_id, received)

    def _cancel_scheduled(self) -> None:
        if self._cancel_later is not None:
            self._cancel_later()
            self._cancel_later = None

    @callback
    def _async_schedule(self, since: datetime, *, settle: bool) -> None:
        if self._running:
            self._again = True
            return
        self._running = True
        self.entry.async_create_task(
            self.hass,
            self._async_catch_up(since, settle=settle),
            f"ttn_gateway {self.application_id} stored uplinks",
        )

    @callback
    def _async_later(self, seconds: float, since: datetime, *, settle: bool) -> None:
        self._cancel_scheduled()

        @callback
        def run(_now: datetime) -> None:
            self._cancel_later = None
            if self._up:
                self._async_schedule(since, settle=settle)

        self._cancel_later = async_call_later(self.hass, seconds, run)

    async def _async_catch_up(self, since: datetime, *, settle: bool) -> None:
        outages = self._outages
        try:
            outcome = await self._async_fetch(since)
        finally:
            self._running = False
        if (
            outcome is not _Outcome.FAILED
            and outages == self._outages
            and self.missing_since == since
        ):
            self.missing_since = None
            self._store.set(self.application_id, self.seen or since)
        if self._again:
            self._again = False
            if self.missing_since is not None and self._up:
                self._async_schedule(self.missing_since, settle=True)
                return
        if not self._up:
            return
        if outcome is _Outcome.FAILED:
            self._async_later(RETRY_SECONDS, since, settle=settle)
        elif outcome is _Outcome.DONE and settle:
            self._async_later(SETTLE_SECONDS, since, settle=False)

    async def _async_fetch(self, since: datetime) -> _Outcome:
        """Fetch and apply the stored uplinks since a time."""
        self.catch_ups += 1
        after = max(since, dt_util.utcnow() - RETENTION)
        try:
            result = await self._client.get_stored_uplinks(
                self.application_id, after=after
            )
        except TTSStorageNotEnabledError as err:
            self._unavailable(ISSUE_STORAGE_NOT_ENABLED, str(err))
            return _Outcome.UNAVAILABLE
        except TTSPermissionError as err:
            self._unavailable(ISSUE_STORAGE_NO_RIGHT, str(err))
            return _Outcome.UNAVAILABLE
        except TTSError as err:
            log = LOGGER.debug if self.last_error else LOGGER.warning
            self.last_error = str(err)
            log(
                "Could not fetch the stored uplinks of %s: %s",
                self.config.title,
                err,
            )
            return _Outcome.FAILED
        self.last_error = None
        if self.unavailable_reason is not None:
            self.unavailable_reason = None
            LOGGER.info("Storage Integration of %s works again", self.config.title)
        async_delete_issue(self.hass, self.issue_id)
        self.fetched += len(result.uplinks)
        self.skipped += result.skipped
        applied = self._apply(self.config, result.uplinks) if result.uplinks else 0
        self.applied += applied
        for uplink in result.uplinks:
            if uplink.received_at is not None:
                self.async_note_uplink(uplink.received_at)
        LOGGER.debug(
            "Stored uplinks of %s since %s: %d fetched, %d applied, %d lines skipped",
            self.config.title,
            after.isoformat(),
            len(result.uplinks),
            applied,
            result.skipped,
        )
        if result.full:
            LOGGER.info(
                "%s: more than %d uplinks were missed; only the newest %d are used",
                self.config.title,
                STORED_UPLINKS_MAX,
                STORED_UPLINKS_MAX,
            )
        return _Outcome.DONE

    def _unavailable(self, reason: str, detail: str) -> None:
        """Say once that the application has no usable Storage Integration."""
        self.last_error = detail
        if self.unavailable_reason == reason:
            return
        self.unavailable_reason = reason
        LOGGER.warning(
            "Uplinks of %s missed while Home Assistant was not connected cannot be"
            " fetched: %s",
            self.config.title,
            detail,
        )
        async_create_issue(
            self.hass,
            self.issue_id,
            fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=reason,
            placeholders={"application": self.config.title},
            learn_more_url=STORAGE_DOCS_URL,
        )

    def diagnostics(self) -> dict[str, Any]:
        """What the catch-ups did."""
        return {
            "catch_ups": self.catch_ups,
            "fetched": self.fetched,
            "applied": self.applied,
            "lines_skipped": self.skipped,
            "missing_since": self.missing_since,
            "last_error": self.last_error,
            "unavailable": self.unavailable_reason,
        }
