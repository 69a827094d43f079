"""The data contracts: every schema rule has a passing and a failing example.

Each topic has one valid record (``contract_examples``; for the plan topics, the variants start
from a plan with both its optional parts, approval and application). A variant changes one
thing in it: those in ``PASSING`` stay valid (bounds just inside, nulls where allowed, optional
fields left out), those in ``FAILING`` break exactly one rule and must be rejected with a
message that names the field. Every example is also run through the independent
``jsonschema`` 2020-12 validator, on the resolved contract and on the raw files with their
``$ref``s, and all three must agree.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

import schemas
from schemas import INPUT_TOPICS, TOPICS, RecordInvalid, UnknownTopicError, contract, raw_document
from tests.unit.contract_examples import kpi, phase, plan_applied, valid_record

PLAN_TOPICS = ("control.plan.proposed.v1", "control.plan.approved.v1", "control.plan.applied.v1")
APPROVED_PLAN_TOPICS = ("control.plan.approved.v1", "control.plan.applied.v1")
DETECTOR, SIGNAL_EVENT, PROBE, WEATHER, INCIDENT, EMERGENCY = INPUT_TOPICS
PREEMPT = "control.preempt.v1"

MISSING = object()  # as a variant's value: remove the field


# --------------------------------------------------------------------------- variants


def _show(value: Any) -> str:
    if value is MISSING:
        return "<missing>"
    if isinstance(value, str) and len(value) > 40:
        return f"{value[:6]!r}..(len {len(value)})"
    if isinstance(value, list | dict) and len(repr(value)) > 40:
        return f"{type(value).__name__}(len {len(value)})"
    return repr(value)


@dataclass(frozen=True)
class Variant:
    """The topic's valid record with the value at ``path`` replaced (or removed)."""

    topic: str
    path: str  # dotted; a number indexes a list, e.g. "phases.0.state"
    value: Any
    names: str  # what a rejection message must name

    def record(self) -> dict[str, Any]:
        record = base_record(self.topic)
        *parents, last = [int(p) if p.isdigit() else p for p in self.path.split(".")]
        target: Any = record
        for part in parents:
            target = target[part]
        if self.value is MISSING:
            del target[last]
        else:
            target[last] = copy.deepcopy(self.value)
        return record

    def __str__(self) -> str:
        return f"{self.topic}:{self.path}={_show(self.value)}"


def base_record(topic: str) -> dict[str, Any]:
    """What a variant changes: the topic's example; for a plan, one with approval and application.

    Every plan topic allows both parts, so each of their rules can be tried on every plan topic;
    what differs between the topics is only which of the two is required.
    """
    return plan_applied() if topic in PLAN_TOPICS else valid_record(topic)


def variants(topics: str | Iterable[str], path: str, values: Iterable[Any], names: str | None = None):
    """One variant per topic and value; the message must name ``names`` (default: the field)."""
    topics = (topics,) if isinstance(topics, str) else tuple(topics)
    if names is None:
        names = next(p for p in reversed(path.split(".")) if not p.isdigit())
    return [Variant(t, path, v, names) for t in topics for v in values]


def below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


