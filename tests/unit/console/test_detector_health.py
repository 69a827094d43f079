"""The detector-health page's data: a day of ``gold.detector_health_daily`` committed as the lake
commits it, read worst first with a count per status, and the API over it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from console import detector_health
from console.detector_health import HEALTH, BadDay, parse_day, read
from core.settings import Settings
from lake.delta import delta_table, filled_days, full_schema, write_partitions
from tests.unit.console.plans_and_users import client, logged_in

DAY = date(2026, 11, 28)
EARLIER = date(2026, 11, 27)


def write_day(lake: Path, day: date, rows: list[dict]) -> None:
    """``rows`` as the lake's daily job commits a day: its partition replaced in one commit."""
    schema = full_schema(HEALTH)
    columns = {field.name: [row.get(field.name) for row in rows] for field in schema}
    columns["date"] = [day.isoformat()] * len(rows)
    write_partitions(lake, HEALTH, pa.table(columns, schema=schema), [(day.isoformat(),)])


def stray_file(lake: Path, day: date, rows: list[dict]) -> Path:
    """``rows`` in a Parquet file in the day's folder that the table's log does not name: the torn
    file of a killed job."""
    schema = HEALTH.arrow_schema()
    folder = HEALTH.partition_path(lake, (day.isoformat(),))
    folder.mkdir(parents=True, exist_ok=True)
    columns = {field.name: [row.get(field.name) for row in rows] for field in schema}
    pq.write_table(pa.table(columns, schema=schema), folder / "part-torn.parquet")
    return folder / "part-torn.parquet"


def health_row(detector_id: str, status: str, availability: float, usable_share: float, **values) -> dict:
    return {
        "detector_id": detector_id,
        "intersection_id": "J1",
        "lane_id": f"{detector_id}_lane_0",
        "edge_id": "W0_J1w",
        "expected_intervals": 96,
        "received_intervals": round(96 * availability),
        "availability": availability,
        "duplicates": 0,
        "late_intervals": 0,
        "stuck_intervals": 0,
        "zero_intervals": 0,
        "implausible_intervals": 0,
        "usable_share": usable_share,
        "status": status,
        "last_seen": datetime(2026, 11, 28, 23, 45, tzinfo=UTC),
        **values,
    }


#: The newest day, in no particular order; worst first it is D4, D3, D2, D0, D1.
NEWEST = [
    health_row("D1", "ok", 1.0, 1.0),
    health_row("D3", "down", 0.3, 0.9, stuck_intervals=5),
    health_row("D0", "ok", 0.99, 0.97, edge_id=None),
    health_row("D4", "down", 0.9, 0.2, implausible_intervals=40),
    health_row("D2", "degraded", 0.9, 0.95, late_intervals=3),
]


@pytest.fixture
def lake(settings: Settings) -> Path:
    """A lake with two days of detector health; the earlier one has a single degraded detector."""
    write_day(settings.lake_path, EARLIER, [health_row("D9", "degraded", 0.8, 1.0)])
    write_day(settings.lake_path, DAY, NEWEST)
    return settings.lake_path


def ids(detectors) -> list[str]:
    return [d["detector_id"] if isinstance(d, dict) else d.detector_id for d in detectors]


def test_the_newest_day_worst_first_with_a_count_per_status(settings, lake):
    found = read(settings)
    assert found.day == DAY and found.days == [EARLIER, DAY] and found.reason is None
    # by status, then by the lower of availability and usable share
    assert ids(found.detectors) == ["D4", "D3", "D2", "D0", "D1"]
    assert found.counts == {"down": 2, "degraded": 1, "ok": 2}
    assert list(found.counts) == ["down", "degraded", "ok"]
    worst = found.detectors[0]
    assert (worst.implausible_intervals, worst.usable_share, worst.received_intervals) == (40, 0.2, 86)
    assert worst.last_seen == datetime(2026, 11, 28, 23, 45, tzinfo=UTC)
    assert found.detectors[3].edge_id is None


def test_a_day_asked_for_and_a_status_filter(settings, lake):
    earlier = read(settings, EARLIER)
    assert earlier.day == EARLIER and ids(earlier.detectors) == ["D9"]
    assert earlier.counts == {"down": 0, "degraded": 1, "ok": 0}
    down = read(settings, status="down")
    assert ids(down.detectors) == ["D4", "D3"]
    # the counts are the whole day's, whatever is shown
    assert down.counts == {"down": 2, "degraded": 1, "ok": 2}
    assert read(settings, EARLIER, "ok").detectors == []


def test_a_day_the_lake_lacks_is_empty_and_says_so(settings, lake):
    found = read(settings, date(2026, 11, 1))
    assert found.day == date(2026, 11, 1) and found.detectors == []
    assert found.days == [EARLIER, DAY]
    assert found.reason and "2026-11-01" in found.reason
    assert found.counts == {"down": 0, "degraded": 0, "ok": 0}


def test_a_lake_without_the_table_gives_the_reason(settings):
    found = read(settings)
    assert (found.day, found.days, found.detectors) == (None, [], [])
    assert found.reason and HEALTH.name in found.reason


