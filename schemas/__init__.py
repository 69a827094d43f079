"""The data contracts: one JSON Schema per topic, loaded from the JSON files beside this module.

The JSON files are the source of truth. This module resolves their cross-file ``$ref``s into
self-contained documents once, so every consumer (the compiled validators here, the Arrow
derivation in :mod:`schemas.arrow`, later Spark) reads the same resolved contract and no code
restates a field list.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import fastjsonschema

from core.errors import CitybrainError

#: The topics the ingest consumes: feeds from sensors, operators and the public.
INPUT_TOPICS: tuple[str, ...] = (
    "traffic.detector.v1",
    "traffic.signal_event.v1",
    "operator.probe.v1",
    "public.weather.v1",
    "public.incident.v1",
    "operator.emergency.v1",
)
#: The plan lifecycle topics written by the optimizer, the console and the field adapter.
PLAN_TOPICS: tuple[str, ...] = (
    "control.plan.proposed.v1",
    "control.plan.approved.v1",
    "control.plan.applied.v1",
    "control.plan.rollback.v1",
)
#: Signal preemptions for emergency vehicles: applied by the field adapter without approval, and
#: logged, so each is written here at every step of its life.
CONTROL_TOPICS: tuple[str, ...] = ("control.preempt.v1",)
TOPICS: tuple[str, ...] = INPUT_TOPICS + PLAN_TOPICS + CONTROL_TOPICS


class UnknownTopicError(CitybrainError, KeyError):
    """Raised for a topic that has no schema; the message lists the known ones."""

    def __str__(self) -> str:
        return f"no schema for topic {self.args[0]!r}; known topics: {', '.join(TOPICS)}"


class RecordInvalid(CitybrainError, ValueError):
    """A record that does not satisfy its topic's schema; the message names the rule broken."""


@functools.cache
def _document(filename: str) -> dict[str, Any]:
    text = resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")
    return json.loads(text)


def _resolve(node: Any, base: str) -> Any:
    """Return ``node`` with every ``$ref`` replaced by a deep copy of its target.

    References are ``file.json#/json/pointer`` or ``#/pointer`` relative to ``base``; our
    schemas are acyclic, so plain inlining terminates.
    """
    if isinstance(node, list):
        return [_resolve(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        filename, _, pointer = node["$ref"].partition("#")
        filename = filename or base
        target: Any = _document(filename)
        for part in filter(None, pointer.split("/")):
            target = target[part]
        resolved = _resolve(copy.deepcopy(target), filename)
        siblings = {k: _resolve(v, base) for k, v in node.items() if k != "$ref"}
        return {**resolved, **siblings}
    return {key: _resolve(value, base) for key, value in node.items() if key != "$defs"}


def _non_finite(value: Any, where: str) -> str | None:
    """The path of the first NaN or infinite float inside ``value``, if any."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        return next(filter(None, (_non_finite(v, f"{where}.{k}") for k, v in value.items())), None)
    if isinstance(value, list):
        return next(filter(None, (_non_finite(v, f"{where}[{i}]") for i, v in enumerate(value))), None)
    return None


@dataclass(frozen=True)
class TopicContract:
    """One topic's contract: its resolved schema, the field used as the Kafka key, a validator."""

    topic: str
    schema: dict[str, Any]
    key_field: str
    _validate: Callable[[Any], Any]

    def validate(self, record: Any) -> None:
        """Raise :class:`RecordInvalid` naming the broken rule when ``record`` breaks the contract.

        NaN and infinities are refused first: they pass every range check (comparisons with
        NaN are false) and JSON cannot carry them (orjson would send ``null``).
        """
        where = _non_finite(record, "data")
        if where:
            raise RecordInvalid(f"{where} must be a finite number")
        self.validate_parsed(record)

    def validate_parsed(self, record: Any) -> None:
        """:meth:`validate` for a record parsed from JSON text, which holds no NaN or infinity."""
        try:
            self._validate(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise RecordInvalid(exc.message) from None

    def key_of(self, record: dict[str, Any]) -> bytes:
        """The Kafka key of a valid record: its stable id, so one source stays in one partition."""
        return str(record[self.key_field]).encode()


@functools.cache
def contract(topic: str) -> TopicContract:
    """The contract of ``topic`` (compiled once per process)."""
    if topic not in TOPICS:
        raise UnknownTopicError(topic)
    filename = f"{topic}.json"
    raw = _document(filename)
    resolved = _resolve(raw, filename)
    # fastjsonschema implements drafts 4-7; our documents use only keywords those share with
    # 2020-12 (the test suite checks every example against a 2020-12 validator too). Formats
    # are annotations in 2020-12; where one matters (date-time) a pattern enforces it, and
    # skipping the duplicate format regex saves a tenth of the validation time.
    compiled = fastjsonschema.compile(
        {**resolved, "$schema": "http://json-schema.org/draft-07/schema#"},
        use_formats=False,
        use_default=False,
    )
    return TopicContract(topic=topic, schema=resolved, key_field=raw["x-key"], _validate=compiled)


def raw_document(filename: str) -> dict[str, Any]:
    """The schema file exactly as written (with its ``$ref``s), for meta-validation and docs."""
    return copy.deepcopy(_document(filename))


def resolved_document(filename: str) -> dict[str, Any]:
    """A schema file with every ``$ref`` inlined, for documents that are not topic records (the
    signal configuration)."""
    return _resolve(_document(filename), filename)


def schema_files() -> list[str]:
    """Every schema file shipped in this package."""
    return sorted(p.name for p in resources.files(__name__).iterdir() if p.name.endswith(".json"))
