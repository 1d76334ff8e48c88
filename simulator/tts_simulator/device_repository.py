"""TTS's Device Repository: brand and model names by id.

``GET /api/v3/dr/brands/{brand_id}`` and
``GET /api/v3/dr/brands/{brand_id}/models/{model_id}`` as lorawan-stack
``pkg/devicerepository/grpc.go`` (``GetBrand``, ``GetModel``) answers them:
any authenticated caller (``rights.RequireAuthenticated``), only the ids
unless the ``field_mask`` names more (``withDefaultBrandFields``,
``withDefaultModelFields``), and ``brand_not_found`` / ``model_not_found``
(404) for ids the repository lacks. The repository here is a small part of
TheThingsNetwork/lorawan-devices; a gateway model such as ``rak7248`` is not
in it, as it is not in the real one (it lists end devices).
"""

from __future__ import annotations

from http import HTTPStatus
import random
import re
from typing import Any, Final
from urllib.parse import unquote

from . import tts_json

# vendor/index.yaml at 012a1232f2d57e83baacb00baf301c3eb01a2a16: id -> name.
BRANDS: Final[dict[str, str]] = {
    "rakwireless": "RAKwireless Technology Co.",
    "adafruit": "Adafruit Industries",
    "dragino": "Dragino Technology Co., Limited",
}
# vendor/<brand>/<model>.yaml: the ``name:`` of each.
MODELS: Final[dict[tuple[str, str], str]] = {
    # vendor/elsys/ers.yaml at 55bf68f4a5bd93aab977477de679faa8eaa2fcb5.
    ("elsys", "ers"): "ERS smart building sensor",
}
DR_PATH: Final = re.compile(r"/api/v3/dr/brands/([^/]+)(?:/models/([^/]+))?")


def answer(
    path: str, field_mask: str, rng: random.Random
) -> tuple[HTTPStatus, dict[str, Any]]:
    """The status and body of a brand or model request."""
    match = DR_PATH.fullmatch(path)
    if match is None:  # pragma: no cover - routed here only when it matches
        return HTTPStatus.NOT_FOUND, {"code": 5, "message": "Not Found"}
    brand_id = unquote(match.group(1))
    model_id = None if match.group(2) is None else unquote(match.group(2))
    wanted = {part for part in field_mask.split(",") if part}
    if model_id is None:
        body: dict[str, Any] = {"brand_id": brand_id}
        name = BRANDS.get(brand_id)
        error = ("brand_not_found", "brand `{brand_id}` not found")
    else:
        body = {"brand_id": brand_id, "model_id": model_id}
        name = MODELS.get((brand_id, model_id))
        error = ("model_not_found", "model `{brand_id}/{model_id}` not found")
    if name is None:
        attributes = dict(body)
        return HTTPStatus.NOT_FOUND, tts_json.error_body(
            5, "pkg/devicerepository", *error, attributes=attributes, rng=rng
        )
    if "name" in wanted:
        body["name"] = name
    return HTTPStatus.OK, body