class Rules:
    """Collects the passing and failing variants of every rule."""

    def __init__(self) -> None:
        self.passing: list[Variant] = []
        self.failing: list[Variant] = []

    def ok(self, topics, path, *values):
        self.passing += variants(topics, path, values)

    def bad(self, topics, path, *values, names=None):
        self.failing += variants(topics, path, values, names)

    def required(self, topics, *paths):
        for path in paths:
            self.bad(topics, path, MISSING)

    def closed(self, topics, path=""):
        """``additionalProperties: false``: an unknown field is rejected."""
        self.bad(topics, f"{path}.unexpected_field" if path else "unexpected_field", True)

    def nullable(self, topics, path, nullable):
        (self.ok if nullable else self.bad)(topics, path, None)

    def number(self, topics, path, lo, hi, *, exclusive_max=False, nullable=False):
        self.ok(topics, path, lo, below(hi) if exclusive_max else hi, (lo + hi) / 2)
        self.bad(topics, path, below(lo), hi if exclusive_max else above(hi), str(lo), True, [lo])
        self.nullable(topics, path, nullable)

    def integer(self, topics, path, lo, hi):
        self.ok(topics, path, lo, hi, float(lo))  # 2020-12: 3.0 is an integer
        self.bad(topics, path, lo - 1, hi + 1, lo + 0.5, str(lo), True, None)

    def enum(self, topics, path, members, *, nullable=False):
        self.ok(topics, path, *members)
        self.bad(topics, path, "not_a_member", members[0].upper(), f" {members[0]}", 1)
        self.nullable(topics, path, nullable)

    def identifier(self, topics, path, *, nullable=False):
        self.ok(topics, path, "a", "J0:lane_1.a#2-b", "x" * 128)
        self.bad(topics, path, "", "x" * 129, "has space", "slash/x", "ümlaut", "semi;colon", 42)
        self.nullable(topics, path, nullable)

    def max_length(self, topics, path, limit, *, min_length=0, optional=False):
        self.ok(topics, path, "x" * limit, "x" * max(min_length, 1))
        self.bad(topics, path, "x" * (limit + 1), 5, None)
        if min_length:
            self.bad(topics, path, "x" * (min_length - 1))
        else:
            self.ok(topics, path, "")
        if optional:
            self.ok(topics, path, MISSING)

    def timestamp(self, topics, path, *, nullable=False, thorough=False):
        """The UTC date-time pattern; ``thorough`` tries every way a timestamp goes wrong."""
        self.ok(topics, path, *(GOOD_TIMESTAMPS if thorough else GOOD_TIMESTAMPS[:2]))
        self.bad(topics, path, *(BAD_TIMESTAMPS if thorough else BAD_TIMESTAMPS[:3]))
        self.nullable(topics, path, nullable)


GOOD_TIMESTAMPS = [
    "2026-11-28T07:00:00Z",
    "2026-11-28T07:00:00+00:00",
    "2026-11-28T07:00:00.5Z",
    "2026-11-28T23:59:59.123456+00:00",
    "2024-02-29T00:00:00.123456Z",  # microseconds: what the lake's timestamps hold
    "2026-12-31T00:00:00Z",
]
BAD_TIMESTAMPS = [
    "2026-11-28T15:00:00+08:00",  # local time, not UTC
    "2026-13-01T07:00:00Z",  # month 13
    "not a timestamp",
    "2026-11-28T02:00:00-05:00",
    "2026-11-28T07:00:00-00:00",
    "2026-11-28T07:00:00",  # no zone
    "2026-11-28T07:00:00z",
    "2026-11-28t07:00:00Z",
    "2026-11-28 07:00:00Z",
    "2026-00-28T07:00:00Z",
    "2026-11-00T07:00:00Z",
    "2026-11-32T07:00:00Z",
    "2026-11-28T24:00:00Z",
    "2026-11-28T07:60:00Z",
    "2026-11-28T07:00:60Z",
    "2026-11-28T07:00Z",
    "2026-11-28T07:00:00.Z",
    "2026-11-28T07:00:00.1234567Z",  # finer than the lake's microseconds
    "26-11-28T07:00:00Z",
    "2026-11-28",
    "",
    1_764_313_200,
]

R = Rules()

# Every topic: the envelope.
R.closed(TOPICS)
R.ok(TOPICS, "schema_version", 1)
R.bad(TOPICS, "schema_version", 2, 0, "1", True, None)
R.timestamp(TOPICS, "ts", thorough=True)

# traffic.detector.v1
R.required(DETECTOR, *(
    "schema_version", "ts", "detector_id", "intersection_id", "lane_id", "interval_s", "count",
    "occupancy", "speed_mps", "source", "quality_flags",
))  # fmt: skip
for field in ("detector_id", "intersection_id", "lane_id"):
    R.identifier(DETECTOR, field)
R.integer(DETECTOR, "interval_s", 1, 3600)
R.integer(DETECTOR, "count", 0, 10_000)
R.number(DETECTOR, "occupancy", 0, 1)
R.number(DETECTOR, "speed_mps", 0, 100, nullable=True)
R.enum(DETECTOR, "source", ["loop", "radar", "video", "sumo"])
QUALITY_FLAGS = ["estimated", "partial_interval", "stuck", "clock_drift", "maintenance"]
R.ok(DETECTOR, "quality_flags", [], QUALITY_FLAGS, *([flag] for flag in QUALITY_FLAGS))
R.bad(DETECTOR, "quality_flags", ["stuck", "stuck"], ["unknown_flag"], "stuck", None, [None])
# maxItems 8 cannot be broken alone: five distinct flags exist, so nine items repeat one.
R.bad(DETECTOR, "quality_flags", QUALITY_FLAGS + QUALITY_FLAGS[:4])

