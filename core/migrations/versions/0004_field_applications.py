"""The field: what the field service did with each approved signal timing (its idempotency, its
outbox, the timing it replaced and the watcher's verdict), and, on each plan, the outcome of each
of its signals as the applied records said.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_applications",
        sa.Column("plan_id", sa.String(128), primary_key=True),
        sa.Column("tls_id", sa.String(128), primary_key=True),
        sa.Column("adapter", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True)),
        sa.Column("record", sa.JSON),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("publish_error", sa.Text),
        sa.Column("previous", sa.JSON),
        sa.Column("watched_at", sa.DateTime(timezone=True)),
        sa.Column("verdict", sa.JSON),
    )
    op.add_column("plans", sa.Column("signal_outcomes", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("signal_outcomes")
    op.drop_table("field_applications")
