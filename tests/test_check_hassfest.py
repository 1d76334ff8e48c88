"""Tests for scripts/check_hassfest.py: hassfest's rules for a custom integration.

Each test copies the real integration and breaks one thing.
"""

from __future__ import annotations

from collections.abc import Callable
import json
from pathlib import Path
import shutil
from typing import Any

import pytest
import yaml

from scripts import check_hassfest as hf

INTEGRATION = Path(__file__).parent.parent / "custom_components" / "ttn_gateway"
TTS_PRIORITIES = [
    "LOWEST",
    "LOW",
    "BELOW_NORMAL",
    "NORMAL",
    "ABOVE_NORMAL",
    "HIGH",
    "HIGHEST",
]


@pytest.fixture
def integration(tmp_path: Path) -> Path:
    """A copy of the integration, in a folder named after its domain."""
    return Path(shutil.copytree(INTEGRATION, tmp_path / "ttn_gateway"))


def _edit_json(path: Path, change: Callable[[Any], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def _errors(path: Path) -> list[str]:
    return hf.check_integration(path).errors


def test_the_integration_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert hf.main(["--integration-path", str(INTEGRATION)]) == 0
    assert "OK" in capsys.readouterr().out


def test_uppercase_selector_options_fail(
    integration: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The priority options as they were: hassfest's 'Invalid translation key'."""

    def uppercase(data: dict[str, Any]) -> None:
        options = data["selector"]["priority"]["options"]
        data["selector"]["priority"]["options"] = {
            name: options[name.lower()] for name in TTS_PRIORITIES
        }

    _edit_json(integration / "translations" / "en.json", uppercase)
    assert hf.main(["--integration-path", str(integration)]) == 1
    out = capsys.readouterr().out
    assert "* [ERROR] [TRANSLATIONS] Invalid translations/en.json: " in out
    assert "Invalid translation key 'LOWEST', need to be [a-z0-9-_]+" in out
    # Where, as the installed voluptuous words it (older: data['selector']...).
    assert any(
        where in out
        for where in (
            "'selector.priority.options'",
            "['selector']['priority']['options']",
        )
    )


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("below_normal", True),
        ("a-b_c9", True),
        ("LOWEST", False),
        ("_lowest", False),
        ("lowest-", False),
        ("low__est", False),
        ("low-_est", False),
        ("low est", False),
    ],
)
def test_translation_keys(key: str, valid: bool) -> None:
    assert (hf.TRANSLATION_KEY_RE.match(key) is not None) is valid


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (("title",), "<b>TTN</b>", "HTML"),
        (("title",), "See https://example.com/docs", "URLs"),
        (("title",), "Gateway '{name}'", "single quotes"),
        (("title",), "Gateway {0}", "valid identifiers"),
        (("title",), " Gateway", "leading or trailing"),
        (("title",), "A [%key:common::state::on%] gateway", "combined"),
        (
            ("entity", "binary_sensor", "silent", "state", "on"),
            "Silent {since}",
            "placeholders are not supported",
        ),
    ],
)
def test_translation_strings(
    integration: Path, where: tuple[str, ...], value: str, message: str
) -> None:
    def put(data: dict[str, Any]) -> None:
        for key in where[:-1]:
            data = data.setdefault(key, {})
        data[where[-1]] = value

    _edit_json(integration / "translations" / "de.json", put)
    (error,) = _errors(integration)
    assert error.startswith("[TRANSLATIONS] Invalid translations/de.json:")
    assert message in error


