"""Projects and tasks set their agents' confinement; executions record the one they got.

``projects`` gain ``launcher`` and ``network`` ("" each: the operator's ``[isolation]``) and the
JSON lists ``read_only_paths`` and ``allowed_endpoints`` (added to the operator's); ``tasks``
gain ``isolation`` (JSON: launcher, network; "" each: the project's); ``executions`` gain
``confinement``, what the agent really got ("bubblewrap, network model-only"; "" for older
rows).

Revision ID: 0010_confinement_overrides
Revises: 0009_delivery_and_cost_known
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_confinement_overrides"
down_revision = "0009_delivery_and_cost_known"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN with defaults (SQLite and PostgreSQL both have it): no table rebuild
    op.add_column(
        "projects", sa.Column("launcher", sa.String(32), nullable=False, server_default="")
    )
    op.add_column(
        "projects", sa.Column("network", sa.String(32), nullable=False, server_default="")
    )
    op.add_column(
        "projects", sa.Column("read_only_paths", sa.JSON, nullable=False, server_default="[]")
    )
    op.add_column(
        "projects", sa.Column("allowed_endpoints", sa.JSON, nullable=False, server_default="[]")
    )
    op.add_column("tasks", sa.Column("isolation", sa.JSON, nullable=False, server_default="{}"))
    op.add_column(
        "executions", sa.Column("confinement", sa.Text, nullable=False, server_default="")
    )


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("confinement")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("isolation")
    with op.batch_alter_table("projects") as batch:
        for column in ("allowed_endpoints", "read_only_paths", "network", "launcher"):
            batch.drop_column(column)
