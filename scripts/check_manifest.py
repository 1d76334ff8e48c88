#!/usr/bin/env python3
"""Check the integration's metadata where hassfest and the HACS action do not.

hassfest and the HACS action (.github/workflows/validate.yml) check the schema
of manifest.json, hacs.json, translations/en.json, icons.json and
services.yaml, the dependencies and the repository layout; hassfest skips
quality_scale.yaml for custom integrations. This script checks, offline:

- every translations/*.json has exactly en.json's keys and placeholders;
- every translation_key the code uses exists in en.json, and every entity
  translation in en.json is used by the code;
- icons.json names only entities and services that en.json has;
- quality_scale.yaml names only known rules, each done, todo or exempt, and
  every exempt or todo rule says why in a comment;
- services.yaml (if present) and en.json describe the same services and fields;
- the manifest's requirements are pinned with == and requirements_test.txt and
  requirements_test_newest.txt pin them the same.

Prints every problem found; exits 1 if there is any.

    python scripts/check_manifest.py [--root PATH]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
from pathlib import Path
import re
import sys
from typing import Any

import yaml

DOMAIN = "ttn_gateway"
REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_FILES = ("requirements_test.txt", "requirements_test_newest.txt")

# Home Assistant's quality scale rules, bronze to platinum.
QUALITY_SCALE_RULES = frozenset(
    """
    action-setup appropriate-polling brands common-modules
    config-flow-test-coverage config-flow dependency-transparency docs-actions
    docs-conditions docs-high-level-description docs-installation-instructions
    docs-removal-instructions docs-triggers entity-event-setup entity-unique-id
    has-entity-name runtime-data test-before-configure test-before-setup
    unique-config-entry
    action-exceptions config-entry-unloading docs-configuration-parameters
    docs-installation-parameters entity-unavailable integration-owner
    log-when-unavailable parallel-updates reauthentication-flow test-coverage
    devices diagnostics discovery-update-info discovery docs-data-update
    docs-examples docs-known-limitations docs-supported-devices
    docs-supported-functions docs-troubleshooting docs-use-cases dynamic-devices
    entity-category entity-device-class entity-disabled-by-default
    entity-translations exception-translations icon-translations
    reconfiguration-flow repair-issues stale-devices
    async-dependency inject-websession strict-typing
    """.split()  # noqa: SIM905 - a word list reads better than 54 quoted lines
)
QUALITY_SCALE_STATUSES = ("done", "todo", "exempt")

# translation_key="x", translation_key=SOME_CONSTANT, translation_key: str = "x"
TRANSLATION_KEY_RE = re.compile(
    r"""(?<!\w)(?:_attr_)?translation_key\s*(?::[^=\n]+)?=\s*"""
    r"""(?:["']([^"'\\\n]+)["']|([A-Z][A-Z0-9_]*)\b)"""
)
# Module-level string constants, to resolve translation_key=SOME_CONSTANT.
CONSTANT_RE = re.compile(
    r"""^([A-Z][A-Z0-9_]*)\s*(?::[^=\n]+)?=\s*["']([^"'\\\n]+)["']""", re.MULTILINE
)
# Any short snake_case string literal: an entity translation in en.json counts as
# used when the code names it, also through a helper's positional argument.
LITERAL_RE = re.compile(r"""["']([a-z0-9_]+)["']""")
PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")
# Sections of en.json whose entries are looked up by a translation_key.
KEYED_SECTIONS = ("exceptions", "issues", "selector")


def load_json(path: Path) -> tuple[Any, list[str]]:
    """Load a JSON file; return (data, problems). data is None on failure."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), []
    except (OSError, json.JSONDecodeError) as err:
        return None, [f"{path.name}: cannot load: {err}"]


def flatten(data: object, prefix: str = "") -> dict[str, object]:
    """Flatten nested dicts into {"a.b.c": leaf}."""
    if not isinstance(data, dict) or (prefix and not data):
        return {prefix: data}
    flat: dict[str, object] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _section(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Return data[k1][k2]..., or {} where any level is missing or not a dict."""
    for key in keys:
        value = data.get(key)
        data = value if isinstance(value, dict) else {}
    return data


def check_translations(languages: dict[str, Any]) -> list[str]:
    """Every language has en.json's keys, and the same placeholders per string."""
    en = flatten(languages["en"])
    problems: list[str] = []
    for language, data in sorted(languages.items()):
        if language == "en":
            continue
        where = f"translations/{language}.json"
        flat = flatten(data)
        if missing := sorted(set(en) - set(flat)):
            problems.append(f"{where}: missing keys: {', '.join(missing)}")
        if extra := sorted(set(flat) - set(en)):
            problems.append(f"{where}: keys not in en.json: {', '.join(extra)}")
        for key in sorted(set(en) & set(flat)):
            wanted = set(PLACEHOLDER_RE.findall(str(en[key])))
            found = set(PLACEHOLDER_RE.findall(str(flat[key])))
            if wanted != found:
                problems.append(
                    f"{where}: '{key}' has placeholders {sorted(found)}, "
                    f"en.json has {sorted(wanted)}"
                )
    return problems


def used_translation_keys(sources: dict[str, str]) -> dict[str, set[str]]:
    """Return {translation_key: files using it} for every key in the code."""
    constants: dict[str, str] = {}
    for source in sources.values():
        constants.update(CONSTANT_RE.findall(source))
    used: dict[str, set[str]] = {}
    for where, source in sources.items():
        for literal, name in TRANSLATION_KEY_RE.findall(source):
            key = literal or constants.get(name)
            if key:  # a constant defined elsewhere (e.g. Home Assistant's)
                used.setdefault(key, set()).add(where)
    return used


def check_translation_usage(sources: dict[str, str], en: dict[str, Any]) -> list[str]:
    """Used keys exist in en.json; en.json's entity translations are used."""
    used = used_translation_keys(sources)
    entity_keys = {
        key
        for platform in _section(en, "entity").values()
        if isinstance(platform, dict)
        for key in platform
    }
    known = entity_keys.union(*(_section(en, s) for s in KEYED_SECTIONS))
    known.update(_section(en, "services"))
    problems = [
        f"{where}: translation_key '{key}' is not in translations/en.json "
        f"(entity.<platform>, {', '.join(KEYED_SECTIONS)} or services)"
        for key, files in sorted(used.items())
        if key not in known
        for where in sorted(files)
    ]
    literals = {
        key for source in sources.values() for key in LITERAL_RE.findall(source)
    }
    problems.extend(
        f"translations/en.json: entity.{platform}.{key} is not used by the code"
        for platform, keys in sorted(_section(en, "entity").items())
        for key in sorted(keys)
        if key not in used and key not in literals
    )
    return problems


def check_icons(icons: dict[str, Any], en: dict[str, Any]) -> list[str]:
    """icons.json names only entities and services that en.json has."""
    problems = [
        f"icons.json: entity.{platform}.{key} is not in translations/en.json"
        for platform, keys in sorted(_section(icons, "entity").items())
        for key in sorted(keys)
        if key not in _section(en, "entity", platform)
    ]
    problems.extend(
        f"icons.json: services.{service} is not in translations/en.json"
        for service in sorted(_section(icons, "services"))
        if service not in _section(en, "services")
    )
    return problems


def check_quality_scale(data: Any) -> list[str]:
    """Known rules only; each done/todo/exempt; exempt and todo say why."""
    rules = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(rules, dict):
        return ["quality_scale.yaml: no 'rules' mapping"]
    problems: list[str] = []
    for rule, entry in rules.items():
        where = f"quality_scale.yaml: rule '{rule}'"
        if rule not in QUALITY_SCALE_RULES:
            problems.append(f"{where} is not a known rule")
        status = entry.get("status") if isinstance(entry, dict) else entry
        comment = entry.get("comment") if isinstance(entry, dict) else None
        if status not in QUALITY_SCALE_STATUSES:
            problems.append(
                f"{where} has status {status!r}; expected one of "
                f"{', '.join(QUALITY_SCALE_STATUSES)}"
            )
        elif status != "done" and not (isinstance(comment, str) and comment.strip()):
            problems.append(f"{where} is {status} without a comment saying why")
    return problems


def check_services(services: Any, en: dict[str, Any]) -> list[str]:
    """services.yaml and en.json describe the same services and fields."""
    yaml_fields = {
        f"{service}.{field}"
        for service, spec in (services or {}).items()
        for field in _section(spec if isinstance(spec, dict) else {}, "fields")
    }
    en_services = _section(en, "services")
    en_fields = {
        f"{service}.{field}"
        for service in en_services
        for field in _section(en_services, service, "fields")
    }
    problems = [
        f"services.yaml: service '{service}' has no translation in en.json"
        for service in sorted(set(services or {}) - set(en_services))
    ]
    problems.extend(
        f"translations/en.json: services.{service} is not in services.yaml"
        for service in sorted(set(en_services) - set(services or {}))
    )
    problems.extend(
        f"services.yaml: field '{field}' has no translation in en.json"
        for field in sorted(yaml_fields - en_fields)
    )
    problems.extend(
        f"translations/en.json: field '{field}' is not in services.yaml"
        for field in sorted(en_fields - yaml_fields)
    )
    return problems


def _requirement_name(requirement: str) -> str:
    name = re.split(r"[=<>!~\[;\s]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def check_requirements(manifest: dict[str, Any], root: Path) -> list[str]:
    """Manifest requirements are pinned with == and pinned the same for tests."""
    requirements = manifest.get("requirements") or []
    problems = [
        f"manifest.json: requirement '{req}' must be pinned with '=='"
        for req in requirements
        if "==" not in req
    ]
    for filename in REQUIREMENTS_FILES:
        try:
            lines = (root / filename).read_text(encoding="utf-8").splitlines()
        except OSError:
            problems.append(f"{filename}: missing")
            continue
        pins: dict[str, str] = {}
        for raw in lines:
            line = raw.split("#", 1)[0].replace(" ", "")
            if line and not line.startswith("-"):
                pins[_requirement_name(line)] = line
        for req in requirements:
            found = pins.get(_requirement_name(req))
            if found != req.replace(" ", ""):
                problems.append(
                    f"{filename}: must pin '{req}' as manifest.json does "
                    f"(found {found or 'nothing'})"
                )
    return problems


def check_all(root: Path, domain: str = DOMAIN) -> list[str]:
    """Run every check against the repository at root."""
    integration = root / "custom_components" / domain
    languages: dict[str, Any] = {}
    problems: list[str] = []
    for path in sorted((integration / "translations").glob("*.json")):
        data, load_problems = load_json(path)
        problems.extend(load_problems)
        if isinstance(data, dict):
            languages[path.stem] = data
    if "en" not in languages:
        return [*problems, "translations/en.json: missing or not a JSON object"]
    en = languages["en"]
    problems.extend(check_translations(languages))
    sources = {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(integration.rglob("*.py"))
    }
    problems.extend(check_translation_usage(sources, en))
    if (integration / "icons.json").is_file():
        icons, load_problems = load_json(integration / "icons.json")
        problems.extend(load_problems)
        problems.extend(check_icons(icons if isinstance(icons, dict) else {}, en))
    for name, check in (
        ("quality_scale.yaml", check_quality_scale),
        ("services.yaml", lambda data: check_services(data, en)),
    ):
        if (integration / name).is_file():
            with (integration / name).open(encoding="utf-8") as file:
                problems.extend(check(yaml.safe_load(file)))
    manifest, load_problems = load_json(integration / "manifest.json")
    problems.extend(load_problems)
    if isinstance(manifest, dict):
        problems.extend(check_requirements(manifest, root))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks and print the problems; return the exit code."""
    parser = argparse.ArgumentParser(
        description="Check translations, icons, quality scale and requirements."
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
