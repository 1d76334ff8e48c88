"""What ``./scripts/demo`` sets up in Home Assistant, as a user does in the browser.

The first account is the simulator as a self-hosted stack; its application
connects straight to the application's MQTT server. A second account shows
what only The Things Network has, fair use: the same simulator as TTN's
``eu1`` cluster (``cluster.py``), whose application's uplinks come through
Home Assistant's MQTT integration, logged in on that MQTT server as a TTN
user would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp

from .app_broker import mqtt_username
from .cluster import TTN_CLUSTER_HOSTS
from .stack import (
    DOMAIN,
    LOCALHOST,
    OWNER_USERNAME,
    HomeAssistantClient,
    StackError,
    form_value,
)

# The simulator's application, on the TTN tenant as the simulator serves it.
APPLICATION_ID = "home-sensors"
APPLICATION_USERNAME = mqtt_username(APPLICATION_ID, "ttn")
# The second account: TTN's eu1 cluster as the config flow's list names it,
# and the title the flow gives it ("owner (host)"; the simulator's user).
TTN_CLUSTER = "eu1"
TTN_ACCOUNT_TITLE = f"{OWNER_USERNAME} ({TTN_CLUSTER_HOSTS[0]})"
# Its application's uplinks on the MQTT server (TTS docs, integrations/mqtt:
# v3/{application id}@{tenant id}/devices/{device id}/up).
TTN_UPLINK_TOPIC = f"v3/{APPLICATION_USERNAME}/devices/+/up"
# The fair use sensors are diagnostics, disabled by default; the demo turns
# them on once, as a user does (end_device_fair_use.py).
FAIR_USE_SENSORS = ("airtime_today", "downlinks_today")
FAIR_USE_WAIT_SECONDS = 90.0

# How long the first run watches for onboarding's own integrations, and how
# many quiet checks in a row end the watch once some were removed.
ONBOARDING_SETTLE_SECONDS = 15.0
ONBOARDING_POLL_SECONDS = 0.5
QUIET_CHECKS = 4


async def _remove_onboarding_extras(client: HomeAssistantClient) -> None:
    """Remove what onboarding adds (Met.no, Radio Browser, ...) as it appears.

    Onboarding starts those config flows as background tasks, so their
    entries can appear after the demo's first clean-up; without network they
    would show as "Failed setup" cards. Watch the entries for a while after
    onboarding and delete each as it appears.
    """
    deadline = time.monotonic() + ONBOARDING_SETTLE_SECONDS
    removed_any = False
    quiet = 0
    while time.monotonic() < deadline and not (removed_any and quiet >= QUIET_CHECKS):
        if await client.remove_onboarding_extras():
            removed_any, quiet = True, 0
        else:
            quiet += 1
        await asyncio.sleep(ONBOARDING_POLL_SECONDS)


async def _add_application(
    client: HomeAssistantClient, entry_id: str, steps: list[dict[str, Any]]
) -> str:
    """Add the application sub-entry unless there is one; what happened, in words.

    An integration without application sub-entries leaves the demo running
    without them.
    """
    with contextlib.suppress(StackError):  # HA or integration without sub-entries
        (subentries,) = await client.websocket(
            {"type": "config_entries/subentries/list", "entry_id": entry_id}
        )
        if any(item["subentry_type"] == "application" for item in subentries):
            return "already added"
    try:
        await client.add_subentry(entry_id, "application", steps)
    except StackError as err:
        return f"not added (the integration did not take it: {err})"
    return "added"


def _application_steps(application_key: str, transport: str) -> list[dict[str, Any]]:
    """The application's forms: its ID and key, then where its uplinks come from."""
    return [
        {
            "application_id": APPLICATION_ID,
            "api_key": application_key,
            "transport": transport,
        }
    ]


async def _enable_fair_use_sensors(client: HomeAssistantClient, entry_id: str) -> int:
    """Turn on the account's fair use sensors once they exist; how many."""
    deadline = time.monotonic() + FAIR_USE_WAIT_SECONDS
    while True:
        (entities,) = await client.websocket({"type": "config/entity_registry/list"})
        found = [
            entity
            for entity in entities
            if entity["config_entry_id"] == entry_id
            and entity["translation_key"] in FAIR_USE_SENSORS
        ]
        if found or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    for entity in found:
        if entity["disabled_by"] == "integration":
            await client.websocket(
                {
                    "type": "config/entity_registry/update",
                    "entity_id": entity["entity_id"],
                    "disabled_by": None,
                }
            )
    return len(found)


