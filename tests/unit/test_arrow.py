"""Arrow schemas derived from the JSON Schemas: the lake's columns follow the contracts."""

from __future__ import annotations

import pyarrow as pa
import pytest

from schemas import TOPICS
from schemas.arrow import TIMESTAMP, UnmappableSchema, arrow_type, record_schema

UTC_MICROS = pa.timestamp("us", tz="UTC")


def test_the_timestamp_type_is_microseconds_in_utc():
    assert TIMESTAMP == UTC_MICROS


def test_the_detector_schema_is_exactly_the_contract_in_order():
    expected = pa.schema(
        [
            pa.field("schema_version", pa.int64(), nullable=False),
            pa.field("ts", UTC_MICROS, nullable=False),
            pa.field("detector_id", pa.string(), nullable=False),
            pa.field("intersection_id", pa.string(), nullable=False),
            pa.field("lane_id", pa.string(), nullable=False),
            pa.field("interval_s", pa.int64(), nullable=False),
            pa.field("count", pa.int64(), nullable=False),
            pa.field("occupancy", pa.float64(), nullable=False),
            pa.field("speed_mps", pa.float64(), nullable=True),
            pa.field("source", pa.string(), nullable=False),
            pa.field("quality_flags", pa.list_(pa.string()), nullable=False),
        ],
        metadata={"citybrain.topic": "traffic.detector.v1"},
    )

    schema = record_schema("traffic.detector.v1")

    assert schema.equals(expected, check_metadata=True)
    assert schema.names == expected.names  # the order, spelled out when it differs


@pytest.mark.parametrize("topic", TOPICS)
def test_every_schema_names_its_topic_in_its_metadata(topic):
    assert record_schema(topic).metadata == {b"citybrain.topic": topic.encode()}


@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_maps_to_arrow(topic):
    schema = record_schema(topic)

    assert schema.names[:2] == ["schema_version", "ts"]
    assert schema.field("ts").type == UTC_MICROS
    assert not schema.field("ts").nullable


def test_the_incident_end_is_a_nullable_timestamp_and_its_start_is_not():
    schema = record_schema("public.incident.v1")

    assert schema.field("end").type == UTC_MICROS
    assert schema.field("end").nullable
    assert schema.field("start").type == UTC_MICROS
    assert not schema.field("start").nullable
    assert schema.field("edge_id").type == pa.string()
    assert schema.field("edge_id").nullable
    assert schema.field("lane_ids").type == pa.list_(pa.string())


def test_nullable_numbers_of_probes_and_weather_are_nullable_floats():
    assert record_schema("operator.probe.v1").field("heading_deg").nullable
    assert not record_schema("operator.probe.v1").field("speed_mps").nullable
    assert record_schema("public.weather.v1").field("visibility_m").nullable
    assert record_schema("public.weather.v1").field("visibility_m").type == pa.float64()


