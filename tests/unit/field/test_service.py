"""The field service's own logic, with a scripted adapter (the real ones have their own tests):
approvals refused with the rule named, applied once however often redelivered, answered through
an outbox that keeps them while the broker is down, and the plan store following the answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core import database
from core.settings import Settings
from field import applications
from field.adapter import Application, FieldError
from field.lifecycle import follow_record
from field.service import APPLIED_TOPIC, DEAD_LETTERED, DUPLICATE, FieldService
from optimizer.plans.safety import scenario_signals
from optimizer.plans.sumo_programs import read_net_programs
from optimizer.proposing import store
from schemas import contract
from sim.scenarios import resco
from tests.unit.console.plans_and_users import stored_plan
from tests.unit.optimizer.conftest import resco_net

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
SIGNAL = "GS_cluster_357187_359543"


class ScriptedAdapter:
    """Takes every submission; confirms what the test says, when it says."""

    name = "scripted"

    def __init__(self, reachable=(SIGNAL,), refuse: str | None = None) -> None:
        self.reachable = frozenset(reachable)
        self.refuse = refuse
        self.submitted: list[tuple[str, object]] = []
        self.done: list[Application] = []

    def signals(self):
        return self.reachable

    def running(self, tls_id):
        (own,) = read_net_programs(resco_net("cologne1"))
        return own

    def submit(self, plan_id, plan):
        if self.refuse:
            raise FieldError(self.refuse)
        self.submitted.append((plan_id, plan))

    def confirm_all(self, outcome="applied", detail="read back", at=NOW + timedelta(seconds=90)):
        self.done += [
            Application(plan.tls_id, plan_id, outcome, detail, at, plan, 2)
            for plan_id, plan in self.submitted
        ]
        self.submitted = []

    def confirmed(self):
        done, self.done = self.done, []
        return done


@pytest.fixture
def engine(tmp_path):
    return database.open_database(Settings(var_dir=tmp_path / "var"))


@pytest.fixture(scope="module")
def network():
    return scenario_signals(resco("cologne1"))


def stored_and_approved(engine, green_s: float | None = None, offset_s: float | None = None) -> dict:
    """cologne1's own program (its first green ``green_s`` long, its offset ``offset_s``, when
    given) as a stored, published, approved plan; its approved record."""
    plan_id = stored_plan(engine, green_s=green_s, offset_s=offset_s)
    (approved,) = store.set_status(engine, plan_id, "approved", "olga", "ok").approval_records
    return approved


def service(engine, network, adapter, sent=None):
    def send(topic, record):
        if sent is None:
            raise ConnectionError("no broker")
        contract(topic).validate(record)
        sent.append((topic, record))

    return FieldService(adapter, engine, network, send, clock=lambda: NOW)


def test_an_approval_is_applied_once_and_answered_with_the_running_program(engine, network):
    approved = stored_and_approved(engine)
    adapter, sent = ScriptedAdapter(), []
    field = service(engine, network, adapter, sent)
    handled = field.receive(orjson.dumps(approved))
    assert (handled.outcome, handled.tls_id) == ("submitted", SIGNAL)
    assert [p.tls_id for _, p in adapter.submitted] == [SIGNAL] and sent == []
    # redelivered before and after the confirmation: never submitted again
    assert field.receive(approved).outcome == DUPLICATE
    adapter.confirm_all()
    (done,) = field.pump()
    assert done.outcome == "applied"
    assert field.receive(approved).outcome == DUPLICATE and adapter.submitted == []
    ((topic, answer),) = sent
    assert topic == APPLIED_TOPIC and answer["plan_id"] == approved["plan_id"]
    assert answer["application"] == {
        "adapter": "scripted",
        "applied_at": "2026-11-28T08:00:00Z",
        "status": "applied",
        "detail": "read back",
        "effective_at": "2026-11-28T08:01:30Z",
        "program_id": "citybrain",  # the program the signal reports: the plan's own id
        "transition_cycles": 2,
    }
    assert answer["phases"] == approved["phases"] and answer["approval"] == approved["approval"]
    assert applications.get(engine, approved["plan_id"], SIGNAL).published_at is not None


def test_an_unsafe_plan_is_refused_naming_the_rule_and_never_sent(engine, network):
    approved = stored_and_approved(engine, green_s=1.0)
    adapter, sent = ScriptedAdapter(), []
    handled = service(engine, network, adapter, sent).receive(approved)
    assert handled.outcome == "refused" and "min-green" in handled.detail
    assert adapter.submitted == []
    assert sent[0][1]["application"]["status"] == "refused"
    assert "min-green" in sent[0][1]["application"]["detail"]


def test_unknown_and_unreachable_signals_are_refused(engine, network):
    approved = stored_and_approved(engine)
    unknown = {**approved, "tls_id": "J404"}
    adapter = ScriptedAdapter(reachable=())
    field = service(engine, network, adapter, [])
    assert field.receive(unknown).outcome == "refused"
    assert "unknown signal J404" in applications.get(engine, approved["plan_id"], "J404").detail
    handled = field.receive(approved)
    assert handled.outcome == "refused" and "not reachable through scripted" in handled.detail


def test_a_signal_that_does_not_take_it_is_failed(engine, network):
    approved = stored_and_approved(engine)
    handled = service(engine, network, ScriptedAdapter(refuse="link count 7, not 8"), []).receive(approved)
    assert handled.outcome == "failed" and "link count 7, not 8" in handled.detail


def test_a_broken_record_is_dead_lettered_and_claims_nothing(engine, network):
    field = service(engine, network, ScriptedAdapter(), [])
    assert field.receive(b"{not json").outcome == DEAD_LETTERED
    broken = field.receive({"plan_id": "p", "tls_id": SIGNAL})
    assert broken.outcome == DEAD_LETTERED and "control.plan.approved.v1" in broken.detail
    assert applications.unpublished(engine) == [] and applications.submitted(engine) == []


def test_answers_wait_in_the_outbox_while_the_broker_is_down(engine, network):
    approved = stored_and_approved(engine, green_s=1.0)
    down = service(engine, network, ScriptedAdapter(), sent=None)
    assert down.receive(approved).outcome == "refused"
    (queued,) = applications.unpublished(engine)
    assert "no broker" in queued.publish_error
    sent = []
    assert service(engine, network, ScriptedAdapter(), sent).publish_pending() == 1
    assert [r["application"]["status"] for _, r in sent] == ["refused"]
    assert applications.unpublished(engine) == []


def test_a_restart_answers_what_was_never_confirmed_as_failed(engine, network):
    approved = stored_and_approved(engine)
    service(engine, network, ScriptedAdapter(), []).receive(approved)
    sent = []
    (recovered,) = service(engine, network, ScriptedAdapter(), sent).recover()
    assert recovered.outcome == "failed" and "restarted" in recovered.detail
    assert sent[0][1]["application"]["status"] == "failed"


def test_the_plan_store_follows_the_answers(engine, network):
    approved = stored_and_approved(engine)
    adapter, sent = ScriptedAdapter(), []
    field = service(engine, network, adapter, sent)
    field.receive(approved)
    adapter.confirm_all()
    field.pump()
    ((_, answer),) = sent
    followed = follow_record(engine, orjson.dumps(answer))
    assert (followed.outcome, followed.status) == ("applied", "applied")
    assert store.get(engine, approved["plan_id"]).signal_outcomes == {SIGNAL: "applied"}
    assert follow_record(engine, answer).status == "applied"  # again: nothing moves
    assert follow_record(engine, {**answer, "plan_id": "coordinated-0000"}).skipped.startswith(
        "no stored plan"
    )
    assert "not a control.plan.applied.v1" in follow_record(engine, b"[]").skipped


# -- watching --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def approaches():
    from field.watch import approaches_of
    from sim.network import for_scenario

    return approaches_of(for_scenario(resco("cologne1")))


def write_gold(lake, approaches, start, end, speed_share) -> None:
    """Gold link state on the signal's approaches for each quarter hour of [start, end), at
    ``speed_share(k)`` of each edge's limit in quarter hour k."""
    from tests.unit.console.test_network_layers import link_row, write_partition

    slot, k = start, 0
    while slot < end:
        rows = [
            link_row(a.edge_id, slot, speed_mps=a.speed_limit_mps * speed_share(k), flow_vph=400.0)
            for a in approaches[SIGNAL]
        ]
        write_partition(lake, "gold.link_state_15min", slot, rows)
        slot, k = slot + timedelta(minutes=15), k + 1


