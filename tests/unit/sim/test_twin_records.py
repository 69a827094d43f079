"""The sensor twin's pure parts: record builders, time stamps, probe pseudonyms, weather, geography."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from schemas import contract
from sim.closures import closable_lanes
from sim.detectors import contract_id
from sim.geo import DEFAULT_ANCHOR_LAT_LON
from sim.network import read_sumolib
from sim.scenarios import resco
from sim.twin import (
    Geo,
    TwinError,
    WeatherModel,
    WeatherObservation,
    detector_record,
    heading_deg,
    incident_record,
    is_probe,
    parse_day,
    probe_phase,
    probe_pseudonym,
    probe_record,
    sim_time_to_utc,
    utc_timestamp,
    weather_record,
)

DAY = date(2026, 11, 28)
SEVEN = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def detector(**overrides):
    values = dict(
        detector_id="e1_-32038056#3_0",
        intersection_id="GS_cluster_357187_359543",
        lane_id="-32038056#3_0",
        interval_start=SEVEN,
        interval_s=60,
        count=12,
        occupancy_pct=25.0,
        mean_speed_mps=8.456,
    )
    values.update(overrides)
    record = detector_record(**values)
    contract("traffic.detector.v1").validate(record)
    return record


def probe(**overrides):
    values = dict(
        probe_id=probe_pseudonym("veh_1", "1:2026-11-28"),
        at=SEVEN + timedelta(seconds=5),
        lat=50.9309,
        lon=6.9273,
        speed_mps=11.0,
        angle_deg=252.5,
        accuracy_m=5.0,
    )
    values.update(overrides)
    record = probe_record(**values)
    contract("operator.probe.v1").validate(record)
    return record


# -- time --------------------------------------------------------------------------------------


def test_simulated_seconds_are_instants_of_the_day_in_utc():
    assert utc_timestamp(sim_time_to_utc(DAY, 25200)) == "2026-11-28T07:00:00Z"
    assert utc_timestamp(sim_time_to_utc(DAY, 25200.25)) == "2026-11-28T07:00:00.25Z"
    assert utc_timestamp(sim_time_to_utc(DAY, 0)) == "2026-11-28T00:00:00Z"
    assert utc_timestamp(sim_time_to_utc(DAY, 86400 + 61)) == "2026-11-29T00:01:01Z"


def test_timestamps_have_z_and_at_most_six_fraction_digits():
    pattern = re.compile(contract("traffic.detector.v1").schema["properties"]["ts"]["pattern"])
    moments = [
        SEVEN,
        SEVEN + timedelta(microseconds=1),
        SEVEN + timedelta(microseconds=123456),
        SEVEN + timedelta(seconds=0.1),
        datetime(2026, 11, 28, 8, 0, tzinfo=timezone(timedelta(hours=1))),  # converted to UTC
    ]
    texts = [utc_timestamp(m) for m in moments]
    assert texts == [
        "2026-11-28T07:00:00Z",
        "2026-11-28T07:00:00.000001Z",
        "2026-11-28T07:00:00.123456Z",
        "2026-11-28T07:00:00.1Z",
        "2026-11-28T07:00:00Z",
    ]
    assert all(pattern.match(text) for text in texts)
    with pytest.raises(ValueError, match="naive"):
        utc_timestamp(datetime(2026, 11, 28, 7))


def test_day_is_a_date_or_iso_text():
    assert parse_day("2026-11-28") == DAY == parse_day(DAY) == parse_day(SEVEN)
    with pytest.raises(TwinError, match="YYYY-MM-DD"):
        parse_day("28.11.2026")


# -- detectors ---------------------------------------------------------------------------------


def test_a_detector_reading_passes_its_contract():
    record = detector()
    assert record["ts"] == "2026-11-28T07:00:00Z"
    assert record["count"] == 12 and record["occupancy"] == 0.25 and record["speed_mps"] == 8.46
    assert record["source"] == "sumo" and record["quality_flags"] == [] and record["interval_s"] == 60


def test_no_vehicle_means_no_speed():
    assert detector(count=0, occupancy_pct=0.0, mean_speed_mps=-1.0)["speed_mps"] is None
    assert detector(count=0, mean_speed_mps=7.0)["speed_mps"] is None  # a speed without a count is noise
    assert detector(count=3, mean_speed_mps=-1.0)["speed_mps"] is None


def test_occupancy_percent_becomes_a_fraction_within_0_and_1():
    assert detector(occupancy_pct=37.5)["occupancy"] == 0.375
    assert detector(occupancy_pct=100.0)["occupancy"] == 1.0
    assert detector(occupancy_pct=100.4)["occupancy"] == 1.0
    assert detector(occupancy_pct=-1.0)["occupancy"] == 0.0
    assert detector(occupancy_pct=float("nan"))["occupancy"] == 0.0
    assert detector(occupancy_pct=1.6381)["occupancy"] == 0.0164


def test_speeds_are_bounded_by_the_contract():
    assert detector(mean_speed_mps=250.0)["speed_mps"] == 100.0
    assert detector(count=-2)["count"] == 0


def test_sumo_ids_that_break_the_contract_are_mapped_stably():
    long_tls = "cluster_" + "_".join(str(1200363791 + i) for i in range(16))
    assert len(long_tls) > 128
    mapped = contract_id(long_tls)
    assert len(mapped) <= 128 and mapped == contract_id(long_tls)
    assert contract_id("a b") != contract_id("a_b") == "a_b"
    assert contract_id("-27115123#3_0") == "-27115123#3_0"  # ordinary ids pass unchanged
    assert detector(intersection_id=long_tls, lane_id="lane with spaces_0")["intersection_id"] == mapped


# -- probes ------------------------------------------------------------------------------------


def test_a_probe_fix_passes_its_contract():
    record = probe()
    assert record["ts"] == "2026-11-28T07:00:05Z"
    assert record["heading_deg"] == 252.5 and record["speed_mps"] == 11.0
    assert record["provider"] == "sumo-twin" and record["accuracy_m"] == 5.0


def test_heading_is_within_0_and_360_and_null_when_standing():
    assert probe(angle_deg=360.0)["heading_deg"] == 0.0
    assert probe(angle_deg=359.97)["heading_deg"] == 0.0  # rounds to 360.0, which the contract excludes
    assert probe(angle_deg=-90.0)["heading_deg"] == 270.0
    assert probe(angle_deg=721.25)["heading_deg"] == 1.2
    assert probe(speed_mps=0.0)["heading_deg"] is None
    assert probe(speed_mps=0.05)["heading_deg"] is None
    assert probe(speed_mps=0.1)["heading_deg"] == 252.5
    assert heading_deg(float("nan"), 5.0) is None


def test_probe_speed_and_accuracy_edge_cases():
    assert probe(speed_mps=130.0)["speed_mps"] == 100.0
    assert probe(speed_mps=-0.0)["speed_mps"] == 0.0
    assert probe(accuracy_m=0.0)["accuracy_m"] == 0.0
    assert probe(lat=50.123456789)["lat"] == 50.1234568


def test_probe_ids_are_pseudonymous_stable_and_rotate_with_the_salt():
    pattern = re.compile(contract("operator.probe.v1").schema["properties"]["probe_id"]["pattern"])
    vehicle = "124779_406_0"
    pseudonym = probe_pseudonym(vehicle, "1:2026-11-28")
    assert re.fullmatch(r"[0-9a-f]{16}", pseudonym) and pattern.match(pseudonym)
    assert vehicle not in pseudonym
    assert pseudonym == probe_pseudonym(vehicle, "1:2026-11-28")
    assert pseudonym != probe_pseudonym(vehicle, "1:2026-11-29")
    assert pseudonym != probe_pseudonym("124779_406_1", "1:2026-11-28")


def test_the_probe_share_is_a_stable_draw_per_vehicle_and_seed():
    vehicles = [f"veh{i}" for i in range(20_000)]
    chosen = [v for v in vehicles if is_probe(v, 1, 0.10)]
    assert 0.09 < len(chosen) / len(vehicles) < 0.11
    assert chosen == [v for v in vehicles if is_probe(v, 1, 0.10)]
    assert chosen != [v for v in vehicles if is_probe(v, 2, 0.10)]
    assert set(chosen) <= {v for v in vehicles if is_probe(v, 1, 0.20)}  # a larger share adds vehicles
    assert not any(is_probe(v, 1, 0.0) for v in vehicles[:1000])
    assert all(is_probe(v, 1, 1.0) for v in vehicles[:1000])
    phases = {probe_phase(v, 1, 5) for v in vehicles[:1000]}
    assert phases == {0, 1, 2, 3, 4}


# -- weather -----------------------------------------------------------------------------------


def test_weather_records_pass_their_contract_and_the_series_is_smooth():
    model = WeatherModel(seed=1)
    start = datetime(2026, 11, 28, tzinfo=UTC)
    moments = [start + timedelta(minutes=10 * i) for i in range(6 * 24 * 3)]
    records = [
        weather_record(station_id="twin_cologne1", at=m, lat=50.93, lon=6.93, observation=model.observe(m))
        for m in moments
    ]
    validate = contract("public.weather.v1").validate
    for record in records:
        validate(record)
    temps = [r["air_temp_c"] for r in records]
    assert all(-10 < t < 20 for t in temps), "late November in Cologne"
    assert max(abs(a - b) for a, b in zip(temps, temps[1:], strict=False)) < 1.0
    surfaces = {r["road_surface"] for r in records}
    assert {"dry", "wet"} <= surfaces, "three days bring some rain and some dry road"
    for record in records:
        if record["precipitation_mm_h"] > 0:
            assert record["road_surface"] in ("wet", "snow") and record["condition"] in (
                "rain",
                "heavy_rain",
                "snow",
            )
        else:
            assert record["condition"] in ("clear", "cloudy")
    assert records == [
        weather_record(station_id="twin_cologne1", at=m, lat=50.93, lon=6.93, observation=model.observe(m))
        for m in moments
    ], "a pure function of the instant and the seed"
    assert [WeatherModel(seed=2).observe(m) for m in moments] != [model.observe(m) for m in moments]


def test_a_weather_record_rounds_and_bounds_its_values():
    observation = WeatherObservation(
        air_temp_c=4.26,
        precipitation_mm_h=-0.0,
        visibility_m=None,
        wind_speed_mps=3.04,
        road_surface="dry",
        condition="cloudy",
    )
    record = weather_record(station_id="ws1", at=SEVEN, lat=50.9, lon=6.9, observation=observation)
    contract("public.weather.v1").validate(record)
    assert record["air_temp_c"] == 4.3 and record["visibility_m"] is None and record["wind_speed_mps"] == 3.0


# -- incidents ---------------------------------------------------------------------------------


def test_incident_reports_at_start_and_clearance_pass_their_contract():
    start, end = SEVEN + timedelta(minutes=20), SEVEN + timedelta(minutes=30)
    common = dict(
        incident_id="twin_cologne1_20261128_s1_1",
        kind="crash",
        severity=3,
        lat=50.9316,
        lon=6.9259,
        edge_id="27115123#2",
        lane_ids=["27115123#2_0", "27115123#2_0"],
        start=start,
        description="crash: lane 27115123#2_0 closed",
    )
    active = incident_record(at=start, status="active", end=None, **common)
    cleared = incident_record(at=end, status="cleared", end=end, **common)
    validate = contract("public.incident.v1").validate
    validate(active)
    validate(cleared)
    assert active["end"] is None and cleared["end"] == "2026-11-28T07:30:00Z"
    assert active["start"] == cleared["start"] == "2026-11-28T07:20:00Z"
    assert active["lane_ids"] == ["27115123#2_0"]  # unique, as the contract requires
    assert (
        incident_record(at=start, status="active", end=None, **{**common, "description": "x" * 900})[
            "description"
        ]
        == "x" * 500
    )


# -- network facts -----------------------------------------------------------------------------


def test_only_lanes_whose_traffic_has_another_way_can_close():
    """cologne1's approach lanes each serve a turn no other lane serves; only the two lanes of the
    short feeder 27115123#2 both lead to the same edge and are both fed by every upstream edge."""
    net = read_sumolib(resco("cologne1").net_file)
    assert closable_lanes(net) == ["27115123#2_0", "27115123#2_1"]


def test_geography_of_a_utm_network_and_of_one_without_projection():
    cologne = Geo(read_sumolib(resco("cologne1").net_file))
    lon, lat = cologne.centre_lonlat
    assert cologne.projected and abs(lon - 6.93) < 0.02 and abs(lat - 50.93) < 0.02
    # UTM zone 32 has its central meridian at 9°E: at 6.93°E grid north lies ~1.6° west of true north.
    assert cologne.grid_north_deg == pytest.approx(-1.61, abs=0.1)

    grid = Geo(read_sumolib(resco("grid4x4").net_file))
    assert not grid.projected
    assert grid.lonlat(0.0, 0.0) == pytest.approx(DEFAULT_ANCHOR_LAT_LON[::-1])
    east_lon, _ = grid.lonlat(1000.0, 0.0)
    _, north_lat = grid.lonlat(0.0, 1000.0)
    assert north_lat - DEFAULT_ANCHOR_LAT_LON[0] == pytest.approx(0.008993, rel=1e-3)  # 1 km of latitude
    assert east_lon > DEFAULT_ANCHOR_LAT_LON[1] and grid.grid_north_deg == pytest.approx(0.0, abs=1e-9)
