"""Where the silver and gold Delta tables live: the lake's own folder, or object storage.

Bronze is the ingest's, written with fsync and rename, so it stays on a local or mounted file
system. The Delta tables need neither: every change is a new file plus a commit in the table's
log, which object storage (S3 and what speaks its protocol: MinIO, Ceph) serves. A city can keep
them there (``CITYBRAIN_LAKE_TABLES_URI=s3a://bucket/prefix``) and every reader finds them through
one :class:`TableLocation`: Spark by its ``s3a://`` URI (hadoop-aws, resolved from Maven Central
with pom.xml's ``s3`` profile), delta-rs by the same place as ``s3://`` with its storage options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CitybrainError

if TYPE_CHECKING:
    from core.settings import Settings
    from lake.tables import Table

#: The scheme of Hadoop's S3 connector, which the Spark jobs write through.
S3A = "s3a://"


class BadTablesUri(CitybrainError, ValueError):
    """A tables location that is neither a path nor an ``s3a://`` URI."""


@dataclass(frozen=True)
class TableLocation:
    """The root of the silver and gold tables: an absolute local path or ``s3a://bucket/prefix``,
    with the options delta-rs needs to reach an object store (endpoint, region, credentials)."""

    root: str
    storage_options: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def remote(self) -> bool:
        return self.root.startswith(S3A)

    def local_path(self, table: Table) -> Path | None:
        """The table's folder when the tables are on a local file system, else None."""
        return None if self.remote else table.path(Path(self.root))

    def spark_uri(self, table: Table) -> str:
        """The table as Spark opens it: ``s3a://…`` or ``file://`` and the path as it is (Spark
        does not decode the ``%3D`` that ``Path.as_uri()`` makes of ``=``)."""
        if self.remote:
            return f"{self.root.rstrip('/')}/{table.layer}/{table.short_name}"
        return f"file://{table.path(Path(self.root).resolve())}"

    def delta_rs_uri(self, table: Table) -> str:
        """The table as delta-rs opens it: a path, or ``s3://`` (its name for the same store)."""
        if self.remote:
            return "s3://" + self.spark_uri(table).removeprefix(S3A)
        return str(self.local_path(table))


def tables_location(settings: Settings) -> TableLocation:
    """Where the settings keep the silver and gold tables: ``lake_tables_uri``, by default the lake
    folder; with the options delta-rs needs to reach an object store."""
    if not settings.lake_tables_uri:
        return TableLocation(str(settings.lake_path))
    root = parse_tables_uri(settings.lake_tables_uri)
    return TableLocation(root, delta_rs_options(settings)) if root.startswith(S3A) else TableLocation(root)


def delta_rs_options(settings: Settings) -> dict[str, str]:
    """The S3 settings as delta-rs (its object_store) names them."""
    options = {"AWS_REGION": settings.s3_region}
    if settings.s3_endpoint:
        options["AWS_ENDPOINT_URL"] = settings.s3_endpoint
        options["AWS_ALLOW_HTTP"] = str(settings.s3_endpoint.startswith("http://")).lower()
    if settings.s3_path_style:
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        options["AWS_ACCESS_KEY_ID"] = settings.s3_access_key_id
        options["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
    return options


def table_location(lake: Path | TableLocation) -> TableLocation:
    """``lake`` as a :class:`TableLocation`: a lake folder holds its tables itself."""
    return lake if isinstance(lake, TableLocation) else TableLocation(str(Path(lake)))


def parse_tables_uri(uri: str) -> str:
    """The root of a ``CITYBRAIN_LAKE_TABLES_URI``: ``s3a://bucket[/prefix]`` or a path
    (``file://`` allowed), or :class:`BadTablesUri` saying what is expected."""
    if uri.startswith(S3A):
        bucket = uri.removeprefix(S3A).split("/", 1)[0]
        if not bucket:
            raise BadTablesUri(f"CITYBRAIN_LAKE_TABLES_URI={uri!r} names no bucket (s3a://BUCKET/prefix)")
        return uri.rstrip("/")
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    if "://" in uri:
        raise BadTablesUri(
            f"CITYBRAIN_LAKE_TABLES_URI={uri!r}: expected s3a://bucket/prefix (object storage through "
            "Hadoop's S3A connector; write s3a:// for an s3:// bucket) or a local path"
        )
    return uri