PHASE = pa.struct(
    [
        pa.field("state", pa.string(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("min_s", pa.float64(), nullable=False),
        pa.field("max_s", pa.float64(), nullable=False),
        pa.field("name", pa.string(), nullable=True),
    ]
)
KPI_SET = pa.map_(
    pa.string(),
    pa.struct(
        [
            pa.field("mean", pa.float64(), nullable=False),
            pa.field("std", pa.float64(), nullable=False),
            pa.field("ci95", pa.list_(pa.float64()), nullable=False),
        ]
    ),
)
EVALUATION = pa.struct(
    [
        pa.field("scenario", pa.string(), nullable=False),
        pa.field("seeds", pa.list_(pa.int64()), nullable=False),
        pa.field("baseline_method", pa.string(), nullable=True),
        pa.field("baseline", KPI_SET, nullable=False),
        pa.field("plan", KPI_SET, nullable=False),
        pa.field("lake_versions", pa.map_(pa.string(), pa.int64()), nullable=True),
        pa.field("incident_id", pa.string(), nullable=True),
    ]
)


@pytest.mark.parametrize("topic", ["control.plan.proposed.v1", "control.plan.applied.v1"])
def test_plan_phases_are_a_list_of_structs_and_kpis_a_map(topic):
    schema = record_schema(topic)

    assert schema.field("phases").type == pa.list_(PHASE)
    assert not schema.field("phases").nullable
    assert schema.field("evaluation").type == EVALUATION
    assert schema.names == [
        "schema_version",
        "ts",
        "plan_id",
        "tls_id",
        "cycle_s",
        "offset_s",
        "phases",
        "valid_from",
        "valid_to",
        "method",
        "evaluation",
        "approval",
        "application",
    ]


@pytest.mark.parametrize(
    ("topic", "approval_nullable", "application_nullable"),
    [
        ("control.plan.proposed.v1", True, True),
        ("control.plan.approved.v1", False, True),
        ("control.plan.applied.v1", False, False),
    ],
)
def test_what_a_plan_topic_requires_is_not_nullable(topic, approval_nullable, application_nullable):
    schema = record_schema(topic)

    assert schema.field("approval").nullable is approval_nullable
    assert schema.field("application").nullable is application_nullable
    assert schema.field("approval").type == pa.struct(
        [
            pa.field("approved_by", pa.string(), nullable=False),
            pa.field("approved_at", UTC_MICROS, nullable=False),
            pa.field("comment", pa.string(), nullable=True),
        ]
    )


# --------------------------------------------------------------------------- arrow_type


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "integer"}, pa.int64()),
        ({"type": "integer", "minimum": 0, "maximum": 5}, pa.int64()),
        ({"type": "number"}, pa.float64()),
        ({"type": "boolean"}, pa.bool_()),
        ({"type": "string"}, pa.string()),
        ({"type": "string", "maxLength": 3}, pa.string()),
        ({"type": "string", "format": "date-time"}, UTC_MICROS),
        ({"type": "string", "format": "date"}, pa.string()),
        ({"enum": ["a", "b"]}, pa.string()),
        ({"const": 1}, pa.int64()),
        ({"const": "v1"}, pa.string()),
        ({"anyOf": [{"type": "number"}, {"type": "null"}]}, pa.float64()),
        ({"anyOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]}, UTC_MICROS),
        ({"type": "array", "items": {"type": "integer"}}, pa.list_(pa.int64())),
        ({"type": "array", "items": {"enum": ["x"]}}, pa.list_(pa.string())),
        ({"type": "object", "additionalProperties": {"type": "number"}}, pa.map_(pa.string(), pa.float64())),
        (
            {
                "type": "object",
                "required": ["a"],
                "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
            },
            pa.struct([pa.field("a", pa.int64(), nullable=False), pa.field("b", pa.string())]),
        ),
        (
            {"allOf": [{"type": "object", "properties": {"a": {"type": "boolean"}}}, {"required": ["a"]}]},
            pa.struct([pa.field("a", pa.bool_(), nullable=False)]),
        ),
    ],
    ids=repr,
)
def test_arrow_type_of_a_json_schema_node(node, expected):
    assert arrow_type(node) == expected


def test_a_required_property_that_may_be_null_stays_nullable():
    node = {
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
    }

    assert arrow_type(node) == pa.struct([pa.field("a", pa.int64(), nullable=True)])


@pytest.mark.parametrize(
    "node",
    [
        {},
        {"type": "object"},  # a map of anything
        {"type": "array"},  # a list of anything
        {"type": ["string", "null"]},
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"anyOf": [{"type": "null"}]},
        {"enum": [1, 2]},
        {"enum": ["a", 1]},
        {"type": "null"},
    ],
    ids=repr,
)
def test_a_node_with_no_single_arrow_type_is_unmappable(node):
    with pytest.raises(UnmappableSchema):
        arrow_type(node)


def test_an_unmappable_node_is_named_by_where_it_is():
    node = {"type": "object", "properties": {"ok": {"type": "integer"}, "bad": {"enum": [1, "x"]}}}

    with pytest.raises(UnmappableSchema, match=r"\$\.bad"):
        arrow_type(node)


def test_unmappable_schema_is_a_type_error():
    assert issubclass(UnmappableSchema, TypeError)


@pytest.mark.parametrize(
    ("node", "expected"), [({"const": True}, pa.bool_()), ({"const": 1.5}, pa.float64())]
)
def test_a_const_takes_the_arrow_type_of_its_value(node, expected):
    assert arrow_type(node) == expected
