"""Tests for scripts/check_manifest.py, run against small temporary trees."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scripts import check_manifest as cm

EN: dict[str, Any] = {
    "entity": {"sensor": {"uplink_count": {"name": "Uplinks"}}},
    "exceptions": {"communication_error": {"message": "Error: {error}"}},
    "issues": {"no_rights": {"title": "No rights", "description": "Add {right}"}},
}
DE: dict[str, Any] = {
    "entity": {"sensor": {"uplink_count": {"name": "Uplinks"}}},
    "exceptions": {"communication_error": {"message": "Fehler: {error}"}},
    "issues": {"no_rights": {"title": "Keine Rechte", "description": "{right}"}},
}
SENSOR_PY = """
ISSUE_NO_RIGHTS = "no_rights"
DESCRIPTION = SensorEntityDescription(key="up", translation_key="uplink_count")
ir.async_create_issue(hass, DOMAIN, "id", translation_key=ISSUE_NO_RIGHTS)
raise HomeAssistantError(translation_key="communication_error")
"""
QUALITY_SCALE = """\
rules:
  config-flow: done
  action-setup:
    status: exempt
    comment: No service actions.
  strict-typing:
    status: todo
    comment: |
      Not yet.
"""
REQUIREMENTS = "pytest==8\naiomqtt==2.5.1  # the MQTT client\n"


def build(
    root: Path,
    *,
    en: dict[str, Any] | None = None,
    de: dict[str, Any] | None = None,
    code: str = SENSOR_PY,
    files: dict[str, str] | None = None,
) -> Path:
    """Write a passing tree under root, with the given parts replaced."""
    integration = root / "custom_components" / cm.DOMAIN
    (integration / "translations").mkdir(parents=True)
    parts = {
        "translations/en.json": json.dumps(EN if en is None else en),
        "translations/de.json": json.dumps(DE if de is None else de),
        "sensor.py": code,
        "manifest.json": json.dumps({"requirements": ["aiomqtt==2.5.1"]}),
        "icons.json": json.dumps({"entity": {"sensor": {"uplink_count": {}}}}),
        "quality_scale.yaml": QUALITY_SCALE,
        **(files or {}),
    }
    for name, text in parts.items():
        (integration / name).write_text(text, encoding="utf-8")
    for name in cm.REQUIREMENTS_FILES:
        (root / name).write_text(REQUIREMENTS, encoding="utf-8")
    return root


def test_good_tree_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cm.main(["--root", str(build(tmp_path))]) == 0
    assert capsys.readouterr().out.strip().endswith(": OK")


def test_main_reports_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(tmp_path, de={})
    assert cm.main(["--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "error: translations/de.json: missing keys:" in out
    assert "1 problem(s) found." in out


def test_the_repository_passes() -> None:
    assert cm.check_all(cm.REPO_ROOT) == []


def test_languages_need_the_same_keys(tmp_path: Path) -> None:
    de = copy.deepcopy(DE)
    del de["issues"]["no_rights"]["title"]
    de["extra"] = "x"
    problems = cm.check_all(build(tmp_path, de=de))
    assert problems == [
        "translations/de.json: missing keys: issues.no_rights.title",
        "translations/de.json: keys not in en.json: extra",
    ]


def test_languages_need_the_same_placeholders(tmp_path: Path) -> None:
    de = copy.deepcopy(DE)
    de["exceptions"]["communication_error"]["message"] = "Fehler: {err}"
    problems = cm.check_all(build(tmp_path, de=de))
    assert problems == [
        "translations/de.json: 'exceptions.communication_error.message' has "
        "placeholders ['err'], en.json has ['error']"
    ]


def test_missing_en_json(tmp_path: Path) -> None:
    build(tmp_path)
    en = tmp_path / "custom_components" / cm.DOMAIN / "translations" / "en.json"
    en.write_text("{not json", encoding="utf-8")
    problems = cm.check_all(tmp_path)
    assert problems[0].startswith("en.json: cannot load:")
    assert problems[-1] == "translations/en.json: missing or not a JSON object"


@pytest.mark.parametrize(
    "line",
    [
        'X = EntityDescription(key="x", translation_key="nowhere")',
        'ISSUE = "nowhere"\nir.async_create_issue(translation_key=ISSUE)',
        '_attr_translation_key: str | None = "nowhere"',
    ],
)
def test_used_translation_key_must_exist(tmp_path: Path, line: str) -> None:
    problems = cm.check_all(build(tmp_path, code=f"{SENSOR_PY}\n{line}\n"))
    assert problems == [
        f"custom_components/{cm.DOMAIN}/sensor.py: translation_key 'nowhere' is "
        "not in translations/en.json (entity.<platform>, exceptions, issues, "
        "selector or services)"
    ]


def test_entity_translation_must_be_used(tmp_path: Path) -> None:
    code = SENSOR_PY.replace('translation_key="uplink_count"', 'name="Uplinks"')
    problems = cm.check_all(build(tmp_path, code=code))
    assert problems == [
        "translations/en.json: entity.sensor.uplink_count is not used by the code"
    ]


def test_entity_translation_named_through_a_helper_is_used(tmp_path: Path) -> None:
    code = SENSOR_PY.replace('translation_key="uplink_count"', '_d("uplink_count")')
    assert cm.check_all(build(tmp_path, code=code)) == []


def test_icons_must_name_translated_entities_and_services(tmp_path: Path) -> None:
    icons = {
        "entity": {"sensor": {"uplink_count": {}, "gone": {}}},
        "services": {"reset": {"service": "mdi:restart"}},
    }
    problems = cm.check_all(build(tmp_path, files={"icons.json": json.dumps(icons)}))
    assert problems == [
        "icons.json: entity.sensor.gone is not in translations/en.json",
        "icons.json: services.reset is not in translations/en.json",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules:\n  made-up: done\n", "rule 'made-up' is not a known rule"),
        (
            "rules:\n  config-flow: finished\n",
            "rule 'config-flow' has status 'finished'; expected one of "
            "done, todo, exempt",
        ),
        (
            "rules:\n  action-setup: exempt\n",
            "rule 'action-setup' is exempt without a comment saying why",
        ),
        (
            "rules:\n  strict-typing:\n    status: todo\n    comment: ' '\n",
            "rule 'strict-typing' is todo without a comment saying why",
        ),
        ("other: {}\n", "no 'rules' mapping"),
    ],
)
def test_quality_scale_problems(tmp_path: Path, text: str, problem: str) -> None:
    problems = cm.check_all(build(tmp_path, files={"quality_scale.yaml": text}))
    assert problems == [f"quality_scale.yaml: {problem}"]


SERVICES_EN = {
    **EN,
    "services": {
        "reset": {
            "name": "Reset",
            "description": "Reset the counters.",
            "fields": {"gateway": {"name": "Gateway", "description": "Which"}},
        }
    },
}


def test_services_match_translations(tmp_path: Path) -> None:
    services = "reset:\n  fields:\n    gateway:\n      required: true\n"
    de = copy.deepcopy(SERVICES_EN)
    tree = build(tmp_path, en=SERVICES_EN, de=de, files={"services.yaml": services})
    assert cm.check_all(tree) == []


def test_services_differ_from_translations(tmp_path: Path) -> None:
    services = "reset:\n  fields:\n    device:\n      required: true\nclear:\n"
    de = copy.deepcopy(SERVICES_EN)
    en = copy.deepcopy(SERVICES_EN)
    en["services"]["gone"] = {"name": "Gone"}
    de["services"]["gone"] = {"name": "Weg"}
    tree = build(tmp_path, en=en, de=de, files={"services.yaml": services})
    assert cm.check_all(tree) == [
        "services.yaml: service 'clear' has no translation in en.json",
        "translations/en.json: services.gone is not in services.yaml",
        "services.yaml: field 'reset.device' has no translation in en.json",
        "translations/en.json: field 'reset.gateway' is not in services.yaml",
    ]


def test_requirement_must_be_pinned(tmp_path: Path) -> None:
    manifest = json.dumps({"requirements": ["aiomqtt>=2.5.1"]})
    problems = cm.check_all(build(tmp_path, files={"manifest.json": manifest}))
    assert problems[0] == (
        "manifest.json: requirement 'aiomqtt>=2.5.1' must be pinned with '=='"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [("pytest==8\naiomqtt==2.5.0\n", "aiomqtt==2.5.0"), ("pytest==8\n", "nothing")],
)
def test_test_requirements_must_pin_the_same(
    tmp_path: Path, text: str, found: str
) -> None:
    build(tmp_path)
    (tmp_path / "requirements_test_newest.txt").write_text(text, encoding="utf-8")
    assert cm.check_all(tmp_path) == [
        "requirements_test_newest.txt: must pin 'aiomqtt==2.5.1' as manifest.json "
        f"does (found {found})"
    ]


def test_test_requirements_file_missing(tmp_path: Path) -> None:
    build(tmp_path)
    (tmp_path / "requirements_test.txt").unlink()
    assert cm.check_all(tmp_path) == ["requirements_test.txt: missing"]
