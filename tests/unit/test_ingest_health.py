"""The ingest health check's judging and bookkeeping, with the broker's answers as plain values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.settings import Settings
from schemas import INPUT_TOPICS
from streaming.health import (
    IngestUnhealthy,
    Measurement,
    assess,
    check,
    new_records,
    read_state,
    require_healthy,
    state_file,
    write_state,
)

DETECTOR = "traffic.detector.v1"
DETECTOR_DLQ = "traffic.detector.v1.dlq"
T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def measured(lag: dict[str, int] | None = None, **dlq_ends: dict[int, int]) -> Measurement:
    """A measurement: lag per input topic, and dead-letter ends per partition by input-topic key."""
    ends = {f"{topic}.dlq": {0: 0, 1: 0} for topic in INPUT_TOPICS}
    for key, partitions in dlq_ends.items():
        ends[dict(detector=DETECTOR_DLQ, probe="operator.probe.v1.dlq")[key]] = partitions
    return Measurement(lag={t: 0 for t in INPUT_TOPICS} | (lag or {}), dead_letter_ends=ends)


def judge(measurement: Measurement, previous, max_lag: int = 100, max_dead_letters: int = 10):
    return assess(
        measurement,
        previous,
        group="citybrain-ingest",
        max_lag=max_lag,
        max_dead_letters=max_dead_letters,
        checked_at=T0 + timedelta(minutes=5),
        previous_check=T0 if previous is not None else None,
    )


def topic(report, name: str):
    return next(t for t in report.topics if t.topic == name)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(var_dir=tmp_path / "var", ingest_health_max_lag=100, ingest_health_max_dead_letters=10)


class Broker:
    """Stands in for :func:`streaming.health.measure_broker`: hands out the measurements queued."""

    def __init__(self, *measurements: Measurement):
        self.measurements = list(measurements)

    def __call__(self, settings: Settings) -> Measurement:
        return self.measurements.pop(0)


# --------------------------------------------------------------------------- growth


def test_growth_is_the_sum_of_each_partitions_advance():
    assert new_records({0: 15, 1: 7}, {0: 10, 1: 7}) == 5


def test_a_partition_whose_end_went_back_was_recreated_and_counts_from_zero():
    assert new_records({0: 3, 1: 9}, {0: 40, 1: 8}) == 3 + 1


def test_a_new_partition_counts_from_zero():
    assert new_records({0: 2, 1: 4}, {0: 2}) == 4


# --------------------------------------------------------------------------- judging


def test_a_quiet_ingest_is_healthy():
    report = judge(measured(lag={DETECTOR: 100}, detector={0: 14, 1: 6}), {DETECTOR_DLQ: {0: 10, 1: 0}})

    assert report.healthy and report.problems == []
    assert topic(report, DETECTOR).lag == 100
    assert topic(report, DETECTOR).dead_letters == 20
    assert topic(report, DETECTOR).new_dead_letters == 10


def test_lag_above_the_limit_is_a_problem_naming_topic_figure_and_limit():
    report = judge(measured(lag={DETECTOR: 1_234}), previous=None)

    assert report.problems == [
        f"consumer group 'citybrain-ingest' lags 1,234 records behind on {DETECTOR}, "
        "more than the limit of 100 (CITYBRAIN_INGEST_HEALTH_MAX_LAG)"
    ]


def test_dead_letter_growth_above_the_limit_is_a_problem_naming_topic_figure_and_limit():
    report = judge(measured(detector={0: 20, 1: 5}), {DETECTOR_DLQ: {0: 10, 1: 4}})

    (problem,) = report.problems
    assert problem.startswith(f"11 new dead letters in {DETECTOR_DLQ} since 2026-11-28T07:00:00+00:00")
    assert "limit of 10 (CITYBRAIN_INGEST_HEALTH_MAX_DEAD_LETTERS)" in problem


def test_a_first_check_counts_no_growth_however_many_dead_letters_there_are():
    report = judge(measured(detector={0: 5_000, 1: 0}), previous=None)

    assert report.healthy
    assert topic(report, DETECTOR).dead_letters == 5_000
    assert topic(report, DETECTOR).new_dead_letters == 0
    assert report.previous_check is None


def test_every_input_topic_is_reported_and_each_problem_listed():
    report = judge(
        measured(lag={DETECTOR: 101, "public.weather.v1": 500}, probe={0: 50, 1: 0}),
        {"operator.probe.v1.dlq": {0: 0}},
    )

    assert [t.topic for t in report.topics] == list(INPUT_TOPICS)
    assert len(report.problems) == 3
    with pytest.raises(IngestUnhealthy) as raised:
        require_healthy(report)
    for name in (DETECTOR, "public.weather.v1", "operator.probe.v1.dlq"):
        assert name in str(raised.value)


def test_the_report_is_json():
    report = judge(measured(), {DETECTOR_DLQ: {0: 0}})

    data = json.loads(json.dumps(report.to_dict()))

    assert data["healthy"] is True
    assert data["previous_check"] == T0.isoformat()
    assert data["topics"][0]["topic"] == INPUT_TOPICS[0]


# --------------------------------------------------------------------------- state


def test_the_state_file_round_trips_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "run" / "ingest_health.json"

    write_state(path, {DETECTOR_DLQ: {0: 12, 2: 3}}, T0)

    assert read_state(path) == ({DETECTOR_DLQ: {0: 12, 2: 3}}, T0)
    assert [p.name for p in path.parent.iterdir()] == ["ingest_health.json"]


@pytest.mark.parametrize("content", ["", "{not json", '{"checked_at": "2026-11-28T07:00:00+00:00"}', "[]"])
def test_a_damaged_state_file_reads_as_no_previous_check(tmp_path, content):
    path = tmp_path / "ingest_health.json"
    path.write_text(content)

    assert read_state(path) is None


def test_check_compares_with_the_previous_check_and_records_every_check(settings):
    broker = Broker(
        measured(detector={0: 100, 1: 0}),
        measured(detector={0: 105, 1: 3}),
        measured(detector={0: 120, 1: 3}),
    )
    times = iter([T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)])

    def run():
        return check(settings, measure=broker, now=lambda: next(times))

    first, second, third = run(), run(), run()

    assert topic(first, DETECTOR).new_dead_letters == 0 and first.healthy
    assert topic(second, DETECTOR).new_dead_letters == 8 and second.healthy
    assert second.previous_check == T0
    assert topic(third, DETECTOR).new_dead_letters == 15 and not third.healthy
    assert read_state(state_file(settings)) == (broker_ends(120, 3), T0 + timedelta(minutes=10))


def test_a_failed_check_is_recorded_too_so_one_burst_fails_one_check(settings):
    broker = Broker(measured(detector={0: 0}), measured(detector={0: 50}), measured(detector={0: 50}))

    reports = [check(settings, measure=broker) for _ in range(3)]

    assert [r.healthy for r in reports] == [True, False, True]


def test_check_reads_its_limits_and_group_from_the_settings(tmp_path):
    strict = Settings(var_dir=tmp_path, ingest_group="g2", ingest_health_max_lag=0)

    report = check(strict, measure=Broker(measured(lag={DETECTOR: 1})))

    assert report.group == "g2" and report.max_lag == 0
    assert "'g2' lags 1 records" in report.problems[0]
    assert state_file(strict) == tmp_path / "run" / "ingest_health.json"


def broker_ends(partition0: int, partition1: int) -> dict[str, dict[int, int]]:
    ends = measured().dead_letter_ends
    ends[DETECTOR_DLQ] = {0: partition0, 1: partition1}
    return ends