# Config entry states of a set-up that has not ended (ConfigEntryState), and
# those that may still end loaded (a retry).
SETTING_UP = ("not_loaded", "setup_in_progress")
PENDING = (*SETTING_UP, "setup_retry")
SETTLE_SECONDS = 120.0


async def _set_account_disabled(
    client: HomeAssistantClient, entry_id: str, disabled: bool
) -> None:
    """Unload (disable) or load (enable) an account, as its menu does.

    Not while Home Assistant still sets it up: its platforms would not unload.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    while disabled and time.monotonic() < deadline:
        entries = await client.config_entries()
        if not any(
            entry["entry_id"] == entry_id and entry["state"] in SETTING_UP
            for entry in entries
        ):
            break
        await asyncio.sleep(0.5)
    await client.websocket(
        {
            "type": "config_entries/disable",
            "entry_id": entry_id,
            "disabled_by": "user" if disabled else None,
        }
    )


def _direct_settings(mqtt_port: int) -> dict[str, Any]:
    """The direct connection's form: the application's MQTT server of this run."""
    return {
        "mqtt_host": LOCALHOST,
        "mqtt_port": mqtt_port,
        "mqtt_username": APPLICATION_USERNAME,
        "mqtt_tls": False,
    }


def _shows(flow: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the form already shows these values (the current settings)."""
    return all(form_value(flow, name) == value for name, value in wanted.items())


async def _reconfigure(
    client: HomeAssistantClient,
    kind: str,
    flow: dict[str, Any],
    user_input: dict[str, Any],
) -> None:
    """Submit a reconfigure form; StackError unless the flow saved it."""
    result = await client.flow_step(kind, flow, user_input)
    if result["type"] != "abort" or result.get("reason") != "reconfigure_successful":
        raise StackError(f"reconfigure of {flow.get('handler')} not saved: {result}")


async def _follow_simulator(
    client: HomeAssistantClient, entry_id: str, simulator_url: str, key: str
) -> bool:
    """Point the self-hosted account at this run's simulator; whether it moved.

    As a user does: its Reconfigure form shows the server it uses, changed
    only when that is not this run's.
    """
    flow = await client.start_flow("flow", {"handler": DOMAIN, "entry_id": entry_id})
    if _shows(flow, {"server": simulator_url}):
        await client.abort_flow("flow", flow)
        return False
    await _reconfigure(client, "flow", flow, {"server": simulator_url, "api_key": key})
    return True


async def _follow_app_broker(
    client: HomeAssistantClient,
    entry_id: str,
    application_key: str,
    mqtt_port: int,
    moved: bool,
) -> bool:
    """Reconnect the application's direct connection on this run's port; whether.

    Its Reconfigure form asks for the key again and then shows the current
    MQTT settings. After the account `moved`, the key is checked on the new
    server and saved with it even when the settings are the same.
    """
    (subentries,) = await client.websocket(
        {"type": "config_entries/subentries/list", "entry_id": entry_id}
    )
    subentry_id = next(
        (
            item["subentry_id"]
            for item in subentries
            if item["subentry_type"] == "application"
        ),
        None,
    )
    if subentry_id is None:
        return False
    kind = "subentries/flow"
    flow = await client.start_flow(
        kind, {"handler": [entry_id, "application"], "subentry_id": subentry_id}
    )
    flow = await client.flow_step(
        kind, flow, _application_steps(application_key, "direct")[0]
    )
    if flow["type"] != "form" or flow.get("step_id") != "direct":
        raise StackError(f"application reconfigure: expected the direct form: {flow}")
    wanted = _direct_settings(mqtt_port)
    if not moved and _shows(flow, wanted):
        await client.abort_flow(kind, flow)
        return False
    await _reconfigure(client, kind, flow, wanted)
    return True


async def _use_mqtt_server(
    client: HomeAssistantClient, mqtt_port: int, application_key: str
) -> bool:
    """Home Assistant's MQTT integration on the application's MQTT server; whether changed.

    It logs in as the application (TTS's login: ``app@tenant`` and an API
    key). An entry on another port is reconfigured, as its Reconfigure form
    does, with the TTN account unloaded meanwhile so that it subscribes on
    the new connection.
    """
    entries = await client.config_entries()
    mqtt_entry = next(
        (entry["entry_id"] for entry in entries if entry["domain"] == "mqtt"), None
    )
    broker = {"broker": LOCALHOST, "port": mqtt_port}
    flow: dict[str, Any] | None = None
    if mqtt_entry is not None:
        flow = await client.start_flow(
            "flow", {"handler": "mqtt", "entry_id": mqtt_entry}
        )
        if _shows(flow, broker):
            await client.abort_flow("flow", flow)
            return False
    account = next(
        (
            entry["entry_id"]
            for entry in entries
            if entry["domain"] == DOMAIN
            and entry["title"] == TTN_ACCOUNT_TITLE
            and entry["disabled_by"] is None
        ),
        None,
    )
    if account is not None:
        await _set_account_disabled(client, account, True)
    login = {**broker, "username": APPLICATION_USERNAME, "password": application_key}
    if flow is None:
        await client.add_entry("mqtt", login)
    else:
        await _reconfigure(client, "flow", flow, login)
    if account is not None:
        await _set_account_disabled(client, account, False)
    return True