# operator.probe.v1
R.required(PROBE, *(
    "schema_version", "ts", "probe_id", "lat", "lon", "speed_mps", "heading_deg", "accuracy_m", "provider",
))  # fmt: skip
R.ok(PROBE, "probe_id", "a" * 8, "A" * 64, "ab_cd-EF")
R.bad(PROBE, "probe_id", "a" * 7, "a" * 65, "abcd.efgh", "abcd efgh", "abcd:efgh", "", 12345678, None)
R.number(PROBE, "lat", -90, 90)
R.number(PROBE, "lon", -180, 180)
R.number(PROBE, "speed_mps", 0, 100)
R.number(PROBE, "heading_deg", 0, 360, exclusive_max=True, nullable=True)
R.number(PROBE, "accuracy_m", 0, 1000)
R.identifier(PROBE, "provider")

# public.weather.v1
R.required(WEATHER, *(
    "schema_version", "ts", "station_id", "lat", "lon", "air_temp_c", "precipitation_mm_h",
    "visibility_m", "wind_speed_mps", "road_surface", "condition",
))  # fmt: skip
R.identifier(WEATHER, "station_id")
R.number(WEATHER, "lat", -90, 90)
R.number(WEATHER, "lon", -180, 180)
R.number(WEATHER, "air_temp_c", -60, 60)
R.number(WEATHER, "precipitation_mm_h", 0, 500)
R.number(WEATHER, "visibility_m", 0, 100_000, nullable=True)
R.number(WEATHER, "wind_speed_mps", 0, 120)
R.enum(WEATHER, "road_surface", ["dry", "wet", "snow", "ice", "unknown"])
R.enum(WEATHER, "condition", ["clear", "cloudy", "fog", "rain", "heavy_rain", "snow", "storm"])

# traffic.signal_event.v1
R.required(SIGNAL_EVENT, "schema_version", "ts", "signal_id", "event_code", "event_param", "source")
R.closed(SIGNAL_EVENT)
R.timestamp(SIGNAL_EVENT, "ts")
R.identifier(SIGNAL_EVENT, "signal_id")
R.integer(SIGNAL_EVENT, "event_code", 0, 255)
R.enum(SIGNAL_EVENT, "source", ["controller", "atspm", "sumo"])
# the valid record is a detector actuation: its parameter is a channel, 1-256
R.ok(SIGNAL_EVENT, "event_param", 1, 256)
R.bad(SIGNAL_EVENT, "event_param", 0, 257, -1, 1.5, "5", None)

# public.incident.v1
R.required(INCIDENT, *(
    "schema_version", "ts", "incident_id", "kind", "status", "severity", "lat", "lon", "edge_id",
    "lane_ids", "start", "end", "description", "source",
))  # fmt: skip
R.identifier(INCIDENT, "incident_id")
R.enum(INCIDENT, "kind", ["crash", "breakdown", "hazard", "road_works", "planned_event", "closure"])
R.enum(INCIDENT, "status", ["reported", "confirmed", "active", "cleared", "cancelled"])
R.integer(INCIDENT, "severity", 1, 5)
R.number(INCIDENT, "lat", -90, 90)
R.number(INCIDENT, "lon", -180, 180)
R.identifier(INCIDENT, "edge_id", nullable=True)
SIXTEEN_LANES = [f"main_0_{i}" for i in range(16)]
R.ok(INCIDENT, "lane_ids", [], SIXTEEN_LANES)
R.bad(INCIDENT, "lane_ids", [*SIXTEEN_LANES, "main_0_16"], ["main_0_0", "main_0_0"], "main_0_0", None)
R.identifier(INCIDENT, "lane_ids.0")
R.timestamp(INCIDENT, "start")
R.timestamp(INCIDENT, "end", nullable=True)
R.max_length(INCIDENT, "description", 500)
R.identifier(INCIDENT, "source")

