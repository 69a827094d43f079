"""Incident re-planning end to end: reports on the real embedded broker, the watch re-planning
with real SUMO runs of the corridor under a lane closure, the plan stored and published, then
withdrawn when the incident clears — or, once approved, answered by the return to the normal
programs.

The closure is one lane of J6w_J6, the approach into J6, in the corridor's morning peak
(07:30–08:00): it raises the current programs' delay from about 85 to about 115 s (the incident
benchmark's choice, ``benchmarks/results/incident.json``), so a plan for J5–J7 that gives the
approach more green is reliably better, even from the search's starting points alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core.settings import Settings
from optimizer.incidents.replan import INCIDENT_METHOD, RETURN_METHOD, RETURN_PROPOSED, answers, stand_down
from optimizer.incidents.watch import IncidentWatch, state_file
from optimizer.plans.model import PROPOSED_TOPIC, format_utc
from optimizer.proposing import store
from optimizer.proposing.propose import approve
from schemas import contract
from sim.closures import with_window
from sim.scenarios import resolve
from streaming.producer import RecordProducer
from tests.integration.conftest import read_records

pytestmark = pytest.mark.integration

TOPIC = "public.incident.v1"
EDGE, LANE = "J6w_J6", "J6w_J6_1"
#: The search's starting points only (the budget ends before a CMA-ES generation): quick.
BUDGET_MINUTES = 0.01
SEEDS = 3


@pytest.fixture(scope="module")
def peak(tmp_path_factory: pytest.TempPathFactory):
    corridor = resolve("corridor", tmp_path_factory.mktemp("build"))
    begin = corridor.begin + 3600
    return with_window(corridor, begin, begin + 1800)


def report(status: str, now: datetime, **changes: object) -> dict:
    record = {
        "schema_version": 1,
        "ts": format_utc(now),
        "incident_id": "crash-j6w-1",
        "kind": "crash",
        "status": status,
        "severity": 3,
        "lat": 52.52,
        "lon": 13.40,
        "edge_id": EDGE,
        "lane_ids": [LANE],
        "start": format_utc(now),
        "end": format_utc(now + timedelta(minutes=30)),
        "description": "two cars, right lane blocked",
        "source": "police",
        **changes,
    }
    contract(TOPIC).validate(record)
    return record


def send(settings: Settings, *records: dict, raw: bytes | None = None) -> None:
    with RecordProducer(settings, validate=False) as producer:
        for record in records:
            producer.send(TOPIC, record)
        if raw is not None:
            producer.send_raw(TOPIC, b"crash-j6w-1", raw, [])
        producer.flush()


def settle(watch: IncidentWatch, until, polls: int = 20) -> None:
    """Poll until ``until()`` holds (the broker may hand records over a poll or two late)."""
    for _ in range(polls):
        watch.poll(500)
        if until():
            return
    raise AssertionError(f"not reached after {polls} polls: {watch.report.to_dict()}")


@pytest.fixture
def incident_settings(kafka: Settings) -> Settings:
    return kafka.model_copy(update={"incident_budget_minutes": BUDGET_MINUTES, "incident_seeds": SEEDS})


def test_a_closure_gets_a_plan_proposed_and_withdrawn_when_it_clears(incident_settings, peak, reader):
    settings = incident_settings
    now = datetime.now(UTC).replace(microsecond=0)
    lines: list[str] = []
    # a report not yet confirmed is not acted on, and a broken record is skipped, not fatal
    send(settings, report("reported", now - timedelta(minutes=2)), raw=b'{"incident_id": "x"')
    watch = IncidentWatch(settings, lambda: peak, now=lambda: now, on_step=lines.append)
    try:
        settle(watch, lambda: watch.report.read == 2)
        assert watch.report.invalid == 1 and watch.report.replanned == []

        send(settings, report("confirmed", now))
        settle(watch, lambda: bool(watch.report.replanned))
        (done,) = watch.report.replanned
        assert done["outcome"] == "published", done
        assert done["delay"]["coordinated"] < done["delay"]["fixed"]
        assert set(done["signals"]) <= {"J5", "J6", "J7"} and "J6" in done["signals"]

        engine = store.open_store(settings)
        (stored,) = answers(engine, "crash-j6w-1")
        assert (stored.plan_id, stored.method, stored.status) == (
            done["plan_id"],
            INCIDENT_METHOD,
            "proposed",
        )
        # valid from the confirmation until the incident's expected end
        assert (stored.valid_from, stored.valid_to) == (now, now + timedelta(minutes=30))
        records = [orjson.loads(m.value) for m in read_records(reader, PROPOSED_TOPIC)]
        assert {r["tls_id"] for r in records} == set(done["signals"])
        assert all(r["evaluation"]["incident_id"] == "crash-j6w-1" for r in records)
        assert all(r["method"] == INCIDENT_METHOD for r in records)

        # an update of an incident that has a plan does not re-plan it
        send(settings, report("active", now + timedelta(seconds=30)))
        settle(watch, lambda: watch.report.read == 4)
        assert len(watch.report.replanned) == 1

        send(
            settings,
            report("cleared", now + timedelta(minutes=12), end=format_utc(now + timedelta(minutes=12))),
        )
        settle(watch, lambda: bool(watch.report.stood_down))
        (withdrawn,) = watch.report.stood_down
        assert (withdrawn["plan_id"], withdrawn["action"]) == (stored.plan_id, "withdrawn")
        after = store.get(engine, stored.plan_id)
        assert after.status == "superseded"
        assert after.events[-1].note.startswith("withdrawn: incident crash-j6w-1 is over (cleared)")
    finally:
        watch.close()

    # A restart reads what it knew from its state file and commits: nothing is done twice.
    again = IncidentWatch(settings, lambda: peak, now=lambda: now, on_step=lines.append)
    try:
        again.poll(1000)
        assert again.report.to_dict() == {"read": 0, "invalid": 0, "replanned": [], "stood_down": []}
        assert set(again.state.replanned) == set(again.state.stood_down) == {"crash-j6w-1"}
    finally:
        again.close()
    assert state_file(settings, "citybrain-incidents").is_file()
    assert any("re-planning" in line for line in lines)


def test_an_approved_incident_plan_is_followed_by_the_return_to_the_normal_programs(incident_settings, peak):
    """Through the optimize DAG's :func:`respond`: the lake's newest report of each incident."""
    from optimizer.incidents.lake_reports import respond
    from optimizer.incidents.model import Incident
    from optimizer.plans.safety import scenario_signals

    settings = incident_settings
    now = datetime.now(UTC).replace(microsecond=0)
    opened = {"crash-j6w-1": Incident.from_record(report("active", now))}
    (planned,) = respond(settings, peak, opened, now=now)["replanned"]
    assert planned["outcome"] == "published", planned
    approve(settings, planned["plan_id"], "operator.li")
    # asked again while the incident is open: it has a plan, nothing is done
    assert respond(settings, peak, opened, now=now) == {"replanned": [], "stood_down": [], "refused": []}

    over = Incident.from_record(report("cleared", now + timedelta(minutes=20)))
    (done,) = respond(settings, peak, {"crash-j6w-1": over}, now=now + timedelta(minutes=20))["stood_down"]
    assert done["action"] == RETURN_PROPOSED and done["proposal"]["outcome"] == "published", done
    engine = store.open_store(settings)
    returned = store.get(engine, done["proposal"]["plan_id"])
    assert returned.method == RETURN_METHOD and returned.evaluation["incident_id"] == "crash-j6w-1"
    assert returned.evaluation["baseline_method"] == INCIDENT_METHOD
    assert store.get(engine, planned["plan_id"]).status == "approved"  # the field's to replace
    # the normal programs of the same signals
    network = scenario_signals(peak)
    plan = returned.network_plan(list(network))
    assert set(plan.tls_ids) == set(planned["signals"])
    for signal in plan.signals:
        normal = network[signal.tls_id].program
        assert [p.duration_s for p in signal.phases] == [p.duration_s for p in normal.phases]
    # once: a second stand-down finds the return proposed
    (again,) = stand_down(settings, peak, over, now=now + timedelta(minutes=21))
    assert again.action is None and "proposed already" in again.reason


def test_an_incident_off_the_network_is_refused_with_its_reason(incident_settings, peak):
    from optimizer.incidents.model import Incident, IncidentError
    from optimizer.incidents.replan import replan

    now = datetime.now(UTC)
    with pytest.raises(IncidentError, match="has no edge 'nowhere'"):
        replan(
            incident_settings, peak, Incident.from_record(report("active", now, edge_id="nowhere")), now=now
        )
    with pytest.raises(IncidentError, match="not located"):
        replan(incident_settings, peak, Incident.from_record(report("active", now, edge_id=None)), now=now)


def test_the_watch_command_says_what_it_read_and_why_it_could_not_plan(kafka):
    """The real CLI, without a lake to plan on: the confirmed incident is said to have failed,
    naming the lake, the broken record is counted, and the command ends on its own."""
    from tests.integration.conftest import citybrain

    now = datetime.now(UTC).replace(microsecond=0)
    send(kafka, report("confirmed", now), raw=b"not json")

    done = citybrain(kafka, "incidents", "watch", "--max-seconds", "8", "--json", timeout=90)

    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert (result["read"], result["invalid"]) == (2, 1)
    (failed,) = result["replanned"]
    assert failed["outcome"] == "failed" and "has no fused gold counts" in failed["reason"]
    assert "incident crash-j6w-1 is confirmed" in done.stderr
