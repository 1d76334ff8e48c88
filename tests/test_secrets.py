"""Secret hygiene: the API key shows nowhere a user, a log or a bug report sees."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import logging
import traceback

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.json import json_dumps
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ttn_gateway.const import (
    CONF_APPLICATION_ID,
    CONF_RIGHTS,
    CONF_SERVER,
    CONF_TRANSPORT,
    DOMAIN,
    SUBENTRY_APPLICATION,
    TRANSPORT_DIRECT,
)
from custom_components.ttn_gateway.diagnostics import (
    async_get_config_entry_diagnostics,
)

from .event_feed import EventFeed, start_line
from .fake_app_mqtt import serving
from .fake_tts import (
    API_KEY,
    API_KEY_SECRET,
    FORBIDDEN,
    GATEWAY_ROOFTOP,
    GATEWAY_STATION,
    SERVER_URL,
    FakeTTS,
    listed_gateway,
)
from .fault_cases import TRANSIENT_FAULTS, assert_handled, poll

NEW_KEY = (
    "NNSXS.NEWKEYIDNEWKEYIDNEWKEYIDNEWKEYIDNEWKEY."
    "NEWSECRETNEWSECRETNEWSECRETNEWSECRETNEWSECRETNEWSECR"
)
NEW_KEY_SECRET = NEW_KEY.rsplit(".", 1)[1]
SECRETS = (API_KEY, API_KEY_SECRET, NEW_KEY, NEW_KEY_SECRET)
APP_KEY = (
    "NNSXS.APPLICATIONKEYIDAPPLICATIONKEYIDAPPLICA."
    "APPSECRETAPPSECRETAPPSECRETAPPSECRETAPPSECRETAPPSEC"
)
APP_KEY_SECRET = APP_KEY.rsplit(".", 1)[1]


class Exposure:
    """Everything the integration showed, as text, gathered along the way."""

    def __init__(self, hass: HomeAssistant, entry: MockConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.texts: dict[str, list[str]] = {
            "exception": [],
            "entry reason": [],
            "attributes": [],
            "repair issue": [],
            "diagnostics": [],
            "flow": [],
        }
        self.exceptions_seen = 0

    def look(self) -> None:
        """Record the current exception, entry reason, attributes and issues."""
        if self.entry.state is ConfigEntryState.LOADED:
            error = self.entry.runtime_data.coordinator.last_exception
            if error is not None:
                self.exceptions_seen += 1
                self.texts["exception"].append(
                    "".join(traceback.format_exception(error)) + repr(error)
                )
                if isinstance(error, HomeAssistantError):
                    self.texts["exception"].append(str(error.translation_placeholders))
        self.texts["entry reason"].append(str(self.entry.reason))
        for state in self.hass.states.async_all():
            self.texts["attributes"].append(f"{state.state} {state.attributes}")
        for issue in ir.async_get(self.hass).issues.values():
            if issue.domain == DOMAIN:
                self.texts["repair issue"].append(
                    f"{issue.issue_id} {issue.translation_placeholders}"
                )

    def assert_clean(self, caplog: pytest.LogCaptureFixture) -> None:
        """No secret in anything gathered, nor in any log record."""
        formatter = logging.Formatter()
        logs = []
        for record in caplog.records:
            logs.append(record.getMessage())
            if record.exc_info:
                logs.append(formatter.formatException(record.exc_info))
            if record.stack_info:
                logs.append(record.stack_info)
        self.texts["log"] = logs
        for where, texts in self.texts.items():
            joined = "\n".join(texts)
            for secret in SECRETS:
                assert secret not in joined, f"the API key shows in a {where}"


async def test_api_key_never_shows(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Setup, polls, every fault, reauth, diagnostics and unload, at DEBUG."""
    caplog.set_level(logging.DEBUG)
    seen = Exposure(hass, mock_config_entry)

    async def diagnostics() -> None:
        # Called directly: HA's download view cannot run under frozen time.
        dump = await async_get_config_entry_diagnostics(hass, mock_config_entry)
        seen.texts["diagnostics"].append(json_dumps(dump))

    # Setup with a gateway the key may not read: a repair issue.
    fake_tts.stats[GATEWAY_STATION] = FORBIDDEN
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await poll(hass, freezer)
    seen.look()
    await diagnostics()

    # Every transient fault, each followed by a recovery.
    for fault in TRANSIENT_FAULTS:
        fault.inject(fake_tts, 1)
        await poll(hass, freezer)
        seen.look()
        await poll(hass, freezer)
    # Rate limited, while failing: diagnostics show the last error.
    fake_tts.fail("batch", 429, headers={"X-Rate-Limit-Retry": "100"})
    await poll(hass, freezer)
    seen.look()
    await diagnostics()
    await poll(hass, freezer, seconds=120)
    # Listing right revoked, then restored.
    rights = fake_tts.auth_info["api_key"]["api_key"]["rights"]
    fake_tts.auth_info["api_key"]["api_key"]["rights"] = []
    await poll(hass, freezer)
    seen.look()
    fake_tts.auth_info["api_key"]["api_key"]["rights"] = rights
    # Bad data: wrong types, duplicates, an unreadable entry.
    fake_tts.stats[GATEWAY_ROOFTOP] = {"uplink_count": True, "connected_at": 5}
    fake_tts.gateways = [
        *fake_tts.gateways,
        listed_gateway(GATEWAY_ROOFTOP),
        {"ids": {"gateway_id": 7}},
    ]
    await poll(hass, freezer)
    seen.look()
    assert seen.exceptions_seen >= len(TRANSIENT_FAULTS) + 2

    # The key is revoked: reauth with a new one.
    fake_tts.api_key = NEW_KEY
    await poll(hass, freezer)
    seen.look()
    await diagnostics()
    flows = hass.config_entries.flow.async_progress()
    assert len(flows) == 1
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_API_KEY: API_KEY}
    )
    seen.texts["flow"].append(str(result))
    assert result["type"] is FlowResultType.FORM  # the old key: rejected
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_API_KEY: NEW_KEY}
    )
    seen.texts["flow"].append(str(result))
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    await poll(hass, freezer)
    seen.look()
    await diagnostics()

    # The events stream: healthy, an in-band error, ended, refused, stalled.
    feed = EventFeed()
    fake_tts.events = feed
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    async def tick(seconds: float) -> None:
        # Not waiting for background tasks: the stream's never ends.
        freezer.tick(timedelta(seconds=seconds))
        async_fire_time_changed(hass)
        for _ in range(5):
            await asyncio.sleep(0)
        await hass.async_block_till_done()

    feed.current.send(start_line())
    await tick(1)
    feed.current.send(
        '{"error":{"code":16,"message":"error:pkg/identityserver:api_key_not_found",'
        '"details":[{"namespace":"pkg/identityserver","name":"api_key_not_found"}]}}\n'
    )
    await tick(3)
    feed.current.send(start_line())
    feed.current.close()
    feed.fail(503)
    await tick(10)
    await tick(10)
    await tick(400)
    assert len(feed.requests) >= 3
    seen.look()
    await diagnostics()

    # Revoked again, found at setup this time.
    fake_tts.api_key = API_KEY
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    seen.look()
    fake_tts.api_key = NEW_KEY
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED

    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    seen.look()

    # The run did show what happened, at DEBUG.
    for message in ("HTTP 500", "Timeout", "rate limited", "lacks these rights"):
        assert message in caplog.text
    assert seen.texts["repair issue"]
    assert len(seen.texts["diagnostics"]) == 5
    seen.assert_clean(caplog)
    assert_handled(caplog)


