"""Intake keys: one task per external event (GitHub CI failures), whatever the redeliveries.

Revision ID: 0003_intake_keys
Revises: 0002_questions_agents_checks
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_intake_keys"
down_revision = "0002_questions_agents_checks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_intake_keys_task_id", "intake_keys", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_intake_keys_task_id", "intake_keys")
    op.drop_table("intake_keys")
