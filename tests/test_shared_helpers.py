"""The shared keyed timers and write-on-change helpers."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.ttn_gateway.state_writes import WriteOnChange
from custom_components.ttn_gateway.timers import KeyedTimers


async def test_keyed_timers(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """One timer per key: scheduling again replaces it; cancel_all stops all."""
    fired: list[str] = []
    timers: KeyedTimers[str] = KeyedTimers(hass)
    now = dt_util.utcnow()
    timers.schedule("a", now + timedelta(minutes=1), lambda _now: fired.append("a1"))
    timers.schedule("a", now + timedelta(minutes=2), lambda _now: fired.append("a2"))
    timers.schedule("b", now + timedelta(minutes=1), lambda _now: fired.append("b"))
    timers.schedule("c", now + timedelta(minutes=1), lambda _now: fired.append("c"))
    timers.cancel("c")
    timers.cancel("missing")
    assert len(timers) == 2
    assert "a" in timers
    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert fired == ["b"]
    assert "b" not in timers
    freezer.tick(timedelta(minutes=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert fired == ["b", "a2"]

    timers.schedule("d", dt_util.utcnow() + timedelta(minutes=1), fired.append)
    timers.cancel_all()
    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert fired == ["b", "a2"]
    assert len(timers) == 0


class _Counter(WriteOnChange, Entity):
    _attr_should_poll = False
    _attr_name = "Counter"
    value = 0

    def _signature(self) -> Hashable:
        return self.value

    @property
    def state(self) -> int:
        return self.value


async def test_write_on_change(hass: HomeAssistant) -> None:
    """A state is written only when its signature changed."""
    entity = _Counter()
    entity.hass = hass
    entity.entity_id = "sensor.counter"
    assert entity.async_write_if_changed() is True
    first = hass.states.get("sensor.counter")
    assert first.state == "0"
    assert entity.async_write_if_changed() is False
    assert hass.states.get("sensor.counter").last_reported == first.last_reported
    entity.value = 1
    assert entity.async_write_if_changed() is True
    assert hass.states.get("sensor.counter").state == "1"
