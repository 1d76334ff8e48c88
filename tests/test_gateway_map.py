"""Gateways on Home Assistant's map: a tracker per gateway whose location is readable."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ttn_gateway.tts import AntennaLocation, Gateway
from custom_components.ttn_gateway.tts.gateway_requests import GATEWAY_FIELD_MASK
from tts_simulator import ManualClock, Request, Simulator, make_fleet

from .common import async_poll
from .fake_tts import (
    API_KEY,
    GATEWAY_GARDEN,
    GATEWAY_NEVER,
    GATEWAY_ROOFTOP,
    FakeTTS,
    load_json,
)

ROOFTOP = "device_tracker.rooftop_gateway"
GARDEN = "device_tracker.kerlink_garden"
NEVER = "device_tracker.never_connected"
STATION = "device_tracker.basic_station_gw"

pytestmark = pytest.mark.freeze_time("2025-03-14T10:20:00+00:00")


def _listed(fake_tts: FakeTTS, gateway_id: str) -> dict[str, Any]:
    return next(
        item for item in fake_tts.gateways if item["ids"]["gateway_id"] == gateway_id
    )


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.usefixtures("init_integration")
async def test_gateways_with_a_location_are_on_the_map(hass: HomeAssistant) -> None:
    """The registry's antenna location places the gateway; none, no tracker."""
    rooftop = hass.states.get(ROOFTOP)
    assert rooftop is not None
    assert rooftop.state == "not_home"
    assert rooftop.attributes["source_type"] == "gps"
    assert rooftop.attributes["latitude"] == 52.37403
    assert rooftop.attributes["longitude"] == 4.88969
    assert rooftop.attributes["gps_accuracy"] == 0
    assert rooftop.attributes["altitude"] == 12
    assert rooftop.attributes["source"] == "SOURCE_REGISTRY"
    # Listed without an altitude: TTS omits a zero.
    garden = hass.states.get(GARDEN)
    assert garden.attributes["latitude"] == 52.3731
    assert garden.attributes["altitude"] == 0
    # Neither the never-connected gateway nor the station has a location.
    assert hass.states.get(NEVER) is None
    assert hass.states.get(STATION) is None
    registry = er.async_get(hass)
    assert registry.async_get(NEVER) is None
    assert registry.async_get(STATION) is None


