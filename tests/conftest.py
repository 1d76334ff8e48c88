"""Fixtures for the TTN Gateway tests."""

from __future__ import annotations

from collections.abc import Generator
from unittest.mock import patch

from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from hypothesis import settings
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
from syrupy.assertion import SnapshotAssertion

# Import the project's package first so HA's loader finds it, not the harness's.
import custom_components.ttn_gateway  # noqa: F401
from custom_components.ttn_gateway.const import CONF_SERVER, DOMAIN

from .event_feed import EventFeed
from .fake_tts import API_KEY, SERVER_URL, FakeTTS

# No time limit per example: ./scripts/test runs the unit tests beside other
# gates, where an example may wait for a core longer than hypothesis's 200 ms.
settings.register_profile("unit-tests", deadline=None)
settings.load_profile("unit-tests")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Load the integration from custom_components, where a test has a hass.

    Tests of the client, the simulator and the decoders start no Home
    Assistant: requesting its fixture for them would start one each.
    """
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots with HA's serialisers."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create entities that are disabled by default as enabled."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
    ):
        yield


@pytest.fixture
def fake_tts(aioclient_mock: AiohttpClientMocker) -> FakeTTS:
    """A TTS account with four gateways: connected, disconnected, never, LBS."""
    return FakeTTS(aioclient_mock)


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """A config entry of the jdoe account on TTN eu1."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id="01JTTNGATEWAYTESTENTRY0001",
        version=2,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> MockConfigEntry:
    """Set up the integration against the fake TTS."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry


@pytest.fixture
def event_feed(fake_tts: FakeTTS) -> EventFeed:
    """Give the fake TTS an events API whose streams the test writes."""
    feed = EventFeed()
    fake_tts.events = feed
    return feed
