"""Tests of the config flow: user, reauth, reconfigure and options."""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import ANY, patch

import aiohttp
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType, InvalidData
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from yarl import URL

from custom_components.ttn_gateway.config_flow import server_default
from custom_components.ttn_gateway.const import (
    CONF_DECODERS,
    CONF_GATEWAYS,
    CONF_MAX_END_DEVICES,
    CONF_MONITOR_ALL,
    CONF_OFFLINE_THRESHOLD,
    CONF_SCAN_INTERVAL,
    CONF_SERVER,
    CONF_SILENCE_THRESHOLD,
    DOMAIN,
)

from .common import console_labelled
from .compat import device_by_identifier
from .fake_tts import (
    API_KEY,
    GATEWAY_GARDEN,
    GATEWAY_NEVER,
    GATEWAY_ROOFTOP,
    GATEWAY_STATION,
    SERVER_URL,
    FakeTTS,
    load_json,
)

EU1_HOST = "eu1.cloud.thethings.network"
EU1_API = f"{SERVER_URL}/api/v3/"
NAM1_URL = "https://nam1.cloud.thethings.network"
SELF_HOSTED_URL = "http://192.168.1.10:1885"
NEW_KEY = "NNSXS.NEWKEYID4HOMEASSISTANT.NEWSECRETFORTHEHOMEASSISTANTKEY"
EMPTY_PLACEHOLDERS = {"error": "", "rights": "", "owner": ""}
TRANSLATIONS = (
    Path(__file__).parent.parent / "custom_components" / DOMAIN / "translations"
)
PATCH_SETUP = "custom_components.ttn_gateway.async_setup_entry"
PATCH_VALIDATE = "custom_components.ttn_gateway.config_flow.validate_input"


def _set_owner(fake_tts: FakeTTS, container: str, id_field: str, owner: str) -> None:
    fake_tts.auth_info["api_key"]["entity_ids"] = {container: {id_field: owner}}


def _set_rights(fake_tts: FakeTTS, *rights: str) -> None:
    fake_tts.auth_info["api_key"]["api_key"]["rights"] = list(rights)


def _queue_raw(
    fake_tts: FakeTTS, endpoint: str, text: str, content_type: str = "text/html"
) -> None:
    """Answer the next call to an endpoint with a 200 and a non-JSON body."""
    fake_tts.fail(
        endpoint, 200, raw=text.encode(), headers={"Content-Type": content_type}
    )


def _field(result: FlowResult, name: str) -> Any:
    """The schema key of a form field."""
    return next(key for key in result["data_schema"].schema if key == name)


def _selector_options(result: FlowResult, name: str) -> list[dict[str, str]]:
    return result["data_schema"].schema[_field(result, name)].config["options"]


def _suggested(result: FlowResult, name: str) -> Any:
    return (_field(result, name).description or {}).get("suggested_value")


async def _start_gateway_options(hass: HomeAssistant, entry_id: str) -> FlowResult:
    """Open the options and pick the gateways step from the menu."""
    result = await hass.config_entries.options.async_init(entry_id)
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["gateways", "end_devices", "end_device_decoder"]
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "gateways"}
    )


async def _start_user(hass: HomeAssistant) -> FlowResult:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return result


async def _submit_user(
    hass: HomeAssistant, server: str, api_key: str = API_KEY
) -> FlowResult:
    result = await _start_user(hass)
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: server, CONF_API_KEY: api_key}
    )


async def _corrected(
    hass: HomeAssistant, fake_tts: FakeTTS, result: FlowResult, server: str = "eu1"
) -> FlowResult:
    """The user fixes the input (a good key of a good account): an entry is made."""
    assert result["type"] is FlowResultType.FORM
    fake_tts.auth_info = load_json("auth-info.json")
    with patch(PATCH_SETUP, return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_SERVER: server, CONF_API_KEY: API_KEY}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_API_KEY] == API_KEY
    return result


# User step


async def test_user_form(hass: HomeAssistant, fake_tts: FakeTTS) -> None:
    """The first form offers eu1 and has no errors."""
    result = await _start_user(hass)
    assert result["errors"] == {}
    assert result["description_placeholders"] == EMPTY_PLACEHOLDERS
    assert _field(result, CONF_SERVER).default() == "eu1"
    assert _selector_options(result, CONF_SERVER) == ["eu1", "nam1", "au1"]
    assert fake_tts.requests == []


async def test_user_eu1(hass: HomeAssistant, fake_tts: FakeTTS) -> None:
    """A user key on eu1 creates an entry that sets up against TTS."""
    result = await _submit_user(hass, "eu1")

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"jdoe ({EU1_HOST})"
    assert result["data"] == {CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY}
    assert result["options"] == {}
    entry = result["result"]
    assert entry.unique_id == f"jdoe@{EU1_HOST}"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert [name for name, _ in fake_tts.requests][:2] == ["auth_info", "gateways"]


