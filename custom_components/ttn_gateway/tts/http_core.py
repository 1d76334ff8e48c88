"""The TTS client's HTTP core: session, API key, errors, rate limit, pagination.

TTS serves its gRPC services (lorawan-stack ``api/ttn/lorawan/v3``) through
grpc-gateway under ``/api/v3``; a refused call carries ``ErrorDetails``
(``pkg/errors``), a rate-limited one ``X-Rate-Limit-*`` headers
(``pkg/ratelimit/result.go``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
import json
import time
from typing import Any, Final

import aiohttp

from .errors import (
    TTSAuthenticationError,
    TTSConnectionError,
    TTSError,
    TTSNotFoundError,
    TTSPermissionError,
    TTSRateLimitError,
)
from .rights import AuthInfo
from .servers import TTSServer

API_PREFIX: Final = "/api/v3"
LIST_PAGE_SIZE: Final = 1000
# Reads of the whole list when its total changes between pages (pages shifted).
LIST_ATTEMPTS: Final = 3
DEFAULT_RETRY_SECONDS: Final = 60.0
DEFAULT_TIMEOUT_SECONDS: Final = 20.0
# Largest answer body read: a list page of 1,000 gateways is about 1 MiB.
MAX_BODY_BYTES: Final = 16 << 20
_READ_CHUNK_BYTES: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The ``ErrorDetails`` of a refused call, as far as it can be read."""

    namespace: str = ""
    name: str = ""
    missing_rights: tuple[str, ...] = ()

    @classmethod
    def parse(cls, body: bytes) -> ErrorBody:
        """Read a ``google.rpc.Status`` body; empty when unreadable."""
        try:
            data = json.loads(body)
            details = data["details"][0]
            attributes = details.get("attributes") or {}
            missing = attributes.get("missing") or ()
            if isinstance(missing, str):
                missing = (missing,)
            return cls(
                namespace=str(details.get("namespace", "")),
                name=str(details.get("name", "")),
                missing_rights=tuple(str(right) for right in missing),
            )
        except (ValueError, LookupError, TypeError, AttributeError):
            return cls()

    @property
    def label(self) -> str:
        """``namespace:name`` of the error."""
        return f"{self.namespace}:{self.name}" if self.name else "no error details"


def total_count(headers: Mapping[str, str]) -> int | None:
    """``X-Total-Count``, or None when it is missing or not a count."""
    try:
        total = int(headers.get("X-Total-Count", ""))
    except ValueError:
        return None
    return total if total >= 0 else None


class TTSHttpCore:
    """Sends the requests of one API key to one TTS deployment.

    The session is injected and never closed here. A rate-limit deadline is
    remembered: no request is sent before it.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server: TTSServer,
        api_key: str,
        *,
        request_timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._session = session
        self.server = server
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
        }
        self._timeout = request_timeout
        # Looked up at call time, so a patched time.monotonic is honoured.
        self._clock = clock or (lambda: time.monotonic())
        self._retry_at = 0.0
        self.request_count = 0

    async def _request(
        self,
        method: str,
        base_url: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        payload: Any = None,
    ) -> tuple[Any, Mapping[str, str]]:
        """Send one request; return the decoded JSON body and the headers."""
        if (wait := self._retry_at - self._clock()) > 0:
            raise TTSRateLimitError(
                f"Rate limited by TTS; next request allowed in {wait:.0f} s", wait
            )
        url = f"{base_url}{API_PREFIX}{path}"
        self.request_count += 1
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.request(
                    method, url, params=params, json=payload, headers=self._headers
                ) as response:
                    body = await self._read_body(response, method, path)
                    status = response.status
                    headers = response.headers
        except TimeoutError as err:
            raise TTSConnectionError(
                f"Timeout after {self._timeout:.0f} s waiting for {method} {path}"
                f" on {self.server.host}"
            ) from err
        except aiohttp.ClientError as err:
            raise TTSConnectionError(
                f"Cannot reach {self.server.host} for {method} {path}:"
                f" {type(err).__name__}"
            ) from err
        except TTSError:
            raise  # already says what went wrong (an oversized answer)
        except Exception as err:
            raise unexpected_error(self.server.host, method, path, err) from err

        if status >= HTTPStatus.BAD_REQUEST:
            self._raise_for_status(status, body, headers, method, path)
        try:
            data = json.loads(body) if body else {}
        except ValueError as err:
            raise TTSConnectionError(
                f"Malformed JSON from {self.server.host} for {method} {path}"
            ) from err
        if not isinstance(data, dict):
            raise TTSConnectionError(
                f"Unexpected JSON from {self.server.host} for {method} {path}"
            )
        return data, headers

    async def _read_body(
        self, response: aiohttp.ClientResponse, method: str, path: str
    ) -> bytes:
        """Read an answer's body, refusing one larger than MAX_BODY_BYTES."""
        too_large = TTSConnectionError(
            f"The answer of {self.server.host} to {method} {path} is larger than"
            f" {MAX_BODY_BYTES >> 20} MiB"
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdecimal() and int(declared) > MAX_BODY_BYTES:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        content = response.content
        while chunk := await content.read(_READ_CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _raise_for_status(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        method: str,
        path: str,
        *,
        remember_retry: bool = True,
    ) -> None:
        # Messages are built here, not copied from TTS: a rate-limit message
        # from TTS names the key's id.
        error = ErrorBody.parse(body)
        where = f"{method} {path}"
        if status == HTTPStatus.UNAUTHORIZED or (
            status == HTTPStatus.BAD_REQUEST and error.namespace == "pkg/auth"
        ):
            raise TTSAuthenticationError(
                f"TTS rejected the API key ({error.label}) for {where}"
            )
        if status == HTTPStatus.FORBIDDEN:
            raise TTSPermissionError(
                f"The API key lacks rights for {where} ({error.label})",
                error.missing_rights,
            )
        if status == HTTPStatus.NOT_FOUND:
            raise TTSNotFoundError(f"Not found: {where} ({error.label})")
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            retry = _retry_seconds(headers)
            if remember_retry:
                self._retry_at = self._clock() + retry
            raise TTSRateLimitError(
                f"Rate limited by TTS for {where}; retrying in {retry:.0f} s", retry
            )
        raise TTSConnectionError(f"TTS answered HTTP {status} for {where}")

    async def get_auth_info(self) -> AuthInfo:
        """Return who owns the API key and its rights."""
        data, _ = await self._request(
            "GET", self.server.identity_server_url, "/auth_info"
        )
        return AuthInfo.from_json(data)


def unexpected_error(
    host: str, method: str, path: str, err: Exception
) -> TTSConnectionError:
    """A connection error for an exception the HTTP client should not raise.

    Such an exception (for example a DNS resolver library that does not fit
    the installed aiohttp) means that no request reached TTS. Only its type
    is named: its text could quote anything of the request.
    """
    return TTSConnectionError(
        f"Cannot reach {host} for {method} {path}: the HTTP client failed"
        f" unexpectedly ({type(err).__name__})"
    )


def _retry_seconds(headers: Mapping[str, str]) -> float:
    for name in ("X-Rate-Limit-Retry", "X-Rate-Limit-Reset"):
        try:
            seconds = float(headers.get(name, ""))
        except ValueError:
            continue
        if seconds > 0:
            return seconds
    return DEFAULT_RETRY_SECONDS
