"""The signal plan model: what the optimizer proposes, the operator approves and SUMO runs.

A :class:`SignalPlan` is the timing of one traffic light (SUMO tls id): its ordered phases
(SUMO state string, duration, min/max), cycle and offset. A :class:`NetworkPlan` is the
plan for a whole network: one :class:`SignalPlan` per signal, made by one method, valid over
one window (UTC), with the :class:`Evaluation` behind it (baseline and plan KPIs over seeds).

The published contract (``control.plan.proposed.v1``, ``plan`` in ``schemas/common.v1.json``)
is one record per signal, so :meth:`NetworkPlan.to_records` writes one record per signal, all
with the network plan's ``plan_id``: the console can show and approve the network plan as a
whole, and ``(plan_id, tls_id)`` names one record. A SUMO id that does not fit the contract's
``identifier`` goes out through :func:`sim.detectors.contract_id`; the model always keeps the
SUMO id, because that is what :func:`optimizer.plans.sumo_programs.apply` and the tlLogic files need, and
:meth:`NetworkPlan.from_records` maps contract ids back when given the network's SUMO ids.

The model checks only what makes a plan well-formed (durations within their bounds, one
state length per signal, a valid method name); whether a plan is *safe* is for
:mod:`optimizer.plans.safety`, which needs the network.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.errors import CitybrainError
from sim.detectors import contract_id

SCHEMA_VERSION = 1
#: The topic a proposed plan is published to; its schema is the contract every record meets.
PROPOSED_TOPIC = "control.plan.proposed.v1"
#: The programID our plans get in SUMO, so they never replace the network's own program "0".
DEFAULT_PROGRAM_ID = "citybrain"
#: What the contract allows as a method name.
METHOD_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class PlanError(CitybrainError, ValueError):
    """A malformed plan, or one that lacks what publishing needs; the message names the signal."""


def _finite(value: float, what: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise PlanError(f"{what} must be a finite number, got {value!r}")
    return number


def format_utc(moment: datetime) -> str:
    """An aware datetime as the contract's ``utc_timestamp``: ``2026-11-01T07:00:00Z``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PlanError(f"timestamp {moment.isoformat()} has no time zone; plans use aware UTC times")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def parse_utc(text: str) -> datetime:
    """The contract's ``utc_timestamp`` as an aware datetime in UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise PlanError(f"{text!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise PlanError(f"timestamp {text!r} has no time zone")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Phase:
    """One phase: the SUMO state string (one letter per controlled link) held for ``duration_s``.

    ``min_s``/``max_s`` default to the duration: a fixed-time phase neither shortens nor
    extends. SUMO reads them only for actuated programs, but the contract carries them and
    the safety rules check ``min_s`` too, so an actuated controller cannot cut a green short.
    """

    state: str
    duration_s: float
    min_s: float | None = None
    max_s: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.state, str) or not self.state:
            raise PlanError(f"a phase state must be a non-empty string, got {self.state!r}")
        duration = _finite(self.duration_s, "a phase duration")
        minimum = duration if self.min_s is None else _finite(self.min_s, "a phase minimum")
        maximum = duration if self.max_s is None else _finite(self.max_s, "a phase maximum")
        if duration <= 0:
            raise PlanError(f"phase {self.state}: duration must be positive, got {duration:g} s")
        if not minimum <= duration <= maximum:
            raise PlanError(
                f"phase {self.state}: duration {duration:g} s must lie within [min {minimum:g}, "
                f"max {maximum:g}] s"
            )
        object.__setattr__(self, "duration_s", duration)
        object.__setattr__(self, "min_s", minimum)
        object.__setattr__(self, "max_s", maximum)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "state": self.state,
            "duration_s": self.duration_s,
            "min_s": self.min_s,
            "max_s": self.max_s,
        }
        if self.name:
            record["name"] = self.name
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Phase:
        return cls(
            state=record["state"],
            duration_s=record["duration_s"],
            min_s=record.get("min_s"),
            max_s=record.get("max_s"),
            name=record.get("name", ""),
        )


@dataclass(frozen=True)
class SignalPlan:
    """The timing of one traffic light: ordered phases, cycle and offset.

    ``tls_id`` is the SUMO id. ``cycle_s`` defaults to the sum of the phase durations; it is a
    field of its own because the contract carries it and a record whose cycle disagrees with
    its phases must be caught by the safety rules, not silently recomputed. ``offset_s``
    follows SUMO: at simulation time ``t`` the program is ``(t - offset) mod cycle`` seconds
    into its cycle. ``kind`` is the tlLogic ``type`` (``static`` for fixed time).
    """

    tls_id: str
    phases: tuple[Phase, ...]
    offset_s: float = 0.0
    cycle_s: float | None = None
    program_id: str = DEFAULT_PROGRAM_ID
    kind: str = "static"

    def __post_init__(self) -> None:
        if not isinstance(self.tls_id, str) or not self.tls_id:
            raise PlanError(f"a signal plan needs a SUMO tls id, got {self.tls_id!r}")
        phases = tuple(self.phases)
        if not phases:
            raise PlanError(f"signal {self.tls_id}: a plan needs at least one phase")
        lengths = {len(p.state) for p in phases}
        if len(lengths) != 1:
            raise PlanError(
                f"signal {self.tls_id}: every phase state must have the same length "
                f"(one letter per controlled link), got lengths {sorted(lengths)}"
            )
        object.__setattr__(self, "phases", phases)
        object.__setattr__(self, "offset_s", _finite(self.offset_s, f"signal {self.tls_id}: offset"))
        total = sum(p.duration_s for p in phases)
        cycle = total if self.cycle_s is None else _finite(self.cycle_s, f"signal {self.tls_id}: cycle")
        object.__setattr__(self, "cycle_s", cycle)
        if not self.program_id:
            raise PlanError(f"signal {self.tls_id}: the program id must not be empty")

    @property
    def link_count(self) -> int:
        """Controlled links of the signal: the length of every state string."""
        return len(self.phases[0].state)

    @property
    def phase_sum_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    @property
    def contract_tls_id(self) -> str:
        """The tls id as the contract's identifier (the SUMO id itself whenever it fits)."""
        return contract_id(self.tls_id)


