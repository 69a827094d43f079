"""The lake's Delta tables without a JVM: what the console, the optimizer's demand and DuckDB read.

Silver and gold are Delta tables (written by the Spark jobs, :mod:`lake.commit`). A partition
folder may hold files that are no longer, or never were, part of the table: the files an
interval's rewrite replaced (kept for time travel until a VACUUM) and the torn files of a job
killed mid-write. Only the table's log says which files are live, so every reader outside Spark
goes through delta-rs (``deltalake``) here, never through a folder listing.

Every function takes the lake's folder or a :class:`~lake.location.TableLocation` (tables on object
storage). Every read can name a table version (time travel): a plan records the versions of the gold tables
its demand came from, so the exact rows behind a recommendation can be read again later.
:func:`write_partitions` is the JVM-free counterpart of the Spark jobs' write, for synthetic
tables (benchmarks, tests) that must look to every reader as the jobs' output does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CitybrainError
from lake.location import TableLocation, table_location
from lake.tables import TABLES, Table

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

Partition = tuple[str, ...]
#: A lake folder (its tables under it) or where the tables are (:mod:`lake.location`).
Lake = Path | TableLocation


class NoSuchVersion(CitybrainError):
    """A table version that the table's log does not have (or no longer has)."""


def delta_table(lake: Lake, table: Table, version: int | None = None) -> DeltaTable | None:
    """The table's Delta log at ``version`` (default: the newest); None when no job wrote it yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    where = table_location(lake)
    uri, options = where.delta_rs_uri(table), dict(where.storage_options)
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        return None
    try:
        return DeltaTable(uri, version=version, storage_options=options)
    except DeltaError as error:
        raise NoSuchVersion(f"{table.name} has no version {version}: {error}") from error


def table_version(lake: Lake, table: Table) -> int | None:
    """The table's newest version, None when no job wrote it yet."""
    found = delta_table(lake, table)
    return None if found is None else found.version()


def table_versions(lake: Lake, names: Iterable[str]) -> dict[str, int | None]:
    """The newest version of each table ``names``, for a record of what a computation read."""
    return {name: table_version(lake, TABLES[name]) for name in names}


def filled_partitions(lake: Lake, table: Table, version: int | None = None) -> set[Partition]:
    """The partitions (values in ``table.partition_by`` order) that hold at least one live file."""
    found = delta_table(lake, table, version)
    if found is None:
        return set()
    return {tuple(p[c] for c in table.partition_by) for p in found.partitions()}


def filled_slots(lake: Lake, names: Iterable[str]) -> set[datetime]:
    """The quarter hours in which any of the 15-minute tables ``names`` has rows (a job leaves a
    quarter hour without rows with no live file), read from the tables' logs, not their data."""
    names = list(names)
    daily = [name for name in names if "slot" not in TABLES[name].partition_by]
    if daily:
        raise ValueError(f"{', '.join(daily)}: a daily table has no quarter hours (see filled_days)")
    return {
        datetime.strptime(day + slot, "%Y-%m-%d%H%M").replace(tzinfo=UTC)
        for name in names
        for day, slot in filled_partitions(lake, TABLES[name])
    }


def filled_days(lake: Lake, name: str) -> list[date]:
    """The days, sorted, for which the daily table ``name`` has rows."""
    return sorted(date.fromisoformat(day) for (day,) in filled_partitions(lake, TABLES[name]))


def partition_filter(table: Table, partitions: Iterable[Partition]) -> list[list[tuple[str, str, object]]]:
    """A delta-rs filter (disjunctive normal form) that keeps exactly ``partitions``."""
    by_date: dict[str, list[str]] = {}
    for values in partitions:
        by_date.setdefault(values[0], []).extend(values[1:])
    if len(table.partition_by) == 1:
        return [[("date", "in", sorted(by_date))]] if by_date else []
    return [[("date", "=", day), ("slot", "in", sorted(slots))] for day, slots in sorted(by_date.items())]


def read_partitions(
    lake: Lake,
    table: Table,
    partitions: Iterable[Partition] | None = None,
    *,
    columns: Sequence[str] | None = None,
    version: int | None = None,
) -> pa.Table:
    """The rows of ``partitions`` (all of them when None) at ``version``, partition columns
    included unless ``columns`` leaves them out; an empty table of the right schema when the table
    or the partitions have none.

    delta-rs's own engine (``scan``) prunes the log's file list by the partition predicate before
    it opens a file: a pyarrow dataset over the table opens every file's metadata first, which
    grows with the table (a month of quarter hours is thousands of files)."""
    import pyarrow as pa

    wanted = None if partitions is None else list(partitions)
    found = delta_table(lake, table, version)
    if found is None or wanted == []:
        return empty(table, columns)
    predicate = None if wanted is None else sql_predicate(table, wanted)
    scanned = found.scan(columns=None if columns is None else list(columns), predicate=predicate)
    rows = pa.RecordBatchReader.from_stream(scanned).read_all()
    # The engine hands strings over as string views, which many pyarrow kernels do not take yet.
    return rows.cast(empty(table, rows.column_names).schema)


def empty(table: Table, columns: Sequence[str] | None = None) -> pa.Table:
    """No rows, in the schema a read of ``table`` gives (its columns, then its partition columns)."""
    import pyarrow as pa

    schema = full_schema(table)
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    return schema.empty_table()


def full_schema(table: Table) -> pa.Schema:
    """The table's columns and then its partition columns (strings), as the jobs write them."""
    import pyarrow as pa

    schema = table.arrow_schema()
    for column in table.partition_by:
        schema = schema.append(pa.field(column, pa.string(), nullable=False))
    return schema


def write_partitions(lake: Lake, table: Table, rows: pa.Table, partitions: Iterable[Partition]) -> int:
    """Replace ``partitions`` of ``table`` with ``rows`` (the table's columns and partition
    columns) in one commit, as a lake job does; returns the new version. Partitions named but
    without rows end up empty."""
    from deltalake import write_deltalake

    replaced = sorted(set(partitions))
    where = table_location(lake)
    uri, options = where.delta_rs_uri(table), dict(where.storage_options)
    rows = rows.select(full_schema(table).names).cast(full_schema(table))
    if delta_table(lake, table) is None:
        if (folder := where.local_path(table)) is not None:
            folder.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            uri, rows, partition_by=list(table.partition_by), mode="overwrite", storage_options=options
        )
    else:
        predicate = sql_predicate(table, replaced)
        write_deltalake(uri, rows, mode="overwrite", predicate=predicate, storage_options=options)
    return table_version(lake, table)


def sql_predicate(table: Table, partitions: Iterable[Partition]) -> str:
    """A SQL predicate that is true for the rows of ``partitions`` and no other, for Delta's
    ``replaceWhere`` (Spark) and delta-rs; ``false`` for no partitions."""
    terms = []
    for conjunction in partition_filter(table, partitions):
        parts = []
        for column, op, value in conjunction:
            values = value if op == "in" else [value]
            quoted = ", ".join(f"'{v}'" for v in values)
            parts.append(f"{column} IN ({quoted})")
        terms.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(terms) or "false"
