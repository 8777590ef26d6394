"""Executions record where their commits went and whether their cost is known.

``delivery`` (JSON, NULL until delivered) holds how, remote, URL and branch, so ``show``, the
task page and notifications can say where the work is after the review box is gone.
``cost_known`` is false when neither the agent nor the price table gave a cost.

Revision ID: 0009_delivery_and_cost_known
Revises: 0008_delivery_intents
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_delivery_and_cost_known"
down_revision = "0008_delivery_intents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite and PostgreSQL both have it); no table rebuild needed
    op.add_column(
        "executions",
        sa.Column("cost_known", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    op.add_column("executions", sa.Column("delivery", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("delivery")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("cost_known")
