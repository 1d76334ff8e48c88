"""Tests for scripts/check_manifest.py, run against small temporary trees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts import check_manifest as cm

DOMAIN = "ttn_gateway"

GOOD_MANIFEST: dict[str, Any] = {
    "domain": DOMAIN,
    "name": "TTN Gateway",
    "codeowners": ["@someone"],
    "config_flow": True,
    "dependencies": [],
    "documentation": "https://github.com/example/ttn_gateway",
    "integration_type": "hub",
    "iot_class": "cloud_polling",
    "issue_tracker": "https://github.com/example/ttn_gateway/issues",
    "requirements": [],
    "version": "0.1.0",
}

GOOD_EN: dict[str, Any] = {
    "config": {
        "step": {
            "user": {
                "title": "Connect to {server}",
                "data": {"api_key": "API key"},
            },
            "reauth_confirm": {"title": "Re-authenticate"},
        },
        "error": {"cannot_connect": "Failed to connect", "unknown": "Unknown"},
        "abort": {
            "already_configured": "Already configured",
            "reauth_successful": "Re-authentication was successful",
        },
    },
    "options": {
        "step": {"init": {"title": "Options"}},
        "error": {"no_gateways_selected": "Select a gateway"},
    },
    "entity": {"sensor": {"uplink_count": {"name": "Uplinks"}}},
    "exceptions": {"communication_error": {"message": "Error: {error}"}},
}

GOOD_DE: dict[str, Any] = {
    "config": {
        "step": {
            "user": {
                "title": "Verbinden mit {server}",
                "data": {"api_key": "API-Schlüssel"},
            },
            "reauth_confirm": {"title": "Erneut anmelden"},
        },
        "error": {"cannot_connect": "Verbindung fehlgeschlagen", "unknown": "?"},
        "abort": {
            "already_configured": "Bereits eingerichtet",
            "reauth_successful": "Erfolgreich",
        },
    },
    "options": {
        "step": {"init": {"title": "Optionen"}},
        "error": {"no_gateways_selected": "Gateway auswählen"},
    },
    "entity": {"sensor": {"uplink_count": {"name": "Uplinks"}}},
    "exceptions": {"communication_error": {"message": "Fehler: {error}"}},
}

GOOD_CONFIG_FLOW = '''\
"""Config flow."""
from homeassistant.config_entries import ConfigFlow, OptionsFlow


class TTNConfigFlow(ConfigFlow, domain="ttn_gateway"):
    async def async_step_user(self, user_input=None):
        errors = {}
        try:
            pass
        except OSError:
            errors["base"] = "cannot_connect"
        except Exception:
            errors["base"] = "unknown"
        await self.async_set_unique_id("x")
        self._abort_if_unique_id_configured()
        return self.async_show_form(step_id="user", errors=errors)

    async def async_step_reauth(self, entry_data):
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input=None):
        return self.async_show_form(step_id="reauth_confirm")


class TTNOptionsFlow(OptionsFlow):
    async def async_step_init(self, user_input=None):
        errors = {}
        errors["gateways"] = "no_gateways_selected"
        return self.async_show_form(step_id="init", errors=errors)
'''

GOOD_SENSOR = '''\
"""Sensors."""
from homeassistant.components.sensor import SensorEntityDescription
from homeassistant.exceptions import HomeAssistantError

DESCRIPTION = SensorEntityDescription(key="up", translation_key="uplink_count")


def fail() -> None:
    raise HomeAssistantError(
        translation_domain="ttn_gateway",
        translation_key="communication_error",
        translation_placeholders={"error": "boom"},
    )
'''

GOOD_ICONS: dict[str, Any] = {
    "entity": {"sensor": {"uplink_count": {"default": "mdi:arrow-up"}}}
}

GOOD_HACS: dict[str, Any] = {
    "name": "TTN Gateway",
    "homeassistant": "2025.4.4",
    "render_readme": True,
}


def quality_scale_text(
    skip: str | None = None, exempt_comment: str | None = "No actions."
) -> str:
    """Return a quality_scale.yaml listing every rule (except skip)."""
    lines = ["rules:", "  # Bronze"]
    for rule in cm.QUALITY_SCALE_RULES:
        if rule == skip:
            continue
        if rule == "action-setup":
            lines += [f"  {rule}:", "    status: exempt"]
            if exempt_comment is not None:
                lines.append(f"    comment: {exempt_comment}")
        elif rule == "discovery":
            lines += [
                f"  {rule}:",
                "    status: exempt",
                "    comment: |",
                "      Cloud service; nothing to discover",
                "      on the local network.",
            ]
        elif rule == "strict-typing":
            lines += [f"  {rule}:", "    status: todo"]
        else:
            lines.append(f"  {rule}: done")
    return "\n".join(lines) + "\n"


def write_json(path: Path, data: object) -> None:
    """Write data as JSON, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Build a repository tree that passes every check."""
    integration = tmp_path / "custom_components" / DOMAIN
    integration.mkdir(parents=True)
    write_json(integration / "manifest.json", GOOD_MANIFEST)
    write_json(tmp_path / "hacs.json", GOOD_HACS)
    write_json(integration / "translations" / "en.json", GOOD_EN)
    write_json(integration / "translations" / "de.json", GOOD_DE)
    write_json(integration / "icons.json", GOOD_ICONS)
    (integration / "__init__.py").write_text('"""Init."""\n', encoding="utf-8")
    (integration / "config_flow.py").write_text(GOOD_CONFIG_FLOW, encoding="utf-8")
    (integration / "sensor.py").write_text(GOOD_SENSOR, encoding="utf-8")
    (integration / "quality_scale.yaml").write_text(
        quality_scale_text(), encoding="utf-8"
    )
    return tmp_path


def integration_dir(root: Path) -> Path:
    """Return the integration directory of a test tree."""
    return root / "custom_components" / DOMAIN


def assert_reported(problems: list[str], *fragments: str) -> None:
    """Assert that one problem mentions every fragment."""
    assert any(all(f in problem for f in fragments) for problem in problems), (
        f"no problem mentions {fragments}: {problems}"
    )


def test_good_tree_passes(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A complete, consistent tree has no problems."""
    assert cm.check_all(root) == []
    assert cm.main(["--root", str(root)]) == 0
    assert "OK" in capsys.readouterr().out


