"""One valid record per topic, built fresh on every call so a test may mutate it freely."""

from __future__ import annotations

from typing import Any


def detector() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T07:00:00Z",
        "detector_id": "J0_e0",
        "intersection_id": "J0",
        "lane_id": "approach_J0_0",
        "interval_s": 60,
        "count": 12,
        "occupancy": 0.25,
        "speed_mps": 8.5,
        "source": "loop",
        "quality_flags": [],
    }


def signal_event() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T07:00:01.3Z",
        "signal_id": "J2",
        "event_code": 82,
        "event_param": 5,
        "source": "controller",
    }


def probe() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T07:00:05.250Z",
        "probe_id": "p0123456789ab",
        "lat": 31.2304,
        "lon": 121.4837,
        "speed_mps": 11.2,
        "heading_deg": 87.5,
        "accuracy_m": 4.0,
        "provider": "fleet_a",
    }


def weather() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T07:00:00+00:00",
        "station_id": "ws0",
        "lat": 31.2304,
        "lon": 121.4837,
        "air_temp_c": 8.5,
        "precipitation_mm_h": 1.2,
        "visibility_m": 12000.0,
        "wind_speed_mps": 3.4,
        "road_surface": "wet",
        "condition": "rain",
    }


def incident() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T07:31:00Z",
        "incident_id": "inc7",
        "kind": "crash",
        "status": "confirmed",
        "severity": 3,
        "lat": 31.2304,
        "lon": 121.4901,
        "edge_id": "main_2",
        "lane_ids": ["main_2_0", "main_2_1"],
        "start": "2026-11-28T07:30:00Z",
        "end": None,
        "description": "two cars, right lane blocked",
        "source": "police",
    }


def emergency() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T07:40:12Z",
        "dispatch_id": "d20261128-0042",
        "vehicle_id": "amb_12",
        "vehicle_class": "ambulance",
        "kind": "position",
        "origin_edge": "J7_J6e",
        "destination_edge": "J1_N1",
        "lat": 31.2311,
        "lon": 121.4852,
        "speed_mps": 13.5,
        "heading_deg": 270.0,
        "source": "dispatch_centre",
    }


def preempt() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T07:40:20Z",
        "preempt_id": "d20261128-0042-J4",
        "dispatch_id": "d20261128-0042",
        "vehicle_id": "amb_12",
        "tls_id": "J4",
        "links": [4, 5],
        "status": "requested",
        "priority_phase": 2,
        "eta_s": 18.5,
        "steps": [{"state": "GGyyrr", "duration_s": 3}, {"state": "GGrrrr", "duration_s": 2}],
        "reason": None,
    }


def kpi(mean: float) -> dict[str, Any]:
    return {"mean": mean, "std": 2.0, "ci95": [mean - 1.5, mean + 1.5]}


def phase(state: str) -> dict[str, Any]:
    return {"state": state, "duration_s": 40, "min_s": 10, "max_s": 60, "name": "main"}


def plan_proposed() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T07:00:00Z",
        "plan_id": "plan-2026-11-28-J0-1",
        "tls_id": "J0",
        "cycle_s": 90,
        "offset_s": 12.5,
        "phases": [phase("GGrr"), phase("yyrr"), phase("rrGG"), phase("rryy")],
        "valid_from": "2026-11-28T08:00:00Z",
        "valid_to": "2026-11-28T10:00:00Z",
        "method": "max-pressure",
        "evaluation": {
            "scenario": "corridor_am_peak",
            "seeds": [1, 2, 3],
            "baseline_method": "fixed_time",
            # Two separate kpi() calls: a deep copy keeps shared objects shared, which would let
            # a mutation of the plan's KPIs leak into the baseline's.
            "baseline": {"mean_delay": kpi(30.0), "throughput": kpi(1200.0)},
            "plan": {"mean_delay": kpi(24.0), "throughput": kpi(1260.0)},
        },
    }


def approval() -> dict[str, Any]:
    return {"approved_by": "operator_17", "approved_at": "2026-11-28T07:10:00Z", "comment": "looks good"}


def application() -> dict[str, Any]:
    return {
        "adapter": "sumo-twin",
        "applied_at": "2026-11-28T08:00:01Z",
        "status": "applied",
        "detail": "pushed to the twin",
        "effective_at": "2026-11-28T08:02:00Z",
        "program_id": "citybrain",
        "transition_cycles": 2,
    }


def plan_approved() -> dict[str, Any]:
    return {**plan_proposed(), "approval": approval()}


def plan_applied() -> dict[str, Any]:
    return {**plan_proposed(), "approval": approval(), "application": application()}


def plan_rollback() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ts": "2026-11-28T10:00:00Z",
        "plan_id": "coordinated-0123456789abcdef",
        "requested_by": "operator_17",
        "reason": "queues back to the bridge since 09:00",
    }


VALID_RECORD = {
    "traffic.detector.v1": detector,
    "traffic.signal_event.v1": signal_event,
    "operator.probe.v1": probe,
    "public.weather.v1": weather,
    "public.incident.v1": incident,
    "control.plan.proposed.v1": plan_proposed,
    "control.plan.approved.v1": plan_approved,
    "control.plan.applied.v1": plan_applied,
    "control.plan.rollback.v1": plan_rollback,
    "operator.emergency.v1": emergency,
    "control.preempt.v1": preempt,
}


def valid_record(topic: str) -> dict[str, Any]:
    """A fresh valid record of ``topic``."""
    return VALID_RECORD[topic]()
