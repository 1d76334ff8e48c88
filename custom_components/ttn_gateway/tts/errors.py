"""Errors raised by the TTS client.

Messages never contain the API key: they are built from the HTTP status, the
TTS error name and the request path only.
"""

from __future__ import annotations


class TTSError(Exception):
    """Base class for every error of the TTS client."""


class TTSConnectionError(TTSError):
    """TTS could not be reached or answered something unusable."""


class TTSAuthenticationError(TTSError):
    """The API key was rejected (HTTP 401, or a malformed key)."""


class TTSPermissionError(TTSError):
    """The API key lacks a right the call needs (HTTP 403)."""

    def __init__(self, message: str, missing_rights: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing_rights = missing_rights


class TTSRateLimitError(TTSError):
    """TTS rate limited the key (HTTP 429); retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TTSNotFoundError(TTSConnectionError):
    """TTS answered 404: no such resource (or no TTS API at that URL)."""


class TTSStreamIdleError(TTSConnectionError):
    """The events stream sent nothing for longer than its idle timeout."""


class TTSStorageNotEnabledError(TTSNotFoundError):
    """TTS answered 404 for stored uplinks: no Storage Integration for the app."""
