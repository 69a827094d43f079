"""The map's layers: the corridor in WGS84, gold's link state and silver's incidents on it."""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from console import network_layers
from console.network_layers import (
    LINK_STATE,
    LOS_THRESHOLDS,
    NetworkLayersError,
    lake_net_file,
    level_of_service,
    network_document,
    network_geojson,
    static_layers,
)
from core.errors import CitybrainError
from core.settings import Settings
from lake.delta import full_schema, write_partitions
from lake.tables import TABLES, partition_of
from sim.network import load

#: The corridor's <location>: UTM zone 50N, network x/y = UTM easting/northing + netOffset.
CORRIDOR_OFFSET = (-518450.0, -3522870.0)
#: The corridor's origBoundary: lon/lat of its corners (western Hefei).
HEFEI_BOX = (117.194995, 31.841130, 117.233061, 31.848772)
T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One var folder for the module, so the corridor is built with netconvert once."""
    return tmp_path_factory.mktemp("var")


@pytest.fixture
def settings(var_dir: Path, tmp_path: Path) -> Settings:
    return Settings(var_dir=var_dir, lake_uri=str(tmp_path / "lake"), lake_network="corridor")


def write_partition(lake: Path, name: str, slot: datetime, rows: list[dict]) -> None:
    """``rows`` as the lake's job commits one quarter hour: its partition replaced in one commit."""
    table = TABLES[name]
    day, slot_value = partition_of(slot)
    schema = full_schema(table)
    placed = [{**row, "date": day, "slot": slot_value} for row in rows]
    columns = {field.name: [row.get(field.name) for row in placed] for field in schema}
    write_partitions(lake, table, pa.table(columns, schema=schema), [(day, slot_value)])


def stray_file(lake: Path, name: str, slot: datetime, rows: list[dict], file: str) -> None:
    """``rows`` in a Parquet file in the quarter hour's folder that the table's log does not name:
    a torn file of a killed job."""
    table = TABLES[name]
    schema = table.arrow_schema()
    folder = table.partition_path(lake, partition_of(slot))
    folder.mkdir(parents=True, exist_ok=True)
    columns = {field.name: [row.get(field.name) for row in rows] for field in schema}
    pq.write_table(pa.table(columns, schema=schema), folder / file)


def link_row(edge_id: str, slot: datetime, **values) -> dict:
    return {
        "edge_id": edge_id,
        "window_start": slot,
        "window_end": slot + timedelta(minutes=15),
        "detector_samples": 0,
        "probe_samples": 0,
        "confidence": 0.0,
        "incident_ids": [],
        **values,
    }


def incident_row(incident_id: str, ts: datetime, start: datetime, **values) -> dict:
    return {
        "incident_id": incident_id,
        "ts": ts,
        "kind": "crash",
        "status": "active",
        "severity": 2,
        "lat": 31.8449,
        "lon": 117.2,
        "edge_id": "J1_J2w",
        "lane_ids": [],
        "start": start,
        "end": None,
        "description": "two cars",
        "source": "police",
        "located_by": "edge",
        "window_start": ts,
        **values,
    }


def layer(geojson: dict, name: str) -> dict[str, dict]:
    return {f["properties"]["id"]: f for f in geojson["features"] if f["properties"]["layer"] == name}


def test_the_corridor_lies_in_hefei_in_wgs84(settings: Settings) -> None:
    import pyproj

    geojson = network_geojson(settings)
    assert geojson["type"] == "FeatureCollection"
    edges, signals = layer(geojson, "edges"), layer(geojson, "signals")
    assert len(signals) == 7 and len(edges) >= 60
    west, south, east, north = HEFEI_BOX
    for feature in edges.values():
        assert feature["geometry"]["type"] == "LineString"
        for lon, lat in feature["geometry"]["coordinates"]:
            assert west - 1e-3 <= lon <= east + 1e-3 and south - 1e-3 <= lat <= north + 1e-3
    # the model's junction J1 in network metres, to UTM 50N by the <location>'s netOffset, to WGS84
    network = load(lake_net_file("corridor", settings.sim_dir / "build"))
    to_wgs84 = pyproj.Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)

    def wgs84(junction: str) -> tuple[float, float]:
        x, y = network.junctions[junction].position
        return to_wgs84.transform(x - CORRIDOR_OFFSET[0], y - CORRIDOR_OFFSET[1])

    lon, lat = wgs84("J1")
    assert (lon, lat) == pytest.approx((117.1998, 31.8450), abs=1e-3)
    assert signals["J1"]["geometry"]["type"] == "Point"
    assert signals["J1"]["geometry"]["coordinates"] == pytest.approx((lon, lat), abs=2e-6)
    assert signals["J1"]["properties"]["intersection_id"] == "J1"
    # the eastbound arterial from W0 to J1w, 370 m: east along J1's parallel, its lanes right (south)
    (lon0, lat0), *_, (lon1, lat1) = edges["W0_J1w"]["geometry"]["coordinates"]
    assert lon0 == pytest.approx(wgs84("W0")[0], abs=1e-4)
    assert lon1 == pytest.approx(wgs84("J1w")[0], abs=1e-4)
    assert lat0 == pytest.approx(lat, abs=1e-4) and lat0 < lat and lat1 < lat
    arterial = edges["W0_J1w"]["properties"]
    assert arterial["lanes"] == 3 and arterial["speed_limit_mps"] > 0 and arterial["length_m"] > 300


