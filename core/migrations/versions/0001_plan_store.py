"""The plan store's tables as ``optimizer.proposing.store`` created them before migrations.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("plan_id", sa.String(128), primary_key=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("scenario", sa.String(256)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("records", sa.JSON, nullable=False),
        sa.Column("evaluation", sa.JSON, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("publish_error", sa.Text),
    )
    op.create_index("ix_plans_status_created", "plans", ["status", "created_at"])
    op.create_table(
        "plan_events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.String(128), sa.ForeignKey("plans.plan_id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_plan_events_plan_id", "plan_events", ["plan_id"])


def downgrade() -> None:
    op.drop_table("plan_events")
    op.drop_table("plans")
