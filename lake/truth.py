"""Scoring the lake against the sensor twin's ground truth: map-matching and fused speed.

The twin keeps what really happened (:mod:`sim.twin`): SUMO's mean speed per edge and 15 minutes
(``truth.edges.xml``) and the true edge of every probe fix (``truth.probes.parquet``). These
functions read the lake's output back through the tables' Delta logs (:mod:`lake.delta`, no JVM)
and compare; they are for tests, the demo and anyone tuning the fusion on their own twin runs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake.delta import read_partitions
from lake.tables import TABLES, Table
from sim.twin import TRUTH_EDGES_FILE, TRUTH_PROBES_FILE, sim_time_to_utc


def read_lake_table(lake: Path, table: Table) -> pa.Table:
    """All of a table's rows, partition columns included (small tables: tests and the demo); no
    rows, in the table's schema, when no job wrote it."""
    return read_partitions(lake, table)


@dataclass(frozen=True)
class MatchScore:
    points: int
    on_normal_edges: int
    correct: int

    @property
    def accuracy(self) -> float:
        """Share of fixes on a normal edge (not inside a junction) matched to that edge."""
        return self.correct / self.on_normal_edges if self.on_normal_edges else float("nan")


def score_map_matching(lake: Path, truth_dir: Path) -> MatchScore:
    truth = pq.read_table(truth_dir / TRUTH_PROBES_FILE).select(["probe_id", "ts", "edge_id"])
    matched = read_lake_table(lake, TABLES["silver.probe_points"]).select(["probe_id", "ts", "edge_id"])
    joined = truth.join(matched, ["probe_id", "ts"], right_suffix="_matched")
    true_edge = joined.column("edge_id").to_numpy(zero_copy_only=False)
    found = joined.column("edge_id_matched").to_numpy(zero_copy_only=False)
    normal = np.array([not e.startswith(":") for e in true_edge], dtype=bool)
    return MatchScore(len(joined), int(normal.sum()), int((found[normal] == true_edge[normal]).sum()))


def truth_speeds(truth_dir: Path, day: str | date) -> dict[tuple[str, datetime], float]:
    """SUMO's mean speed per (edge, 15-minute window start) where vehicles were on the edge."""
    from sim.twin import parse_day

    the_day = parse_day(day)
    speeds = {}
    for interval in ET.parse(truth_dir / TRUTH_EDGES_FILE).getroot().iter("interval"):
        start = sim_time_to_utc(the_day, float(interval.get("begin")))
        for edge in interval.iter("edge"):
            if edge.get("speed") is not None and float(edge.get("sampledSeconds", 0)) > 0:
                speeds[(edge.get("id"), start)] = float(edge.get("speed"))
    return speeds


def truth_link_state(truth_dir: Path, day: str | date, start: datetime) -> dict[str, dict[str, float]]:
    """SUMO's own link state of the 15-minute window from ``start``, by edge: the mean speed
    (where vehicles were on the edge) and the flow (vehicles that entered it, per hour) — the
    truth beside gold's ``speed_mps`` and ``flow_vph`` of the same window."""
    from sim.twin import TRUTH_EDGE_PERIOD_S, parse_day

    the_day = parse_day(day)
    state = {}
    for interval in ET.parse(truth_dir / TRUTH_EDGES_FILE).getroot().iter("interval"):
        if sim_time_to_utc(the_day, float(interval.get("begin"))) != start:
            continue
        for edge in interval.iter("edge"):
            if edge.get("speed") is not None and float(edge.get("sampledSeconds", 0)) > 0:
                entered = float(edge.get("entered", 0))
                state[edge.get("id")] = {
                    "speed_mps": float(edge.get("speed")),
                    "flow_vph": entered * 3600 / TRUTH_EDGE_PERIOD_S,
                }
    return state


@dataclass(frozen=True)
class SpeedScore:
    """MAPE of each speed estimate on the edge windows where all three exist."""

    cells: int
    fused_mape: float
    detector_mape: float
    probe_mape: float


def score_speeds(lake: Path, truth_dir: Path, day: str | date) -> SpeedScore:
    truth = truth_speeds(truth_dir, day)
    state = read_lake_table(lake, TABLES["gold.link_state_15min"])
    if state.num_rows == 0:
        return SpeedScore(0, float("nan"), float("nan"), float("nan"))
    both = pc.and_(pc.is_valid(state["detector_speed_mps"]), pc.is_valid(state["probe_speed_mps"]))
    state = state.filter(both)
    errors: dict[str, list[float]] = {"speed_mps": [], "detector_speed_mps": [], "probe_speed_mps": []}
    for row in state.to_pylist():
        actual = truth.get((row["edge_id"], row["window_start"]))
        if not actual:
            continue
        for column, values in errors.items():
            values.append(abs(row[column] - actual) / actual)
    return SpeedScore(
        cells=len(errors["speed_mps"]),
        fused_mape=float(np.mean(errors["speed_mps"])) if errors["speed_mps"] else float("nan"),
        detector_mape=float(np.mean(errors["detector_speed_mps"])) if errors["speed_mps"] else float("nan"),
        probe_mape=float(np.mean(errors["probe_speed_mps"])) if errors["speed_mps"] else float("nan"),
    )
