"""Indexed task filters (project directory, tags) and Web Push subscriptions.

``tasks.project_dir`` copies ``agent.project_dir`` out of the JSON column and ``task_tags`` holds
one row per tag, so listing by project or tag uses an index on every backend. Existing rows are
back-filled.

Revision ID: 0006_filters_push
Revises: 0005_stories
Create Date: 2026-11-24
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_filters_push"
down_revision = "0005_stories"
branch_labels = None
depends_on = None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("project_dir", sa.Text, nullable=False, server_default=""))
        batch.create_index("ix_tasks_project_dir", ["project_dir"])
    task_tags = op.create_table(
        "task_tags",
        sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("tag", sa.String(200), primary_key=True),
    )
    op.create_index("ix_task_tags_tag", "task_tags", ["tag"])
    op.create_table(
        "push_subscriptions",
        sa.Column("endpoint", sa.String(2048), primary_key=True),
        sa.Column("p256dh", sa.String(255), nullable=False),
        sa.Column("auth", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, agent, tags FROM tasks")).mappings().all()
    tasks = sa.table("tasks", sa.column("id"), sa.column("project_dir"))
    for row in rows:
        project_dir = (_json(row["agent"]) or {}).get("project_dir") or ""
        if project_dir:
            conn.execute(
                tasks.update().where(tasks.c.id == row["id"]).values(project_dir=project_dir)
            )
        tags = sorted(set(_json(row["tags"]) or []))
        if tags:
            conn.execute(task_tags.insert(), [{"task_id": row["id"], "tag": t} for t in tags])


def downgrade() -> None:
    op.drop_table("push_subscriptions")
    op.drop_index("ix_task_tags_tag", "task_tags")
    op.drop_table("task_tags")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_project_dir")
        batch.drop_column("project_dir")