@dataclass(frozen=True)
class KpiEstimate:
    """One KPI over seeds: mean, sample standard deviation, 95% confidence interval of the mean."""

    mean: float
    std: float
    ci95: tuple[float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _finite(self.mean, "a KPI mean"))
        object.__setattr__(self, "std", _finite(self.std, "a KPI std"))
        low, high = (_finite(v, "a KPI confidence bound") for v in self.ci95)
        object.__setattr__(self, "ci95", (low, high))

    def to_record(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "ci95": list(self.ci95)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> KpiEstimate:
        low, high = record["ci95"]
        return cls(record["mean"], record["std"], (low, high))


def _kpis(values: Mapping[str, KpiEstimate | Mapping[str, Any]]) -> dict[str, KpiEstimate]:
    return {
        name: value if isinstance(value, KpiEstimate) else KpiEstimate.from_record(value)
        for name, value in sorted(values.items())
    }


@dataclass(frozen=True)
class Evaluation:
    """The simulation evidence behind a plan: scenario, seeds, baseline and plan KPIs.

    KPI sets accept :class:`KpiEstimate` values or the ``{"mean", "std", "ci95"}`` mappings
    that :func:`sim.kpis.summarise_runs` returns.
    """

    scenario: str
    seeds: tuple[int, ...]
    baseline: Mapping[str, KpiEstimate]
    plan: Mapping[str, KpiEstimate]
    baseline_method: str | None = None
    #: For a plan sized from the lake: the version of each gold table its demand was read from.
    lake_versions: Mapping[str, int] | None = None
    #: For a plan made for an incident (or the return from one): the incident it answers.
    incident_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.lake_versions is not None:
            object.__setattr__(self, "lake_versions", dict(sorted(self.lake_versions.items())))
        object.__setattr__(self, "baseline", _kpis(self.baseline))
        object.__setattr__(self, "plan", _kpis(self.plan))
        if not self.seeds:
            raise PlanError(f"an evaluation of {self.scenario} needs at least one seed")

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"scenario": self.scenario, "seeds": list(self.seeds)}
        if self.baseline_method is not None:
            record["baseline_method"] = self.baseline_method
        record["baseline"] = {k: v.to_record() for k, v in self.baseline.items()}
        record["plan"] = {k: v.to_record() for k, v in self.plan.items()}
        if self.lake_versions is not None:
            record["lake_versions"] = dict(self.lake_versions)
        if self.incident_id is not None:
            record["incident_id"] = self.incident_id
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Evaluation:
        return cls(
            scenario=record["scenario"],
            seeds=tuple(record["seeds"]),
            baseline=record["baseline"],
            plan=record["plan"],
            baseline_method=record.get("baseline_method"),
            lake_versions=record.get("lake_versions"),
            incident_id=record.get("incident_id"),
        )


