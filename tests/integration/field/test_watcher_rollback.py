"""The watcher on real data: a deliberately bad plan, approved and applied to the corridor's twin,
makes delay worse in the lake that the twin's own sensors fill — ingested from the embedded broker,
fused in Spark — and the watcher gives each signal back the program it ran before.

The twin (the field service on its signals) pauses twice, so that the lake is fused exactly as
far as the watcher needs it, whatever the machine's speed: at 07:45, when the morning so far is
fused and the plan approved; and at 09:00, when the hour after the plan is fused too. At its next
look the watcher compares 06:45–07:45 with 08:00–09:00 and rolls the plan back.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from citybrain.closed_loop import FieldTwin
from citybrain.demo import ingest, twin_window
from core import database
from field import applications
from field.run import follow
from lake.jobs import fuse
from optimizer.methods.webster import inherited_waivers
from optimizer.plans.model import Evaluation, KpiEstimate, NetworkPlan, Phase, SignalPlan
from optimizer.plans.safety import check, scenario_signals
from optimizer.plans.sumo_programs import read_net_programs
from optimizer.proposing import store
from optimizer.proposing.propose import publish
from sim.scenarios import resolve

pytestmark = pytest.mark.integration

DECIDE_AT = 27_900.0  # 07:45
JUDGE_AT = 32_400.0  # 09:00: the hour after the plan is in the lake
UNTIL = 33_300.0  # 09:15: time for the rollback's transition
NOW = datetime(2026, 11, 28, 7, 45, tzinfo=UTC)
#: The bad plan keeps half the arterial's through green: approach delay doubles (+59 % to +221 %
#: at the signals measured, p < 0.05 at each), while the queues, and so the simulation's time,
#: stay far smaller than with the shortest green (about 210 s for the test instead of 300 s).
SHARE_KEPT = 0.5


def starved_arterial(own: SignalPlan, network) -> SignalPlan:
    """``own`` with the arterial's through green (the first phase) cut to :data:`SHARE_KEPT` of it,
    or the shortest above that the safety rules allow, and the time given to the side street (the
    cycle, so the offsets, unchanged)."""
    greens = [i for i, phase in enumerate(own.phases) if i > 0 and "G" in phase.state]
    through, side = own.phases[0], max(greens, key=lambda i: own.phases[i].duration_s)
    for green in range(int(through.duration_s * SHARE_KEPT), int(through.duration_s)):
        phases = list(own.phases)
        phases[0] = Phase(through.state, float(green), float(green), through.max_s)
        extra = through.duration_s - green
        longer = own.phases[side]
        phases[side] = Phase(longer.state, longer.duration_s + extra, longer.min_s, longer.max_s + extra)
        plan = dataclasses.replace(own, phases=tuple(phases))
        if not check([plan], network, inherited_waivers(network)):
            return plan
    raise AssertionError(f"{own.tls_id}: no shorter arterial green passes the safety rules")


def approved_bad_plan(settings, engine) -> list[dict]:
    scenario = resolve("corridor", settings.sim_dir / "build")
    network = scenario_signals(scenario)
    own = read_net_programs(scenario.net_file, scenario.additional_files)
    plan = NetworkPlan(
        signals=tuple(starved_arterial(program, network) for program in own),
        method="coordinated",
        valid_from=NOW,
        valid_to=NOW + timedelta(hours=2),
        evaluation=Evaluation(
            scenario="corridor",
            seeds=(1,),
            baseline={"resco_delay": KpiEstimate(40.0, 1.0, (39.0, 41.0))},
            plan={"resco_delay": KpiEstimate(30.0, 1.0, (29.0, 31.0))},
        ),
    )
    store.save_proposal(engine, plan, plan.to_records(ts=NOW))
    store.mark_published(engine, plan.plan_id)
    return store.set_status(
        engine, plan.plan_id, "approved", "olga", "a test of the watcher"
    ).approval_records


@pytest.mark.timeout(900)
def test_a_plan_that_makes_delay_worse_is_rolled_back_by_the_watcher(kafka, spark):
    settings = kafka.model_copy(update={"lake_network": "corridor", "lake_watermark_s": 30 * 86_400})
    engine = database.open_database(settings)
    approved = approved_bad_plan(settings, engine)
    plan_id = approved[0]["plan_id"]
    quiet = Console(quiet=True)
    begin = resolve("corridor", settings.sim_dir / "build").begin
    twin = FieldTwin(settings, "corridor", (DECIDE_AT, JUDGE_AT), UNTIL).start()
    try:
        consumed = ingest(settings, sum(twin.wait_paused().values()), quiet)
        fuse(settings, *twin_window(settings, begin, DECIDE_AT), spark=spark)
        publish(settings, approved, topic=store.APPROVED_TOPIC)
        twin.resume()
        streamed = sum(twin.wait_paused().values())
        ingest(settings, streamed - consumed, quiet, consumed=consumed)
        fuse(settings, *twin_window(settings, DECIDE_AT, JUDGE_AT), spark=spark)
        twin.resume()
        ran = twin.result()
    finally:
        twin.stop()
    assert ran["outcomes"]["applied"] == len(approved) and ran["outcomes"].get("rolled_back", 0) >= 1
    deadline = time.monotonic() + 60
    follow(
        settings,
        engine,
        stop_when=lambda: store.get(engine, plan_id).status == "rolled_back" or time.monotonic() > deadline,
    )
    stored = store.get(engine, plan_id)
    assert stored.status == "rolled_back"
    watched = {a.tls_id: a for a in applications.of_plan(engine, plan_id)}
    rolled_back = [a for a in watched.values() if a.outcome == "rolled_back"]
    assert rolled_back, {tls: a.verdict for tls, a in watched.items()}
    for application in rolled_back:
        verdict = application.verdict
        assert verdict["worse"] and verdict["compared"]
        assert verdict["slots_before"] == verdict["slots_after"] == 4
        assert verdict["after_s"] > verdict["before_s"] * (1 + settings.field_rollback_worse_share)
        assert verdict["p_value"] < settings.field_rollback_p_value
        assert stored.signal_outcomes[application.tls_id] == "rolled_back"
