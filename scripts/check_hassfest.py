#!/usr/bin/env python3
"""Check the integration against the rules hassfest applies to a custom integration.

hassfest (Home Assistant core's ``script/hassfest``, which
.github/workflows/validate.yml runs with ``--integration-path``) is not on PyPI
and needs the core repository. This script checks the same rules offline,
with Home Assistant's own validators (config_validation, selector):

- translations/*.json (hassfest reads en.json; every language is held to it
  here): the schema of each section (config, options, config_subentries,
  selector, issues, exceptions, entity, device, services, ...); translation
  keys match ``[a-z0-9-_]+`` without a leading, trailing or doubled ``-``/``_``;
  strings have no HTML, no URL, no leading or trailing space, no placeholder
  in single quotes, only identifiers as placeholders and none in entity
  states; a reference ``[%key:...%]`` stands alone;
- services.yaml: its schema (fields, sections, selectors, target), each select
  selector's translation_key is in en.json's ``selector``; an integration that
  registers actions has one;
- icons.json: its schema (``mdi:`` icons, entity and services sections,
  translation keys), no state icon equal to its default;
- manifest.json: the custom integration schema, domain = folder name, an IoT
  class, a valid version, keys in order (domain, name, then alphabetical);
- every .json file is a JSON object; ``async_setup`` comes with a CONFIG_SCHEMA.

Prints each problem as hassfest does (``[ERROR] [PLUGIN] ...``); exits 1 if
there is any error. Warnings (as hassfest's) do not fail.

    python scripts/check_hassfest.py [--integration-path PATH]
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable, Sequence
import json
from pathlib import Path
import re
import string
import sys
from typing import Any
from urllib.parse import urlparse

from awesomeversion import (
    AwesomeVersion,
    AwesomeVersionException,
    AwesomeVersionStrategy,
)
import homeassistant.components
from homeassistant.helpers import config_validation as cv, selector
import voluptuous as vol
from voluptuous.humanize import humanize_error
import yaml

INTEGRATION_PATH = (
    Path(__file__).resolve().parent.parent / "custom_components" / "ttn_gateway"
)

# hassfest's translation key rule: lowercase letters, digits, - and _, not at
# either end and never two of - and _ in a row.
TRANSLATION_KEY_RE = re.compile(r"^(?![-_])(?!.*[-_]{2})[a-z0-9_-]+(?<![-_])$")
REFERENCE_RE = re.compile(r"\[%key:[^%]+%\]")
QUOTED_PLACEHOLDER_RE = re.compile(r"'\{\w+\}'")
URL_RE = re.compile(
    r"((ftp|ftps|scp|https?|mqtts?|socket|socks5)://|www\.)"
    r"[a-z0-9]+([-.][a-z0-9]+)*\.[a-z]{2,5}(:\d{1,5})?(/.*)?",
    re.IGNORECASE,
)
IOT_CLASSES = (
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
)
INTEGRATION_TYPES = (
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
)
VERSION_STRATEGIES = [
    AwesomeVersionStrategy.CALVER,
    AwesomeVersionStrategy.SEMVER,
    AwesomeVersionStrategy.SIMPLEVER,
    AwesomeVersionStrategy.BUILDVER,
    AwesomeVersionStrategy.PEP440,
]
REGISTERS_ACTIONS_RE = re.compile(
    r"hass\.services\.(async_)?register|async_register_entity_service"
    r"|async_register_admin_service"
)


class Report:
    """Errors and warnings, each under the hassfest plugin that finds it."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, plugin: str, message: str) -> None:
        self.errors.append(f"[{plugin.upper()}] {message}")

    def warning(self, plugin: str, message: str) -> None:
        self.warnings.append(f"[{plugin.upper()}] {message}")


# Translation strings


def translation_key(value: Any) -> str:
    if not isinstance(value, str) or not TRANSLATION_KEY_RE.match(value):
        raise vol.Invalid(
            f"Invalid translation key '{value}', need to be [a-z0-9-_]+ and"
            " cannot start or end with a hyphen or underscore"
        )
    return value


