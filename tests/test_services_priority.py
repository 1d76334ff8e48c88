"""send_downlink's priority: the selector's lowercase options are TTS's names."""

from __future__ import annotations

from pathlib import Path

import pytest
import voluptuous as vol
import yaml

from custom_components.ttn_gateway.services import SEND_DOWNLINK_SCHEMA, _downlink
from custom_components.ttn_gateway.tts import Priority

SERVICES_YAML = (
    Path(__file__).parent.parent / "custom_components" / "ttn_gateway" / "services.yaml"
)


def _priority(**data: object) -> Priority:
    call = SEND_DOWNLINK_SCHEMA(
        {"device_id": "abc", "f_port": 1, "payload": "01", **data}
    )
    return _downlink(call).priority


def test_every_selector_option_is_a_tts_priority() -> None:
    """Each option the action's form offers reaches TTS as its uppercase name."""
    field = yaml.safe_load(SERVICES_YAML.read_text())["send_downlink"]["fields"][
        "priority"
    ]
    options = field["selector"]["select"]["options"]
    assert options == [priority.value.lower() for priority in Priority]
    assert [_priority(priority=option) for option in options] == list(Priority)
    assert _priority() is Priority.NORMAL
    assert field["default"] == "normal"


@pytest.mark.parametrize("written", ["HIGHEST", "Highest", "highest"])
def test_tts_names_in_any_case(written: str) -> None:
    """Automations written with TTS's uppercase names keep working."""
    assert _priority(priority=written) is Priority.HIGHEST


def test_unknown_priority_is_refused() -> None:
    with pytest.raises(vol.Invalid):
        _priority(priority="urgent")