async def test_user_nam1_uses_eu1_registry(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """On nam1 the registry calls go to eu1; the account is identified there."""
    with patch(PATCH_SETUP, return_value=True):
        result = await _submit_user(hass, "nam1")

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "jdoe (nam1.cloud.thethings.network)"
    assert result["data"] == {CONF_SERVER: NAM1_URL, CONF_API_KEY: API_KEY}
    assert result["result"].unique_id == f"jdoe@{EU1_HOST}"
    assert [name for name, _ in fake_tts.requests] == ["auth_info", "gateways"]
    assert all(url.startswith(EU1_API) for _, url in fake_tts.requests)


async def test_user_nam1_same_account_as_eu1(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """An account on eu1 and nam1 is one account: it is added only once."""
    mock_config_entry.add_to_hass(hass)
    result = await _submit_user(hass, "nam1")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("server", "url", "host"),
    [
        (SELF_HOSTED_URL, SELF_HOSTED_URL, "192.168.1.10:1885"),
        ("tts.example.com", "https://tts.example.com", "tts.example.com"),
        (
            "HTTPS://TTS.Example.com/api/v3/",
            "https://tts.example.com",
            "tts.example.com",
        ),
        (
            "https://tts.example.com/console",
            "https://tts.example.com",
            "tts.example.com",
        ),
        ("http://tts.example.com:80", "http://tts.example.com", "tts.example.com"),
        (
            "acme.eu1.cloud.thethings.industries",
            "https://acme.eu1.cloud.thethings.industries",
            "acme.eu1.cloud.thethings.industries",
        ),
    ],
)
async def test_user_other_servers(
    hass: HomeAssistant, fake_tts: FakeTTS, server: str, url: str, host: str
) -> None:
    """Self-hosted URLs and bare hosts are normalised, stored and asked."""
    with patch(PATCH_SETUP, return_value=True):
        result = await _submit_user(hass, server)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"jdoe ({host})"
    assert result["data"] == {CONF_SERVER: url, CONF_API_KEY: API_KEY}
    assert result["result"].unique_id == f"jdoe@{host}"
    assert [name for name, _ in fake_tts.requests] == ["auth_info", "gateways"]
    assert all(
        requested.startswith(f"{url}/api/v3/") for _, requested in fake_tts.requests
    )


@pytest.mark.parametrize(
    "pasted",
    [
        f"  {API_KEY}  ",
        f"Bearer {API_KEY}",
        f" bearer   {API_KEY}\n",
    ],
)
async def test_user_key_cleaned(
    hass: HomeAssistant, fake_tts: FakeTTS, pasted: str
) -> None:
    """Spaces and a Bearer prefix pasted with the key are dropped."""
    with patch(PATCH_SETUP, return_value=True):
        result = await _submit_user(hass, "eu1", pasted)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_API_KEY] == API_KEY


@pytest.mark.parametrize(
    "server",
    [
        "ftp://x",
        "http://host:99999",
        "https://host/some/path",
        "https://user:pass@host",
        "https://host?query=1",
        "https://under_score.example.com",
        "   ",
    ],
)
async def test_user_invalid_url(
    hass: HomeAssistant, fake_tts: FakeTTS, server: str
) -> None:
    """Unusable servers are refused before anything is sent."""
    result = await _submit_user(hass, server)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": "invalid_url"}
    assert fake_tts.requests == []
    await _corrected(hass, fake_tts, result)


@pytest.mark.parametrize(
    "api_key",
    [
        "not-a-key",
        "NNSXS.ONLYTWOPARTS",
        "NNSXS..SECRET",
        "NNSXS.ID.SECRET.EXTRA",
        "Bearer ",
    ],
)
async def test_user_malformed_key(
    hass: HomeAssistant, fake_tts: FakeTTS, api_key: str
) -> None:
    """A key not of the form prefix.id.secret is refused without asking TTS."""
    result = await _submit_user(hass, "eu1", api_key)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_tts.requests == []
    await _corrected(hass, fake_tts, result)


async def test_user_invalid_auth_401(hass: HomeAssistant, fake_tts: FakeTTS) -> None:
    """TTS rejects the key."""
    fake_tts.fail("auth_info", 401)
    result = await _submit_user(hass, "eu1")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_tts.count("gateways") == 0
    await _corrected(hass, fake_tts, result)


async def test_user_invalid_auth_wrong_key(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """A well-formed key that TTS does not know."""
    result = await _submit_user(hass, "eu1", NEW_KEY)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    await _corrected(hass, fake_tts, result)


async def test_user_invalid_auth_400_token(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """TTS answers 400 pkg/auth:token for a key it cannot parse."""
    fake_tts.fail(
        "auth_info",
        400,
        body={
            "code": 3,
            "message": "error:pkg/auth:token (invalid token)",
            "details": [{"namespace": "pkg/auth", "name": "token", "code": 3}],
        },
    )
    result = await _submit_user(hass, "eu1")
    assert result["errors"] == {"base": "invalid_auth"}
    await _corrected(hass, fake_tts, result)


async def test_user_invalid_auth_empty_auth_info(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """auth_info answering {} (an unauthenticated request) names no owner."""
    fake_tts.auth_info = {}
    result = await _submit_user(hass, "eu1")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert result["description_placeholders"] == EMPTY_PLACEHOLDERS
    await _corrected(hass, fake_tts, result)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (500, "TTS answered HTTP 500 for GET /auth_info"),
        (503, "TTS answered HTTP 503 for GET /auth_info"),
        (
            404,
            "Not found: GET /auth_info (pkg/gatewayserver:not_connected)",
        ),
        (
            429,
            "Rate limited by TTS for GET /auth_info; retrying in 60 s",
        ),
        (
            aiohttp.ClientConnectionError(),
            f"Cannot reach {EU1_HOST} for GET /auth_info: ClientConnectionError",
        ),
        (
            TimeoutError(),
            f"Timeout after 20 s waiting for GET /auth_info on {EU1_HOST}",
        ),
    ],
)
async def test_user_cannot_connect(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    fault: int | Exception,
    message: str,
) -> None:
    """Errors reaching TTS are shown with what went wrong."""
    fake_tts.fail("auth_info", fault)
    result = await _submit_user(hass, "eu1")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"] == {
        **EMPTY_PLACEHOLDERS,
        "error": message,
    }
    await _corrected(hass, fake_tts, result)