def test_main_reports_problems(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """main() prints each problem and returns 1."""
    (root / "hacs.json").unlink()
    assert cm.main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "error: hacs.json: missing" in out
    assert "1 problem(s) found." in out


def test_repo_paths_point_at_the_integration() -> None:
    """The module constants point at this repository's integration."""
    assert cm.INTEGRATION_DIR == cm.REPO_ROOT / "custom_components" / DOMAIN
    assert (cm.REPO_ROOT / "scripts" / "check_manifest.py").is_file()


def test_manifest_bad_key_order(root: Path) -> None:
    """Keys must be domain, name, then alphabetical."""
    manifest = dict(GOOD_MANIFEST)
    manifest = {"name": manifest.pop("name"), **manifest}
    write_json(integration_dir(root) / "manifest.json", manifest)
    assert_reported(cm.check_all(root), "manifest.json", "ordered domain, name")

    swapped = dict(GOOD_MANIFEST)
    swapped = {
        "domain": DOMAIN,
        "name": "TTN Gateway",
        "version": "0.1.0",
        **{k: v for k, v in swapped.items() if k not in {"domain", "name"}},
    }
    write_json(integration_dir(root) / "manifest.json", swapped)
    assert_reported(cm.check_all(root), "ordered domain, name")


@pytest.mark.parametrize("key", cm.MANIFEST_REQUIRED_KEYS)
def test_manifest_missing_key(root: Path, key: str) -> None:
    """Every required key is reported when absent."""
    manifest = {k: v for k, v in GOOD_MANIFEST.items() if k != key}
    write_json(integration_dir(root) / "manifest.json", manifest)
    assert_reported(cm.check_all(root), "missing required key", f"'{key}'")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"domain": "other"}, "does not match the directory name"),
        ({"documentation": "http://example.com"}, "'documentation' must be"),
        (
            {"documentation": "https://www.home-assistant.io/integrations/ttn"},
            "own documentation",
        ),
        ({"issue_tracker": "not a url"}, "'issue_tracker' must be"),
        ({"version": "one"}, "not a valid version"),
        ({"iot_class": "local_magic"}, "'iot_class'"),
        ({"integration_type": "gadget"}, "'integration_type'"),
        ({"requirements": ["requests>=2.0"]}, "must be pinned with '=='"),
        ({"config_flow": False}, "config_flow.py exists"),
        ({"codeowners": ["someone"]}, "must start with '@'"),
        ({"zz_unknown": 1}, "unknown key 'zz_unknown'"),
    ],
)
def test_manifest_value_problems(
    root: Path, change: dict[str, Any], fragment: str
) -> None:
    """Bad manifest values are reported."""
    manifest = {**GOOD_MANIFEST, **change}
    # Keep the order valid so that only the value problem shows.
    manifest = {
        "domain": manifest.pop("domain"),
        "name": manifest.pop("name"),
        **dict(sorted(manifest.items())),
    }
    write_json(integration_dir(root) / "manifest.json", manifest)
    problems = cm.check_all(root)
    assert_reported(problems, fragment)
    assert not any("ordered" in problem for problem in problems)


