"""The approval outbox: an approved plan keeps its ``control.plan.approved.v1`` records until
the broker acknowledged them, as a proposal keeps its own (``published_at``).

``approved_at`` orders the queue (approvals reach the field in the order operators gave them);
``approval_records`` is written in the transaction that approves, so an approval is never
stored without what must be published; ``approval_published_at`` stays empty until the broker
acknowledged them and ``approval_publish_error`` says why the last attempt failed.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("approved_at", "approval_records", "approval_published_at", "approval_publish_error")


def upgrade() -> None:
    op.add_column("plans", sa.Column("approved_at", sa.DateTime(timezone=True)))
    op.add_column("plans", sa.Column("approval_records", sa.JSON))
    op.add_column("plans", sa.Column("approval_published_at", sa.DateTime(timezone=True)))
    op.add_column("plans", sa.Column("approval_publish_error", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
