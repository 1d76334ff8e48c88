"""The coverage index and the fair use figures, without Home Assistant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from custom_components.ttn_gateway.end_device_coverage import CoverageStoredData
from custom_components.ttn_gateway.end_device_fair_use import FairUseStoredData
from custom_components.ttn_gateway.end_devices.airtime import FairUse
from custom_components.ttn_gateway.end_devices.coverage import (
    MAX_GATEWAYS_PER_DEVICE,
    CoverageIndex,
)
from custom_components.ttn_gateway.end_devices.heard import HeardIndex
from custom_components.ttn_gateway.tts import TTSServer, Uplink, parse_application_up

from .uplinks import uplink

NOW = datetime(2025, 11, 7, 9, tzinfo=UTC)
DEVICE = ("home-sensors", "feather-m0-1")


def _uplink(*gateways: str) -> Uplink:
    parsed = parse_application_up(
        uplink(gateways=tuple((gateway, -90.0, 5.0) for gateway in gateways))
    )
    assert parsed is not None
    return parsed


def test_index_keeps_the_newest_and_notifies_on_change_only() -> None:
    """A restore never moves an entry back; an unchanged record is silent."""
    index = CoverageIndex()
    calls: list[str] = []
    unfollow = index.follow_device(DEVICE, lambda: calls.append("device"))
    index.follow_gateway("rooftop", lambda: calls.append("rooftop"))
    index.record(_uplink("rooftop", "packetbroker"), DEVICE, NOW)
    assert calls == ["device", "rooftop"]
    assert index.heard(DEVICE, NOW) == {"rooftop": NOW, "packetbroker": NOW}
    assert index.own_gateways(DEVICE, NOW) == {"rooftop"}
    index.restore(DEVICE, {"rooftop": NOW - timedelta(hours=1)})
    index.record(_uplink("rooftop"), DEVICE, NOW)
    assert calls == ["device", "rooftop"]
    assert index.heard(DEVICE, NOW)["rooftop"] == NOW
    unfollow()
    unfollow()
    index.restore(DEVICE, {"garden": NOW})
    assert calls == ["device", "rooftop", "rooftop"]
    index.restore(DEVICE, {})
    assert index.only_heard_by("rooftop", NOW) == []


def test_index_bounds_gateways_per_device_and_drops_old_entries() -> None:
    """At most MAX_GATEWAYS_PER_DEVICE, the oldest go; 24 h old entries go."""
    index = CoverageIndex()
    for number in range(MAX_GATEWAYS_PER_DEVICE + 5):
        index.restore(DEVICE, {f"gw-{number:03d}": NOW + timedelta(seconds=number)})
    later = NOW + timedelta(minutes=5)
    heard = index.heard(DEVICE, later)
    assert len(heard) == MAX_GATEWAYS_PER_DEVICE
    assert "gw-000" not in heard
    assert "gw-104" in heard
    index.restore(DEVICE, {"late": NOW + timedelta(hours=25)})
    assert set(index.heard(DEVICE, NOW + timedelta(hours=25))) == {"late"}
    assert index.expires_at(("other", "device"), NOW) is None
    assert index.gateway_expires_at("late", NOW + timedelta(hours=25)) == (
        NOW + timedelta(hours=49)
    )


def test_fair_use_counts_one_day() -> None:
    """Limits are exceeded above 30 s and 10 downlinks; earlier days are out."""
    fair_use = FairUse()
    today = NOW.date()
    fair_use.add_uplink(DEVICE, None, NOW)
    fair_use.add_uplink(DEVICE, 0.0, NOW)
    fair_use.add_uplink(DEVICE, 30.0, NOW)
    assert fair_use.airtime(DEVICE, today) == 30.0
    assert not fair_use.exceeded(DEVICE, today)
    for f_cnt in range(10):
        fair_use.add_downlink(DEVICE, (f_cnt, NOW), NOW)
    fair_use.add_downlink(DEVICE, (9, NOW), NOW)
    assert fair_use.downlinks(DEVICE, today) == 10
    assert not fair_use.exceeded(DEVICE, today)
    fair_use.add_downlink(DEVICE, (10, NOW), NOW)
    assert fair_use.exceeded(DEVICE, today)
    # Yesterday's late uplink, or its saved figures, do not count today.
    yesterday = NOW - timedelta(days=1)
    fair_use.add_uplink(DEVICE, 5.0, yesterday)
    fair_use.add_downlink(DEVICE, (11, yesterday), yesterday)
    fair_use.restore(DEVICE, yesterday.date(), airtime=5.0, downlinks=1)
    assert fair_use.airtime(DEVICE, today) == 30.0
    assert fair_use.downlinks(DEVICE, today) == 11
    # Saved figures are taken once, whichever entity restores first.
    fair_use.restore(DEVICE, today, airtime=2.0, downlinks=1)
    fair_use.restore(DEVICE, today, airtime=2.0, downlinks=1)
    assert fair_use.airtime(DEVICE, today) == 32.0
    # The next day starts from zero.
    tomorrow = NOW + timedelta(days=1)
    assert fair_use.airtime(DEVICE, tomorrow.date()) == 0.0
    fair_use.add_uplink(DEVICE, 1.0, tomorrow)
    assert fair_use.airtime(DEVICE, tomorrow.date()) == 1.0
    assert fair_use.downlinks(DEVICE, tomorrow.date()) == 0


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"heard": "rooftop"},
        {"heard": {"rooftop": 5, "garden": "not a time", "naive": "2025-11-07T09:00"}},
    ],
)
def test_unusable_saved_coverage_is_left_out(stored: dict[str, object]) -> None:
    """Whatever was saved, only timezone-aware times come back."""
    assert CoverageStoredData.from_dict(stored).heard == {}


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"day": "yesterday", "airtime": 1.0, "downlinks": 1},
        {"day": "2025-11-07", "airtime": True, "downlinks": 1},
        {"day": "2025-11-07", "airtime": 1.0, "downlinks": "1"},
        {"day": "2025-11-07", "airtime": 1.0, "downlinks": False},
        {"day": 20251107, "airtime": 1.0, "downlinks": 1},
    ],
)
def test_unusable_saved_fair_use_is_left_out(stored: dict[str, object]) -> None:
    """Anything but a day, a number and a count is no figure."""
    assert FairUseStoredData.from_dict(stored) is None


def test_saved_fair_use_round_trip() -> None:
    """What is saved comes back."""
    saved = FairUseStoredData(date(2025, 11, 7), 12.5, 3)
    assert FairUseStoredData.from_dict(saved.as_dict()) == saved


@pytest.mark.parametrize(
    ("server", "ttn"),
    [
        ("eu1", True),
        ("https://nam1.cloud.thethings.network", True),
        ("https://acme.eu1.cloud.thethings.industries", False),
        ("https://ttn.eu1.cloud.thethings.industries", False),
        ("https://tts.example.com", False),
        ("http://eu1.cloud.thethings.network", False),
    ],
)
def test_the_things_network_servers(server: str, ttn: bool) -> None:
    """Only The Things Network's community clusters have the Fair Use Policy."""
    assert TTSServer.parse(server).is_the_things_network is ttn