def test_a_lake_without_gold_gives_the_geometry_with_nulls(settings: Settings) -> None:
    geojson = network_geojson(settings)
    assert geojson["slot"] is None and geojson["slots"] == []
    assert not layer(geojson, "incidents")
    for feature in layer(geojson, "edges").values():
        properties = feature["properties"]
        assert properties["flow_vph"] is None and properties["speed_mps"] is None
        assert properties["confidence"] is None and properties["los"] is None
        assert properties["incident_ids"] == []


def test_edges_carry_the_link_state_of_the_newest_quarter_hour(settings: Settings) -> None:
    lake = settings.lake_path
    limit = layer(network_geojson(settings), "edges")["W0_J1w"]["properties"]["speed_limit_mps"]
    write_partition(
        lake, "gold.link_state_15min", T0, [link_row("W0_J1w", T0, speed_mps=limit, flow_vph=100.0)]
    )
    slot = T0 + timedelta(minutes=15)
    write_partition(
        lake,
        "gold.link_state_15min",
        slot,
        [
            link_row(
                "W0_J1w",
                slot,
                flow_vph=1200.0,
                speed_mps=0.45 * limit,
                confidence=0.8,
                incident_ids=["inc-1"],
                incident_severity=2,
            ),
            link_row("J1_J2w", slot, flow_vph=float("nan"), speed_mps=None),
        ],
    )
    geojson = network_geojson(settings)
    assert geojson["slot"] == "2026-11-28T07:15:00Z"
    assert geojson["slots"] == ["2026-11-28T07:00:00Z", "2026-11-28T07:15:00Z"]
    edges = layer(geojson, "edges")
    busy = edges["W0_J1w"]["properties"]
    assert busy["flow_vph"] == 1200.0 and busy["speed_mps"] == pytest.approx(0.45 * limit)
    assert busy["confidence"] == 0.8 and busy["los"] == "D"
    assert busy["incident_ids"] == ["inc-1"] and busy["incident_severity"] == 2
    quiet = edges["J1_J2w"]["properties"]
    assert quiet["flow_vph"] is None and quiet["speed_mps"] is None and quiet["los"] is None
    untouched = edges["J1w_J1"]["properties"]
    assert untouched["flow_vph"] is None and untouched["los"] is None


def test_at_chooses_the_quarter_hour_at_or_before_it(settings: Settings) -> None:
    lake = settings.lake_path
    old = T0 - timedelta(days=2)
    for slot, flow in ((old, 1.0), (T0, 2.0), (T0 + timedelta(minutes=30), 3.0)):
        write_partition(lake, "gold.link_state_15min", slot, [link_row("W0_J1w", slot, flow_vph=flow)])

    def shown(at: datetime | None) -> tuple[str | None, float | None]:
        geojson = network_geojson(settings, at)
        return geojson["slot"], layer(geojson, "edges")["W0_J1w"]["properties"]["flow_vph"]

    assert shown(None) == ("2026-11-28T07:30:00Z", 3.0)
    assert shown(T0 + timedelta(minutes=29)) == ("2026-11-28T07:00:00Z", 2.0)  # 07:15 has no data
    assert shown(T0 + timedelta(minutes=30)) == ("2026-11-28T07:30:00Z", 3.0)
    assert shown(datetime(2026, 11, 28, 7, 5)) == ("2026-11-28T07:00:00Z", 2.0)  # naive: UTC
    assert shown(T0 + timedelta(days=1)) == ("2026-11-28T07:30:00Z", 3.0)
    assert shown(old + timedelta(minutes=1)) == ("2026-11-26T07:00:00Z", 1.0)
    assert shown(old - timedelta(minutes=1)) == (None, None)
    # the slider offers the last day up to the newest quarter hour, not the older one
    assert network_geojson(settings)["slots"] == ["2026-11-28T07:00:00Z", "2026-11-28T07:30:00Z"]


