"""Projects managed through the API (next to those in the config file).

Revision ID: 0004_projects
Revises: 0003_intake_keys
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_projects"
down_revision = "0003_intake_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("dir", sa.Text, nullable=False),
        sa.Column("build_command", sa.JSON, nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("review", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("projects")