def test_a_gateway_reads_only_the_devices_it_heard() -> None:
    """A gateway's devices are found without a pass over every device.

    With many devices heard by one gateway, a reading about another gateway
    touches none of their entries; entries that leave the window (or are
    pushed out) no longer tie a device to their gateway.
    """
    index = CoverageIndex()
    for number in range(200):
        index.restore(("home-sensors", f"busy-{number}"), {"busy": NOW})
    index.restore(DEVICE, {"rooftop": NOW, "packetbroker": NOW})
    index.restore(("home-sensors", "shared"), {"rooftop": NOW, "garden": NOW})
    read: list[object] = []
    entries = index._heard

    class Watched(dict):  # type: ignore[type-arg]
        def __getitem__(self, key: object) -> object:
            read.append(key)
            return super().__getitem__(key)

        def get(self, key: object, default: object = None) -> object:
            read.append(key)
            return super().get(key, default)

    index._heard = Watched(entries)
    assert index.only_heard_by("rooftop", NOW) == [DEVICE]
    assert index.gateway_expires_at("rooftop", NOW) == NOW + timedelta(hours=24)
    assert set(read) == {DEVICE, ("home-sensors", "shared")}
    index._heard = entries

    later = NOW + timedelta(hours=25)
    index.restore(DEVICE, {"garden": later})
    assert index.only_heard_by("rooftop", later) == []
    assert index.only_heard_by("garden", later) == [DEVICE]
    assert index.gateway_expires_at("rooftop", later) is None
    assert index.gateway_expires_at("garden", later) == later + timedelta(hours=24)
    assert index.gateway_expires_at("busy", NOW + timedelta(hours=1)) == (
        NOW + timedelta(hours=24)
    )


def test_heard_again_within_the_window_notifies_no_one() -> None:
    """Only a gateway that joins, leaves or comes back changes a reading.

    Every uplink of a busy device would otherwise recount every sensor that
    lists the devices of its gateways.
    """
    coverage, heard = CoverageIndex(), HeardIndex()
    calls: list[str] = []
    coverage.follow_device(DEVICE, lambda: calls.append("device"))
    coverage.follow_gateway("rooftop", lambda: calls.append("rooftop"))
    heard.follow("rooftop", lambda: calls.append("heard"))
    for record in (coverage.record, heard.record):
        record(_uplink("rooftop"), DEVICE, NOW)
    assert calls == ["device", "rooftop", "heard"]
    for minutes in (1, 2, 3):
        for record in (coverage.record, heard.record):
            record(_uplink("rooftop"), DEVICE, NOW + timedelta(minutes=minutes))
    assert calls == ["device", "rooftop", "heard"]
    assert coverage.heard(DEVICE, NOW + timedelta(minutes=3)) == {
        "rooftop": NOW + timedelta(minutes=3)
    }
    assert heard.heard_by("rooftop", NOW + timedelta(minutes=3)) == {
        DEVICE: NOW + timedelta(minutes=3)
    }

    calls.clear()
    coverage.record(_uplink("rooftop", "garden"), DEVICE, NOW + timedelta(minutes=4))
    assert calls == ["device", "rooftop"]
    calls.clear()
    back = NOW + timedelta(hours=25)
    for record in (coverage.record, heard.record):
        record(_uplink("rooftop"), DEVICE, back)
    assert calls == ["device", "rooftop", "heard"]
    assert set(coverage.heard(DEVICE, back)) == {"rooftop"}
