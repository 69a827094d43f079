"""tlLogic additional files (golden files, round trips, a net's own programs) and plans applied in libsumo.

Golden files live in ``golden/``; to accept a deliberate change of output, run with
``CITYBRAIN_UPDATE_GOLDEN=1`` and review the diff of the expected files.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from optimizer.plans.model import NetworkPlan, Phase, PlanError, SignalPlan
from optimizer.plans.sumo_programs import (
    apply,
    cycle_position,
    parse_tls,
    read_net_programs,
    read_tls,
    render_tls,
    signals_from_tree,
    write_tls,
)
from tests.unit.optimizer.conftest import GOLDEN, RESCO_NAMES, resco_net

UPDATE = os.environ.get("CITYBRAIN_UPDATE_GOLDEN") == "1"
REPO = Path(__file__).resolve().parents[3]
COLOGNE1_TLS = "GS_cluster_357187_359543"


def handmade_plan() -> NetworkPlan:
    """Two signals covering what the format must carry: fractions, bounds, names, odd ids."""
    return NetworkPlan(
        signals=(
            SignalPlan(
                "B&<2>",
                (Phase("GgrrG", 27.5, min_s=10, max_s=40, name='main "through"'), Phase("yyrry", 3.0),
                 Phase("rrGGr", 0.1 + 0.2), Phase("rryyr", 3)),
                offset_s=12.25,
                program_id="night",
            ),
            SignalPlan("A1", (Phase("Gr", 30), Phase("yr", 4), Phase("rG", 30), Phase("ry", 4)), offset_s=0),
        ),
        method="coordinated",
    )  # fmt: skip


def cologne1_programs() -> tuple[SignalPlan, ...]:
    return read_net_programs(resco_net("cologne1"))


def assert_golden(actual: str, name: str) -> None:
    expected_file = GOLDEN / name
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8", newline="\n")
    assert expected_file.is_file(), f"no {expected_file}; run with CITYBRAIN_UPDATE_GOLDEN=1 to create it"
    expected = expected_file.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(expected_file), "actual")
    )
    assert actual == expected, f"export differs from the golden file:\n{diff}"


@pytest.mark.parametrize(
    ("make", "golden"), [(handmade_plan, "handmade.add.xml"), (cologne1_programs, "cologne1.add.xml")]
)
def test_export_matches_the_golden_file_and_reads_back_equal(make, golden, tmp_path):
    plan = make()
    path = write_tls(plan, tmp_path / "out" / "plan.add.xml")
    assert_golden(path.read_text(encoding="utf-8"), golden)
    signals = plan.signals if isinstance(plan, NetworkPlan) else plan
    assert read_tls(GOLDEN / golden) == tuple(signals)
    assert render_tls(read_tls(path)) == path.read_text(encoding="utf-8")


def test_a_network_plan_round_trips_through_a_file(tmp_path):
    plan = handmade_plan()
    back = NetworkPlan(signals=read_tls(write_tls(plan, tmp_path / "p.add.xml")), method=plan.method)
    assert back == plan
    assert back.signal("B&<2>").phases[0].name == 'main "through"'
    assert back.signal("B&<2>").phases[2].duration_s == 0.1 + 0.2  # shortest exact repr, not rounded


@pytest.mark.parametrize("name", ["corridor", *(f"resco/{n}" for n in RESCO_NAMES)])
def test_a_nets_own_programs_read_through_sumolib_round_trip(name, corridor_net):
    net_file = corridor_net if name == "corridor" else resco_net(name.removeprefix("resco/"))
    programs = read_net_programs(net_file)
    assert programs and all(p.kind == "static" for p in programs)
    assert parse_tls(render_tls(programs)) == programs
    # sumolib and our own reading of the net file agree
    by_tree = signals_from_tree(ET.parse(net_file).getroot(), str(net_file))
    assert sorted(by_tree, key=lambda s: (s.tls_id, s.program_id)) == list(programs)


def test_static_phases_outside_their_bounds_are_read_with_widened_bounds():
    """cologne8 ships a 78 s static phase with maxDur 50; SUMO ignores the bounds of static phases."""
    programs = read_net_programs(resco_net("cologne8"))
    long = [p for s in programs for p in s.phases if p.duration_s == 78]
    assert long and all(p.min_s <= 78 <= p.max_s for p in long)


def test_reading_refuses_what_it_cannot_represent(tmp_path):
    jump = (
        '<additional><tlLogic id="J" programID="p" offset="0">'
        '<phase duration="5" state="G" next="0"/></tlLogic></additional>'
    )
    with pytest.raises(PlanError, match="J phase 0: 'next'"):
        parse_tls(jump)
    with pytest.raises(PlanError, match="duration='soon' is not a number"):
        parse_tls('<additional><tlLogic id="J"><phase duration="soon" state="G"/></tlLogic></additional>')
    with pytest.raises(PlanError, match="not valid XML"):
        parse_tls("<additional>")
    with pytest.raises(PlanError, match="not found"):
        read_tls(tmp_path / "missing.add.xml")


def test_cycle_position_follows_sumo_offsets():
    plan = SignalPlan("J", (Phase("Gr", 30), Phase("yr", 5), Phase("rG", 30), Phase("ry", 5)), offset_s=10)
    assert cycle_position(plan, 0) == (2, 5)  # (0 - 10) mod 70 = 60: phase 2 runs 35..65
    assert cycle_position(plan, 100) == (0, 10)  # 90 mod 70 = 20
    assert cycle_position(plan, 40) == (1, 5)
    assert cycle_position(plan, 45) == (2, 30)
    assert cycle_position(plan, 80) == (0, 30)


def test_apply_refuses_a_plan_for_another_number_of_links():
    class Refused(Exception):
        pass

    fake = SimpleNamespace(
        TraCIException=Refused,
        trafficlight=SimpleNamespace(getControlledLinks=lambda tls_id: [[("a", "b", "c")]] * 3),
        simulation=SimpleNamespace(getTime=lambda: 0.0),
    )
    plan = SignalPlan("J", (Phase("Gr", 30), Phase("rG", 30)))
    with pytest.raises(PlanError, match="J controls 3 links in the simulation, but its plan's states have 2"):
        apply(fake, [plan])


def _cologne1_plan(durations: list[float], offset: float, program_id: str) -> SignalPlan:
    own = {s.tls_id: s for s in cologne1_programs()}[COLOGNE1_TLS]
    phases = tuple(
        Phase(p.state, d, name=f"p{i}") for i, (p, d) in enumerate(zip(own.phases, durations, strict=True))
    )
    return SignalPlan(COLOGNE1_TLS, phases, offset_s=offset, program_id=program_id)


def test_apply_puts_a_plan_in_force_in_libsumo(tmp_path):
    """A plan loaded from our file at start and a plan applied mid-run both run as their offsets say."""
    resco_net("cologne1")
    loaded = write_tls(
        [_cologne1_plan([20, 4, 8, 3, 25, 4, 6, 3], 17, "citybrain")], tmp_path / "loaded.add.xml"
    )
    applied_plan = _cologne1_plan([35, 3, 5, 3, 30, 3, 5, 3], 5, "applied")
    applied = write_tls([applied_plan], tmp_path / "applied.add.xml")
    result = subprocess.run(
        [sys.executable, "-m", "tests.unit.optimizer.libsumo_apply", "resco/cologne1",
         str(loaded), str(applied), "113", "200"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["programs_at_start"] == {COLOGNE1_TLS: "citybrain"}  # SUMO read our export
    assert report["loaded"]["observed"] >= 110 and report["loaded"]["mismatches"] == []
    assert report["programs"] == {COLOGNE1_TLS: "applied"}
    assert report["applied"]["observed"] >= 200 and report["applied"]["mismatches"] == []
    in_sumo = report["logics"][COLOGNE1_TLS]["applied"]
    assert in_sumo == [[p.duration_s, p.state, p.min_s, p.max_s, p.name] for p in applied_plan.phases]
    assert {"0", "citybrain", "applied"} <= set(report["logics"][COLOGNE1_TLS])


def test_odd_ids_and_names_read_back_unchanged():
    odd = "a&b<c>\"d'e"
    plan = (SignalPlan(odd, (Phase("Gr", 30, name=odd), Phase("rG", 30)), program_id=odd),)
    (logic,) = ET.fromstring(render_tls(plan).encode("utf-8"))
    assert (logic.get("id"), logic.get("programID"), logic[0].get("name")) == (odd, odd, odd)
    assert parse_tls(render_tls(plan)) == plan
