"""The shared keyed timers and write-on-change helpers."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime, timedelta
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.event import async_track_point_in_utc_time
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


async def test_keyed_timer_kept_when_scheduled_the_same_again(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """The same moment and action again keeps the pending timer; it fires once."""
    fired: list[datetime] = []
    timers: KeyedTimers[str] = KeyedTimers(hass)
    when = dt_util.utcnow() + timedelta(minutes=1)
    with patch(
        "custom_components.ttn_gateway.timers.async_track_point_in_utc_time",
        wraps=async_track_point_in_utc_time,
    ) as track:
        timers.schedule("a", when, fired.append)
        timers.schedule("a", when, fired.append)
        assert track.call_count == 1
        timers.schedule("a", when + timedelta(seconds=1), fired.append)
        assert track.call_count == 2
        timers.cancel("a")
        timers.schedule("a", when, fired.append)
        assert track.call_count == 3
    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(fired) == 1
    timers.schedule("a", when, fired.append)
    assert "a" in timers


async def test_a_write_reads_the_signature_once(hass: HomeAssistant) -> None:
    """The signature compared is the one recorded: no second computation."""
    entity = _Counter()
    entity.hass = hass
    entity.entity_id = "sensor.counter"
    with patch.object(_Counter, "_signature", autospec=True, return_value=0) as sig:
        assert entity.async_write_if_changed() is True
        assert sig.call_count == 1
        assert entity.async_write_if_changed() is False
        assert sig.call_count == 2
    # A write of its own (Home Assistant's, or the entity's) still records it.
    entity.value = 5
    entity.async_write_ha_state()
    assert entity.async_write_if_changed() is False
    assert hass.states.get("sensor.counter").state == "5"


async def test_keyed_timer_scheduled_by_keeps_an_earlier_one(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """schedule_by: a later moment keeps the pending timer, an earlier replaces it."""
    fired: list[datetime] = []
    timers: KeyedTimers[str] = KeyedTimers(hass)
    start = dt_util.utcnow()
    with patch(
        "custom_components.ttn_gateway.timers.async_track_point_in_utc_time",
        wraps=async_track_point_in_utc_time,
    ) as track:
        timers.schedule_by("a", start + timedelta(minutes=2), fired.append)
        for minutes in (3, 4, 5):
            timers.schedule_by("a", start + timedelta(minutes=minutes), fired.append)
        assert track.call_count == 1
        timers.schedule_by("a", start + timedelta(minutes=1), fired.append)
        assert track.call_count == 2
    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(fired) == 1
    assert "a" not in timers
