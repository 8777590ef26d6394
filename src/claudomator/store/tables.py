"""Table definitions (SQLAlchemy Core). Portable types only: SQLite now, PostgreSQL later."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend.

    SQLite keeps no offset, so values are converted to UTC on the way in and labelled UTC on
    the way out; PostgreSQL's ``timestamptz`` round-trips the same way.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("agent", sa.JSON, nullable=False),
    sa.Column("timeout", sa.Float, nullable=True),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("priority_rank", sa.Integer, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("depends_on", sa.JSON, nullable=False),
    sa.Column("parent_task_id", sa.String(64), nullable=True, index=True),
    sa.Column("story_id", sa.String(64), nullable=True, index=True),
    sa.Column("state", sa.String(32), nullable=False, index=True),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sa.Column("question", sa.Text, nullable=False, default=""),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("acceptance_criteria", sa.Text, nullable=False, default=""),
    sa.Column("checker_for_task_id", sa.String(64), nullable=True, index=True),
    sa.Column("check_verdict", sa.String(16), nullable=False, default=""),
    sa.Column("check_report", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # ``agent.project_dir`` copied out of the JSON, for an indexed filter ("" without a project)
    sa.Column("project_dir", sa.Text, nullable=False, server_default="", index=True),
    # models.TaskIsolation (launcher, network; "" each: the project's)
    sa.Column("isolation", sa.JSON, nullable=False, server_default="{}"),
)

# One row per tag of a task, for an indexed filter (``tasks.tags`` keeps the order).
task_tags = sa.Table(
    "task_tags",
    metadata,
    sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id"), primary_key=True),
    sa.Column("tag", sa.String(200), primary_key=True, index=True),
)

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id"), nullable=False, index=True),
    sa.Column("agent", sa.String(32), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("start_time", UTCDateTime(), nullable=False),
    sa.Column("end_time", UTCDateTime(), nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("stdout_path", sa.Text, nullable=False),
    sa.Column("stderr_path", sa.Text, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.Column("cost_estimated", sa.Boolean, nullable=False),
    sa.Column("cost_known", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("tokens_in", sa.BigInteger, nullable=False),
    sa.Column("tokens_out", sa.BigInteger, nullable=False),
    sa.Column("error_msg", sa.Text, nullable=False),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("sandbox_dir", sa.Text, nullable=False),
    sa.Column("commits", sa.JSON, nullable=False),
    sa.Column("changestats", sa.JSON, nullable=False),
    sa.Column("delivery", sa.JSON, nullable=True),  # models.DeliveryRecord; NULL: not delivered
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("worker_id", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=True),
    # what confinement the agent really got (isolation.policy.describe); "" before it started
    sa.Column("confinement", sa.Text, nullable=False, server_default=""),
)

task_events = sa.Table(
    "task_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("from_state", sa.String(32), nullable=True),
    sa.Column("to_state", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id"), nullable=False, index=True),
    sa.Column("execution_id", sa.String(64), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("asked_at", UTCDateTime(), nullable=False),
    sa.Column("answered_at", UTCDateTime(), nullable=True),
)

agent_status = sa.Table(
    "agent_status",
    metadata,
    sa.Column("agent", sa.String(32), primary_key=True),
    sa.Column("limited_until", UTCDateTime(), nullable=True),
    sa.Column("unavailable_until", UTCDateTime(), nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("rate_limit_strikes", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# A key per external event that may create a task (e.g. a GitHub CI failure), so a redelivered
# or concurrent duplicate of the event never creates a second task. No foreign key: the key is
# reserved just before its task is stored, and deleting a task leaves its key behind.
intake_keys = sa.Table(
    "intake_keys",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("task_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("dir", sa.Text, nullable=False),
    sa.Column("build_command", sa.JSON, nullable=False),
    sa.Column("delivery", sa.String(16), nullable=False),
    sa.Column("review", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # how its agents are confined ("" each: the operator's [isolation]); lists as JSON
    sa.Column("launcher", sa.String(32), nullable=False, server_default=""),
    sa.Column("network", sa.String(32), nullable=False, server_default=""),
    sa.Column("read_only_paths", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("allowed_endpoints", sa.JSON, nullable=False, server_default="[]"),
)

stories = sa.Table(
    "stories",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Browsers that asked for Web Push notifications (their PushSubscription).
push_subscriptions = sa.Table(
    "push_subscriptions",
    metadata,
    sa.Column("endpoint", sa.String(2048), primary_key=True),
    sa.Column("p256dh", sa.String(255), nullable=False),
    sa.Column("auth", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# What an execution was about to deliver, written before its push: a restart after a kill -9
# during the push finds the work on the target and finishes the record instead of re-running.
delivery_intents = sa.Table(
    "delivery_intents",
    metadata,
    sa.Column("execution_id", sa.String(64), sa.ForeignKey("executions.id"), primary_key=True),
    sa.Column("task_id", sa.String(64), nullable=False),
    sa.Column("project_dir", sa.Text, nullable=False),
    sa.Column("sandbox_dir", sa.Text, nullable=False),
    sa.Column("branch", sa.Text, nullable=False),
    sa.Column("base_commit", sa.String(64), nullable=False),
    sa.Column("head", sa.String(64), nullable=False),  # "" until the commits are collected
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
