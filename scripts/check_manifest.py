#!/usr/bin/env python3
"""Check the integration's metadata the way hassfest and the HACS action do.

Checks manifest.json, hacs.json, the custom_components/ layout, the
translations (and that every key the code uses exists), icons.json and
quality_scale.yaml. Prints every problem found; exits 1 if there is any.

Standard library only. Every check takes the path it works on, so that it can
be run against any tree:

    python scripts/check_manifest.py [--root PATH]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
import json
from pathlib import Path
import re
import sys
from typing import Any
from urllib.parse import urlparse

DOMAIN = "ttn_gateway"
REPO_ROOT = Path(__file__).resolve().parent.parent
INTEGRATION_DIR = REPO_ROOT / "custom_components" / DOMAIN

# --------------------------------------------------------------------------
# manifest.json
# --------------------------------------------------------------------------

MANIFEST_REQUIRED_KEYS = (
    "domain",
    "name",
    "codeowners",
    "documentation",
    "iot_class",
    "version",
    "issue_tracker",
)
MANIFEST_ALLOWED_KEYS = frozenset(
    {
        "after_dependencies",
        "bluetooth",
        "codeowners",
        "config_flow",
        "dependencies",
        "dhcp",
        "disabled",
        "documentation",
        "domain",
        "homekit",
        "import_executor",
        "integration_type",
        "iot_class",
        "issue_tracker",
        "loggers",
        "mqtt",
        "name",
        "preview_features",
        "quality_scale",
        "requirements",
        "single_config_entry",
        "ssdp",
        "usb",
        "version",
        "zeroconf",
    }
)
IOT_CLASSES = frozenset(
    {
        "assumed_state",
        "calculated",
        "cloud_polling",
        "cloud_push",
        "local_polling",
        "local_push",
    }
)
INTEGRATION_TYPES = frozenset(
    {
        "device",
        "entity",
        "hardware",
        "helper",
        "hub",
        "service",
        "system",
        "virtual",
    }
)
# Components that are always set up, or are entity platforms / helpers whose
# import needs no entry in dependencies or after_dependencies.
ALWAYS_AVAILABLE_COMPONENTS = frozenset(
    {
        "binary_sensor",
        "button",
        "device_automation",
        "diagnostics",
        "event",
        "homeassistant",
        "http",
        "notify",
        "number",
        "persistent_notification",
        "repairs",
        "select",
        "sensor",
        "switch",
        "system_health",
        "websocket_api",
    }
)
HA_DOCS_PREFIX = "https://www.home-assistant.io/integrations"
# 1.2.3, 2025.4.0, 1.0.0b1, 1.0.0-beta.1, 0.1.0.dev3, ...
VERSION_RE = re.compile(
    r"^\d+(?:\.\d+)*(?:[-.]?(?:a|b|rc|alpha|beta|pre|dev|post)\.?\d*)?$"
)

# --------------------------------------------------------------------------
# hacs.json
# --------------------------------------------------------------------------

HACS_ALLOWED_KEYS = frozenset(
    {
        "content_in_root",
        "country",
        "filename",
        "hacs",
        "hide_default_branch",
        "homeassistant",
        "name",
        "persistent_directory",
        "render_readme",
        "zip_release",
    }
)
HACS_BOOL_KEYS = frozenset(
    {"content_in_root", "hide_default_branch", "render_readme", "zip_release"}
)
HACS_STRING_KEYS = frozenset(
    {"filename", "hacs", "homeassistant", "name", "persistent_directory"}
)

# --------------------------------------------------------------------------
# quality_scale.yaml
# --------------------------------------------------------------------------

QUALITY_SCALE_TIERS: dict[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow-test-coverage",
        "config-flow",
        "dependency-transparency",
        "docs-actions",
        "docs-triggers",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery-update-info",
        "discovery",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "platinum": (
        "async-dependency",
        "inject-websession",
        "strict-typing",
    ),
}
QUALITY_SCALE_RULES: tuple[str, ...] = tuple(
    rule for rules in QUALITY_SCALE_TIERS.values() for rule in rules
)
QUALITY_SCALE_STATUSES = frozenset({"done", "exempt", "todo"})

# --------------------------------------------------------------------------
# Source scanning
# --------------------------------------------------------------------------

_STR = r"""["']([^"'\\\n]+)["']"""
COMPONENT_IMPORT_RES = (
    re.compile(r"^\s*from\s+homeassistant\.components\.(\w+)", re.MULTILINE),
    re.compile(r"^\s*import\s+homeassistant\.components\.(\w+)", re.MULTILINE),
)
COMPONENT_FROM_IMPORT_RE = re.compile(
    r"^\s*from\s+homeassistant\.components\s+import\s+(\([^)]*\)|[^\n]+)",
    re.MULTILINE,
)
# translation_key="x", _attr_translation_key = "x", ...: str | None = "x"
TRANSLATION_KEY_RE = re.compile(
    r"(?<!\w)(?:_attr_)?translation_key\s*(?::[^=\n]+)?=\s*" + _STR
)
FLOW_CLASS_RE = re.compile(r"^class\s+\w+\s*\(([^)]*)\)\s*:", re.MULTILINE)
FLOW_ERROR_RES = (
    re.compile(r"\berrors\s*\[[^\]\n]+\]\s*=\s*" + _STR),
    re.compile(r"\berrors\s*=\s*\{\s*" + _STR + r"\s*:\s*" + _STR),
    # Validation errors raised as FlowError("key", ...) and shown as form errors.
    re.compile(r"\bFlowError\(\s*" + _STR),
)
FLOW_ABORT_RES = (
    re.compile(r"\breason\s*=\s*" + _STR),
    re.compile(r"\bAbortFlow\(\s*" + _STR),
)
FLOW_STEP_RE = re.compile(r"\bstep_id\s*=\s*" + _STR)
PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")


@dataclass
class QualityRule:
    """One rule entry of quality_scale.yaml."""

    status: str | None = None
    comment: str = ""
    line: int = 0


def _rel(path: Path, root: Path) -> str:
    """Return path relative to root for messages, or as is if outside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def load_json(path: Path, root: Path) -> tuple[Any, list[str]]:
    """Load a JSON file; return (data, problems). data is None on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        return None, [f"{_rel(path, root)}: cannot read: {err}"]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as err:
        return None, [f"{_rel(path, root)}: invalid JSON: {err}"]


def python_sources(integration: Path) -> dict[Path, str]:
    """Return the text of every .py file of the integration."""
    return {
        path: path.read_text(encoding="utf-8")
        for path in sorted(integration.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def imported_components(source: str) -> set[str]:
    """Return every homeassistant.components.X that source imports."""
    found: set[str] = set()
    for regex in COMPONENT_IMPORT_RES:
        found.update(regex.findall(source))
    for match in COMPONENT_FROM_IMPORT_RE.finditer(source):
        names = match.group(1).split("#", 1)[0].strip("()\n \\")
        for raw in re.split(r"[,\n]", names):
            item = raw.split("#", 1)[0].strip(" ()\\")
            if item:
                found.add(item.split()[0])
    return found


def _is_https_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme == "https" and bool(parsed.netloc)


def _string_list_problems(where: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [f"{where}: '{key}' must be a list of strings"]
    return []


def check_manifest(integration: Path, root: Path) -> list[str]:
    """Check custom_components/<domain>/manifest.json."""
    path = integration / "manifest.json"
    where = _rel(path, root)
    if not path.is_file():
        return [f"{where}: missing"]
    manifest, problems = load_json(path, root)
    if problems:
        return problems
    if not isinstance(manifest, dict):
        return [f"{where}: must be a JSON object"]

    problems.extend(
        f"{where}: missing required key '{key}'"
        for key in MANIFEST_REQUIRED_KEYS
        if key not in manifest
    )
    problems.extend(
        f"{where}: unknown key '{key}'"
        for key in manifest
        if key not in MANIFEST_ALLOWED_KEYS
    )

    keys = list(manifest)
    head = [key for key in ("domain", "name") if key in manifest]
    expected = head + sorted(key for key in keys if key not in head)
    if keys != expected:
        problems.append(
            f"{where}: keys must be ordered domain, name, then alphabetically; "
            f"expected {expected}, found {keys}"
        )

    if "domain" in manifest and manifest["domain"] != integration.name:
        problems.append(
            f"{where}: domain {manifest['domain']!r} does not match "
            f"the directory name {integration.name!r}"
        )
    if "name" in manifest and (
        not isinstance(manifest["name"], str) or not manifest["name"].strip()
    ):
        problems.append(f"{where}: 'name' must be a non-empty string")

    for key in ("documentation", "issue_tracker"):
        if key in manifest and not _is_https_url(manifest[key]):
            problems.append(f"{where}: '{key}' must be an https:// URL")
    documentation = manifest.get("documentation")
    if isinstance(documentation, str) and documentation.startswith(HA_DOCS_PREFIX):
        problems.append(
            f"{where}: 'documentation' must point to this integration's own "
            f"documentation, not {HA_DOCS_PREFIX}"
        )

    if "version" in manifest and not (
        isinstance(manifest["version"], str) and VERSION_RE.match(manifest["version"])
    ):
        problems.append(
            f"{where}: 'version' {manifest['version']!r} is not a valid version"
        )
    if "iot_class" in manifest and manifest["iot_class"] not in IOT_CLASSES:
        problems.append(
            f"{where}: 'iot_class' {manifest['iot_class']!r} is not one of "
            f"{sorted(IOT_CLASSES)}"
        )
    if (
        "integration_type" in manifest
        and manifest["integration_type"] not in INTEGRATION_TYPES
    ):
        problems.append(
            f"{where}: 'integration_type' {manifest['integration_type']!r} is not "
            f"one of {sorted(INTEGRATION_TYPES)}"
        )

    codeowners = manifest.get("codeowners")
    if "codeowners" in manifest:
        problems.extend(_string_list_problems(where, "codeowners", codeowners))
        if isinstance(codeowners, list):
            problems.extend(
                f"{where}: codeowner {owner!r} must start with '@'"
                for owner in codeowners
                if isinstance(owner, str) and not owner.startswith("@")
            )

    problems.extend(
        f"{where}: requirement {requirement!r} must be pinned with '=='"
        for requirement in manifest.get("requirements") or []
        if not isinstance(requirement, str) or "==" not in requirement
    )

    has_config_flow = (integration / "config_flow.py").is_file()
    if manifest.get("config_flow") is True and not has_config_flow:
        problems.append(f"{where}: 'config_flow' is true but config_flow.py is missing")
    if has_config_flow and manifest.get("config_flow") is not True:
        problems.append(f"{where}: config_flow.py exists but 'config_flow' is not true")

    declared: set[str] = set()
    for key in ("dependencies", "after_dependencies"):
        if key in manifest:
            value = manifest[key]
            problems.extend(_string_list_problems(where, key, value))
            if isinstance(value, list):
                declared.update(v for v in value if isinstance(v, str))

    for source_path, source in python_sources(integration).items():
        problems.extend(
            f"{_rel(source_path, root)}: imports homeassistant.components."
            f"{component} but '{component}' is not in the manifest's "
            "dependencies or after_dependencies"
            for component in sorted(imported_components(source))
            if component not in ALWAYS_AVAILABLE_COMPONENTS
            and component not in declared
            and component != integration.name
        )
    return problems


def check_hacs(root: Path) -> list[str]:
    """Check hacs.json at the repository root."""
    path = root / "hacs.json"
    where = _rel(path, root)
    if not path.is_file():
        return [f"{where}: missing"]
    data, problems = load_json(path, root)
    if problems:
        return problems
    if not isinstance(data, dict):
        return [f"{where}: must be a JSON object"]

    if not isinstance(data.get("name"), str) or not data["name"].strip():
        problems.append(f"{where}: 'name' is required and must be a non-empty string")
    problems.extend(
        f"{where}: unknown key '{key}' (HACS allows {sorted(HACS_ALLOWED_KEYS)})"
        for key in data
        if key not in HACS_ALLOWED_KEYS
    )
    problems.extend(
        f"{where}: '{key}' must be true or false"
        for key in sorted(HACS_BOOL_KEYS)
        if key in data and not isinstance(data[key], bool)
    )
    problems.extend(
        f"{where}: '{key}' must be a string"
        for key in sorted(HACS_STRING_KEYS - {"name"})
        if key in data and not isinstance(data[key], str)
    )
    if "country" in data:
        country = data["country"]
        if not isinstance(country, str) and not (
            isinstance(country, list) and all(isinstance(c, str) for c in country)
        ):
            problems.append(f"{where}: 'country' must be a string or list of strings")
    if data.get("zip_release") is True and not data.get("filename"):
        problems.append(f"{where}: 'zip_release' requires 'filename'")
    for key in ("homeassistant", "hacs"):
        value = data.get(key)
        if isinstance(value, str) and not VERSION_RE.match(value):
            problems.append(f"{where}: '{key}' {value!r} is not a valid version")
    return problems


def check_layout(root: Path, domain: str = DOMAIN) -> list[str]:
    """Check that custom_components/ holds exactly the integration directory."""
    base = root / "custom_components"
    if not base.is_dir():
        return ["custom_components/: missing"]
    dirs = sorted(
        path.name
        for path in base.iterdir()
        if path.is_dir()
        and path.name != "__pycache__"
        and not path.name.startswith(".")
    )
    if dirs != [domain]:
        return [
            f"custom_components/: must contain exactly one directory, "
            f"{domain!r}; found {dirs}"
        ]
    return []


def flatten(data: object, prefix: str = "") -> dict[str, object]:
    """Flatten nested dicts into {"a.b.c": leaf}."""
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, object] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def key_paths(data: object) -> set[str]:
    """Return every dotted path in data: the leaves and the nodes above them."""
    paths: set[str] = set()
    for leaf in flatten(data):
        parts = leaf.split(".")
        paths.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return paths


def load_translations(
    integration: Path, root: Path
) -> tuple[dict[str, Any], list[str]]:
    """Load every translations/*.json; return ({language: data}, problems)."""
    languages: dict[str, Any] = {}
    problems: list[str] = []
    for path in sorted((integration / "translations").glob("*.json")):
        data, load_problems = load_json(path, root)
        problems.extend(load_problems)
        if load_problems:
            continue
        if not isinstance(data, dict):
            problems.append(f"{_rel(path, root)}: must be a JSON object")
            continue
        languages[path.stem] = data
    return languages, problems


def check_translations(integration: Path, root: Path) -> list[str]:
    """Check translations/*.json against translations/en.json."""
    translations_dir = integration / "translations"
    needs_en = translations_dir.is_dir() or (integration / "config_flow.py").is_file()
    languages, problems = load_translations(integration, root)
    en = languages.get("en")
    if en is None:
        if needs_en and not (translations_dir / "en.json").is_file():
            problems.append(f"{_rel(translations_dir / 'en.json', root)}: missing")
        return problems

    en_flat = flatten(en)
    en_where = _rel(translations_dir / "en.json", root)
    for key, value in sorted(en_flat.items()):
        if not isinstance(value, str):
            problems.append(f"{en_where}: '{key}' must be a string")
        elif "[%key:" in value:
            problems.append(
                f"{en_where}: '{key}' uses a [%key:...%] reference, which Home "
                "Assistant does not resolve for custom integrations"
            )

    for language, data in sorted(languages.items()):
        if language == "en":
            continue
        where = _rel(translations_dir / f"{language}.json", root)
        flat = flatten(data)
        missing = sorted(set(en_flat) - set(flat))
        extra = sorted(set(flat) - set(en_flat))
        if missing:
            problems.append(f"{where}: missing keys: {', '.join(missing)}")
        if extra:
            problems.append(f"{where}: keys not in en.json: {', '.join(extra)}")
        for key, en_value in sorted(en_flat.items()):
            value = flat.get(key)
            if not isinstance(en_value, str) or not isinstance(value, str):
                continue
            wanted = set(PLACEHOLDER_RE.findall(en_value))
            found = set(PLACEHOLDER_RE.findall(value))
            if wanted != found:
                problems.append(
                    f"{where}: '{key}' has placeholders {sorted(found)}, "
                    f"en.json has {sorted(wanted)}"
                )
    return problems


def _flow_kind(source: str, position: int) -> str | None:
    """Return "config" or "options" for the flow class around position.

    None for code outside a flow class and for subentry flows, whose
    strings live elsewhere.
    """
    kind: str | None = None
    for match in FLOW_CLASS_RE.finditer(source):
        if match.start() > position:
            break
        bases = match.group(1)
        if "SubentryFlow" in bases:
            kind = None
        elif "OptionsFlow" in bases:
            kind = "options"
        elif "ConfigFlow" in bases:
            kind = "config"
        else:
            kind = None
    return kind


def _is_flow_source(source: str) -> bool:
    return any(
        "ConfigFlow" in match.group(1) or "OptionsFlow" in match.group(1)
        for match in FLOW_CLASS_RE.finditer(source)
    )


def _iter_matches(
    regexes: Iterable[re.Pattern[str]], source: str, group: int = -1
) -> Iterator[tuple[int, str]]:
    for regex in regexes:
        for match in regex.finditer(source):
            index = regex.groups if group == -1 else group
            yield match.start(), match.group(index)


def translation_usage_problems(
    sources: dict[Path, str], en: dict[str, Any], root: Path
) -> list[str]:
    """Check that every translation key the code uses exists in en.json."""
    paths = key_paths(en)
    entity_keys = {
        path.split(".", 2)[2]
        for path in paths
        if path.startswith("entity.") and path.count(".") == 2  # noqa: PLR2004
    }
    problems: list[str] = []

    def need(where: str, usage: str, candidates: Sequence[str]) -> None:
        if not any(candidate in paths for candidate in candidates):
            problems.append(
                f"{where}: {usage} is not in translations/en.json "
                f"(expected {' or '.join(candidates)})"
            )

    for path, source in sources.items():
        where = _rel(path, root)
        for key in sorted(set(TRANSLATION_KEY_RE.findall(source))):
            if key not in entity_keys:
                need(
                    where,
                    f'translation_key="{key}"',
                    (
                        f"entity.<platform>.{key}",
                        f"exceptions.{key}",
                        f"issues.{key}",
                        f"selector.{key}",
                    ),
                )

        if not (path.name == "config_flow.py" or _is_flow_source(source)):
            continue
        used: set[tuple[str, str, str]] = set()
        for pos, key in _iter_matches(FLOW_ERROR_RES, source):
            used.add((_flow_kind(source, pos) or "config", "error", key))
        for pos, key in _iter_matches(FLOW_ABORT_RES, source):
            used.add((_flow_kind(source, pos) or "config", "abort", key))
        for pos, key in _iter_matches((FLOW_STEP_RE,), source):
            kind = _flow_kind(source, pos)
            used.add((kind or "config", "step", key))
        if "_abort_if_unique_id_configured" in source:
            used.add(("config", "abort", "already_configured"))
        if re.search(r"_abort_if_unique_id_mismatch\(\s*\)", source):
            used.add(("config", "abort", "unique_id_mismatch"))
        if "async_step_reauth" in source:
            used.add(("config", "abort", "reauth_successful"))
        if "async_step_reconfigure" in source:
            used.add(("config", "abort", "reconfigure_successful"))
        for kind, section, key in sorted(used):
            need(where, f"{section} {key!r}", (f"{kind}.{section}.{key}",))
    return problems


def check_translation_usage(integration: Path, root: Path) -> list[str]:
    """Check that the keys used by the code exist in translations/en.json."""
    languages, _ = load_translations(integration, root)
    return translation_usage_problems(
        python_sources(integration), languages.get("en", {}), root
    )


def check_icons(integration: Path, root: Path) -> list[str]:
    """Check icons.json: valid JSON; its entity keys exist in en.json."""
    path = integration / "icons.json"
    if not path.is_file():
        return []
    where = _rel(path, root)
    icons, problems = load_json(path, root)
    if problems:
        return problems
    if not isinstance(icons, dict):
        return [f"{where}: must be a JSON object"]
    languages, _ = load_translations(integration, root)
    en_paths = key_paths(languages.get("en", {}))
    entity = icons.get("entity", {})
    if not isinstance(entity, dict):
        return [f"{where}: 'entity' must be an object"]
    for platform, keys in sorted(entity.items()):
        if not isinstance(keys, dict):
            problems.append(f"{where}: 'entity.{platform}' must be an object")
            continue
        problems.extend(
            f"{where}: 'entity.{platform}.{key}' has no translation "
            f"(entity.{platform}.{key} is not in translations/en.json)"
            for key in sorted(keys)
            if f"entity.{platform}.{key}" not in en_paths
        )
    return problems


def _strip_scalar(value: str) -> str:
    """Strip a trailing comment and quotes from a YAML scalar."""
    value = value.strip()
    if value[:1] in {'"', "'"}:
        quote = value[0]
        end = value.find(quote, 1)
        return value[1:end] if end != -1 else value[1:]
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def parse_quality_scale(text: str) -> tuple[dict[str, QualityRule], list[str]]:
    """Parse quality_scale.yaml with a small line-based parser.

    Understands:

        rules:
          rule-id: done
          other-rule:
            status: exempt
            comment: Why it does not apply (or "|" / ">" and indented lines).

    Returns ({rule id: rule}, problems).
    """
    rules: dict[str, QualityRule] = {}
    problems: list[str] = []
    seen_rules_key = False
    in_rules = False
    rule_indent: int | None = None  # indentation of the rule ids
    current: QualityRule | None = None
    text_indent: int | None = None  # set while reading comment continuation lines

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        indent = _indent(line)
        if text_indent is not None and current is not None:
            if not stripped:
                continue
            if indent > text_indent:
                current.comment = f"{current.comment} {stripped}".strip()
                continue
            text_indent = None
        if not stripped or stripped.startswith("#"):
            continue
        if indent == 0:
            current = None
            in_rules = _strip_scalar(stripped) == "rules:"
            seen_rules_key = seen_rules_key or in_rules
            if not in_rules:
                problems.append(
                    f"line {number}: unexpected top-level entry {stripped!r}"
                )
            continue
        if not in_rules:
            continue
        key, sep, value = stripped.partition(":")
        if not sep:
            problems.append(f"line {number}: cannot parse {stripped!r}")
            continue
        key = key.strip()
        if rule_indent is None:
            rule_indent = indent
        if indent == rule_indent:
            if key in rules:
                problems.append(f"line {number}: rule {key!r} is listed twice")
            current = QualityRule(status=_strip_scalar(value) or None, line=number)
            rules[key] = current
        elif indent < rule_indent or current is None:
            problems.append(f"line {number}: bad indentation of {stripped!r}")
        elif key == "status":
            current.status = _strip_scalar(value) or None
        elif key == "comment":
            value = value.strip()
            block = value[:1] in {"|", ">"}
            current.comment = "" if block else _strip_scalar(value)
            text_indent = indent
        else:
            problems.append(f"line {number}: unknown field {key!r}")

    if not seen_rules_key:
        problems.append("no top-level 'rules:' mapping")
    return rules, problems


def check_quality_scale(integration: Path, root: Path) -> list[str]:
    """Check quality_scale.yaml (if present) lists every rule correctly."""
    path = integration / "quality_scale.yaml"
    if not path.is_file():
        return []
    where = _rel(path, root)
    rules, parse_problems = parse_quality_scale(path.read_text(encoding="utf-8"))
    problems = [f"{where}: {problem}" for problem in parse_problems]
    problems.extend(
        f"{where}: missing rule '{rule}'"
        for rule in QUALITY_SCALE_RULES
        if rule not in rules
    )
    for rule_id, rule in rules.items():
        if rule_id not in QUALITY_SCALE_RULES:
            problems.append(f"{where}: line {rule.line}: unknown rule '{rule_id}'")
        if rule.status not in QUALITY_SCALE_STATUSES:
            problems.append(
                f"{where}: line {rule.line}: rule '{rule_id}' has status "
                f"{rule.status!r}; expected one of {sorted(QUALITY_SCALE_STATUSES)}"
            )
        elif rule.status == "exempt" and not rule.comment:
            problems.append(
                f"{where}: line {rule.line}: rule '{rule_id}' is exempt "
                "without a comment saying why"
            )
    return problems


def check_all(root: Path, domain: str = DOMAIN) -> list[str]:
    """Run every check against the repository at root."""
    integration = root / "custom_components" / domain
    problems = check_layout(root, domain)
    if not integration.is_dir():
        return problems
    problems.extend(check_manifest(integration, root))
    problems.extend(check_hacs(root))
    problems.extend(check_translations(integration, root))
    problems.extend(check_translation_usage(integration, root))
    problems.extend(check_icons(integration, root))
    problems.extend(check_quality_scale(integration, root))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks and print the problems; return the exit code."""
    parser = argparse.ArgumentParser(
        description="Check manifest.json, hacs.json, translations and quality scale."
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="repository root to check (default: this repository)",
    )
    args = parser.parse_args(argv)
    problems = check_all(args.root)
    for problem in problems:
        print(f"error: {problem}")
    if problems:
        print(f"{len(problems)} problem(s) found.")
        return 1
    print("manifest.json, hacs.json, translations, icons and quality scale: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