def test_manifest_invalid_json(root: Path) -> None:
    """Broken JSON is reported, not raised."""
    (integration_dir(root) / "manifest.json").write_text("{", encoding="utf-8")
    assert_reported(cm.check_all(root), "manifest.json", "invalid JSON")


def test_valid_versions() -> None:
    """Release and pre-release versions are accepted."""
    for version in ("1", "0.1.0", "2025.4.0", "1.0.0b1", "1.0.0-beta.1", "1.2rc3"):
        assert cm.VERSION_RE.match(version), version
    for version in ("v1.0", "1.0-", "latest", "1..0"):
        assert not cm.VERSION_RE.match(version), version


def test_config_flow_flag_without_file(root: Path) -> None:
    """config_flow: true needs config_flow.py."""
    (integration_dir(root) / "config_flow.py").unlink()
    assert_reported(cm.check_all(root), "config_flow.py is missing")


def test_component_import_needs_dependency(root: Path) -> None:
    """Imported components outside the always-available set must be declared."""
    (integration_dir(root) / "mqtt_glue.py").write_text(
        "from homeassistant.components.mqtt import async_publish\n"
        "import homeassistant.components.recorder\n"
        "from homeassistant.components import (\n"
        "    sensor,\n"
        "    webhook as hook,  # comment\n"
        ")\n",
        encoding="utf-8",
    )
    problems = cm.check_all(root)
    for component in ("mqtt", "recorder", "webhook"):
        assert_reported(problems, f"components.{component} but")
    assert not any("components.sensor" in problem for problem in problems)

    manifest = {
        **GOOD_MANIFEST,
        "after_dependencies": ["recorder"],
        "dependencies": ["mqtt", "webhook"],
    }
    manifest = {
        "domain": manifest.pop("domain"),
        "name": manifest.pop("name"),
        **dict(sorted(manifest.items())),
    }
    write_json(integration_dir(root) / "manifest.json", manifest)
    assert cm.check_all(root) == []


def test_imported_components() -> None:
    """All import spellings are found."""
    source = (
        "from homeassistant.components.sensor import SensorEntity\n"
        "import homeassistant.components.mqtt as mqtt\n"
        "from homeassistant.components import zone, http as ha_http\n"
        "from homeassistant.const import Platform\n"
    )
    assert cm.imported_components(source) == {"sensor", "mqtt", "zone", "http"}


def test_hacs_unknown_key(root: Path) -> None:
    """Keys HACS does not know are reported."""
    write_json(root / "hacs.json", {**GOOD_HACS, "domains": ["sensor"]})
    assert_reported(cm.check_all(root), "hacs.json", "unknown key 'domains'")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"render_readme": True}, "'name' is required"),
        ({"name": "x", "zip_release": True}, "'zip_release' requires 'filename'"),
        ({"name": "x", "homeassistant": "soon"}, "not a valid version"),
        ({"name": "x", "render_readme": "yes"}, "must be true or false"),
        ({"name": "x", "country": 5}, "'country' must be"),
        (["name"], "must be a JSON object"),
    ],
)
def test_hacs_problems(root: Path, data: object, fragment: str) -> None:
    """Bad hacs.json content is reported."""
    write_json(root / "hacs.json", data)
    assert_reported(cm.check_all(root), "hacs.json", fragment)


def test_layout_exactly_one_integration(root: Path) -> None:
    """custom_components/ must hold only the integration."""
    (root / "custom_components" / "other").mkdir()
    assert_reported(cm.check_all(root), "exactly one directory")


def test_layout_missing_integration(tmp_path: Path) -> None:
    """A tree without the integration reports that and nothing else."""
    (tmp_path / "custom_components").mkdir()
    assert_reported(cm.check_all(tmp_path), "exactly one directory")
    assert cm.check_layout(tmp_path / "nowhere") == ["custom_components/: missing"]