def applied_and_confirmed(engine, network, adapter, sent, tmp_path):
    approved = stored_and_approved(engine, offset_s=30.0)
    field = FieldService(
        adapter, engine, network, lambda topic, record: sent.append((topic, record)), clock=lambda: NOW,
        settings=Settings(var_dir=tmp_path / "var", field_watch_window_s=3600),
    )  # fmt: skip
    field.receive(approved)
    adapter.confirm_all(at=NOW + timedelta(seconds=90))
    field.pump()
    return approved, field


def test_a_plan_that_made_delay_worse_is_rolled_back_by_the_watcher(engine, network, approaches, tmp_path):
    lake = tmp_path / "lake"
    adapter, sent = ScriptedAdapter(), []
    approved, field = applied_and_confirmed(engine, network, adapter, sent, tmp_path)
    # an hour before at 80-90 % of the limits; the hour after at a third: far worse
    write_gold(lake, approaches, NOW - timedelta(hours=1), NOW, lambda k: 0.8 + 0.03 * (k % 4))
    write_gold(
        lake,
        approaches,
        NOW + timedelta(minutes=15),
        NOW + timedelta(minutes=75),
        lambda k: 0.33 + 0.01 * (k % 2),
    )
    assert field.watch(NOW + timedelta(minutes=30), lake, approaches) == []  # the window has not passed
    (verdict,) = field.watch(NOW + timedelta(hours=2), lake, approaches)
    assert verdict.worse and verdict.slots_before == 4 and verdict.slots_after == 4
    assert verdict.after_s > 2 * verdict.before_s and verdict.p_value < 0.05
    # the previous timing (the network's own program) went back to the signal
    ((plan_id, restored),) = adapter.submitted
    assert plan_id == approved["plan_id"] and restored == adapter.running(SIGNAL)
    adapter.confirm_all(at=NOW + timedelta(hours=2, minutes=3))
    (done,) = field.pump()
    assert done.outcome == "rolled_back" and "approach delay" in done.detail
    answer = sent[-1][1]
    contract(APPLIED_TOPIC).validate(answer)
    assert answer["application"]["status"] == "rolled_back" and answer["application"]["program_id"] == "0"
    assert answer["application"]["effective_at"] == "2026-11-28T10:03:00Z"
    assert field.watch(NOW + timedelta(hours=3), lake, approaches) == []  # judged once
    for _, record in sent:
        follow_record(engine, record)
    assert store.get(engine, approved["plan_id"]).status == "rolled_back"


