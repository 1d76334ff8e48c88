"""A person's view in Chromium: the integration, a gateway and an end device."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
import re
import shutil
import time
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

from tts_simulator.stack import OWNER_PASSWORD, OWNER_USERNAME, HomeAssistantClient

from .conftest import (
    END_DEVICES,
    GATEWAYS,
    Stack,
    object_id,
    simulator,
    wait_for_entry_devices,
)

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


# The page's text, also inside the frontend's shadow roots (innerText skips them).
VISIBLE_TEXT = """() => {
  const parts = [];
  const walk = (node) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE && child.textContent.trim()) {
        parts.push(child.textContent.trim());
      }
      walk(child);
    }
    if (node.shadowRoot) walk(node.shadowRoot);
  };
  walk(document.body);
  return parts.join(" | ");
}"""


def _on_a_panel(url: str) -> bool:
    """Whether the frontend shows a panel: past the login and its callback."""
    parsed = urlparse(url)
    return "auth_callback" not in parsed.query and not parsed.path.startswith("/auth")


async def show(
    page: Page, url: str, *ready: Callable[[Page], Locator], attempts: int = 2
) -> None:
    """Open a frontend page and wait until each `ready` locator is visible.

    A page whose frontend never finished loading is opened again once; if it
    still lacks what the test looks for, the failure quotes what it shows.
    """
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    for attempt in range(1, attempts + 1):
        await page.goto(url)
        try:
            for locator in ready:
                await locator(page).first.wait_for(timeout=30_000)
        except PlaywrightTimeoutError:
            if attempt == attempts:
                shown = await page.evaluate(VISIBLE_TEXT)
                raise AssertionError(
                    f"{url} did not show what was awaited; it shows: {shown[:2000]!r}"
                ) from None
        else:
            return


async def test_integration_and_device_pages(
    hass_client: HomeAssistantClient, screenshot_dir: Path
) -> None:
    from playwright.async_api import async_playwright

    executable = chromium()
    _entry_id, found = await wait_for_entry_devices(hass_client)
    rooftop = found.gateways["rooftop-gateway"]
    feather = found.end_devices["feather-m0"]
    soil = found.end_devices["soil-sensor"]
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
            # Logged in: past the login page and its callback (2025.4 then opens
            # /lovelace/0, current releases their home panel at /).
            await page.wait_for_url(_on_a_panel, timeout=60_000)

            # Every gateway and every end device is a device of the entry (the
            # account's own device counts as a service).
            devices_text = f"{GATEWAYS + len(END_DEVICES)} devices"
            await show(
                page,
                f"{hass_client.base_url}/config/integrations/integration/ttn_gateway",
                lambda page: page.get_by_text(devices_text),
            )
            await page.wait_for_timeout(1500)
            await page.screenshot(path=screenshot_dir / "integration.png")

            await show(
                page,
                f"{hass_client.base_url}/config/devices/device/{rooftop['id']}",
                lambda page: page.get_by_text("Connectivity"),
                lambda page: page.get_by_text("Uplinks"),
            )
            await page.wait_for_timeout(1500)
            await page.screenshot(path=screenshot_dir / "gateway-device.png")

            await show(
                page,
                f"{hass_client.base_url}/config/devices/device/{feather['id']}",
                lambda page: page.get_by_text("Silent"),
                lambda page: page.get_by_text("Value"),
                lambda page: page.get_by_text("Last seen"),
            )
            await page.wait_for_timeout(1500)
            await page.screenshot(path=screenshot_dir / "end-device.png")

            # The soil sensor, within reach of one gateway only: its coverage.
            await show(
                page,
                f"{hass_client.base_url}/config/devices/device/{soil['id']}",
                *(
                    lambda page, text=text: page.get_by_text(text)
                    for text in ("Gateways in reach", "No fallback gateway", "Problem")
                ),
            )
            await page.wait_for_timeout(1500)
            await page.screenshot(path=screenshot_dir / "end-device-coverage.png")
        finally:
            await browser.close()

    for name in (
        "integration.png",
        "gateway-device.png",
        "end-device.png",
        "end-device-coverage.png",
    ):
        assert (screenshot_dir / name).stat().st_size > 10_000


async def test_end_device_on_the_map(
    stack: Stack, hass_client: HomeAssistantClient, screenshot_dir: Path
) -> None:
    """The soil sensor's position from TTS is a device tracker on the map.

    So are the simulated gateways' antennas, all but the spare gateway's
    (which has none), at the coordinates of their registry entries.
    """
    from playwright.async_api import async_playwright

    executable = chromium()
    await wait_for_entry_devices(hass_client)
    entity_id = f"device_tracker.{object_id('soil-sensor')}"
    deadline = time.monotonic() + 60
    while True:
        trackers = {
            tracker_id: state
            for tracker_id, state in (await hass_client.states()).items()
            if tracker_id.startswith("device_tracker.")
            and state["attributes"].get("latitude") is not None
        }
        if entity_id in trackers:
            break
        assert time.monotonic() < deadline, "no device tracker with a position"
        await asyncio.sleep(0.5)
    tracker = trackers[entity_id]
    assert "device_tracker.rooftop_gateway" in trackers
    assert "device_tracker.spare_gateway" not in trackers
    # Every gateway with an antenna location in the registry is on the map there.
    placed = {
        f"device_tracker.{re.sub(r'[^a-z0-9]+', '_', gateway['name'].lower())}": (
            gateway["latitude"],
            gateway["longitude"],
        )
        for gateway in (await simulator(stack, "GET", "/sim/state"))["gateways"]
        if gateway["latitude"] is not None
    }
    assert "device_tracker.rooftop_gateway" in placed
    assert {
        tracker_id: (state["attributes"]["latitude"], state["attributes"]["longitude"])
        for tracker_id, state in trackers.items()
        if tracker_id != entity_id
    } == placed
    assert tracker["attributes"]["source_type"] == "gps"
    assert (tracker["attributes"]["latitude"], tracker["attributes"]["longitude"]) == (
        52.0907,
        5.1214,
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
            await page.wait_for_url(_on_a_panel, timeout=60_000)
            # Current releases open the map on its People tab.
            await show(
                page,
                f"{hass_client.base_url}/map",
                lambda page: page.get_by_role("tab", name="Devices"),
            )
            await page.get_by_role("tab", name="Devices").first.click(timeout=30_000)
            # The list beside the map names it; the marker shows its initials.
            await page.get_by_text("Soil sensor").first.wait_for(timeout=30_000)
            await page.wait_for_timeout(3000)
            await page.screenshot(path=screenshot_dir / "map.png")
        finally:
            await browser.close()
    assert (screenshot_dir / "map.png").stat().st_size > 10_000