def test_translation_key_missing_in_other_language(root: Path) -> None:
    """Keys in en.json missing from de.json (and extra ones) are reported."""
    de = json.loads(json.dumps(GOOD_DE))
    del de["config"]["error"]["unknown"]
    de["config"]["error"]["surprise"] = "Überraschung"
    write_json(integration_dir(root) / "translations" / "de.json", de)
    problems = cm.check_all(root)
    assert_reported(problems, "de.json", "missing keys", "config.error.unknown")
    assert_reported(problems, "de.json", "not in en.json", "config.error.surprise")


def test_placeholder_mismatch(root: Path) -> None:
    """A placeholder of en.json missing from a translation is reported."""
    de = json.loads(json.dumps(GOOD_DE))
    de["config"]["step"]["user"]["title"] = "Verbinden mit {host}"
    write_json(integration_dir(root) / "translations" / "de.json", de)
    assert_reported(
        cm.check_all(root), "de.json", "config.step.user.title", "['server']"
    )


def test_translation_reference_and_non_string(root: Path) -> None:
    """[%key:...%] references and non-string leaves in en.json are reported."""
    en = json.loads(json.dumps(GOOD_EN))
    en["config"]["abort"]["already_configured"] = (
        "[%key:common::config_flow::abort::already_configured_device%]"
    )
    en["config"]["error"]["unknown"] = 3
    write_json(integration_dir(root) / "translations" / "en.json", en)
    problems = cm.check_all(root)
    assert_reported(problems, "already_configured", "[%key:")
    assert_reported(problems, "config.error.unknown", "must be a string")


def test_missing_en_json(root: Path) -> None:
    """A config flow integration needs translations/en.json."""
    (integration_dir(root) / "translations" / "en.json").unlink()
    assert_reported(cm.check_all(root), "en.json: missing")


def test_invalid_translation_json(root: Path) -> None:
    """Broken JSON in a translation file is reported."""
    (integration_dir(root) / "translations" / "fr.json").write_text(
        "{'a': 1}", encoding="utf-8"
    )
    assert_reported(cm.check_all(root), "fr.json", "invalid JSON")


def test_translation_key_used_in_code_but_absent(root: Path) -> None:
    """translation_key values in the code must exist in en.json."""
    (integration_dir(root) / "binary_sensor.py").write_text(
        'DESC = Desc(key="c", translation_key="connected")\n'
        "class E:\n"
        '    _attr_translation_key = "gateway_status"\n',
        encoding="utf-8",
    )
    problems = cm.check_all(root)
    assert_reported(problems, "binary_sensor.py", 'translation_key="connected"')
    assert_reported(problems, 'translation_key="gateway_status"')

    en = json.loads(json.dumps(GOOD_EN))
    en["entity"]["binary_sensor"] = {"connected": {"name": "Connected"}}
    en["issues"] = {"gateway_status": {"title": "Gateway offline"}}
    de = json.loads(json.dumps(GOOD_DE))
    de["entity"]["binary_sensor"] = {"connected": {"name": "Verbunden"}}
    de["issues"] = {"gateway_status": {"title": "Gateway offline"}}
    write_json(integration_dir(root) / "translations" / "en.json", en)
    write_json(integration_dir(root) / "translations" / "de.json", de)
    assert cm.check_all(root) == []


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("error", "cannot_connect"),
        ("abort", "already_configured"),
        ("abort", "reauth_successful"),
        ("step", "reauth_confirm"),
    ],
)
def test_config_flow_keys_must_exist(root: Path, section: str, key: str) -> None:
    """Errors, aborts and steps of the config flow need config.* strings."""
    for name, language in (("en", GOOD_EN), ("de", GOOD_DE)):
        data = json.loads(json.dumps(language))
        del data["config"][section][key]
        write_json(integration_dir(root) / "translations" / f"{name}.json", data)
    assert_reported(cm.check_all(root), "config_flow.py", f"config.{section}.{key}")


def test_options_flow_keys_must_exist(root: Path) -> None:
    """Errors and steps of the options flow need options.* strings."""
    for name, language in (("en", GOOD_EN), ("de", GOOD_DE)):
        data = json.loads(json.dumps(language))
        del data["options"]
        write_json(integration_dir(root) / "translations" / f"{name}.json", data)
    problems = cm.check_all(root)
    assert_reported(problems, "options.error.no_gateways_selected")
    assert_reported(problems, "options.step.init")