async def test_user_cannot_connect_malformed_json(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """A server that answers HTML (a login page, a proxy) is not TTS."""
    _queue_raw(fake_tts, "auth_info", "<html><body>Welcome</body></html>")
    result = await _submit_user(hass, "eu1")
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"]["error"] == (
        f"Malformed JSON from {EU1_HOST} for GET /auth_info"
    )
    await _corrected(hass, fake_tts, result)


async def test_user_cannot_connect_json_not_object(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """JSON that is not an object is not a TTS answer."""
    fake_tts.fail("auth_info", 200, body=["jdoe"])
    result = await _submit_user(hass, "eu1")
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"]["error"] == (
        f"Unexpected JSON from {EU1_HOST} for GET /auth_info"
    )
    await _corrected(hass, fake_tts, result)


async def test_user_cannot_connect_listing(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """The gateway listing failing is a connection error too."""
    fake_tts.fail("gateways", 502)
    result = await _submit_user(hass, "eu1")
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"]["error"] == (
        "TTS answered HTTP 502 for GET /gateways"
    )
    await _corrected(hass, fake_tts, result)


@pytest.mark.parametrize(
    ("container", "id_field", "owner"),
    [
        ("gateway_ids", "gateway_id", "gateway"),
        ("application_ids", "application_id", "application"),
        ("device_ids", "device_id", "end_device"),
        ("client_ids", "client_id", "client"),
    ],
)
async def test_user_wrong_key_type(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    container: str,
    id_field: str,
    owner: str,
) -> None:
    """A key of an entity other than a user or organization is refused."""
    _set_owner(fake_tts, container, id_field, "some-entity")
    result = await _submit_user(hass, "eu1")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "wrong_key_type"}
    assert result["description_placeholders"] == {
        **EMPTY_PLACEHOLDERS,
        "owner": owner,
    }
    assert fake_tts.count("gateways") == 0
    await _corrected(hass, fake_tts, result)


@pytest.mark.parametrize(
    ("rights", "missing"),
    [
        (
            ["RIGHT_USER_GATEWAYS_LIST", "RIGHT_GATEWAY_INFO"],
            "RIGHT_GATEWAY_STATUS_READ",
        ),
        (
            ["RIGHT_GATEWAY_INFO", "RIGHT_GATEWAY_STATUS_READ"],
            "RIGHT_USER_GATEWAYS_LIST",
        ),
        (
            ["RIGHT_USER_GATEWAYS_LIST", "RIGHT_GATEWAY_STATUS_READ"],
            "RIGHT_GATEWAY_INFO",
        ),
        (
            [],
            "RIGHT_USER_GATEWAYS_LIST, RIGHT_GATEWAY_INFO, RIGHT_GATEWAY_STATUS_READ",
        ),
        # A user's "all rights" covers listing its gateways, not the gateways.
        (
            ["RIGHT_USER_ALL"],
            "RIGHT_GATEWAY_INFO, RIGHT_GATEWAY_STATUS_READ",
        ),
        # The gateways' "all rights" does not list them.
        (["RIGHT_GATEWAY_ALL"], "RIGHT_USER_GATEWAYS_LIST"),
        # The organization's "all rights" is no user right.
        (
            ["RIGHT_ORGANIZATION_ALL", "RIGHT_GATEWAY_ALL"],
            "RIGHT_USER_GATEWAYS_LIST",
        ),
        # A gateway's link right includes its information, not its status.
        (
            ["RIGHT_USER_GATEWAYS_LIST", "RIGHT_GATEWAY_LINK"],
            "RIGHT_GATEWAY_STATUS_READ",
        ),
    ],
)
async def test_user_missing_rights(
    hass: HomeAssistant, fake_tts: FakeTTS, rights: list[str], missing: str
) -> None:
    """The rights a key lacks are named."""
    _set_rights(fake_tts, *rights)
    result = await _submit_user(hass, "eu1")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "missing_rights"}
    assert result["description_placeholders"] == {
        **EMPTY_PLACEHOLDERS,
        "rights": console_labelled(missing),
    }
    assert fake_tts.count("gateways") == 0
    await _corrected(hass, fake_tts, result)


@pytest.mark.parametrize(
    ("owner", "rights"),
    [
        # "All current and future rights" of the key's owner.
        ("user", ["RIGHT_ALL"]),
        ("user", ["RIGHT_USER_ALL", "RIGHT_GATEWAY_ALL"]),
        ("organization", ["RIGHT_ORGANIZATION_ALL", "RIGHT_GATEWAY_ALL"]),
        ("organization", ["RIGHT_ALL"]),
        # The link right includes the gateway information.
        (
            "user",
            [
                "RIGHT_USER_GATEWAYS_LIST",
                "RIGHT_GATEWAY_LINK",
                "RIGHT_GATEWAY_STATUS_READ",
            ],
        ),
    ],
)
async def test_user_pseudo_rights_are_enough(
    hass: HomeAssistant, fake_tts: FakeTTS, owner: str, rights: list[str]
) -> None:
    """A key with "all rights" pseudo-rights is not told it lacks rights."""
    if owner == "organization":
        _set_owner(fake_tts, "organization_ids", "organization_id", "acme")
    _set_rights(fake_tts, *rights)
    with patch(PATCH_SETUP, return_value=True):
        result = await _submit_user(hass, "eu1")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == (
        f"acme@{EU1_HOST}" if owner == "organization" else f"jdoe@{EU1_HOST}"
    )