# operator.emergency.v1
R.required(EMERGENCY, *(
    "schema_version", "ts", "dispatch_id", "vehicle_id", "vehicle_class", "kind", "origin_edge",
    "destination_edge", "lat", "lon", "speed_mps", "heading_deg", "source",
))  # fmt: skip
R.identifier(EMERGENCY, "dispatch_id")
R.identifier(EMERGENCY, "vehicle_id")
R.enum(EMERGENCY, "vehicle_class", ["ambulance", "fire", "police"])
R.enum(EMERGENCY, "kind", ["dispatch", "position", "arrived", "cancelled"])
R.identifier(EMERGENCY, "origin_edge", nullable=True)
R.identifier(EMERGENCY, "destination_edge")
R.number(EMERGENCY, "lat", -90, 90)
R.number(EMERGENCY, "lon", -180, 180)
R.number(EMERGENCY, "speed_mps", 0, 100, nullable=True)
R.number(EMERGENCY, "heading_deg", 0, 360, exclusive_max=True, nullable=True)
R.identifier(EMERGENCY, "source")

# control.preempt.v1
R.required(PREEMPT, *(
    "schema_version", "ts", "preempt_id", "dispatch_id", "vehicle_id", "tls_id", "links", "status",
    "priority_phase", "eta_s", "steps", "reason",
))  # fmt: skip
for field in ("preempt_id", "dispatch_id", "vehicle_id", "tls_id"):
    R.identifier(PREEMPT, field)
R.ok(PREEMPT, "links", [0], list(range(64)), [1023])
R.bad(PREEMPT, "links", [], list(range(65)), [1, 1], [-1], [1024], [1.5], ["1"], 1, None)
R.enum(PREEMPT, "status", ["requested", "green", "released", "refused"])
R.ok(PREEMPT, "priority_phase", 0, 63, 0.0, None)
R.bad(PREEMPT, "priority_phase", -1, 64, 0.5, "0", True)
R.number(PREEMPT, "eta_s", 0, 3600, nullable=True)
R.ok(PREEMPT, "steps", [], [{"state": "G", "duration_s": 0}] * 8)
R.bad(PREEMPT, "steps", [{"state": "G", "duration_s": 0}] * 9, "GGrr", None)
R.required(PREEMPT, "steps.0.state", "steps.0.duration_s")
R.closed(PREEMPT, "steps.0")
R.ok(PREEMPT, "steps.0.state", "r", "rugGyYoOs", "G" * 512)
R.bad(PREEMPT, "steps.0.state", "", "G" * 513, "GGXr", "GG r", 5, None)
R.number(PREEMPT, "steps.0.duration_s", 0, 300)
R.ok(PREEMPT, "reason", "no phase gives links [3] green", "x" * 500)
R.bad(PREEMPT, "reason", "x" * 501, 5)

# control.plan.*.v1: the plan itself
R.required(PLAN_TOPICS, *(
    "schema_version", "ts", "plan_id", "tls_id", "cycle_s", "offset_s", "phases", "valid_from",
    "valid_to", "method", "evaluation",
))  # fmt: skip
R.identifier(PLAN_TOPICS, "plan_id")
R.identifier(PLAN_TOPICS, "tls_id")
R.number(PLAN_TOPICS, "cycle_s", 20, 300)
R.number(PLAN_TOPICS, "offset_s", 0, 300)
R.ok(PLAN_TOPICS, "phases", [phase("GGrr"), phase("rrGG")], [phase("GGrr")] * 32)
R.bad(PLAN_TOPICS, "phases", [phase("GGrr")], [phase("GGrr")] * 33, [], None, "GGrr")
R.bad(PLAN_TOPICS, "phases.0", "GGrr", None)
R.required(PLAN_TOPICS, "phases.0.state", "phases.0.duration_s", "phases.0.min_s", "phases.0.max_s")
R.closed(PLAN_TOPICS, "phases.0")
R.ok(PLAN_TOPICS, "phases.0.state", "r", "rRyYgGuoOs", "G" * 512)
R.bad(PLAN_TOPICS, "phases.0.state", "", "G" * 513, "GGXr", "GG r", "GGrr\t", 5, None)
for field in ("duration_s", "min_s", "max_s"):
    R.number(PLAN_TOPICS, f"phases.0.{field}", 1, 300)