def test_flow_usage_patterns() -> None:
    """Explicit and implicit abort reasons and dict errors are found."""
    source = (
        "class F(ConfigFlow, domain='x'):\n"
        "    async def async_step_reconfigure(self, user_input=None):\n"
        "        self._abort_if_unique_id_mismatch()\n"
        '        errors = {"base": "invalid_auth"}\n'
        '        raise AbortFlow("gone")\n'
        "        return self.async_update_reload_and_abort(\n"
        '            entry, reason="changed")\n'
    )
    problems = cm.translation_usage_problems(
        {Path("/r/config_flow.py"): source}, {}, Path("/r")
    )
    for expected in (
        "config.abort.unique_id_mismatch",
        "config.error.invalid_auth",
        "config.abort.gone",
        "config.abort.changed",
        "config.abort.reconfigure_successful",
    ):
        assert_reported(problems, expected)


def test_icons_need_translations(root: Path) -> None:
    """Entity icons must name entity translation keys that exist."""
    icons = json.loads(json.dumps(GOOD_ICONS))
    icons["entity"]["sensor"]["downlink_count"] = {"default": "mdi:arrow-down"}
    write_json(integration_dir(root) / "icons.json", icons)
    assert_reported(cm.check_all(root), "icons.json", "entity.sensor.downlink_count")


def test_icons_invalid_json(root: Path) -> None:
    """Broken icons.json is reported."""
    (integration_dir(root) / "icons.json").write_text("[", encoding="utf-8")
    assert_reported(cm.check_all(root), "icons.json", "invalid JSON")


def test_quality_scale_rule_missing(root: Path) -> None:
    """Every rule id must be listed."""
    (integration_dir(root) / "quality_scale.yaml").write_text(
        quality_scale_text(skip="runtime-data"), encoding="utf-8"
    )
    assert_reported(cm.check_all(root), "quality_scale.yaml", "'runtime-data'")


def test_quality_scale_exempt_without_comment(root: Path) -> None:
    """An exempt rule needs a comment."""
    (integration_dir(root) / "quality_scale.yaml").write_text(
        quality_scale_text(exempt_comment=None), encoding="utf-8"
    )
    assert_reported(cm.check_all(root), "'action-setup' is exempt without a comment")


def test_quality_scale_unknown_rule_and_bad_status(root: Path) -> None:
    """Unknown rule ids and statuses are reported."""
    text = quality_scale_text() + "  made-up-rule: done\n  brands-x: maybe\n"
    (integration_dir(root) / "quality_scale.yaml").write_text(text, encoding="utf-8")
    problems = cm.check_all(root)
    assert_reported(problems, "unknown rule 'made-up-rule'")
    assert_reported(problems, "'brands-x' has status 'maybe'")


def test_parse_quality_scale() -> None:
    """The line-based parser reads inline and nested entries and comments."""
    rules, problems = cm.parse_quality_scale(
        "# header\n"
        "rules:\n"
        "  a: done  # trailing comment\n"
        "  b:\n"
        "    status: exempt\n"
        "    comment: >\n"
        "      Two\n"
        "\n"
        "      lines.\n"
        "  c:\n"
        "    status: 'todo'\n"
        "    comment: Long comment\n"
        "      continued.\n"
        "  a: todo\n"
        "  d\n"
        "    colour: red\n"
        "other: 1\n"
    )
    assert rules["a"].status == "todo"
    assert rules["b"].status == "exempt"
    assert rules["b"].comment == "Two lines."
    assert rules["c"].status == "todo"
    assert rules["c"].comment == "Long comment continued."
    assert any("listed twice" in p for p in problems)
    assert any("cannot parse 'd'" in p for p in problems)
    assert any("unknown field 'colour'" in p for p in problems)
    assert any("unexpected top-level entry" in p for p in problems)

    _, problems = cm.parse_quality_scale("other:\n  a: done\n")
    assert "no top-level 'rules:' mapping" in problems


def test_flatten_and_key_paths() -> None:
    """Nested dicts flatten to dotted paths."""
    data = {"a": {"b": "x", "c": {"d": "y"}}, "e": {}}
    assert cm.flatten(data) == {"a.b": "x", "a.c.d": "y", "e": {}}
    assert cm.key_paths(data) == {"a", "a.b", "a.c", "a.c.d", "e"}
