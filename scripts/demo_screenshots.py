#!/usr/bin/env python3
"""Take the README's screenshots of a running ``./scripts/demo`` with Chromium.

Run it with the Python that has Playwright (requirements_e2e_newest.txt) while
the demo runs, once per Home Assistant version:

    ./scripts/demo                 # Home Assistant 2025.4.4
    .venv-newest/bin/python scripts/demo_screenshots.py --suffix=-2025.4
    ./scripts/demo --newest        # the newest Home Assistant
    .venv-newest/bin/python scripts/demo_screenshots.py

Each page is saved as ``docs/screenshots/<page><suffix>.png``: the integration
page (and the account's menu where *Add application* is in it, 2025.4), a
gateway's device page, the Feather M0's and the soil sensor's (its coverage).
The map's comes from the end-to-end tests (``tests_e2e/test_browser.py``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
import shutil
import sys
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "simulator"))

from tts_simulator.stack import (  # noqa: E402
    OWNER_PASSWORD,
    OWNER_USERNAME,
    HomeAssistantClient,
)

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}
# The first account's devices, by the end of their registry identifier.
DEVICES = {
    "gateway-device": "/gateway/rooftop-gateway",
    "end-device": "/device/home-sensors/feather-m0",
    "end-device-coverage": "/device/home-sensors/soil-sensor",
}
SETTLE_MS = 2000


async def _device_ids(client: HomeAssistantClient) -> dict[str, str]:
    """The device registry IDs of DEVICES, on the self-hosted account."""
    (devices,) = await client.websocket({"type": "config/device_registry/list"})
    found: dict[str, str] = {}
    for device in devices:
        for _domain, identifier in device["identifiers"]:
            for page, ending in DEVICES.items():
                if identifier.endswith(ending) and "@127.0.0.1" in identifier:
                    found[page] = device["id"]
    missing = set(DEVICES) - set(found)
    if missing:
        raise SystemExit(f"error: no device yet for {sorted(missing)}; try again")
    return found


async def _open_entry_menu(page: Any) -> bool:
    """Open the first account's menu if *Add application* is in it (2025.4)."""
    add = page.get_by_text("Add application", exact=True)
    if await add.first.is_visible():
        return False  # a button of the page, in newer releases
    await page.locator("ha-md-button-menu").first.click()
    await page.wait_for_timeout(800)
    return bool(await add.filter(visible=True).count())


async def take(port: int, suffix: str, chromium: str) -> list[Path]:
    """Log in, open each page and save it; the files written."""
    from playwright.async_api import async_playwright

    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        client = HomeAssistantClient(session, port)
        await client.onboard_or_login()
        devices = await _device_ids(client)
    written: list[Path] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--headless", "--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport=VIEWPORT)
            await page.goto(f"{base}/")
            await page.get_by_label("Username").fill(OWNER_USERNAME)
            await page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url(lambda url: "auth" not in url, timeout=60_000)

            async def capture(name: str, *texts: str) -> None:
                for text in texts:
                    await page.get_by_text(text).first.wait_for(timeout=60_000)
                await page.wait_for_timeout(SETTLE_MS)
                path = SCREENSHOTS / f"{name}{suffix}.png"
                await page.screenshot(path=path)
                written.append(path)

            await page.goto(f"{base}/config/integrations/integration/ttn_gateway")
            await capture("integration", "demo (127.0.0.1")
            if await _open_entry_menu(page):
                await capture("add-application", "Add application")
            for name, texts in {
                "gateway-device": ("Connectivity", "Uplinks"),
                "end-device": ("Value",),
                "end-device-coverage": ("Gateways in reach", "No fallback gateway"),
            }.items():
                await page.goto(f"{base}/config/devices/device/{devices[name]}")
                await capture(name, *texts)
        finally:
            await browser.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant")
    parser.add_argument(
        "--suffix", default="", help="added to each file name, e.g. -2025.4"
    )
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    for path in asyncio.run(take(args.port, args.suffix, chromium)):
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