def test_incidents_active_in_the_quarter_hour_are_points(settings: Settings) -> None:
    lake = settings.lake_path
    slot = T0 + timedelta(minutes=15)
    write_partition(lake, "gold.link_state_15min", T0, [link_row("W0_J1w", T0)])
    write_partition(lake, "gold.link_state_15min", slot, [link_row("W0_J1w", slot)])
    earlier = T0 - timedelta(minutes=10)
    write_partition(
        lake,
        "silver.incidents",
        earlier,
        [
            incident_row("open", earlier, earlier),
            incident_row("cleared", earlier, earlier),
            incident_row("ended", earlier, earlier, end=T0 + timedelta(minutes=10)),
        ],
    )
    write_partition(
        lake,
        "silver.incidents",
        T0,
        [incident_row("cleared", T0 + timedelta(minutes=5), earlier, status="cleared")],
    )
    later = T0 + timedelta(minutes=40)
    write_partition(lake, "silver.incidents", later, [incident_row("later", later, later)])

    now = layer(network_geojson(settings), "incidents")
    assert sorted(now) == ["open"]
    point = now["open"]
    assert point["geometry"] == {"type": "Point", "coordinates": [117.2, 31.8449]}
    assert point["properties"]["edge_id"] == "J1_J2w" and point["properties"]["severity"] == 2
    assert point["properties"]["start"] == "2026-11-28T06:50:00Z" and point["properties"]["end"] is None
    assert sorted(layer(network_geojson(settings, T0), "incidents")) == ["ended", "open"]
    assert sorted(layer(network_geojson(settings, T0 - timedelta(minutes=1)), "incidents")) == []


@pytest.mark.parametrize(
    ("share", "letter"),
    [
        (1.2, "A"),
        (0.81, "A"),
        (0.80, "B"),
        (0.68, "B"),
        (0.67, "C"),
        (0.51, "C"),
        (0.50, "D"),
        (0.41, "D"),
        (0.40, "E"),
        (0.31, "E"),
        (0.30, "F"),
        (0.0, "F"),
    ],
)
def test_level_of_service_by_percent_of_the_speed_limit(share: float, letter: str) -> None:
    assert level_of_service(share * 10.0, 10.0) == letter


def test_level_of_service_needs_a_speed_and_a_limit() -> None:
    assert level_of_service(None, 13.9) is None
    assert level_of_service(math.nan, 13.9) is None
    assert level_of_service(10.0, None) is None
    assert level_of_service(10.0, 0.0) is None
    assert [letter for letter, _ in LOS_THRESHOLDS] == ["A", "B", "C", "D", "E"]


def test_the_geometry_is_built_once_per_network(settings: Settings) -> None:
    network_geojson(settings)
    before = static_layers.cache_info()
    network_geojson(settings)
    after = static_layers.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses


def test_an_unknown_network_is_a_clear_error(var_dir: Path, tmp_path: Path) -> None:
    settings = Settings(var_dir=var_dir, lake_uri=str(tmp_path / "lake"), lake_network="atlantis")
    with pytest.raises(NetworkLayersError, match="atlantis") as raised:
        network_geojson(settings)
    assert isinstance(raised.value, CitybrainError)