@dataclass(frozen=True)
class NetworkPlan:
    """A plan for a network: one :class:`SignalPlan` per signal, one method, window and evaluation.

    Signals are kept sorted by tls id, so two plans with the same content are equal and
    export to the same bytes. ``valid_from``/``valid_to`` (aware datetimes) and
    ``evaluation`` may be absent while a plan is being built or read from a SUMO file;
    :meth:`to_records` refuses to publish without them. ``plan_id`` defaults to a digest of
    the content, so publishing the same plan twice gives the same id.
    """

    signals: tuple[SignalPlan, ...]
    method: str
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    evaluation: Evaluation | None = None
    plan_id: str | None = field(default=None)

    def __post_init__(self) -> None:
        signals = tuple(sorted(self.signals, key=lambda s: s.tls_id))
        seen: set[str] = set()
        for signal in signals:
            if signal.tls_id in seen:
                raise PlanError(f"signal {signal.tls_id} appears twice; a plan holds one program per signal")
            seen.add(signal.tls_id)
        contract_ids = {signal.contract_tls_id for signal in signals}
        if len(contract_ids) != len(signals):
            raise PlanError("two signals map to the same contract tls id")
        object.__setattr__(self, "signals", signals)
        if not isinstance(self.method, str) or not METHOD_PATTERN.match(self.method):
            raise PlanError(f"method {self.method!r} must match {METHOD_PATTERN.pattern}")
        for name in ("valid_from", "valid_to"):
            moment = getattr(self, name)
            if moment is not None:
                format_utc(moment)  # refuses naive datetimes
                object.__setattr__(self, name, moment.astimezone(UTC))
        if self.valid_from is not None and self.valid_to is not None and self.valid_to <= self.valid_from:
            raise PlanError(
                f"validity window ends ({format_utc(self.valid_to)}) before it starts "
                f"({format_utc(self.valid_from)})"
            )
        if self.plan_id is None:
            object.__setattr__(self, "plan_id", self._content_id())
        elif not re.fullmatch(r"[A-Za-z0-9_.:#-]{1,128}", self.plan_id):
            raise PlanError(f"plan id {self.plan_id!r} is not a contract identifier")

    def _content_id(self) -> str:
        content = {
            "method": self.method,
            "valid_from": None if self.valid_from is None else format_utc(self.valid_from),
            "valid_to": None if self.valid_to is None else format_utc(self.valid_to),
            "signals": [
                [s.tls_id, s.program_id, s.kind, s.offset_s, s.cycle_s, [p.to_record() for p in s.phases]]
                for s in self.signals
            ],
        }
        digest = hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.method}-{digest}"

    @property
    def tls_ids(self) -> tuple[str, ...]:
        return tuple(s.tls_id for s in self.signals)

    def signal(self, tls_id: str) -> SignalPlan:
        for signal in self.signals:
            if signal.tls_id == tls_id:
                return signal
        raise PlanError(f"plan {self.plan_id} has no signal {tls_id!r}")

    def to_records(self, ts: datetime | None = None) -> list[dict[str, Any]]:
        """One ``control.plan.proposed.v1`` record per signal (``ts``: when; default now).

        Raises :class:`PlanError` naming what is missing when the plan has no validity
        window or no evaluation: the contract requires both once a plan is published.
        """
        missing = [name for name in ("valid_from", "valid_to", "evaluation") if getattr(self, name) is None]
        if missing:
            raise PlanError(f"plan {self.plan_id} cannot be published without {', '.join(missing)}")
        assert self.valid_from is not None and self.valid_to is not None and self.evaluation is not None
        stamp = format_utc(ts if ts is not None else datetime.now(UTC))
        evaluation = self.evaluation.to_record()
        return [
            {
                "schema_version": SCHEMA_VERSION,
                "ts": stamp,
                "plan_id": self.plan_id,
                "tls_id": signal.contract_tls_id,
                "cycle_s": signal.cycle_s,
                "offset_s": signal.offset_s,
                "phases": [phase.to_record() for phase in signal.phases],
                "valid_from": format_utc(self.valid_from),
                "valid_to": format_utc(self.valid_to),
                "method": self.method,
                "evaluation": evaluation,
            }
            for signal in self.signals
        ]

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        sumo_ids: Iterable[str] | None = None,
        program_id: str = DEFAULT_PROGRAM_ID,
    ) -> NetworkPlan:
        """A network plan from its contract records (all with one plan id, method and window).

        ``sumo_ids`` (e.g. the network's tls ids) turn contract tls ids back into SUMO ids;
        without them a record's tls id is taken as the SUMO id, which is right whenever
        :func:`sim.detectors.contract_id` left it unchanged (nearly always).
        """
        records = list(records)
        if not records:
            raise PlanError("a network plan needs at least one record")
        by_contract_id = None if sumo_ids is None else {contract_id(s): s for s in sumo_ids}
        first = records[0]
        for key in ("plan_id", "method", "valid_from", "valid_to", "evaluation"):
            values = {json.dumps(r.get(key), sort_keys=True) for r in records}
            if len(values) != 1:
                raise PlanError(f"records of one network plan differ in {key}")
        signals = []
        for record in records:
            tls_id = record["tls_id"]
            if by_contract_id is not None:
                if tls_id not in by_contract_id:
                    raise PlanError(f"record for signal {tls_id!r} names no signal of the network")
                tls_id = by_contract_id[tls_id]
            signals.append(
                SignalPlan(
                    tls_id=tls_id,
                    phases=tuple(Phase.from_record(p) for p in record["phases"]),
                    offset_s=record["offset_s"],
                    cycle_s=record["cycle_s"],
                    program_id=program_id,
                )
            )
        return cls(
            signals=tuple(signals),
            method=first["method"],
            valid_from=parse_utc(first["valid_from"]),
            valid_to=parse_utc(first["valid_to"]),
            evaluation=Evaluation.from_record(first["evaluation"]),
            plan_id=first["plan_id"],
        )