async def test_user_missing_rights_listing_403(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """A 403 of the gateway listing names the rights TTS says are missing."""
    fake_tts.fail("gateways", 403)
    result = await _submit_user(hass, "eu1")
    assert result["errors"] == {"base": "missing_rights"}
    assert result["description_placeholders"]["rights"] == (
        "View gateway status (RIGHT_GATEWAY_STATUS_READ)"
    )
    await _corrected(hass, fake_tts, result)


async def test_user_missing_rights_listing_403_unnamed(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """A 403 that names no right points at the list right."""
    fake_tts.fail("gateways", 403, body=load_json("error-403.json"))
    result = await _submit_user(hass, "eu1")
    assert result["errors"] == {"base": "missing_rights"}
    assert result["description_placeholders"]["rights"] == console_labelled(
        "RIGHT_USER_GATEWAYS_LIST"
    )
    await _corrected(hass, fake_tts, result)


async def test_user_unknown_error(hass: HomeAssistant, fake_tts: FakeTTS) -> None:
    """An unexpected exception is shown as unknown."""
    with patch(PATCH_VALIDATE, side_effect=RuntimeError("boom")):
        result = await _submit_user(hass, "eu1")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert result["description_placeholders"] == EMPTY_PLACEHOLDERS
    await _corrected(hass, fake_tts, result)


async def test_user_recovers_after_error(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """After an error the form keeps the input and a new attempt succeeds."""
    fake_tts.fail("auth_info", 401)
    result = await _submit_user(hass, "nam1")
    assert result["errors"] == {"base": "invalid_auth"}
    assert _suggested(result, CONF_SERVER) == "nam1"

    with patch(PATCH_SETUP, return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_SERVER: "nam1", CONF_API_KEY: API_KEY}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_SERVER: NAM1_URL, CONF_API_KEY: API_KEY}


async def test_user_recovers_after_placeholder_error(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """A fixed key clears the error and its placeholders."""
    _set_rights(fake_tts, "RIGHT_USER_GATEWAYS_LIST")
    result = await _submit_user(hass, "eu1")
    assert result["errors"] == {"base": "missing_rights"}

    _set_rights(
        fake_tts,
        "RIGHT_USER_GATEWAYS_LIST",
        "RIGHT_GATEWAY_INFO",
        "RIGHT_GATEWAY_STATUS_READ",
    )
    fake_tts.fail("gateways", 500)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: "eu1", CONF_API_KEY: API_KEY}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"]["rights"] == ""

    with patch(PATCH_SETUP, return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_SERVER: "eu1", CONF_API_KEY: API_KEY}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_already_configured(hass: HomeAssistant, fake_tts: FakeTTS) -> None:
    """The same account on the same server is added only once."""
    with patch(PATCH_SETUP, return_value=True):
        first = await _submit_user(hass, "eu1")
    assert first["type"] is FlowResultType.CREATE_ENTRY

    result = await _submit_user(hass, "eu1", f"Bearer {API_KEY}")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_user_same_owner_other_server(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """The same owner ID on a self-hosted server is another account."""
    mock_config_entry.add_to_hass(hass)
    with patch(PATCH_SETUP, return_value=True):
        result = await _submit_user(hass, SELF_HOSTED_URL)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == "jdoe@192.168.1.10:1885"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 2


async def test_user_organization_key(hass: HomeAssistant, fake_tts: FakeTTS) -> None:
    """An organization key with the organization list right works."""
    _set_owner(fake_tts, "organization_ids", "organization_id", "acme")
    _set_rights(
        fake_tts,
        "RIGHT_ORGANIZATION_GATEWAYS_LIST",
        "RIGHT_GATEWAY_INFO",
        "RIGHT_GATEWAY_STATUS_READ",
    )
    result = await _submit_user(hass, "eu1")

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"acme ({EU1_HOST})"
    assert result["data"] == {CONF_SERVER: SERVER_URL, CONF_API_KEY: API_KEY}
    assert result["result"].unique_id == f"acme@{EU1_HOST}"
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


async def test_user_organization_key_without_list_right(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """An organization key needs the organization list right, not the user one."""
    _set_owner(fake_tts, "organization_ids", "organization_id", "acme")
    _set_rights(
        fake_tts,
        "RIGHT_USER_GATEWAYS_LIST",
        "RIGHT_GATEWAY_INFO",
        "RIGHT_GATEWAY_STATUS_READ",
    )
    result = await _submit_user(hass, "eu1")
    assert result["errors"] == {"base": "missing_rights"}
    assert result["description_placeholders"]["rights"] == console_labelled(
        "RIGHT_ORGANIZATION_GATEWAYS_LIST"
    )
    await _corrected(hass, fake_tts, result)


async def test_user_account_in_reauth(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """Adding an account whose reauth is pending says it is configured."""
    mock_config_entry.add_to_hass(hass)
    await mock_config_entry.start_reauth_flow(hass)
    result = await _submit_user(hass, "eu1")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize("language", ["en", "de"])
def test_translations(language: str) -> None:
    """Every error and abort reason of the flows has a text."""
    strings = json.loads(
        (TRANSLATIONS / f"{language}.json").read_text(encoding="utf-8")
    )
    assert set(strings["config"]["error"]) >= {
        "invalid_url",
        "invalid_auth",
        "cannot_connect",
        "wrong_key_type",
        "missing_rights",
        "unknown",
    }
    assert set(strings["config"]["abort"]) >= {
        "already_configured",
        "reauth_successful",
        "reconfigure_successful",
        "wrong_account",
    }
    assert set(strings["options"]["error"]) >= {"no_gateways_selected"}
    assert set(strings["config"]["step"]) >= {"user", "reauth_confirm", "reconfigure"}


# Reauth


async def test_reauth_form(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Reauth asks for a key only and names the account."""
    result = await init_integration.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {}
    assert result["description_placeholders"] == {
        **EMPTY_PLACEHOLDERS,
        "title": f"jdoe ({EU1_HOST})",
        "name": f"jdoe ({EU1_HOST})",
    }
    assert [str(key) for key in result["data_schema"].schema] == [CONF_API_KEY]


async def test_reauth_success(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """A new key of the same account is stored and the entry reloads."""
    coordinator = init_integration.runtime_data.coordinator
    fake_tts.api_key = NEW_KEY
    result = await init_integration.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: f" Bearer {NEW_KEY} "}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert init_integration.data == {CONF_SERVER: SERVER_URL, CONF_API_KEY: NEW_KEY}
    assert init_integration.unique_id == f"jdoe@{EU1_HOST}"

    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.runtime_data.coordinator is not coordinator
    assert init_integration.runtime_data.coordinator.last_update_success


async def test_reauth_wrong_account(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """A key of another user is refused and the entry is left alone."""
    fake_tts.api_key = NEW_KEY
    _set_owner(fake_tts, "user_ids", "user_id", "someone-else")
    result = await init_integration.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: NEW_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert init_integration.data[CONF_API_KEY] == API_KEY


async def test_reauth_invalid_then_success(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """A rejected key shows an error; a good one then finishes reauth."""
    result = await init_integration.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: NEW_KEY}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {"base": "invalid_auth"}
    assert result["description_placeholders"]["title"] == f"jdoe ({EU1_HOST})"

    fake_tts.api_key = NEW_KEY
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: NEW_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert init_integration.data[CONF_API_KEY] == NEW_KEY
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED


async def test_reauth_missing_rights(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Reauth shows the rights a new key lacks."""
    _set_rights(fake_tts, "RIGHT_USER_GATEWAYS_LIST")
    result = await init_integration.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY}
    )
    assert result["errors"] == {"base": "missing_rights"}
    assert result["description_placeholders"] == {
        **EMPTY_PLACEHOLDERS,
        "rights": console_labelled("RIGHT_GATEWAY_INFO, RIGHT_GATEWAY_STATUS_READ"),
        "title": f"jdoe ({EU1_HOST})",
        "name": f"jdoe ({EU1_HOST})",
    }

    # The user ticks the rights in the Console and tries again.
    fake_tts.auth_info = load_json("auth-info.json")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED


async def test_reauth_uses_entry_server(hass: HomeAssistant, fake_tts: FakeTTS) -> None:
    """Reauth of a self-hosted entry asks that server."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="jdoe (192.168.1.10:1885)",
        unique_id="jdoe@192.168.1.10:1885",
        data={CONF_SERVER: SELF_HOSTED_URL, CONF_API_KEY: API_KEY},
    )
    entry.add_to_hass(hass)
    fake_tts.api_key = NEW_KEY
    result = await entry.start_reauth_flow(hass)
    with patch(PATCH_SETUP, return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_API_KEY: NEW_KEY}
        )
        await hass.async_block_till_done()
    assert result["reason"] == "reauth_successful"
    assert entry.data == {CONF_SERVER: SELF_HOSTED_URL, CONF_API_KEY: NEW_KEY}
    assert {URL(url).origin() for _, url in fake_tts.requests} == {URL(SELF_HOSTED_URL)}


# Reconfigure


async def test_reconfigure_form(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Reconfigure shows the server by its short name."""
    result = await init_integration.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {}
    assert result["description_placeholders"] == EMPTY_PLACEHOLDERS
    assert _field(result, CONF_SERVER).default() == "eu1"


async def test_reconfigure_form_custom_url(
    hass: HomeAssistant, fake_tts: FakeTTS
) -> None:
    """Reconfigure shows a self-hosted server by its URL."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="jdoe (192.168.1.10:1885)",
        unique_id="jdoe@192.168.1.10:1885",
        data={CONF_SERVER: SELF_HOSTED_URL, CONF_API_KEY: API_KEY},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert _field(result, CONF_SERVER).default() == SELF_HOSTED_URL


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SERVER_URL, "eu1"),
        (NAM1_URL, "nam1"),
        ("https://au1.cloud.thethings.network", "au1"),
        (
            "https://acme.eu1.cloud.thethings.industries",
            "https://acme.eu1.cloud.thethings.industries",
        ),
        (SELF_HOSTED_URL, SELF_HOSTED_URL),
    ],
)
def test_server_default(url: str, shown: str) -> None:
    """TTN clusters are shown by short name, anything else by URL."""
    assert server_default(url) == shown


async def test_reconfigure_to_self_hosted(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Moving the same account to another server updates id, title and data."""
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: SELF_HOSTED_URL, CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.unique_id == "jdoe@192.168.1.10:1885"
    assert init_integration.title == "jdoe (192.168.1.10:1885)"
    assert init_integration.data == {
        CONF_SERVER: SELF_HOSTED_URL,
        CONF_API_KEY: API_KEY,
    }
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED


async def test_reconfigure_new_key_same_server(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """A new key on the same server keeps the unique id and reloads."""
    coordinator = init_integration.runtime_data.coordinator
    fake_tts.api_key = NEW_KEY
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: "eu1", CONF_API_KEY: NEW_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.unique_id == f"jdoe@{EU1_HOST}"
    assert init_integration.title == f"jdoe ({EU1_HOST})"
    assert init_integration.data == {CONF_SERVER: SERVER_URL, CONF_API_KEY: NEW_KEY}
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.runtime_data.coordinator is not coordinator


async def test_reconfigure_to_nam1(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """eu1 to nam1 is the same account: the unique id stays, the title changes."""
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: "nam1", CONF_API_KEY: API_KEY}
    )
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.unique_id == f"jdoe@{EU1_HOST}"
    assert init_integration.title == "jdoe (nam1.cloud.thethings.network)"
    assert init_integration.data[CONF_SERVER] == NAM1_URL
    await hass.async_block_till_done()


async def test_reconfigure_wrong_account(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """A key of another owner is refused."""
    _set_owner(fake_tts, "user_ids", "user_id", "someone-else")
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: SELF_HOSTED_URL, CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert init_integration.unique_id == f"jdoe@{EU1_HOST}"
    assert init_integration.data[CONF_SERVER] == SERVER_URL


async def test_reconfigure_wrong_account_organization(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """A key of an organization is not the user's account."""
    _set_owner(fake_tts, "organization_ids", "organization_id", "acme")
    _set_rights(
        fake_tts,
        "RIGHT_ORGANIZATION_GATEWAYS_LIST",
        "RIGHT_GATEWAY_INFO",
        "RIGHT_GATEWAY_STATUS_READ",
    )
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: "eu1", CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"


async def test_reconfigure_already_configured(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Moving to a server where the account already has an entry is refused."""
    other = MockConfigEntry(
        domain=DOMAIN,
        title="jdoe (192.168.1.10:1885)",
        unique_id="jdoe@192.168.1.10:1885",
        data={CONF_SERVER: SELF_HOSTED_URL, CONF_API_KEY: API_KEY},
    )
    other.add_to_hass(hass)
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: SELF_HOSTED_URL, CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert init_integration.unique_id == f"jdoe@{EU1_HOST}"
    assert init_integration.data[CONF_SERVER] == SERVER_URL
    assert other.data[CONF_SERVER] == SELF_HOSTED_URL


@pytest.mark.parametrize(
    ("server", "setup", "error", "placeholders"),
    [
        ("ftp://x", None, "invalid_url", {}),
        ("eu1", ("auth_info", 401), "invalid_auth", {}),
        (
            "eu1",
            ("auth_info", 500),
            "cannot_connect",
            {"error": "TTS answered HTTP 500 for GET /auth_info"},
        ),
        (
            "eu1",
            ("gateways", 403),
            "missing_rights",
            {"rights": console_labelled("RIGHT_GATEWAY_STATUS_READ")},
        ),
    ],
)
async def test_reconfigure_errors_then_success(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    server: str,
    setup: tuple[str, int] | None,
    error: str,
    placeholders: dict[str, str],
) -> None:
    """Errors are shown in the reconfigure form, which keeps the input."""
    if setup:
        fake_tts.fail(*setup)
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: server, CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {"base": error}
    assert result["description_placeholders"] == {
        **EMPTY_PLACEHOLDERS,
        **placeholders,
    }
    assert _suggested(result, CONF_SERVER) == server
    assert init_integration.data[CONF_SERVER] == SERVER_URL

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: "eu1", CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED


async def test_reconfigure_unknown_error(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """An unexpected exception is shown as unknown."""
    result = await init_integration.start_reconfigure_flow(hass)
    with patch(PATCH_VALIDATE, side_effect=RuntimeError("boom")):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_SERVER: "eu1", CONF_API_KEY: API_KEY}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: "eu1", CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"


# Options


async def test_options_form(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """The options form defaults to a 60 s poll of every gateway."""
    result = await _start_gateway_options(hass, init_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "gateways"
    assert result["errors"] == {}
    assert _suggested(result, CONF_SCAN_INTERVAL) == 60
    assert _suggested(result, CONF_MONITOR_ALL) is True
    assert _suggested(result, CONF_GATEWAYS) == []
    interval = result["data_schema"].schema[_field(result, CONF_SCAN_INTERVAL)]
    assert interval.config["min"] == 30
    assert interval.config["max"] == 3600
    assert _suggested(result, CONF_SILENCE_THRESHOLD) == 30
    threshold = result["data_schema"].schema[_field(result, CONF_SILENCE_THRESHOLD)]
    assert threshold.config["min"] == 5
    assert threshold.config["max"] == 1440
    assert threshold.config["unit_of_measurement"] == "min"


async def test_options_gateway_labels(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """A loaded entry lists every gateway of the account by name and id."""
    result = await _start_gateway_options(hass, init_integration.entry_id)
    options = _selector_options(result, CONF_GATEWAYS)
    assert {option["value"]: option["label"] for option in options} == {
        GATEWAY_ROOFTOP: f"Rooftop gateway ({GATEWAY_ROOFTOP})",
        GATEWAY_GARDEN: f"Kerlink garden ({GATEWAY_GARDEN})",
        GATEWAY_NEVER: f"Never connected ({GATEWAY_NEVER})",
        GATEWAY_STATION: GATEWAY_STATION,
    }
    selector = result["data_schema"].schema[_field(result, CONF_GATEWAYS)]
    assert selector.config["multiple"] is True


async def test_options_save_and_reload(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Saved options reload the entry; unselected gateways lose their entities."""
    entry = init_integration
    entity_registry = er.async_get(hass)
    device_registry = dr.async_get(hass)

    def gateways_with_entities() -> set[str]:
        return {
            gateway_id
            for gateway_id in (
                GATEWAY_ROOFTOP,
                GATEWAY_GARDEN,
                GATEWAY_NEVER,
                GATEWAY_STATION,
            )
            for entity in er.async_entries_for_config_entry(
                entity_registry, entry.entry_id
            )
            if entity.unique_id.startswith(f"{entry.unique_id}/gateway/{gateway_id}/")
        }

    assert gateways_with_entities() == {
        GATEWAY_ROOFTOP,
        GATEWAY_GARDEN,
        GATEWAY_NEVER,
        GATEWAY_STATION,
    }
    coordinator = entry.runtime_data.coordinator

    result = await _start_gateway_options(hass, entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_SCAN_INTERVAL: 120,
            CONF_MONITOR_ALL: False,
            CONF_GATEWAYS: [GATEWAY_GARDEN, GATEWAY_ROOFTOP],
            CONF_SILENCE_THRESHOLD: 45,
        },
    )
    expected = {
        CONF_SCAN_INTERVAL: 120,
        CONF_MONITOR_ALL: False,
        CONF_GATEWAYS: [GATEWAY_ROOFTOP, GATEWAY_GARDEN],
        CONF_SILENCE_THRESHOLD: 45,
    }
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected
    assert entry.options == expected
    assert isinstance(entry.options[CONF_SCAN_INTERVAL], int)

    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.coordinator is not coordinator
    assert entry.runtime_data.coordinator.update_interval == timedelta(seconds=120)
    assert entry.runtime_data.store.gateway_ids == {GATEWAY_ROOFTOP, GATEWAY_GARDEN}
    assert gateways_with_entities() == {GATEWAY_ROOFTOP, GATEWAY_GARDEN}
    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert {device.name for device in devices} == {
        "Rooftop gateway",
        "Kerlink garden",
        # The account's own device.
        entry.title,
    }

    # The form now shows what was saved.
    result = await _start_gateway_options(hass, entry.entry_id)
    assert _suggested(result, CONF_SCAN_INTERVAL) == 120
    assert _suggested(result, CONF_MONITOR_ALL) is False
    assert _suggested(result, CONF_GATEWAYS) == [GATEWAY_ROOFTOP, GATEWAY_GARDEN]
    assert _suggested(result, CONF_SILENCE_THRESHOLD) == 45
    assert len(_selector_options(result, CONF_GATEWAYS)) == 4
    threshold = hass.states.get("number.rooftop_gateway_silence_threshold")
    assert threshold.state == "45.0"


async def test_options_unchanged_no_reload(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Saving the options as they are does not reload the entry."""
    entry = init_integration
    hass.config_entries.async_update_entry(
        entry,
        options={
            CONF_SCAN_INTERVAL: 60,
            CONF_MONITOR_ALL: True,
            CONF_GATEWAYS: [],
            CONF_SILENCE_THRESHOLD: 30,
        },
    )
    coordinator = entry.runtime_data.coordinator
    result = await _start_gateway_options(hass, entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 60, CONF_MONITOR_ALL: True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.runtime_data.coordinator is coordinator
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize("interval", [29, 3601])
async def test_options_interval_out_of_range(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    interval: int,
) -> None:
    """A poll interval outside 30 s to 1 h is refused by the form."""
    result = await _start_gateway_options(hass, init_integration.entry_id)
    with pytest.raises(InvalidData) as err:
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_SCAN_INTERVAL: interval, CONF_MONITOR_ALL: True}
        )
    assert err.value.schema_errors == {CONF_SCAN_INTERVAL: ANY}
    assert init_integration.options == {}


async def test_options_no_gateways_selected(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """Monitoring no gateway at all is refused on the gateways field."""
    result = await _start_gateway_options(hass, init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 90, CONF_MONITOR_ALL: False}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "gateways"
    assert result["errors"] == {CONF_GATEWAYS: "no_gateways_selected"}
    # The form keeps what was typed.
    assert _suggested(result, CONF_SCAN_INTERVAL) == 90
    assert _suggested(result, CONF_MONITOR_ALL) is False
    assert init_integration.options == {}

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_SCAN_INTERVAL: 90,
            CONF_MONITOR_ALL: False,
            CONF_GATEWAYS: [GATEWAY_STATION],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert init_integration.options[CONF_GATEWAYS] == [GATEWAY_STATION]
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.runtime_data.store.gateway_ids == {GATEWAY_STATION}


async def test_options_entry_not_loaded(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """Without a loaded entry the form lists the selected gateways by id."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            CONF_SCAN_INTERVAL: 300,
            CONF_MONITOR_ALL: False,
            CONF_GATEWAYS: [GATEWAY_ROOFTOP],
        },
    )
    assert mock_config_entry.state is ConfigEntryState.NOT_LOADED

    result = await _start_gateway_options(hass, mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert _selector_options(result, CONF_GATEWAYS) == [
        {"value": GATEWAY_ROOFTOP, "label": GATEWAY_ROOFTOP}
    ]
    assert _suggested(result, CONF_SCAN_INTERVAL) == 300

    with patch(PATCH_SETUP, return_value=True):
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            {CONF_SCAN_INTERVAL: 45, CONF_MONITOR_ALL: True},
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == {
        CONF_SCAN_INTERVAL: 45,
        CONF_MONITOR_ALL: True,
        CONF_GATEWAYS: [],
        CONF_SILENCE_THRESHOLD: 30,
    }


# End-device options


async def _start_end_device_options(hass: HomeAssistant, entry_id: str) -> FlowResult:
    result = await hass.config_entries.options.async_init(entry_id)
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "end_devices"}
    )


def _add_end_device(
    hass: HomeAssistant, entry: MockConfigEntry, application_id: str, device_id: str
) -> None:
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={
            (DOMAIN, f"{entry.unique_id}/device/{application_id}/{device_id}")
        },
        name=device_id,
    )


async def test_end_device_options_form(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """The end-device options are the silence threshold and the cap."""
    _add_end_device(hass, init_integration, "home-sensors", "feather-m0-1")
    result = await _start_end_device_options(hass, init_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "end_devices"
    assert _suggested(result, CONF_OFFLINE_THRESHOLD) is None
    assert _suggested(result, CONF_MAX_END_DEVICES) == 200
    # Devices and applications are not fields of this form (see the decoder
    # step and the application sub-entries).
    assert {str(key) for key in result["data_schema"].schema} == {
        CONF_OFFLINE_THRESHOLD,
        CONF_MAX_END_DEVICES,
    }


async def test_end_device_options_save(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """A threshold and a cap are saved next to the rest; clearing one removes it."""
    entry = init_integration
    hass.config_entries.async_update_entry(entry, options={CONF_SCAN_INTERVAL: 90})
    result = await _start_end_device_options(hass, entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_OFFLINE_THRESHOLD: 45, CONF_MAX_END_DEVICES: 50}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        CONF_SCAN_INTERVAL: 90,
        CONF_OFFLINE_THRESHOLD: 45,
        CONF_MAX_END_DEVICES: 50,
    }
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    result = await _start_end_device_options(hass, entry.entry_id)
    assert _suggested(result, CONF_OFFLINE_THRESHOLD) == 45
    assert _suggested(result, CONF_MAX_END_DEVICES) == 50
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {CONF_SCAN_INTERVAL: 90, CONF_MAX_END_DEVICES: 200}
    await hass.async_block_till_done()


async def _start_decoder_options(hass: HomeAssistant, entry_id: str) -> FlowResult:
    result = await hass.config_entries.options.async_init(entry_id)
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "end_device_decoder"}
    )


async def test_decoder_options_without_end_devices(
    hass: HomeAssistant, fake_tts: FakeTTS, init_integration: MockConfigEntry
) -> None:
    """With no end device yet there is nothing to choose."""
    result = await _start_decoder_options(hass, init_integration.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_end_devices"


async def test_decoder_options_one_device_at_a_time(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A list of known devices; deleted devices' choices are dropped."""
    # End devices known before the start: the migration keeps them in an
    # application of Home Assistant's MQTT.
    entry = mock_config_entry
    entry.add_to_hass(hass)
    _add_end_device(hass, entry, "home-sensors", "feather-m0-1")
    _add_end_device(hass, entry, "home-sensors", "lpp-node")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hass.config_entries.async_update_entry(
        entry, options={CONF_DECODERS: {"old-app/gone-device": "raw"}}
    )
    result = await _start_decoder_options(hass, entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    device = result["data_schema"].schema[_field(result, "device")]
    assert device.config["options"] == [
        "home-sensors/feather-m0-1",
        "home-sensors/lpp-node",
    ]
    decoder = result["data_schema"].schema[_field(result, "decoder")]
    assert decoder.config["options"] == [
        "auto",
        "normalized",
        "feather_m0",
        "cayenne_lpp",
        "payload_formatter",
        "raw",
    ]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"device": "home-sensors/feather-m0-1", "decoder": "raw"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_DECODERS] == {"home-sensors/feather-m0-1": "raw"}
    await hass.async_block_till_done()

    # Back to Automatic: the raw decoder's entity goes, others' entities stay.
    device_entry = device_by_identifier(
        dr.async_get(hass),
        (DOMAIN, f"{entry.unique_id}/device/home-sensors/feather-m0-1"),
        entry.entry_id,
    )
    prefix = f"{entry.unique_id}/device/home-sensors/feather-m0-1"
    raw = entity_registry.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{prefix}/raw_payload",
        config_entry=entry,
        device_id=device_entry.id,
    )
    rssi = entity_registry.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{prefix}/rssi",
        config_entry=entry,
        device_id=device_entry.id,
    )
    result = await _start_decoder_options(hass, entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"device": "home-sensors/feather-m0-1", "decoder": "auto"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_DECODERS] == {}
    assert entity_registry.async_get(raw.entity_id) is None
    assert entity_registry.async_get(rssi.entity_id) is not None
    await hass.async_block_till_done()
