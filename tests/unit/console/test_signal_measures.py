"""The plan page's signal performance: an applied plan's signal measured from its controller's event
log in the hour before the plan took effect and the hour after its transition.

The stored plan is cologne1's one signal; its phase 2 runs a 60 s cycle (green :00–:30, yellow to
:34). Before the plan, four vehicles a minute reach the stop bar: at :10 (green), :31 (yellow),
:40 and :50 (red); after it, the two red ones come at :05 and :20, on green.
"""

from __future__ import annotations

from datetime import UTC, datetime

from console.app import create_app
from field import applications
from optimizer.proposing import store
from sim import signal_config
from sim.scenarios import resolve
from tests.unit.console.plans_and_users import logged_in, stored_plan
from tests.unit.lake.signal_events import phase_2_log, write_lake

TLS = "GS_cluster_357187_359543"
EFFECTIVE = datetime(2026, 11, 28, 8, 0, 20, tzinfo=UTC)
#: One transition cycle of 90 s: the plan ran as planned from 08:01:50, so "after" starts 08:15.
TRANSITION_CYCLES, CYCLE_S = 1, 90


def applied_plan(settings, engine) -> str:
    plan_id = stored_plan(engine)
    store.set_status(engine, plan_id, store.APPROVED, "olga")
    applications.claim(engine, plan_id, TLS, "sumo-twin", {"tls_id": TLS})
    answer = {"cycle_s": CYCLE_S, "application": {"transition_cycles": TRANSITION_CYCLES}}
    applications.settle(engine, plan_id, TLS, "applied", "", answer, effective_at=EFFECTIVE)
    return plan_id


def test_an_applied_plans_signal_is_measured_before_and_after(settings, engine, app):
    plan_id = applied_plan(settings, engine)
    scenario = resolve(store.get(engine, plan_id).scenario, settings.sim_dir / "build")
    signal = signal_config.of_scenario(scenario).signals[TLS]
    advance = next(d for d in signal.detectors if d.phase == 2 and d.kind == "advance")
    before = phase_2_log(datetime(2026, 11, 28, 6, 45, tzinfo=UTC), 75, (10, 31, 40, 50), advance)
    after = phase_2_log(datetime(2026, 11, 28, 8, 0, tzinfo=UTC), 90, (5, 10, 20, 31), advance)
    write_lake(settings.lake_path, sorted(before + after), signal.controller_id)

    answer = logged_in(app, "vera")[0].get(f"/api/plans/{plan_id}/signal-measures")

    assert answer.status_code == 200, answer.text
    (measured,) = answer.json()["signals"]
    assert measured["before"] == {"start": "2026-11-28T07:00:00Z", "end": "2026-11-28T08:00:00Z"}
    assert measured["after"] == {"start": "2026-11-28T08:15:00Z", "end": "2026-11-28T09:15:00Z"}
    on_green = measured["phases"]["2"]["percent_on_green"]
    assert on_green["before"] == 25.0 and on_green["after"] == 75.0 and on_green["change"] == 50.0
    delay = measured["phases"]["2"]["delay_per_vehicle_s"]
    assert delay["before"] == 7.5 and delay["after"] == 0.0


def test_a_plan_not_applied_says_why(settings, engine, app):
    plan_id = stored_plan(engine)

    answer = logged_in(app, "olga")[0].get(f"/api/plans/{plan_id}/signal-measures")

    assert answer.status_code == 200
    assert answer.json() == {
        "plan_id": plan_id,
        "signals": [],
        "reason": "the plan has not taken effect at any signal",
    }


def test_an_applied_signal_without_events_in_the_lake_says_so(settings, engine, app):
    plan_id = applied_plan(settings, engine)

    (measured,) = logged_in(app, "vera")[0].get(f"/api/plans/{plan_id}/signal-measures").json()["signals"]

    assert measured["phases"] is None and "no events of signal" in measured["reason"]


def test_a_signals_coordination_diagram_as_data(settings, engine, app):
    settings = settings.model_copy(update={"lake_network": "resco/cologne1"})
    app = create_app(settings)
    signal = signal_config.configuration(settings).signals[TLS]
    advance = next(d for d in signal.detectors if d.phase == 2 and d.kind == "advance")
    start = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    write_lake(settings.lake_path, phase_2_log(start, 20, (10, 31, 40, 50), advance), signal.controller_id)
    browser = logged_in(app, "vera")[0]

    answer = browser.get(f"/api/signals/{TLS}/pcd", params={"start": "2026-11-28T07:05:00Z", "minutes": 5})

    assert answer.status_code == 200, answer.text
    (phase,) = [p for p in answer.json()["phases"] if p["phase"] == 2]
    # five minutes: four arrivals each, one in four on green; cycles red (:34) to red, green at 26 s
    assert phase["arrivals_by_band"] == {"green": 5, "yellow": 5, "red": 10}
    assert phase["percent_on_green"] == 25.0
    assert set(phase["cycles"]["green_s"]) == {26.0} and set(phase["cycles"]["end_s"]) == {60.0}
    assert phase["arrivals"]["in_cycle_s"][:4] == [36.0, 57.0, 6.0, 16.0]  # 07:05:10, :31, :40, :50
    unknown = browser.get("/api/signals/nope/pcd", params={"start": "2026-11-28T07:05Z"})
    assert unknown.status_code == 404 and "no signal 'nope'" in unknown.json()["detail"]
    empty = browser.get(f"/api/signals/{TLS}/pcd", params={"start": "2026-11-29T07:05Z", "minutes": 5})
    assert empty.status_code == 404 and "no events of signal" in empty.json()["detail"]
    too_long = browser.get(f"/api/signals/{TLS}/pcd", params={"start": "2026-11-28T07:05Z", "minutes": 1441})
    assert too_long.status_code == 422
    far = browser.get(f"/api/signals/{TLS}/pcd", params={"start": "9999-12-31T23:00Z"})
    assert far.status_code == 404 and "no events outside" in far.json()["detail"]
