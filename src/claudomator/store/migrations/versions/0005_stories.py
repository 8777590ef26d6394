"""Stories: named groups of tasks toward one goal.

Revision ID: 0005_stories
Revises: 0004_projects
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_stories"
down_revision = "0004_projects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("story_id", sa.String(64), nullable=True))
        batch.create_index("ix_tasks_story_id", ["story_id"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_story_id")
        batch.drop_column("story_id")
    op.drop_table("stories")