def test_only_the_files_in_the_tables_log_are_read(settings, lake):
    """A torn file of a killed job is no data and makes no day; a stray folder is no day."""
    stray_file(lake, date(2026, 11, 29), NEWEST)
    stray_file(lake, DAY, [health_row("D7", "down", 0.0, 0.0)])
    (HEALTH.path(lake) / "date=someday").mkdir()
    assert filled_days(lake, HEALTH.name) == [EARLIER, DAY]
    found = read(settings)
    assert found.day == DAY and ids(found.detectors) == ["D4", "D3", "D2", "D0", "D1"]


def test_a_rerun_of_a_day_replaces_it(settings, lake):
    """The replaced file stays in the day's folder, for time travel, and is not read."""
    write_day(lake, DAY, [health_row("D5", "down", 0.0, 0.0)])
    assert len(list(HEALTH.partition_path(lake, (DAY.isoformat(),)).glob("*.parquet"))) == 2
    found = read(settings)
    assert ids(found.detectors) == ["D5"] and found.counts == {"down": 1, "degraded": 0, "ok": 0}


def test_a_day_of_several_files_is_read_whole(settings, lake):
    """A job may commit a day as several files (one per task)."""
    from deltalake import write_deltalake

    more = pa.Table.from_pylist(
        [{**health_row("D5", "down", 0.0, 0.0), "date": DAY.isoformat()}], schema=full_schema(HEALTH)
    )
    write_deltalake(delta_table(lake, HEALTH), more, mode="append")
    assert len(list(HEALTH.partition_path(lake, (DAY.isoformat(),)).glob("*.parquet"))) == 2
    found = read(settings)
    assert ids(found.detectors) == ["D5", "D4", "D3", "D2", "D0", "D1"]
    assert found.counts["down"] == 3


def test_a_day_is_written_yyyy_mm_dd():
    assert parse_day("2026-11-28") == DAY


@pytest.mark.parametrize(
    "text", ["0", "1764288000", "20261128", "2026-11-28T00:00", "2026-02-30", "28.11.2026"]
)
def test_anything_else_is_not_a_day(text):
    with pytest.raises(BadDay):
        parse_day(text)


# -- the API ------------------------------------------------------------------------------------


def test_the_api_needs_a_session(app, lake):
    assert client(app).get("/api/detectors").status_code == 401


@pytest.mark.parametrize(
    "query", ["day=0", "day=2026-02-30", "day=yesterday", "day=2026-11-28-", "status=broken", "status=OK"]
)
def test_the_api_refuses_a_malformed_day_or_status(app, lake, query):
    browser, _ = logged_in(app, "vera")
    answer = browser.get(f"/api/detectors?{query}")
    assert answer.status_code == 422, answer.text


def test_any_user_reads_the_newest_day_worst_first(app, lake):
    browser, _ = logged_in(app, "vera")  # a viewer
    answer = browser.get("/api/detectors")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["day"] == "2026-11-28" and found["days"] == ["2026-11-27", "2026-11-28"]
    assert found["counts"] == {"down": 2, "degraded": 1, "ok": 2} and found["reason"] is None
    assert ids(found["detectors"]) == ["D4", "D3", "D2", "D0", "D1"]
    row = found["detectors"][1]
    assert row == {
        **health_row("D3", "down", 0.3, 0.9, stuck_intervals=5),
        "last_seen": "2026-11-28T23:45:00Z",
    }


def test_the_api_takes_a_day_and_a_status(app, lake):
    browser, _ = logged_in(app, "olga")
    assert ids(browser.get("/api/detectors?day=2026-11-27").json()["detectors"]) == ["D9"]
    found = browser.get("/api/detectors?day=2026-11-28&status=degraded").json()
    assert ids(found["detectors"]) == ["D2"]
    missing = browser.get("/api/detectors?day=2026-10-01")
    assert missing.status_code == 200 and missing.json()["detectors"] == [] and missing.json()["reason"]


def test_the_api_on_a_lake_without_the_table(app):
    browser, _ = logged_in(app, "vera")
    answer = browser.get("/api/detectors")
    assert answer.status_code == 200, answer.text
    assert answer.json()["detectors"] == [] and HEALTH.name in answer.json()["reason"]


def test_the_page_is_served_and_loads_its_script_and_plotly(app):
    assert client(app).get("/detectors", follow_redirects=False).status_code == 303
    browser, _ = logged_in(app, "vera")
    page = browser.get("/detectors")
    assert page.status_code == 200 and 'id="chart"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for url in ("/static/detectors.js", "/static/vendor/plotly.min.js"):
        assert f'src="{url}"' in page.text
        assert browser.get(url).status_code == 200, url
    assert '"/detectors"' in browser.get("/static/common.js").text


def test_the_statuses_the_api_accepts_are_those_the_reader_orders(app):
    """The route restates the statuses as its query's enum (for the OpenAPI schema)."""
    schema = app.openapi()["paths"]["/api/detectors"]["get"]["parameters"]
    (status,) = [p for p in schema if p["name"] == "status"]
    assert tuple(status["schema"]["anyOf"][0]["enum"]) == detector_health.STATUSES
