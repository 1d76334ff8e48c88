"""A person's view: log in with Chromium, open the integration and a gateway."""

from __future__ import annotations

from pathlib import Path
import shutil

import pytest

from tts_simulator.stack import OWNER_PASSWORD, OWNER_USERNAME, HomeAssistantClient

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """Debian's chromium; Playwright never downloads a browser here."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("chromium is not installed (.ci/run installs it with apt-get)")
    return path


async def test_integration_and_device_pages(
    hass_client: HomeAssistantClient, screenshot_dir: Path
) -> None:
    from playwright.async_api import async_playwright

    executable = chromium()
    entry_id = next(
        entry["entry_id"]
        for entry in await hass_client.config_entries()
        if entry["domain"] == "ttn_gateway"
    )
    (devices,) = await hass_client.websocket({"type": "config/device_registry/list"})
    rooftop = next(
        device
        for device in devices
        if entry_id in device["config_entries"] and device["name"] == "Rooftop gateway"
    )
    screenshot_dir.mkdir(parents=True, exist_ok=True)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_FLAGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            await page.goto(f"{hass_client.base_url}/")
            await page.get_by_label("Username").fill(OWNER_USERNAME)
            await page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url("**/lovelace/**", timeout=60_000)

            await page.goto(
                f"{hass_client.base_url}/config/integrations/integration/ttn_gateway"
            )
            await page.get_by_text("5 devices").first.wait_for(timeout=30_000)
            await page.wait_for_timeout(1500)
            await page.screenshot(path=screenshot_dir / "integration.png")

            await page.goto(
                f"{hass_client.base_url}/config/devices/device/{rooftop['id']}"
            )
            await page.get_by_text("Connectivity").first.wait_for(timeout=30_000)
            await page.get_by_text("Uplinks").first.wait_for(timeout=30_000)
            await page.wait_for_timeout(1500)
            await page.screenshot(path=screenshot_dir / "gateway-device.png")
        finally:
            await browser.close()

    for name in ("integration.png", "gateway-device.png"):
        assert (screenshot_dir / name).stat().st_size > 10_000
