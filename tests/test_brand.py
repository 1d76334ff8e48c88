"""The brand images HA 2026.3+ shows for the integration, and the licence."""

from __future__ import annotations

from pathlib import Path
import struct

import pytest

ROOT = Path(__file__).resolve().parent.parent
BRAND = ROOT / "custom_components/ttn_gateway/brand"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RGBA = 6


def _png_header(path: Path) -> tuple[int, int, int]:
    """Width, height and colour type from a PNG's IHDR chunk."""
    data = path.read_bytes()[:33]
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height, _depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, colour


@pytest.mark.parametrize(("name", "size"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_icons_are_square_transparent_pngs(name: str, size: int) -> None:
    assert _png_header(BRAND / name) == (size, size, RGBA)


@pytest.mark.parametrize(
    ("name", "low", "high"), [("logo.png", 128, 256), ("logo@2x.png", 256, 512)]
)
def test_logos_have_the_shortest_side_in_range(name: str, low: int, high: int) -> None:
    width, height, colour = _png_header(BRAND / name)
    assert colour == RGBA
    assert low <= min(width, height) <= high


def test_repository_has_a_recognisable_licence() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