R.max_length(PLAN_TOPICS, "phases.0.name", 64, optional=True)
R.timestamp(PLAN_TOPICS, "valid_from")
R.timestamp(PLAN_TOPICS, "valid_to")
R.ok(PLAN_TOPICS, "method", "a", "max-pressure_2", "m" * 64)
R.bad(PLAN_TOPICS, "method", "", "Resco", "1abc", "-abc", "m" * 65, "max pressure", "max.pressure", None)
# the evaluation behind a plan
R.bad(PLAN_TOPICS, "evaluation", "corridor", None)
R.required(PLAN_TOPICS, "evaluation.scenario", "evaluation.seeds", "evaluation.baseline", "evaluation.plan")
R.closed(PLAN_TOPICS, "evaluation")
R.max_length(PLAN_TOPICS, "evaluation.scenario", 256, min_length=1)
R.ok(PLAN_TOPICS, "evaluation.seeds", [0], list(range(50)))
R.bad(PLAN_TOPICS, "evaluation.seeds", [], [-1], [1.5], ["1"], "1", None)
R.max_length(PLAN_TOPICS, "evaluation.baseline_method", 64, optional=True)
# the gold table versions a lake plan's demand was read from
versions = "evaluation.lake_versions"
R.ok(PLAN_TOPICS, versions, {}, {"gold.link_state_15min": 0, "gold.turning_movements_15min": 12})
R.bad(PLAN_TOPICS, versions, {"silver.weather": 1}, {"gold.": 1}, {"gold.X": 1}, names="lake_versions")
R.bad(PLAN_TOPICS, versions, {"gold.a": -1}, {"gold.a": 1.5}, {"gold.a": "1"}, {"gold.a": None})
R.bad(PLAN_TOPICS, versions, {f"gold.t{i}": i for i in range(17)}, [1], None)
# the incident a plan answers (an incident plan, or the return from one)
R.identifier(PLAN_TOPICS, "evaluation.incident_id")
for side in ("baseline", "plan"):
    kpis = f"evaluation.{side}"
    R.ok(PLAN_TOPICS, kpis, {}, {"k" * 64: kpi(1.0)}, {"co2": kpi(1.0), "resco_delay_2": kpi(1.0)})
    # propertyNames: the message names the KPI set, not the key
    R.bad(PLAN_TOPICS, kpis, {"Mean_delay": kpi(1.0)}, {"2x": kpi(1.0)}, {"k" * 65: kpi(1.0)}, names=side)
    R.bad(PLAN_TOPICS, kpis, [kpi(1.0)], None)
    estimate = f"{kpis}.mean_delay"
    R.bad(PLAN_TOPICS, estimate, 30.0, None)
    R.required(PLAN_TOPICS, f"{estimate}.mean", f"{estimate}.std", f"{estimate}.ci95")
    R.closed(PLAN_TOPICS, estimate)
    R.ok(PLAN_TOPICS, f"{estimate}.mean", -5.0, 0, 1e12)
    R.bad(PLAN_TOPICS, f"{estimate}.mean", "30", None, True)
    R.ok(PLAN_TOPICS, f"{estimate}.std", 0, 0.0, 1e6)
    R.bad(PLAN_TOPICS, f"{estimate}.std", below(0), -1, "2", None)
    R.ok(PLAN_TOPICS, f"{estimate}.ci95", [0, 0], [-1.5, 2.5])
    R.bad(PLAN_TOPICS, f"{estimate}.ci95", [], [1.0], [1.0, 2.0, 3.0], ["1", "2"], [1.0, None], "1,2", None)

# approval: required on approved and applied plans, allowed on proposed ones
R.ok("control.plan.proposed.v1", "approval", MISSING)
R.required(APPROVED_PLAN_TOPICS, "approval")
R.bad(PLAN_TOPICS, "approval", None, "operator_17", {})
R.required(PLAN_TOPICS, "approval.approved_by", "approval.approved_at")
R.closed(PLAN_TOPICS, "approval")
R.identifier(PLAN_TOPICS, "approval.approved_by")
R.timestamp(PLAN_TOPICS, "approval.approved_at")
R.max_length(PLAN_TOPICS, "approval.comment", 1000, optional=True)

