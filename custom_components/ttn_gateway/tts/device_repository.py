"""Names of brands and models in the Device Repository that TTS serves.

TTS serves TheThingsNetwork/lorawan-devices through ``DeviceRepository``
(lorawan-stack ``api/ttn/lorawan/v3/devicerepository.proto``):
``GET /api/v3/dr/brands/{brand_id}`` (``GetBrand``) and
``GET /api/v3/dr/brands/{brand_id}/models/{model_id}`` (``GetModel``). Without
a field mask they answer only the ids (``withDefaultBrandFields`` and
``withDefaultModelFields`` in ``pkg/devicerepository/grpc.go``), so ``name`` is
asked for. Any authenticated caller may ask (``rights.RequireAuthenticated``
there): the DR is public, no right of the key is needed. An unknown id answers
404 (``brand_not_found``, ``model_not_found``), as does a server without the
Device Repository; the DR lists end devices, so most gateway models are not in
it. Whatever fails, the id stays the name.
"""

from __future__ import annotations

from collections.abc import Callable
import re
import time
from typing import Final
from urllib.parse import quote

from .errors import TTSError, TTSNotFoundError
from .http_core import TTSHttpCore
from .primitives import parse_str

# The Device Repository's id pattern (``EndDeviceBrand.brand_id`` in the proto).
DR_ID: Final = re.compile(r"[a-z0-9](?:-?[a-z0-9]){2,35}")
# Distinct ids looked up at most: forged uplinks cannot make it ask for more.
MAX_LOOKUPS: Final = 256
# A failed lookup (not a 404) is tried again after this long.
RETRY_AFTER_SECONDS: Final = 3600.0
# Longest name kept (the device registry shows it in one line).
MAX_NAME_LENGTH: Final = 100

type NameKey = tuple[str, ...]


class DeviceRepositoryRequests(TTSHttpCore):
    """Asks the Device Repository of the client's server for names."""

    async def get_device_repository_name(
        self, brand_id: str, model_id: str | None = None
    ) -> str | None:
        """The name of a brand, or of one of its models; None when it has none.

        Raises TTSNotFoundError for an unknown id (or a server without the
        Device Repository), another TTSError when the lookup fails.
        """
        path = f"/dr/brands/{quote(brand_id, safe='')}"
        if model_id is not None:
            path += f"/models/{quote(model_id, safe='')}"
        data, _ = await self._request(
            "GET", self.server.url, path, params={"field_mask": "name"}
        )
        return parse_str(data.get("name"))


class DeviceRepositoryNames:
    """Brand and model names by id, asked of TTS once and kept."""

    def __init__(
        self,
        client: DeviceRepositoryRequests,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Nothing is known until looked up."""
        self._client = client
        # Looked up at each call, as the client does (tests move the clock).
        self._clock = clock or (lambda: time.monotonic())
        # A name, or None when TTS has none (404 or an empty name).
        self._names: dict[NameKey, str | None] = {}
        # When a lookup that failed may be tried again.
        self._retry_at: dict[NameKey, float] = {}

    def manufacturer(self, brand_id: str) -> str:
        """The brand's name when known, else its id."""
        return self._names.get((brand_id,)) or brand_id

    def model(self, brand_id: str, model_id: str) -> str:
        """The model's name when known, else its id."""
        return self._names.get((brand_id, model_id)) or model_id

    def wanted(self, brand_id: str | None, model_id: str | None) -> list[NameKey]:
        """The ids of these that are worth asking TTS for now."""
        keys: list[NameKey] = []
        if brand_id is not None:
            keys.append((brand_id,))
            if model_id is not None:
                keys.append((brand_id, model_id))
        now = self._clock()
        return [
            key
            for key in keys
            if all(DR_ID.fullmatch(part) for part in key)
            and key not in self._names
            and self._retry_at.get(key, 0.0) <= now
            and len(self._names) + len(self._retry_at) < MAX_LOOKUPS
        ]

    async def async_look_up(self, key: NameKey) -> bool:
        """Ask TTS for one name; whether a name was learnt."""
        try:
            name = await self._client.get_device_repository_name(*key)
        except TTSNotFoundError:
            self._names[key] = None
            return False
        except TTSError:
            self._retry_at[key] = self._clock() + RETRY_AFTER_SECONDS
            return False
        self._retry_at.pop(key, None)
        name = name.strip()[:MAX_NAME_LENGTH] if name else None
        self._names[key] = name or None
        return bool(name)