def _project_objects(root: object) -> list[object]:
    """The integration's objects reachable from root through attributes."""
    found: list[object] = []
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            todo.extend(obj.keys())
            todo.extend(obj.values())
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            todo.extend(obj)
            continue
        if not type(obj).__module__.startswith("custom_components.ttn_gateway"):
            continue
        found.append(obj)
        names = list(getattr(obj, "__dict__", {}))
        for klass in type(obj).__mro__:
            names.extend(getattr(klass, "__slots__", ()))
        todo.extend(getattr(obj, name, None) for name in names)
    return found


async def test_no_key_in_the_repr_of_the_runtime_data(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """repr() and str() of everything the loaded entry holds name no key."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=3,
        title="jdoe (eu1.cloud.thethings.network)",
        unique_id="jdoe@eu1.cloud.thethings.network",
        data={CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY},
        subentries_data=[
            ConfigSubentryData(
                data={
                    CONF_APPLICATION_ID: "home-sensors",
                    CONF_API_KEY: APP_KEY,
                    CONF_TRANSPORT: TRANSPORT_DIRECT,
                    CONF_RIGHTS: ["RIGHT_APPLICATION_TRAFFIC_READ"],
                },
                subentry_type=SUBENTRY_APPLICATION,
                title="Home sensors",
                unique_id="home-sensors",
            )
        ],
    )
    with serving(APP_KEY) as app_mqtt:
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert app_mqtt.connected
        objects = _project_objects(entry.runtime_data)
        (config,) = entry.runtime_data.end_devices.applications
        assert config.api_key == APP_KEY
        assert config in objects
        assert len(objects) > 10
        for obj in objects:
            for text in (repr(obj), str(obj)):
                for secret in (API_KEY, API_KEY_SECRET, APP_KEY, APP_KEY_SECRET):
                    assert secret not in text, type(obj).__name__
        assert await hass.config_entries.async_unload(entry.entry_id)