async def _add_ttn_account(
    client: HomeAssistantClient, key: str, application_key: str
) -> str:
    """The account on the simulated eu1 cluster and its application; what happened."""
    entry_id = next(
        (
            entry["entry_id"]
            for entry in await client.config_entries()
            if entry["domain"] == DOMAIN and entry["title"] == TTN_ACCOUNT_TITLE
        ),
        None,
    )
    account = "already added"
    if entry_id is None:
        try:
            result = await client.add_entry(
                DOMAIN, {"server": TTN_CLUSTER, "api_key": key}
            )
        except StackError as err:
            return f"{TTN_ACCOUNT_TITLE} not added: {err}"
        entry_id, account = result["result"]["entry_id"], "added"
    steps = [
        *_application_steps(application_key, "mqtt"),
        {"uplink_topic": TTN_UPLINK_TOPIC},
    ]
    application = await _add_application(client, entry_id, steps)
    done = f"{TTN_ACCOUNT_TITLE} {account}, its application {application}"
    if application == "added":
        enabled = await _enable_fair_use_sensors(client, entry_id)
        done += f", {enabled} fair use sensors turned on"
    return done


async def set_up(
    port: int,
    mqtt_port: int,
    simulator_url: str,
    key: str,
    application_key: str,
) -> tuple[bool, list[str]]:
    """Onboard or log in, add what is missing; whether onboarded now, what was done."""
    async with aiohttp.ClientSession() as session:
        client = HomeAssistantClient(session, port)
        onboarded = await client.onboard_or_login()
        await client.ensure_entries(None, simulator_url, key)
        # The self-hosted account (the first one added): its application
        # connects straight to the MQTT server, whose address it asks for.
        entry_id = next(
            entry["entry_id"]
            for entry in await client.config_entries()
            if entry["domain"] == DOMAIN and entry["title"] != TTN_ACCOUNT_TITLE
        )
        done: list[str] = []
        moved = await _follow_simulator(client, entry_id, simulator_url, key)
        if moved:
            done.append(f"account moved to {simulator_url}")
        steps = [
            *_application_steps(application_key, "direct"),
            _direct_settings(mqtt_port),
        ]
        application = await _add_application(client, entry_id, steps)
        if application == "already added" and await _follow_app_broker(
            client, entry_id, application_key, mqtt_port, moved
        ):
            application = f"moved to port {mqtt_port}"
        done.append(f"application {application}")
        if await _use_mqtt_server(client, mqtt_port, application_key):
            done.append(f"Home Assistant's MQTT integration on port {mqtt_port}")
        ttn_account = await _add_ttn_account(client, key, application_key)
        if onboarded:
            await _remove_onboarding_extras(client)
        return onboarded, [*done, ttn_account]


def not_loaded(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The enabled config entries that are not loaded."""
    return [
        entry
        for entry in entries
        if entry["disabled_by"] is None and entry["state"] != "loaded"
    ]


def describe(entry: dict[str, Any]) -> str:
    """An entry that is not loaded, as its card says it."""
    reason = f": {entry['reason']}" if entry.get("reason") else ""
    return f"{entry['title']} ({entry['domain']}) {entry['state']}{reason}"


async def wait_until_loaded(port: int, seconds: float = SETTLE_SECONDS) -> list[str]:
    """Wait until every enabled config entry is loaded; those that are not, in words.

    Stops early when none of the others can still load (a set-up error).
    """
    async with aiohttp.ClientSession() as session:
        client = HomeAssistantClient(session, port)
        await client.onboard_or_login()
        deadline = time.monotonic() + seconds
        while True:
            missing = not_loaded(await client.config_entries())
            pending = any(entry["state"] in PENDING for entry in missing)
            if not pending or time.monotonic() > deadline:
                return [describe(entry) for entry in missing]
            await asyncio.sleep(1)
