"""citybrain_optimize run by Airflow (``dag.test()``) on the session's fused twin lake (``fused``):
demand from gold → search → evaluation against the twin's own programs → a plan stored and
published to the real embedded broker. Plus how the DAG reads its period's end, without Airflow runs.

The corridor's own programs are sized for the 07:30–08:30 peak (120 s cycle); the twin lake holds
06:30–07:15, when demand is at 55–80 % of the peak, and the best of the search's starting points
(the Webster plan of that demand, a green wave, the current programs) is far better. Measured on
06:45–07:15, the period the test optimizes, with the smallest budget: RESCO delay 47.9 s against
72.7 s (−34 %, paired p = 0.0006 over 3 seeds); on all 45 minutes 46 s against 74 s. So the plan
is reliably proposed.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest

from lake.delta import filled_slots, table_versions
from lake.tables import DEMAND_TABLES
from optimizer.plans.model import PROPOSED_TOPIC
from optimizer.proposing import store
from schemas import contract
from tests.integration.conftest import read_records
from tests.unit.dags.airflow_env import run_dag

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]

DAG_ID = "citybrain_optimize"
#: Less than simulating the search's starting points on its training seeds takes, so the search
#: returns the best start without a CMA-ES generation: quick, and the same every time.
BUDGET_MINUTES = 0.01
SEEDS = 3
#: Half an hour of the lake's 45 minutes: shorter simulations, and the period's cap at work.
PERIOD_MINUTES = 30
#: The corridor's signals: one record each on the topic.
SIGNALS = 7


@pytest.fixture
def optimize_dag(dagbag):
    """The DAG with this test's params, as a trigger's config would set them. A task holds its own
    copy of the DAG's params, taken when it was defined, so they are set there."""
    dag = copy.deepcopy(dagbag.dags[DAG_ID])
    for task in dag.tasks:
        task.params["budget_minutes"] = BUDGET_MINUTES
        task.params["seeds"] = SEEDS
        task.params["period_minutes"] = PERIOD_MINUTES
    return dag


def test_a_run_on_fused_gold_proposes_a_better_plan_to_kafka_and_the_store(
    fused, kafka, reader, citybrain_env, optimize_dag
):
    # The test's broker and plan store (kafka's var folder), the shared fused lake read in place.
    settings = citybrain_env(kafka.model_copy(update={"lake_uri": str(fused.settings.lake_path)}))

    result = run_dag(optimize_dag)

    assert result.state == "success", result
    assert result.tasks == {
        "demand": "success",
        "optimize_evaluate_propose": "success",
        "incident_plans": "success",
    }
    demand = result.returned["demand"]
    # The newest fused quarter hours, as many as the period may have.
    start = fused.end - timedelta(minutes=PERIOD_MINUTES)
    assert (demand["start"], demand["end"]) == (start.isoformat(), fused.end.isoformat())
    assert demand["scenario"] == "lake/corridor/20261128T0645Z-20261128T0715Z"
    assert demand["fit"]["geh_ok_share"] >= 0.85
    summary = result.returned["optimize_evaluate_propose"]
    assert summary["outcome"] == "published", summary
    assert summary["delay"]["coordinated"] < 0.8 * summary["delay"]["fixed"], summary
    assert (summary["signals"], summary["published"]) == (SIGNALS, SIGNALS)

    messages = read_records(reader, PROPOSED_TOPIC, wait_s=5.0)
    records = [orjson.loads(message.value) for message in messages]
    for record in records:
        contract(PROPOSED_TOPIC).validate(record)
    assert {record["plan_id"] for record in records} == {summary["plan_id"]}
    assert sorted(message.key.decode() for message in messages) == sorted(r["tls_id"] for r in records)
    assert len({record["tls_id"] for record in records}) == SIGNALS
    # proposed for the same hours of the next day
    valid_from = datetime.fromisoformat(records[0]["valid_from"].replace("Z", "+00:00"))
    assert valid_from == start + timedelta(days=1)
    assert records[0]["evaluation"]["seeds"] == list(range(1, SEEDS + 1))
    # The gold versions the demand was read from, so the counts behind the plan can be read again.
    versions = table_versions(fused.settings.lake_path, DEMAND_TABLES)
    assert demand["lake_versions"] == versions
    assert all(r["evaluation"]["lake_versions"] == versions for r in records)

    stored = store.get(store.open_store(settings), summary["plan_id"])
    assert stored.status == "proposed" and stored.published
    assert sorted(stored.records, key=lambda r: r["tls_id"]) == sorted(records, key=lambda r: r["tls_id"])
    # The twin's incident (a lane closed 06:45–06:55) was cleared before the period's end: the
    # incident task read it from silver.incidents and had nothing to re-plan or stand down.
    assert result.returned["incident_plans"] == {"replanned": [], "stood_down": [], "refused": []}