def text(*, placeholders: bool = True) -> Callable[[Any], str]:
    """A translated string; placeholders allowed or not."""

    def validate(value: Any) -> str:
        value = cv.string_with_no_html(value)
        if QUOTED_PLACEHOLDER_RE.search(value):
            raise vol.Invalid(
                "the string should not contain placeholders in single quotes"
            )
        for _literal, field, _spec, _conversion in string.Formatter().parse(value):
            if field and not placeholders:
                raise vol.Invalid("placeholders are not supported in this value")
            if field and not field.isidentifier():
                raise vol.Invalid("placeholders must be valid identifiers")
        if REFERENCE_RE.search(value) and REFERENCE_RE.fullmatch(value) is None:
            raise vol.Invalid("the string should not contain combined translations")
        if value != value.strip():
            raise vol.Invalid("the string should not have leading or trailing spaces")
        if URL_RE.search(value):
            raise vol.Invalid("the string should not contain URLs; use placeholders")
        return value

    return validate


TEXT = text()
PLAIN_TEXT = text(placeholders=False)


def keyed(values: Any, keys: Any = translation_key) -> Any:
    """A mapping whose keys are translation keys (or as ``keys`` says)."""
    return cv.schema_with_slug_keys(values, slug_validator=keys)


def flow_schema(*, subentry: bool = False) -> Callable[[Any], Any]:
    """The strings of a config, options or sub-entry flow."""
    strings = {str: TEXT}
    step = {
        vol.Optional("title"): TEXT,
        vol.Optional("description"): TEXT,
        vol.Optional("data"): strings,
        vol.Optional("data_description"): strings,
        vol.Optional("menu_options"): strings,
        vol.Optional("menu_option_descriptions"): strings,
        vol.Optional("submit"): TEXT,
        vol.Optional("sections"): {
            str: {
                vol.Optional("name"): TEXT,
                vol.Optional("description"): TEXT,
                vol.Optional("data"): strings,
                vol.Optional("data_description"): strings,
            }
        },
    }
    schema: dict[Any, Any] = {
        vol.Required("step"): {str: step},
        vol.Optional("flow_title"): TEXT,
        vol.Optional("title"): TEXT,
        **{vol.Optional(name): strings for name in ("error", "abort", "progress")},
        vol.Optional("create_entry"): strings,
    }
    if subentry:
        schema[vol.Required("entry_type")] = TEXT
        schema[vol.Required("initiate_flow")] = {vol.Required("user"): TEXT, str: TEXT}
    else:
        schema[vol.Optional("initiate_flow")] = {vol.Required("user"): TEXT}

    def described_data_only(value: dict[str, Any]) -> dict[str, Any]:
        for step_id, info in value["step"].items():
            for key in info.get("data_description", {}):
                if key not in info.get("data", {}):
                    raise vol.Invalid(
                        f"data_description key {key} of step {step_id} is not in data"
                    )
        return value

    return vol.All(vol.Schema(schema), described_data_only)


def fields_schema() -> Any:
    return keyed(
        {
            vol.Required("name"): str,
            vol.Required("description"): TEXT,
            vol.Optional("example"): TEXT,
        }
    )


