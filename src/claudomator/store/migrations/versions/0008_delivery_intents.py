"""Delivery intents: what an execution was about to push, recorded before the push, so a
restart after a kill -9 during the push finishes the record instead of re-running the agent.

Revision ID: 0008_delivery_intents
Revises: 0007_tasks_created_at
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_delivery_intents"
down_revision = "0007_tasks_created_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_intents",
        sa.Column("execution_id", sa.String(64), sa.ForeignKey("executions.id"), primary_key=True),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("project_dir", sa.Text, nullable=False),
        sa.Column("sandbox_dir", sa.Text, nullable=False),
        sa.Column("branch", sa.Text, nullable=False),
        sa.Column("base_commit", sa.String(64), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delivery_intents")