def fake_pipeline(outcome: str, reason: str):
    """optimize_and_propose as far as the task sees it, ending in ``outcome``."""
    from optimizer.proposing.propose import Proposal

    def run(settings, scenario, period, **options):
        proposal = Proposal("plan-x", outcome, reason, stored=outcome != "refused-not-better")
        summary = {"scenario": scenario.name, "plan_id": "plan-x", "outcome": outcome, "reason": reason}
        return SimpleNamespace(proposal=proposal, summary=lambda: summary)

    return run


@pytest.mark.parametrize(
    ("outcome", "state", "logged"),
    [
        ("refused-not-better", "success", "no plan proposed (refused-not-better): not better"),
        ("publish-failed", "failed", "PublishError: plan plan-x: stored, but not sent"),
    ],
)
def test_a_refusal_is_a_successful_run_and_an_unsent_proposal_a_failed_one(
    fused, citybrain_env, optimize_dag, monkeypatch, tmp_path, capfd, caplog, outcome, state, logged
):
    """The pipeline itself is replaced: what is checked is how the task treats its outcome."""
    import optimizer.proposing.pipeline

    citybrain_env(fused.reading(tmp_path / "var"))
    reason = "not better" if outcome.startswith("refused") else "stored, but not sent"
    monkeypatch.setattr(optimizer.proposing.pipeline, "optimize_and_propose", fake_pipeline(outcome, reason))

    result = run_dag(optimize_dag)

    assert result.state == state, result
    assert result.tasks == {
        "demand": "success",
        "optimize_evaluate_propose": state,
        "incident_plans": "success",
    }
    # the task's own log lines reach pytest's log capture; Airflow prints a task's error to stdout
    assert logged in caplog.text + capfd.readouterr().out
    if state == "success":
        assert result.returned["optimize_evaluate_propose"]["outcome"] == outcome


def test_a_lake_without_gold_skips_the_run(citybrain_env, optimize_dag, tmp_path):
    from core.settings import Settings

    citybrain_env(Settings(var_dir=tmp_path / "var"))

    result = run_dag(optimize_dag)

    assert result.state == "success", result
    assert result.tasks == {
        "demand": "skipped",
        "optimize_evaluate_propose": "skipped",
        "incident_plans": "skipped",
    }


def at(hhmm: str) -> datetime:
    return datetime(2026, 11, 28, int(hhmm[:2]), int(hhmm[2:]), tzinfo=UTC)


def test_the_end_is_the_param_else_the_newest_triggering_fuse_window():
    from dags.citybrain_optimize import requested_end

    def event(end, run_id):
        run = SimpleNamespace(data_interval_end=end)
        return SimpleNamespace(source_dag_id="citybrain_fuse", source_run_id=run_id, source_dag_run=run)

    events = [event(at("0700"), "a"), event(at("0715"), "b"), event(at("0715"), "b"), event(None, None)]
    assert requested_end(None, events) == at("0715")
    assert requested_end("2026-11-28T07:30:00Z", events) == at("0730")
    assert requested_end(None, [event(None, None)]) is None
    with pytest.raises(ValueError, match="not on a quarter hour"):
        requested_end("2026-11-28T07:31:00+00:00", [])
    with pytest.raises(ValueError, match="no time zone"):
        requested_end("2026-11-28T07:30:00", [])


def test_the_fused_quarter_hours_are_those_of_the_lake(fused):
    slots = filled_slots(fused.settings.lake_path, DEMAND_TABLES)
    assert slots == {fused.start + i * timedelta(minutes=15) for i in range(3)}