STATES = keyed(PLAIN_TEXT)
STRINGS_SCHEMA = vol.Schema(
    {
        vol.Optional("title"): TEXT,
        vol.Optional("config"): flow_schema(),
        vol.Optional("options"): flow_schema(),
        vol.Optional("config_subentries"): keyed(
            flow_schema(subentry=True), vol.Any("_", cv.slug)
        ),
        vol.Optional("selector"): keyed(
            {
                vol.Optional("choices"): keyed(TEXT),
                vol.Optional("options"): keyed(TEXT),
                vol.Optional("unit_of_measurement"): keyed(TEXT),
                vol.Optional("fields"): fields_schema(),
            },
            vol.Any("_", cv.slug),
        ),
        vol.Optional("issues"): {
            str: vol.All(
                cv.has_at_least_one_key("description", "fix_flow"),
                {
                    vol.Required("title"): TEXT,
                    vol.Exclusive("description", "fixable"): TEXT,
                    vol.Exclusive("fix_flow", "fixable"): flow_schema(),
                },
            )
        },
        vol.Optional("exceptions"): keyed({vol.Optional("message"): TEXT}, cv.slug),
        vol.Optional("device"): keyed({vol.Optional("name"): TEXT}),
        vol.Optional("entity"): keyed(
            keyed(
                {
                    vol.Optional("name"): TEXT,
                    vol.Optional("state"): STATES,
                    vol.Optional("state_attributes"): keyed(
                        {
                            vol.Optional("name"): PLAIN_TEXT,
                            vol.Optional("state"): STATES,
                        }
                    ),
                    vol.Optional("unit_of_measurement"): PLAIN_TEXT,
                }
            ),
            cv.slug,
        ),
        vol.Optional("services"): keyed(
            {
                vol.Required("name"): TEXT,
                vol.Required("description"): TEXT,
                vol.Optional("fields"): fields_schema(),
                vol.Optional("sections"): keyed(
                    {vol.Required("name"): str, vol.Optional("description"): TEXT}
                ),
            }
        ),
        vol.Optional("system_health"): {vol.Optional("info"): keyed(TEXT)},
        vol.Optional("device_automation"): {
            vol.Optional(part): {str: TEXT}
            for part in (
                "action_type",
                "condition_type",
                "trigger_type",
                "trigger_subtype",
                "extra_fields",
                "extra_fields_descriptions",
            )
        },
        vol.Optional("common"): {cv.slug: TEXT},
    }
)


def check_translations(path: Path, report: Report) -> None:
    for file in sorted((path / "translations").glob("*.json")):
        name = file.relative_to(path).as_posix()
        data = _load_json(file, "translations", report)
        if data is None:
            continue
        try:
            STRINGS_SCHEMA(data)
        except vol.Invalid as err:
            report.error("translations", f"Invalid {name}: {humanize_error(data, err)}")


# services.yaml