def test_signals_carry_the_flow_weighted_delay_on_their_approaches(settings: Settings) -> None:
    static = static_layers(load(lake_net_file("corridor", settings.sim_dir / "build")))
    incoming = static.approaches["J1"]
    assert "J1w_J1" in incoming and len(incoming) >= 3
    edges = layer(network_geojson(settings), "edges")
    slow, fast = incoming[0], incoming[1]
    length = {e: edges[e]["properties"]["length_m"] for e in (slow, fast)}
    limit = {e: edges[e]["properties"]["speed_limit_mps"] for e in (slow, fast)}
    write_partition(
        settings.lake_path,
        "gold.link_state_15min",
        T0,
        [
            link_row(slow, T0, speed_mps=limit[slow] / 2, flow_vph=300.0),
            link_row(fast, T0, speed_mps=limit[fast] * 1.1, flow_vph=100.0),  # above the limit: 0 s
        ],
    )
    j1 = layer(network_geojson(settings), "signals")["J1"]["properties"]
    # half the limit: the edge takes twice its free time, so the delay is one free time
    expected = (300.0 * length[slow] / limit[slow] + 100.0 * 0.0) / 400.0
    assert j1["approach_delay_s"] == pytest.approx(expected, abs=0.05)
    assert j1["approach_flow_vph"] == 400.0 and j1["approaches"] == len(incoming)
    # a signal none of whose approaches has a speed has no delay, not 0
    assert layer(network_geojson(settings), "signals")["J2"]["properties"]["approach_delay_s"] is None


def test_only_the_files_in_the_tables_log_are_read(settings: Settings) -> None:
    """A rewritten quarter hour keeps its replaced file (for time travel) and a killed job leaves
    its torn one: neither is data, nor makes a quarter hour the lake has."""
    lake = settings.lake_path
    write_partition(lake, "gold.link_state_15min", T0, [link_row("W0_J1w", T0, flow_vph=1.0)])
    write_partition(lake, "gold.link_state_15min", T0, [link_row("W0_J1w", T0, flow_vph=2.0)])
    later = T0 + timedelta(minutes=15)
    stray_file(lake, "gold.link_state_15min", T0, [link_row("W0_J1w", T0, flow_vph=3.0)], "part-torn.parquet")
    stray_file(lake, "gold.link_state_15min", later, [link_row("W0_J1w", later)], "part-torn.parquet")
    stray_file(lake, "silver.incidents", T0, [incident_row("torn", T0, T0)], "part-torn.parquet")
    assert len(list(LINK_STATE.partition_path(lake, partition_of(T0)).glob("*.parquet"))) == 3
    geojson = network_geojson(settings)
    assert geojson["slot"] == "2026-11-28T07:00:00Z" and geojson["slots"] == ["2026-11-28T07:00:00Z"]
    assert layer(geojson, "edges")["W0_J1w"]["properties"]["flow_vph"] == 2.0
    assert not layer(geojson, "incidents")


def test_the_finished_answer_is_kept_until_a_table_it_was_made_of_changes(settings: Settings) -> None:
    write_partition(settings.lake_path, "gold.link_state_15min", T0, [link_row("W0_J1w", T0, flow_vph=1.0)])
    first = network_document(settings)
    assert network_document(settings) is first  # nothing changed: not built again
    assert orjson.loads(first.body) == orjson.loads(orjson.dumps(network_geojson(settings)))
    write_partition(settings.lake_path, "gold.link_state_15min", T0, [link_row("W0_J1w", T0, flow_vph=2.0)])
    second = network_document(settings)
    assert second.etag != first.etag
    assert layer(orjson.loads(second.body), "edges")["W0_J1w"]["properties"]["flow_vph"] == 2.0


def test_a_version_is_read_from_the_log_again_only_once_its_folder_changed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request stats the log folder; it reads the log when the folder changed, or changed so
    lately that a commit in the same tick of the clock could have left its time as it was."""
    lake = settings.lake_path
    write_partition(lake, "gold.link_state_15min", T0, [link_row("W0_J1w", T0, flow_vph=1.0)])
    reads: list[str] = []
    real = network_layers.table_version
    monkeypatch.setattr(
        network_layers, "table_version", lambda lake, table: reads.append(table.name) or real(lake, table)
    )
    network_document(settings)
    network_document(settings)
    assert reads == ["gold.link_state_15min"] * 2  # just committed: read on every request
    settled = time.time_ns() - 2 * network_layers.SETTLE_NS
    os.utime(LINK_STATE.path(lake) / "_delta_log", ns=(settled, settled))
    first = network_document(settings)
    assert network_document(settings) is first
    assert len(reads) == 3  # once for the settled folder
    write_partition(lake, "gold.link_state_15min", T0, [link_row("W0_J1w", T0, flow_vph=2.0)])
    second = network_document(settings)
    assert len(reads) == 4
    assert layer(orjson.loads(second.body), "edges")["W0_J1w"]["properties"]["flow_vph"] == 2.0