def test_a_plan_no_worse_stays_and_too_little_data_decides_nothing(engine, network, approaches, tmp_path):
    lake = tmp_path / "lake"
    adapter = ScriptedAdapter()
    approved, field = applied_and_confirmed(engine, network, adapter, [], tmp_path)
    write_gold(lake, approaches, NOW - timedelta(hours=1), NOW, lambda k: 0.8 + 0.03 * (k % 4))
    write_gold(lake, approaches, NOW + timedelta(minutes=15), NOW + timedelta(minutes=45), lambda k: 0.2)
    # the lake may still catch up: asked again until a second window has passed
    assert field.watch(NOW + timedelta(hours=1, minutes=30), lake, approaches) == []
    assert applications.get(engine, approved["plan_id"], SIGNAL).watched_at is None
    (verdict,) = field.watch(NOW + timedelta(hours=2, minutes=5), lake, approaches)
    assert not verdict.worse and not verdict.compared and "too few quarter hours" in verdict.reason
    assert verdict.slots_after == 2
    assert adapter.submitted == []
    stored = applications.get(engine, approved["plan_id"], SIGNAL)
    assert stored.outcome == "applied" and stored.verdict["reason"] == verdict.reason


def test_a_worse_hour_that_noise_explains_is_not_enough(engine, network, approaches, tmp_path):
    lake = tmp_path / "lake"
    adapter = ScriptedAdapter()
    _, field = applied_and_confirmed(engine, network, adapter, [], tmp_path)
    write_gold(lake, approaches, NOW - timedelta(hours=1), NOW, lambda k: 0.8 + 0.03 * (k % 4))
    write_gold(
        lake,
        approaches,
        NOW + timedelta(minutes=15),
        NOW + timedelta(minutes=75),
        lambda k: 0.78 + 0.03 * (k % 4),
    )
    (verdict,) = field.watch(NOW + timedelta(hours=2), lake, approaches)
    # worse by more than the share, but within the quarter hours' spread: no significance
    assert not verdict.worse and verdict.change > 0.10 and verdict.p_value > 0.05
    assert adapter.submitted == []


def test_an_operator_rolls_a_plan_back_by_hand(engine, network, tmp_path):
    adapter, sent = ScriptedAdapter(), []
    approved, field = applied_and_confirmed(engine, network, adapter, sent, tmp_path)
    request = {
        "schema_version": 1,
        "ts": "2026-11-28T09:00:00Z",
        "plan_id": approved["plan_id"],
        "requested_by": "olga",
        "reason": "queues back to the bridge",
    }
    (handled,) = field.roll_back(orjson.dumps(request))
    assert handled.outcome == "rolling_back"
    assert "by hand by olga: queues back to the bridge" in handled.detail
    ((_, restored),) = adapter.submitted
    assert restored == adapter.running(SIGNAL)
    adapter.confirm_all()
    (done,) = field.pump()
    assert done.outcome == "rolled_back" and sent[-1][1]["application"]["status"] == "rolled_back"
    # asked again: the signal no longer runs the plan
    assert [h.outcome for h in field.roll_back(request)] == ["ignored"]
    assert field.roll_back({"plan_id": "x"})[0].outcome == DEAD_LETTERED