def _unique_fields(fields: dict[str, Any]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, value in fields.items():
        names = value["fields"] if value and "fields" in value else [key]
        for name in names:
            if name in seen:
                raise vol.Invalid(f"Duplicate use of field {name} in service.")
            seen.add(name)
    return fields


def _service_schema(*, targeted: bool) -> vol.Schema:
    texts = {vol.Optional("name"): str, vol.Optional("description"): str}
    field: dict[Any, Any] = {
        **texts,
        vol.Optional("example"): vol.NotIn([None]),
        vol.Optional("default"): vol.NotIn([None]),
        vol.Optional("required"): bool,
        vol.Optional("advanced"): bool,
        vol.Optional("selector"): selector.validate_selector,
    }
    if targeted:
        field[vol.Optional("filter")] = dict
    section = {
        **texts,
        vol.Optional("collapsed"): bool,
        vol.Required("fields"): {str: field},
    }
    service: dict[Any, Any] = {
        **texts,
        vol.Optional("fields"): vol.All({str: vol.Any(field, section)}, _unique_fields),
    }
    if targeted:
        service[vol.Required("target")] = selector.TargetSelector.CONFIG_SCHEMA
    return vol.Schema(service)


SERVICES_SCHEMA = vol.Schema(
    {
        cv.slug: vol.Any(
            _service_schema(targeted=True), _service_schema(targeted=False), None
        )
    }
)


def check_services(path: Path, en: dict[str, Any], report: Report) -> None:
    file = path / "services.yaml"
    if not file.is_file():
        if any(
            REGISTERS_ACTIONS_RE.search(py.read_text()) for py in path.rglob("*.py")
        ):
            report.error("services", "Registers services but has no services.yaml")
        return
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        services = SERVICES_SCHEMA(data)
    except yaml.YAMLError as err:
        report.error("services", f"Invalid services.yaml: {err}")
        return
    except vol.Invalid as err:
        report.error("services", f"Invalid services.yaml: {humanize_error(data, err)}")
        return
    selectors = en.get("selector", {})
    for service, spec in services.items():
        for name, field in (spec or {}).get("fields", {}).items():
            key = (field.get("selector") or {}).get("select", {}).get("translation_key")
            if key is not None and key not in selectors:
                report.error(
                    "services",
                    f"Service {service} has a field {name} with a selector with a "
                    f"translation key {key} that is not in the translations file",
                )


# icons.json


def icon(value: Any) -> str:
    value = cv.string_with_no_html(value)
    if not value.startswith("mdi:"):
        raise vol.Invalid("The icon needs to be from Material Design Icons (mdi:...)")
    return value


def _no_state_icon_as_default(value: dict[str, Any]) -> dict[str, Any]:
    for key, entry in value.items():
        default = entry.get("default")
        for state, state_icon in (entry.get("state") or {}).items():
            if default and state_icon == default:
                raise vol.Invalid(
                    f"The icon for state `{key}.{state}` is the same as the default "
                    "icon and thus can be removed"
                )
    return value


FLOW_ICONS = vol.Schema({"step": {str: {"section": {str: icon}}}})
ENTITY_ICONS = {
    vol.Optional("default"): icon,
    vol.Optional("state"): keyed(icon),
    vol.Optional("state_attributes"): vol.All(
        keyed({vol.Optional("default"): icon, vol.Optional("state"): keyed(icon)}),
        _no_state_icon_as_default,
    ),
}
ICONS_SCHEMA = vol.Schema(
    {
        vol.Optional("config"): FLOW_ICONS,
        vol.Optional("options"): FLOW_ICONS,
        vol.Optional("issues"): {str: {"fix_flow": FLOW_ICONS}},
        vol.Optional("services"): keyed(
            {vol.Optional("service"): icon, vol.Optional("sections"): keyed(icon)}
        ),
        vol.Optional("entity"): keyed(
            vol.All(keyed(ENTITY_ICONS), _no_state_icon_as_default), cv.slug
        ),
    }
)


def check_icons(path: Path, report: Report) -> None:
    file = path / "icons.json"
    if not file.is_file() or (icons := _load_json(file, "icons", report)) is None:
        return
    try:
        ICONS_SCHEMA(icons)
    except vol.Invalid as err:
        report.error("icons", f"Invalid icons.json: {humanize_error(icons, err)}")


# manifest.json


def documentation_url(value: str) -> str:
    url = urlparse(value)
    if url.scheme != "https":
        raise vol.Invalid("Documentation url is not prefixed with https")
    if url.netloc == "www.home-assistant.io" and not url.path.startswith(
        "/integrations/"
    ):
        raise vol.Invalid(
            "Documentation url does not begin with www.home-assistant.io/integrations"
        )
    return value


def version(value: str) -> str:
    try:
        AwesomeVersion(value, ensure_strategy=VERSION_STRATEGIES)
    except AwesomeVersionException as err:
        raise vol.Invalid(f"'{value}' is not a valid version.") from err
    return value


MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("domain"): str,
        vol.Required("name"): str,
        vol.Required("documentation"): vol.All(vol.Url(), documentation_url),
        vol.Required("codeowners"): [str],
        vol.Optional("integration_type"): vol.In(INTEGRATION_TYPES),
        vol.Optional("config_flow"): bool,
        vol.Optional("iot_class"): vol.In(IOT_CLASSES),
        vol.Optional("issue_tracker"): vol.Url(),
        vol.Optional("quality_scale"): vol.In(
            ("internal", "silver", "gold", "platinum")
        ),
        vol.Optional("version"): vol.All(str, version),
        vol.Optional("import_executor"): bool,
        vol.Optional("single_config_entry"): bool,
        vol.Optional("disabled"): str,
        vol.Optional("homekit"): {vol.Optional("models"): [str]},
        **{
            vol.Optional(key): [str]
            for key in (
                "requirements",
                "dependencies",
                "after_dependencies",
                "loggers",
                "mqtt",
            )
        },
        **{
            vol.Optional(key): [vol.Any(str, dict)]
            for key in ("zeroconf", "ssdp", "bluetooth", "dhcp", "usb")
        },
    }
)


