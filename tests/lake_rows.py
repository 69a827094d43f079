"""Writing a few hand-made rows into a lake table, as a fuse job would commit them.

A test names only the columns it cares about; every other column gets its type's zero (0, "",
false, an empty list, the epoch), so the rows fit the table's schema. The partition of a row is its
``date``/``slot`` when given, else the quarter hour (or day) of its ``window_start`` or of the
table's time column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from lake.delta import full_schema, write_partitions
from lake.tables import TABLES, partition_of

ZEROS = {
    pa.string(): "",
    pa.float64(): 0.0,
    pa.int64(): 0,
    pa.int32(): 0,
    pa.bool_(): False,
    pa.timestamp("us", tz="UTC"): datetime(1970, 1, 1, tzinfo=UTC),
}


def write_rows(lake: Path, name: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """``rows`` committed to table ``name`` (replacing the partitions they fall in); its new version."""
    table = TABLES[name]
    schema = full_schema(table)
    complete = []
    for row in rows:
        full = {f.name: row.get(f.name, _zero(f.type)) for f in schema if f.name not in table.partition_by}
        moment = row.get("window_start") or row[table.time_column]
        values = partition_of(moment)[: len(table.partition_by)]
        for column, value in zip(table.partition_by, values, strict=True):
            full[column] = row.get(column, value)
        complete.append(full)
    partitions = {tuple(r[c] for c in table.partition_by) for r in complete}
    return write_partitions(lake, table, pa.Table.from_pylist(complete, schema), partitions)


def _zero(kind: pa.DataType) -> Any:
    return [] if pa.types.is_list(kind) else ZEROS[kind]