# application: required on applied plans, allowed on the others
APPLIED = "control.plan.applied.v1"
R.ok(("control.plan.proposed.v1", "control.plan.approved.v1"), "application", MISSING)
R.required(APPLIED, "application")
R.bad(PLAN_TOPICS, "application", None, "applied", {})
R.required(PLAN_TOPICS, "application.adapter", "application.applied_at", "application.status")
R.closed(PLAN_TOPICS, "application")
R.identifier(PLAN_TOPICS, "application.adapter")
R.timestamp(PLAN_TOPICS, "application.applied_at")
R.enum(PLAN_TOPICS, "application.status", ["applied", "refused", "failed", "rolled_back"])
R.max_length(PLAN_TOPICS, "application.detail", 1000, optional=True)
R.timestamp(PLAN_TOPICS, "application.effective_at")
R.ok(PLAN_TOPICS, "application.effective_at", MISSING)
R.max_length(PLAN_TOPICS, "application.program_id", 128, optional=True)
R.integer(PLAN_TOPICS, "application.transition_cycles", 0, 100)
R.ok(PLAN_TOPICS, "application.transition_cycles", MISSING)

# control.plan.rollback.v1: an operator's request to undo an applied plan
ROLLBACK = "control.plan.rollback.v1"
R.required(ROLLBACK, "schema_version", "ts", "plan_id", "requested_by", "reason")
R.closed(ROLLBACK)
R.bad(ROLLBACK, "schema_version", 2, "1")
R.timestamp(ROLLBACK, "ts")
R.identifier(ROLLBACK, "plan_id")
R.identifier(ROLLBACK, "requested_by")
R.max_length(ROLLBACK, "reason", 1000, min_length=1)

PASSING, FAILING = R.passing, R.failing


# --------------------------------------------------------------------------- validators

REGISTRY = Registry().with_resources(
    (name, Resource.from_contents(raw_document(name))) for name in schemas.schema_files()
)


@functools.cache
def resolved_validator(topic: str) -> Draft202012Validator:
    """jsonschema on the contract as resolved by ``schemas`` (no ``$ref`` left)."""
    return Draft202012Validator(contract(topic).schema)


@functools.cache
def raw_validator(topic: str) -> Draft202012Validator:
    """jsonschema on the file as written, resolving its ``$ref``s itself."""
    return Draft202012Validator(raw_document(f"{topic}.json"), registry=REGISTRY)


def contract_accepts(topic: str, record: Any) -> bool:
    try:
        contract(topic).validate(record)
    except RecordInvalid:
        return False
    return True


def names_field(message: str, field: str) -> bool:
    """Whether ``message`` names ``field`` as a word of its own (``ts``, not ``lane_ids``)."""
    return re.search(rf"(?<!\w){re.escape(field)}(?!\w)", message) is not None


def assert_validators_agree(topic: str, record: Any, *, valid: bool) -> None:
    assert contract_accepts(topic, record) is valid
    assert resolved_validator(topic).is_valid(record) is valid, "jsonschema on the resolved contract"
    assert raw_validator(topic).is_valid(record) is valid, "jsonschema on the raw schema file"


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize("topic", TOPICS)
def test_the_example_record_of_every_topic_is_valid(topic):
    record = valid_record(topic)

    contract(topic).validate(record)
    assert_validators_agree(topic, record, valid=True)


@pytest.mark.parametrize("variant", PASSING, ids=str)
def test_a_record_within_the_rules_passes(variant):
    assert_validators_agree(variant.topic, variant.record(), valid=True)


@pytest.mark.parametrize("variant", FAILING, ids=str)
def test_a_record_breaking_a_rule_is_rejected_naming_the_field(variant):
    record = variant.record()

    with pytest.raises(RecordInvalid) as rejected:
        contract(variant.topic).validate(record)

    assert names_field(str(rejected.value), variant.names)
    assert_validators_agree(variant.topic, record, valid=False)


@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("not_a_record", [None, [], ["ts"], "record", 1, True])
def test_a_value_that_is_not_an_object_is_rejected(topic, not_a_record):
    with pytest.raises(RecordInvalid, match="must be object"):
        contract(topic).validate(not_a_record)
    assert_validators_agree(topic, not_a_record, valid=False)


def test_record_invalid_is_a_value_error():
    assert issubclass(RecordInvalid, ValueError)


def _property_names(node: Any) -> Iterator[str]:
    """Every property name declared anywhere in a schema."""
    if isinstance(node, dict):
        yield from node.get("properties", {})
        for child in node.values():
            yield from _property_names(child)
    elif isinstance(node, list):
        for child in node:
            yield from _property_names(child)


@pytest.mark.parametrize("topic", TOPICS)
def test_every_property_of_every_topic_has_a_failing_example(topic):
    tried = {part for v in FAILING if v.topic == topic for part in v.path.split(".")}

    assert set(_property_names(contract(topic).schema)) - tried == set()