async def test_tracker_follows_a_moved_gateway(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A location updated from the gateway's status shows at the next poll."""
    # With update_location_from_status the Gateway Server writes the status's
    # location into antennas[0] with SOURCE_GPS (lorawan-stack
    # pkg/gatewayserver/gatewayserver.go handleLocationUpdates). Constructed.
    _listed(fake_tts, GATEWAY_ROOFTOP)["antennas"][0]["location"] = {
        "latitude": 52.38112,
        "longitude": 4.90035,
        "altitude": 18,
        "accuracy": 5,
        "source": "SOURCE_GPS",
    }
    await async_poll(hass, freezer)
    rooftop = hass.states.get(ROOFTOP)
    assert rooftop.attributes["latitude"] == 52.38112
    assert rooftop.attributes["longitude"] == 4.90035
    assert rooftop.attributes["gps_accuracy"] == 5
    assert rooftop.attributes["altitude"] == 18
    assert rooftop.attributes["source"] == "SOURCE_GPS"


async def test_one_coordinate_missing_is_zero(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    mock_config_entry: MockConfigEntry,
) -> None:
    """TTS omits a zero coordinate: a gateway on the prime meridian lacks longitude."""
    # Constructed: protobuf JSON omits zero fields (lorawan-stack pkg/jsonpb).
    _listed(fake_tts, GATEWAY_NEVER)["antennas"] = [
        {"location": {"latitude": 51.4778, "source": "SOURCE_REGISTRY"}}
    ]
    await _setup(hass, mock_config_entry)
    never = hass.states.get(NEVER)
    assert never.attributes["latitude"] == 51.4778
    assert never.attributes["longitude"] == 0


async def test_tracker_removed_when_the_location_goes(
    hass: HomeAssistant,
    fake_tts: FakeTTS,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """No stale position: the tracker goes with the location and comes back with it."""
    garden = _listed(fake_tts, GATEWAY_GARDEN)
    antennas = garden.pop("antennas")
    await async_poll(hass, freezer)
    assert hass.states.get(GARDEN) is None
    assert er.async_get(hass).async_get(GARDEN) is None
    # The gateway itself stays.
    assert hass.states.get("binary_sensor.kerlink_garden_connectivity") is not None
    garden["antennas"] = antennas
    await async_poll(hass, freezer)
    assert hass.states.get(GARDEN).attributes["latitude"] == 52.3731


async def test_public_location_without_the_right_to_view_the_gateway(
    hass: HomeAssistant, fake_tts: FakeTTS, mock_config_entry: MockConfigEntry
) -> None:
    """Without RIGHT_GATEWAY_INFO, TTS lists only public locations."""
    # Gateway.PublicSafe (lorawan-stack pkg/ttnpb/public.go) blanks the
    # antennas' locations unless location_public; the rooftop gateway's is.
    rights = fake_tts.auth_info["api_key"]["api_key"]["rights"]
    rights.remove("RIGHT_GATEWAY_INFO")
    await _setup(hass, mock_config_entry)
    assert hass.states.get(ROOFTOP).attributes["latitude"] == 52.37403
    assert hass.states.get(GARDEN) is None


@pytest.mark.parametrize(
    ("antennas", "expected"),
    [
        # Both coordinates omitted: no location at all.
        ([{"location": {"altitude": 12, "source": "SOURCE_REGISTRY"}}], None),
        ([{"location": {"latitude": "52.1", "longitude": 4.9}}], None),
        ([{"location": {"latitude": 91.0, "longitude": 4.9}}], None),
        ([{"location": {"latitude": 52.1, "longitude": float("nan")}}], None),
        ([{"location": {"latitude": True, "longitude": 4.9}}], None),
        ([{"location": {"latitude": 10**400, "longitude": 4.9}}], None),
        ([{"gain": 3}, "antenna", {"location": {"longitude": -0.5}}], (0.0, -0.5)),
        ({"location": {"latitude": 52.1, "longitude": 4.9}}, None),
        ([{"location": [52.1, 4.9]}], None),
    ],
)
def test_antenna_location_parsing(antennas: object, expected: object) -> None:
    """Bad values are no location; the first readable antenna counts."""
    location = AntennaLocation.from_antennas(antennas)
    if expected is None:
        assert location is None
    else:
        assert location is not None
        assert (location.latitude, location.longitude) == expected


# --- the simulator's gateways ---------------------------------------------------


def _simulated_locations(sim: Simulator) -> dict[str, AntennaLocation | None]:
    """The gateway list as the integration reads it from the simulator."""
    response = sim.handle(
        Request(
            "GET",
            "/api/v3/gateways",
            {"field_mask": ",".join(GATEWAY_FIELD_MASK)},
            {"Authorization": f"Bearer {API_KEY}"},
        )
    )
    gateways = [Gateway.from_json(item) for item in response.json()["gateways"]]
    return {gateway.gateway_id: gateway.location for gateway in gateways if gateway}


def test_simulated_gateways_have_locations() -> None:
    """All but the spare gateway are placed; the barn's comes from its GPS."""
    clock = ManualClock()
    sim = Simulator(api_key=API_KEY, clock=clock)
    sim.auth_info = load_json("auth-info.json")
    for gateway in make_fleet(5, clock()):
        sim.add_gateway(gateway)
    locations = _simulated_locations(sim)
    assert locations["spare-gateway"] is None
    assert all(
        location is not None
        for gateway_id, location in locations.items()
        if gateway_id != "spare-gateway"
    )
    assert locations["barn-gateway"].source == "SOURCE_GPS"
    assert locations["rooftop-gateway"].source == "SOURCE_REGISTRY"

    sim.move("rooftop-gateway", 52.09, 5.12)
    sim.move("garden-gateway", None, 0.0)
    moved = _simulated_locations(sim)
    assert (moved["rooftop-gateway"].latitude, moved["rooftop-gateway"].longitude) == (
        52.09,
        5.12,
    )
    assert moved["garden-gateway"] is None