@pytest.mark.parametrize(
    "change",
    [
        # An issue needs a description or a fix flow.
        lambda d: d["issues"].update({"x": {"title": "X"}}),
        # A data_description key needs the same key in data.
        lambda d: d["config"]["step"]["user"]["data_description"].update({"nope": "N"}),
        # A sub-entry flow names its entry type.
        lambda d: next(iter(d["config_subentries"].values())).pop("entry_type"),
        # No unknown sections, no unknown keys in an entity.
        lambda d: d.update({"entities": {}}),
        lambda d: d["entity"]["sensor"]["uplink_count"].update({"icon": "mdi:x"}),
        # Service fields have a name and a description.
        lambda d: d["services"]["send_downlink"]["fields"]["f_port"].pop("name"),
        # Exception keys are slugs.
        lambda d: d["exceptions"].update({"Bad-Key": {"message": "M"}}),
    ],
)
def test_translation_schema(integration: Path, change: Callable[[Any], None]) -> None:
    _edit_json(integration / "translations" / "en.json", change)
    (error,) = [e for e in _errors(integration) if "en.json" in e]
    assert error.startswith("[TRANSLATIONS] Invalid translations/en.json:")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["send_downlink"]["fields"]["f_port"].update(
                {"selector": {"no_such_selector": {}}}
            ),
            "Invalid services.yaml",
        ),
        (
            lambda d: d["send_downlink"].update({"icon": "mdi:x"}),
            "Invalid services.yaml",
        ),
        (
            lambda d: d["send_downlink"]["fields"].update(
                {"more": {"fields": {"f_port": {}}}}
            ),
            "Duplicate use of field f_port",
        ),
        (
            lambda d: d["send_downlink"]["fields"]["priority"]["selector"][
                "select"
            ].update({"translation_key": "no_such_key"}),
            "translation key no_such_key that is not in the translations file",
        ),
    ],
)
def test_services_yaml(
    integration: Path, change: Callable[[Any], None], message: str
) -> None:
    _edit_yaml(integration / "services.yaml", change)
    (error,) = _errors(integration)
    assert error.startswith("[SERVICES]")
    assert message in error


def test_actions_without_services_yaml(integration: Path) -> None:
    (integration / "services.yaml").unlink()
    assert _errors(integration) == [
        "[SERVICES] Registers services but has no services.yaml"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["entity"]["number"]["silence_threshold"].update(
                {"default": "timer"}
            ),
            "Material Design Icons",
        ),
        (
            lambda d: d["entity"]["number"]["silence_threshold"].update(
                {"state": {"x": "mdi:timer-alert-outline"}}
            ),
            "same as the default icon",
        ),
        (lambda d: d.update({"entities": {}}), "'entities'"),
        (
            lambda d: d["services"].update({"send_downlink": "mdi:message"}),
            "Invalid icons.json",
        ),
    ],
)
def test_icons(integration: Path, change: Callable[[Any], None], message: str) -> None:
    _edit_json(integration / "icons.json", change)
    (error,) = _errors(integration)
    assert error.startswith("[ICONS] Invalid icons.json:")
    assert message in error


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(
                {"version": d.pop("version"), "codeowners": d.pop("codeowners")}
            ),
            "Manifest keys are not sorted correctly: domain, name, then alphabetical",
        ),
        (lambda d: d.pop("version"), "No 'version' key in the manifest file."),
        (lambda d: d.update({"version": "one"}), "'one' is not a valid version."),
        (lambda d: d.update({"domain": "ttn"}), "Domain does not match dir name"),
        (lambda d: d.pop("iot_class"), "Domain is missing an IoT Class"),
        (lambda d: d.pop("codeowners"), "required key not provided"),
        (
            lambda d: d.update({"documentation": "http://example.com/ttn"}),
            "not prefixed with https",
        ),
        (lambda d: d.update({"iot_class": "cloud"}), "Invalid manifest"),
    ],
)
def test_manifest(
    integration: Path, change: Callable[[Any], None], message: str
) -> None:
    _edit_json(integration / "manifest.json", change)
    errors = _errors(integration)
    assert errors
    assert all(error.startswith("[MANIFEST]") for error in errors)
    assert any(message in error for error in errors)


def test_a_json_file_that_is_not_an_object(integration: Path) -> None:
    (integration / "extra.json").write_text("[1, 2]")
    assert _errors(integration) == ["[JSON] extra.json is not a JSON object"]


def test_async_setup_without_config_schema_warns(integration: Path) -> None:
    init = integration / "__init__.py"
    init.write_text(init.read_text().replace("CONFIG_SCHEMA =", "SCHEMA ="))
    report = hf.check_integration(integration)
    assert report.errors == []
    assert report.warnings[0].startswith("[CONFIG_SCHEMA]")