@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_has_passing_and_failing_variants(topic):
    assert any(v.topic == topic for v in PASSING)
    assert any(v.topic == topic for v in FAILING)


@pytest.mark.parametrize("field", ["detector_id", "intersection_id", "lane_id"])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_an_identifier_with_a_line_break_at_the_end_is_rejected(field, line_end):
    # Not run through jsonschema: it matches patterns with Python's re.search, whose "$" also
    # matches before a final newline; JSON Schema patterns are ECMA-262, where it does not.
    record = {**valid_record(DETECTOR), field: "J0" + line_end}

    with pytest.raises(RecordInvalid, match=field):
        contract(DETECTOR).validate(record)


def test_a_timestamp_with_a_line_break_at_the_end_is_rejected():
    record = {**valid_record(DETECTOR), "ts": "2026-11-28T07:00:00Z\n"}

    with pytest.raises(RecordInvalid, match="ts"):
        contract(DETECTOR).validate(record)


@pytest.mark.parametrize("ts", ["٢٠٢٦-11-28T07:00:00Z", "2026-11-28T07:00:00.٥Z", "２０２６-11-28T07:00:00Z"])
def test_a_timestamp_with_non_ascii_digits_is_rejected(ts):
    with pytest.raises(RecordInvalid):
        contract(DETECTOR).validate({**valid_record(DETECTOR), "ts": ts})


@pytest.mark.parametrize(("topic", "field"), [(DETECTOR, "occupancy"), (WEATHER, "air_temp_c")])
def test_a_number_that_is_not_a_number_is_rejected(topic, field):
    with pytest.raises(RecordInvalid):
        contract(topic).validate({**valid_record(topic), field: math.nan})


# --------------------------------------------------------------------------- the schema files


@pytest.mark.parametrize("filename", schemas.schema_files())
def test_every_schema_file_is_a_valid_2020_12_schema(filename):
    document = raw_document(filename)

    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


def test_the_schema_files_are_the_topics_and_the_shared_definitions():
    assert schemas.schema_files() == sorted(
        [*(f"{t}.json" for t in TOPICS), "common.v1.json", "signal_config.v1.json"]
    )


def test_the_topics_are_the_input_topics_then_the_plan_lifecycle():
    assert TOPICS == INPUT_TOPICS + PLAN_TOPICS + ("control.plan.rollback.v1", PREEMPT)
    assert INPUT_TOPICS == (DETECTOR, SIGNAL_EVENT, PROBE, WEATHER, INCIDENT, EMERGENCY)


@pytest.mark.parametrize(
    ("code", "lowest", "highest"),
    [(1, 1, 40), (8, 1, 40), (21, 1, 40), (61, 1, 40), (82, 1, 256), (105, 1, 10), (132, 0, 65535)],
)
def test_a_signal_events_parameter_range_follows_its_code(code, lowest, highest):
    """A phase is 1-40, a detector channel 1-256, a preempt 1-10, a coordination value 0-65535."""
    validate = contract(SIGNAL_EVENT).validate
    for param in (lowest, highest):
        validate({**valid_record(SIGNAL_EVENT), "event_code": code, "event_param": param})
    for param in (lowest - 1, highest + 1):
        with pytest.raises(RecordInvalid, match="event_param"):
            validate({**valid_record(SIGNAL_EVENT), "event_code": code, "event_param": param})


@pytest.mark.parametrize("topic", TOPICS)
def test_every_schema_declares_its_topic_as_its_file_name(topic):
    filename = f"{topic}.json"
    document = raw_document(filename)

    assert document["x-topic"] == Path(filename).stem == topic
    assert document["$id"] == filename


def _required(schema: dict[str, Any]) -> set[str]:
    """Required properties of a resolved schema, including those its allOf parts require."""
    return set(schema.get("required", ())).union(*(_required(part) for part in schema.get("allOf", ())))


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    merged = dict(schema.get("properties", {}))
    for part in schema.get("allOf", ()):
        merged.update(_properties(part))
    return merged


