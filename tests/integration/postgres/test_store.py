"""The plan store on a real PostgreSQL server: the store's own tests on an engine
(``tests/unit/optimizer/test_store.py``) run again here on a fresh database each, then what only
a server shows: times come back in UTC from a server in another zone, an approval's outbox
round-trips its records, of two operators deciding at the same moment one wins and the other is
told, and two signals' outcomes arriving at once are both kept."""

from __future__ import annotations

import inspect
import threading
from datetime import UTC

import pytest
from sqlalchemy import select, text, update

from core import database
from optimizer.proposing import store
from tests.unit.optimizer import test_store as unit
from tests.unit.optimizer.test_store import (  # noqa: F401  (collected and run here, on PostgreSQL)
    saved,
    small_plan,
    test_a_proposal_round_trips_with_its_records_and_evaluation,
    test_a_rollback_read_before_another_signals_application_still_ends_rolled_back,
    test_an_unpublished_plan_cannot_be_approved,
    test_listing_is_newest_first_and_filters_by_status,
    test_one_refused_signal_refuses_the_plan,
    test_other_transitions_are_refused_naming_what_is_allowed,
    test_records_of_another_plan_are_refused,
    test_signal_outcomes_from_the_field_decide_the_plan,
    test_superseding_is_allowed_from_proposed_and_approved,
    test_the_lifecycle_allows_its_transitions_and_audits_each,
    test_the_outbox_lists_unacknowledged_proposals_with_the_last_error,
    test_the_same_plan_cannot_be_stored_twice,
    test_unknown_plans_statuses_and_missing_actors_are_errors,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres_url):
    """The store's engine on this test's PostgreSQL database (the unit tests' is a SQLite file)."""
    return store.open_url(postgres_url)


def test_every_store_test_on_an_engine_runs_here_too():
    on_engine = {
        name
        for name, test in vars(unit).items()
        if name.startswith("test_") and "engine" in inspect.signature(test).parameters
    }
    assert on_engine - set(globals()) == set(), "import them above"


def test_times_come_back_in_utc_from_a_server_in_another_zone(engine):
    with engine.connect() as connection:
        assert connection.execute(text("SHOW TimeZone")).scalar_one() != "UTC"
    plan = small_plan()
    saved(engine, plan)
    got = store.get(engine, plan.plan_id)
    assert got.valid_from == plan.valid_from and got.valid_from.tzinfo is UTC
    assert all(t.tzinfo is UTC for t in (got.created_at, got.published_at, *(e.at for e in got.events)))


def test_approvals_queue_in_order_with_their_records_until_acknowledged(engine):
    first, second = saved(engine).plan_id, saved(engine, small_plan(green_s=25)).plan_id
    store.set_status(engine, second, store.APPROVED, "olga", "evening peak")
    store.set_status(engine, first, store.APPROVED, "adam")
    queued = store.unpublished_approvals(engine)
    assert [p.plan_id for p in queued] == [second, first]
    (record, _) = queued[0].approval_records
    assert record["approval"]["approved_by"] == "olga" and record["approval"]["comment"] == "evening peak"
    store.mark_approval_published(engine, second, actor="console")
    assert [p.plan_id for p in store.unpublished_approvals(engine)] == [first]
    assert store.list_plans(engine, store.PROPOSED) == []


def test_of_two_decisions_at_once_one_wins_and_the_other_is_refused(engine):
    plan_id = saved(engine).plan_id
    refused: list[BaseException] = []

    def late_decision() -> None:
        try:
            store.set_status(engine, plan_id, store.REJECTED, "adam", "match day")
        except store.TransitionRefused as exc:
            refused.append(exc)

    with engine.connect() as first:  # olga's approval, written but not yet committed
        first.execute(update(store.plans).where(store.plans.c.plan_id == plan_id).values(status="approved"))
        late = threading.Thread(target=late_decision)
        late.start()  # reads "proposed", then waits on olga's row lock
        late.join(1.0)
        assert late.is_alive(), "the second decision should wait for the first to commit"
        first.commit()
    late.join(30)
    assert [str(e) for e in refused] == [f"plan {plan_id} changed status concurrently; read it again"]
    assert store.get(engine, plan_id).status == store.APPROVED
    with database.ready(engine).connect() as connection:
        count = text("SELECT count(*) FROM plan_events WHERE status = 'rejected'")
        assert connection.execute(count).scalar_one() == 0


def test_outcomes_of_two_signals_arriving_at_once_are_both_kept(engine):
    plan = saved(engine)  # two signals
    store.set_status(engine, plan.plan_id, store.APPROVED, "olga")
    signals = [str(record["tls_id"]) for record in plan.records]
    with engine.connect() as holder:  # holds the plan's row while both answers arrive
        holder.execute(
            select(store.plans.c.plan_id).where(store.plans.c.plan_id == plan.plan_id).with_for_update()
        )
        answers = [
            threading.Thread(
                target=store.record_signal_outcome, args=(engine, plan.plan_id, tls, "applied", "field")
            )
            for tls in signals
        ]
        for answer in answers:
            answer.start()
        for answer in answers:
            answer.join(0.5)
        assert all(answer.is_alive() for answer in answers)
        holder.commit()
    for answer in answers:
        answer.join(30)
    got = store.get(engine, plan.plan_id)
    assert got.signal_outcomes == dict.fromkeys(signals, "applied") and got.status == store.APPLIED
