"""Questions and answers, agent health, acceptance checks.

Revision ID: 0002_questions_agents_checks
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_questions_agents_checks"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(
            sa.Column("acceptance_criteria", sa.Text, nullable=False, server_default="")
        )
        batch.add_column(sa.Column("checker_for_task_id", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("check_verdict", sa.String(16), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("check_report", sa.Text, nullable=False, server_default=""))
        batch.create_index("ix_tasks_checker_for_task_id", ["checker_for_task_id"])
    op.create_table(
        "interactions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_interactions_task_id", "interactions", ["task_id"])
    op.create_table(
        "agent_status",
        sa.Column("agent", sa.String(32), primary_key=True),
        sa.Column("limited_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unavailable_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("rate_limit_strikes", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_status")
    op.drop_index("ix_interactions_task_id", "interactions")
    op.drop_table("interactions")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_checker_for_task_id")
        batch.drop_column("check_report")
        batch.drop_column("check_verdict")
        batch.drop_column("checker_for_task_id")
        batch.drop_column("acceptance_criteria")