KEY_FIELDS = {
    DETECTOR: ("detector_id", b"J0_e0"),
    SIGNAL_EVENT: ("signal_id", b"J2"),
    PROBE: ("probe_id", b"p0123456789ab"),
    WEATHER: ("station_id", b"ws0"),
    INCIDENT: ("incident_id", b"inc7"),
    "control.plan.proposed.v1": ("tls_id", b"J0"),
    "control.plan.approved.v1": ("tls_id", b"J0"),
    "control.plan.applied.v1": ("tls_id", b"J0"),
    "control.plan.rollback.v1": ("plan_id", b"coordinated-0123456789abcdef"),
    EMERGENCY: ("dispatch_id", b"d20261128-0042"),
    PREEMPT: ("tls_id", b"J4"),
}


@pytest.mark.parametrize("topic", TOPICS)
def test_every_schema_keys_its_records_by_a_required_property(topic):
    key_field, _ = KEY_FIELDS[topic]
    schema = contract(topic).schema

    assert raw_document(f"{topic}.json")["x-key"] == key_field
    assert contract(topic).key_field == key_field
    assert key_field in _required(schema)
    assert key_field in _properties(schema)


@pytest.mark.parametrize("topic", TOPICS)
def test_the_key_of_a_record_is_its_key_field_as_bytes(topic):
    _, expected = KEY_FIELDS[topic]

    assert contract(topic).key_of(valid_record(topic)) == expected


@pytest.mark.parametrize("topic", TOPICS)
def test_the_resolved_contract_is_self_contained(topic):
    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            yield from (key for key in node if key in ("$ref", "$defs"))
            for child in node.values():
                yield from refs(child)
        elif isinstance(node, list):
            for child in node:
                yield from refs(child)

    assert list(refs(contract(topic).schema)) == []
    assert contract(topic).schema["x-topic"] == topic


def _node(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The (non-null branch of the) schema of a property; ``phases[]`` steps into array items."""
    node: dict[str, Any] = schema
    for part in path.split("."):
        node = _properties(node)[part.removesuffix("[]")]
        if part.endswith("[]"):
            node = node["items"]
        branches = [b for b in node.get("anyOf", ()) if b.get("type") != "null"]
        if branches:
            (node,) = branches
    return node


UNITS = {
    DETECTOR: {"interval_s": "s", "count": "vehicles", "occupancy": "fraction", "speed_mps": "m/s"},
    PROBE: {
        "lat": "degree",
        "lon": "degree",
        "speed_mps": "m/s",
        "heading_deg": "degree",
        "accuracy_m": "m",
    },
    WEATHER: {
        "lat": "degree",
        "lon": "degree",
        "air_temp_c": "degC",
        "precipitation_mm_h": "mm/h",
        "visibility_m": "m",
        "wind_speed_mps": "m/s",
    },
    INCIDENT: {"lat": "degree", "lon": "degree"},
    EMERGENCY: {"lat": "degree", "lon": "degree", "speed_mps": "m/s", "heading_deg": "degree"},
    PREEMPT: {"eta_s": "s", "steps[].duration_s": "s"},
    **dict.fromkeys(
        PLAN_TOPICS,
        {
            "cycle_s": "s",
            "offset_s": "s",
            "phases[].duration_s": "s",
            "phases[].min_s": "s",
            "phases[].max_s": "s",
        },
    ),
}


@pytest.mark.parametrize(
    ("topic", "path", "unit"), [(t, p, u) for t, units in UNITS.items() for p, u in units.items()]
)
def test_physical_quantities_carry_their_unit(topic, path, unit):
    assert _node(contract(topic).schema, path)["x-unit"] == unit


@pytest.mark.parametrize("topic", TOPICS)
def test_every_numeric_field_of_a_record_has_a_unit_or_a_description(topic):
    schema = contract(topic).schema
    for name, prop in _properties(schema).items():
        node = _node(schema, name)
        if node.get("type") in ("number", "integer"):
            assert "x-unit" in node or "description" in prop or "description" in node, name


# --------------------------------------------------------------------------- lookup


def test_an_unknown_topic_is_an_error_that_lists_the_known_topics():
    with pytest.raises(UnknownTopicError) as error:
        contract("nope")

    message = str(error.value)
    assert "'nope'" in message
    for topic in TOPICS:
        assert topic in message


def test_an_unknown_topic_error_is_a_key_error():
    with pytest.raises(KeyError):
        contract("traffic.detector.v2")


def test_a_dead_letter_topic_has_no_contract():
    with pytest.raises(UnknownTopicError):
        contract(f"{DETECTOR}.dlq")
