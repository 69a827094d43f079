"""Arrow schemas derived from the JSON Schemas, so the lake's columns follow the contracts.

Mapping: ``integer`` → int64, ``number`` → float64, ``boolean`` → bool, ``string`` → string
(``format: date-time`` → timestamp[us, UTC]), an ``enum`` of strings → string, ``array`` →
list, ``object`` with properties → struct, an ``anyOf`` with ``null`` → the other branch,
nullable. A property is non-nullable only when it is required and cannot be null.
"""

from __future__ import annotations

import functools
from typing import Any

import pyarrow as pa

from schemas import contract

TIMESTAMP = pa.timestamp("us", tz="UTC")


class UnmappableSchema(TypeError):
    """A JSON Schema construct with no single Arrow type; the message names where it is."""


_CONST_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}


def _unmappable(where: str, what: str) -> pa.DataType:
    raise UnmappableSchema(f"{where}: no Arrow type for a {what}")


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    if "allOf" not in node:
        return node
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for part in node["allOf"]:
        part = _merge_all_of(part)
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = sorted({*merged.get("required", []), *value})
            else:
                merged.setdefault(key, value)
    return merged


def _nullable_branch(node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Split ``anyOf: [X, {type: null}]`` into (X, True); anything else into (node, False)."""
    branches = node.get("anyOf")
    if branches is None:
        return node, False
    others = [b for b in branches if b.get("type") != "null"]
    if len(others) != 1:
        raise UnmappableSchema(f"anyOf with {len(others)} non-null branches")
    return {**others[0], **{k: v for k, v in node.items() if k != "anyOf"}}, len(others) < len(branches)


def arrow_type(node: dict[str, Any], where: str = "$") -> pa.DataType:
    """The Arrow type of one (resolved) JSON Schema node."""
    node, _ = _nullable_branch(_merge_all_of(node))
    if "const" in node:
        return _CONST_TYPES.get(type(node["const"])) or _unmappable(where, "const of this kind")
    if "enum" in node:
        if all(isinstance(v, str) for v in node["enum"]):
            return pa.string()
        raise UnmappableSchema(f"{where}: enum of mixed or non-string values")
    kind = node.get("type")
    if kind == "integer":
        return pa.int64()
    if kind == "number":
        return pa.float64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "string":
        return TIMESTAMP if node.get("format") == "date-time" else pa.string()
    if kind == "array":
        return pa.list_(arrow_type(node.get("items", {}), f"{where}[]"))
    if kind == "object":
        if "properties" not in node:
            return pa.map_(pa.string(), arrow_type(node.get("additionalProperties", {}), f"{where}{{}}"))
        return pa.struct(_fields(node, where))
    raise UnmappableSchema(f"{where}: no Arrow type for {node!r:.120}")


def _fields(node: dict[str, Any], where: str) -> list[pa.Field]:
    required = set(node.get("required", ()))
    fields = []
    for name, child in node["properties"].items():
        _, may_be_null = _nullable_branch(_merge_all_of(child))
        nullable = may_be_null or name not in required
        fields.append(pa.field(name, arrow_type(child, f"{where}.{name}"), nullable=nullable))
    return fields


@functools.cache
def record_schema(topic: str) -> pa.Schema:
    """The Arrow schema of one topic's records, fields in the order the JSON Schema lists them."""
    resolved = _merge_all_of(contract(topic).schema)
    return pa.schema(_fields(resolved, topic), metadata={"citybrain.topic": topic})
