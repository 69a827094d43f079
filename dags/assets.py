"""The lake's silver and gold tables as Airflow assets, defined once for producers and consumers.

``citybrain_fuse`` names them as the outlets of its tasks; a DAG that needs fresh gold data (the
optimizer's) schedules on :data:`GOLD` from here, so producer and consumer cannot disagree on a
name. The table list itself comes from :mod:`lake.tables`, which is light to import.

Each asset is named after its table (``gold.link_state_15min``) and has a URI that depends on
nothing in the environment: ``x-citybrain-lake://gold/link_state_15min``. The lake root differs
between a laptop and production, but the table is the same table. Airflow passes ``x-``
schemes through untouched; they are its convention for schemes no provider defines.
"""

from __future__ import annotations

from airflow.sdk import Asset

from lake.tables import GOLD as GOLD_TABLES
from lake.tables import SILVER as SILVER_TABLES
from lake.tables import table

SCHEME = "x-citybrain-lake"


def lake_asset(name: str) -> Asset:
    """The asset of lake table ``name`` (``silver.detector_readings``)."""
    found = table(name)
    return Asset(name=found.name, uri=f"{SCHEME}://{found.layer}/{found.short_name}")


SILVER: tuple[Asset, ...] = tuple(lake_asset(name) for name in SILVER_TABLES)
GOLD: tuple[Asset, ...] = tuple(lake_asset(name) for name in GOLD_TABLES)