def check_manifest(path: Path, report: Report) -> None:
    manifest = _load_json(path / "manifest.json", "manifest", report)
    if manifest is None:
        return
    errors = len(report.errors)
    try:
        MANIFEST_SCHEMA(manifest)
    except vol.Invalid as err:
        report.error("manifest", f"Invalid manifest: {humanize_error(manifest, err)}")
    domain = manifest.get("domain")
    if domain != path.name:
        report.error("manifest", "Domain does not match dir name")
    if (Path(homeassistant.components.__file__).parent / str(domain)).exists():
        report.warning("manifest", "Domain collides with built-in core integration")
    if "iot_class" not in manifest:
        report.error("manifest", "Domain is missing an IoT Class")
    if not manifest.get("version"):
        report.error("manifest", "No 'version' key in the manifest file.")
    keys = list(manifest)
    wanted = [k for k in ("domain", "name") if k in keys] + sorted(
        k for k in keys if k not in ("domain", "name")
    )
    # hassfest looks at the order only when the manifest is otherwise valid.
    if len(report.errors) == errors and keys != wanted:
        report.error(
            "manifest",
            "Manifest keys are not sorted correctly: domain, name, then alphabetical order",
        )


# The rest: JSON files and the configuration schema


def _load_json(file: Path, plugin: str, report: Report) -> Any:
    """A JSON object from the file, or None (reported)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        report.error(plugin, f"Invalid JSON in {file.name}: {err}")
        return None
    if not isinstance(data, dict):
        report.error(plugin, f"{file.name} is not a JSON object")
        return None
    return data


def check_json_files(path: Path, report: Report) -> None:
    for file in sorted(path.rglob("*.json")):
        if file.parent.name != "translations" and file.name not in (
            "manifest.json",
            "icons.json",
        ):
            _load_json(file, "json", report)


def _defines(module: ast.Module, name: str) -> bool:
    for node in module.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any((alias.asname or alias.name) == name for alias in node.names):
                return True
            continue
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def check_config_schema(path: Path, report: Report) -> None:
    init = path / "__init__.py"
    if not init.is_file():
        return
    module = ast.parse(init.read_text(encoding="utf-8"))
    sets_up = any(
        isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef)
        and node.name in ("async_setup", "setup")
        for node in module.body
    )
    schemas = ("CONFIG_SCHEMA", "PLATFORM_SCHEMA", "PLATFORM_SCHEMA_BASE")
    if sets_up and not any(_defines(module, name) for name in schemas):
        report.warning(
            "config_schema",
            "Integrations which implement 'async_setup' or 'setup' must define "
            "either 'CONFIG_SCHEMA', 'PLATFORM_SCHEMA' or 'PLATFORM_SCHEMA_BASE'",
        )


def check_integration(path: Path) -> Report:
    """Every check, on the integration folder at path."""
    report = Report()
    check_manifest(path, report)
    check_json_files(path, report)
    check_config_schema(path, report)
    check_translations(path, report)
    check_icons(path, report)
    en_file = path / "translations" / "en.json"
    en = json.loads(en_file.read_text(encoding="utf-8")) if en_file.is_file() else {}
    check_services(path, en if isinstance(en, dict) else {}, report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--integration-path", type=Path, default=INTEGRATION_PATH)
    args = parser.parse_args(argv)
    report = check_integration(args.integration_path)
    for message in report.errors:
        print(f"* [ERROR] {message}")
    for message in report.warnings:
        print(f"* [WARNING] {message}")
    if report.errors:
        print(f"hassfest rules: {len(report.errors)} error(s)")
        return 1
    print("hassfest rules (manifest, translations, services, icons, JSON): OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
