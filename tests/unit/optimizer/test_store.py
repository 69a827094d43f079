"""The plan store on SQLite: a proposal round-trips as JSON, the lifecycle allows only its
transitions, every change is audited, and the outbox lists what Kafka has not acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine

from core.settings import Settings
from optimizer.plans.model import Evaluation, KpiEstimate, NetworkPlan, Phase, SignalPlan
from optimizer.proposing import store

START = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def small_plan(green_s: float = 30.0) -> NetworkPlan:
    """A well-formed two-signal plan; the store does not need a network."""
    phases = (Phase("GGrr", green_s), Phase("yyrr", 3), Phase("rrGG", 30), Phase("rryy", 3))
    return NetworkPlan(
        signals=(SignalPlan("J1", phases), SignalPlan("J2", phases, offset_s=12)),
        method="coordinated",
        valid_from=START,
        valid_to=START + timedelta(hours=2),
        evaluation=Evaluation(
            scenario="corridor",
            seeds=(1, 2, 3),
            baseline={"resco_delay": KpiEstimate(40.0, 1.5, (36.3, 43.7))},
            plan={"resco_delay": KpiEstimate(30.0, 1.0, (27.5, 32.5))},
            baseline_method="fixed",
        ),
    )


@pytest.fixture
def engine(tmp_path):
    return store.open_url(f"sqlite:///{tmp_path / 'plans.db'}")


def saved(engine, plan=None, published=True) -> store.StoredPlan:
    plan = plan or small_plan()
    stored = store.save_proposal(engine, plan, plan.to_records(ts=START))
    if published:
        store.mark_published(engine, plan.plan_id)
    return stored


def test_a_proposal_round_trips_with_its_records_and_evaluation(engine):
    plan = small_plan()
    records = plan.to_records(ts=START)
    evaluation = {**plan.evaluation.to_record(), "significance": {"test": "paired-t", "p_value": 0.003}}
    store.save_proposal(engine, plan, records, evaluation=evaluation, note="beats fixed")

    got = store.get(engine, plan.plan_id)
    assert got.records == records
    assert got.evaluation == evaluation
    assert (got.method, got.scenario, got.status) == ("coordinated", "corridor", "proposed")
    assert got.valid_from == START and got.valid_from.tzinfo is not None
    assert got.valid_to == START + timedelta(hours=2)
    assert got.created_at.tzinfo is not None and not got.published
    assert [(e.status, e.actor, e.note) for e in got.events] == [("proposed", "optimizer", "beats fixed")]
    assert got.network_plan() == plan


def test_the_same_plan_cannot_be_stored_twice(engine):
    saved(engine)
    with pytest.raises(store.PlanExists, match="stored already"):
        saved(engine)


def test_records_of_another_plan_are_refused(engine):
    plan, other = small_plan(), small_plan(green_s=25)
    with pytest.raises(store.StoreError, match="records must be this plan's"):
        store.save_proposal(engine, plan, other.to_records())


def test_the_lifecycle_allows_its_transitions_and_audits_each(engine):
    plan_id = saved(engine).plan_id
    store.set_status(engine, plan_id, "approved", "op-anna", "morning peak looks right")
    applied = store.set_status(engine, plan_id, "applied", "sumo-twin")
    assert applied.status == "applied"
    assert [(e.status, e.actor) for e in applied.events] == [
        ("proposed", "optimizer"),
        ("proposed", "optimizer"),  # the publish acknowledgement
        ("approved", "op-anna"),
        ("applied", "sumo-twin"),
    ]
    assert applied.events[2].note == "morning peak looks right"


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ((), "applied"),  # nobody approved it
        (("rejected",), "approved"),  # final
        (("approved", "applied"), "approved"),  # applied moves only on: superseded or rolled back
        (("approved", "failed"), "applied"),  # final
        (("superseded",), "proposed"),
        (("approved",), "rejected"),
    ],
)
def test_other_transitions_are_refused_naming_what_is_allowed(engine, path, refused):
    plan_id = saved(engine).plan_id
    for status in path:
        store.set_status(engine, plan_id, status, "op-anna")
    current = path[-1] if path else "proposed"
    with pytest.raises(store.TransitionRefused, match=f"is {current}; it can become .*, not {refused}"):
        store.set_status(engine, plan_id, refused, "op-anna")
    assert store.get(engine, plan_id).status == current


def test_superseding_is_allowed_from_proposed_and_approved(engine):
    first, second = saved(engine).plan_id, saved(engine, small_plan(green_s=25)).plan_id
    store.set_status(engine, second, "approved", "op-anna")
    assert store.set_status(engine, first, "superseded", "optimizer").status == "superseded"
    assert store.set_status(engine, second, "superseded", "optimizer").status == "superseded"


def test_an_unpublished_plan_cannot_be_approved(engine):
    plan_id = saved(engine, published=False).plan_id
    with pytest.raises(store.TransitionRefused, match="never published"):
        store.set_status(engine, plan_id, "approved", "op-anna")
    assert store.set_status(engine, plan_id, "rejected", "op-anna").status == "rejected"


def test_unknown_plans_statuses_and_missing_actors_are_errors(engine):
    plan_id = saved(engine).plan_id
    with pytest.raises(store.PlanNotFound, match="no stored plan 'nope'"):
        store.get(engine, "nope")
    with pytest.raises(store.PlanNotFound):
        store.set_status(engine, "nope", "approved", "op-anna")
    with pytest.raises(store.StoreError, match="unknown plan status 'done'"):
        store.set_status(engine, plan_id, "done", "op-anna")
    with pytest.raises(store.StoreError, match="needs an actor"):
        store.set_status(engine, plan_id, "approved", "")
    with pytest.raises(store.StoreError, match="unknown plan status"):
        store.list_plans(engine, status="done")


def test_listing_is_newest_first_and_filters_by_status(engine):
    ids = [saved(engine, small_plan(green_s=g)).plan_id for g in (20, 25, 30)]
    store.set_status(engine, ids[1], "rejected", "op-anna")
    assert [p.plan_id for p in store.list_plans(engine)] == ids[::-1]
    assert [p.plan_id for p in store.list_plans(engine, "proposed")] == [ids[2], ids[0]]
    assert [p.plan_id for p in store.list_plans(engine, "rejected")] == [ids[1]]
    assert store.list_plans(engine, "applied") == []


def test_the_outbox_lists_unacknowledged_proposals_with_the_last_error(engine):
    waiting = saved(engine, published=False).plan_id
    saved(engine, small_plan(green_s=25))
    store.mark_publish_failed(engine, waiting, "cannot reach Kafka")
    (pending,) = store.unpublished(engine)
    assert (pending.plan_id, pending.publish_error) == (waiting, "cannot reach Kafka")
    store.mark_published(engine, waiting)
    assert store.unpublished(engine) == []
    got = store.get(engine, waiting)
    assert got.published and got.publish_error is None
    assert "publishing failed: cannot reach Kafka" in got.events[1].note


def test_naive_timestamps_are_refused():
    column = store.UtcDateTime()
    with pytest.raises(store.StoreError, match="no time zone"):
        column.process_bind_param(datetime(2026, 1, 1), create_engine("sqlite://").dialect)


def test_the_settings_database_is_created_with_its_folder(tmp_path):
    settings = Settings(var_dir=tmp_path / "fresh" / "var")
    engine = store.open_store(settings)
    assert store.list_plans(engine) == []
    assert (tmp_path / "fresh" / "var" / "citybrain.db").is_file()
    assert store.open_store(settings) is engine, "one engine (and pool) per database"


def test_signal_outcomes_from_the_field_decide_the_plan(engine):
    plan = saved(engine)  # two signals
    signals = [str(r["tls_id"]) for r in plan.records]
    assert len(signals) == 2
    store.set_status(engine, plan.plan_id, "approved", "op-anna")
    # every signal but the last applied: still approved
    for tls in signals[:-1]:
        assert store.record_signal_outcome(engine, plan.plan_id, tls, "applied", "field").status == "approved"
    done = store.record_signal_outcome(engine, plan.plan_id, signals[-1], "applied", "field", "at 08:00")
    assert done.status == "applied" and done.signal_outcomes == dict.fromkeys(signals, "applied")
    assert (done.events[-1].status, done.events[-1].actor) == ("applied", "field")
    # a redelivered record moves nothing; a rollback of one signal rolls the plan back
    again = store.record_signal_outcome(engine, plan.plan_id, signals[0], "applied", "field")
    assert again.status == "applied"
    back = store.record_signal_outcome(engine, plan.plan_id, signals[0], "rolled_back", "watcher")
    assert back.status == "rolled_back" and back.signal_outcomes[signals[0]] == "rolled_back"
    with pytest.raises(store.StoreError, match="unknown field outcome"):
        store.record_signal_outcome(engine, plan.plan_id, signals[0], "maybe", "field")


def test_a_rollback_read_before_another_signals_application_still_ends_rolled_back(engine):
    # answers are keyed by signal: the follower may read the first signal's application and its
    # rollback (one partition) before the second signal's application (another partition)
    plan = saved(engine)
    first, second = (str(r["tls_id"]) for r in plan.records)
    store.set_status(engine, plan.plan_id, "approved", "op-anna")
    store.record_signal_outcome(engine, plan.plan_id, first, "applied", "field")
    early = store.record_signal_outcome(engine, plan.plan_id, first, "rolled_back", "watcher")
    assert early.status == "approved", "the second signal has not answered yet"
    done = store.record_signal_outcome(engine, plan.plan_id, second, "applied", "field")
    assert done.status == "rolled_back"
    assert [event.status for event in done.events[-2:]] == ["applied", "rolled_back"]
    assert done.signal_outcomes == {first: "rolled_back", second: "applied"}


def test_one_refused_signal_refuses_the_plan(engine):
    plan = saved(engine)
    store.set_status(engine, plan.plan_id, "approved", "op-anna")
    tls = str(plan.records[0]["tls_id"])
    refused = store.record_signal_outcome(engine, plan.plan_id, tls, "refused", "field", "green_min broken")
    assert refused.status == "refused" and "green_min broken" in refused.events[-1].note
