"""Aggregates of the execution history for ``/metrics``, read from the database at scrape time.

Facts of the store rather than of one process, so every process sharing a database reports the
same numbers.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from claudomator.models import TaskState
from claudomator.store.store import Store
from claudomator.store.tables import executions, task_events


@dataclasses.dataclass(frozen=True)
class ExecutionGroup:
    """Executions of one agent and model ending in one status (RUNNING while they run)."""

    agent: str
    model: str
    status: str
    count: int
    cost_usd: float
    tokens_in: int
    tokens_out: int
    cost_unknown: int = 0  # of them, those whose cost is unknown (unpriced model, lost run)


@dataclasses.dataclass(frozen=True)
class RunTime:
    """How long one ended execution ran."""

    agent: str
    model: str
    seconds: float


def execution_groups(store: Store) -> list[ExecutionGroup]:
    """Count, cost, unknown costs and tokens of every execution, per agent, model and status."""
    c = executions.c
    query = sa.select(
        c.agent,
        c.model,
        c.status,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(c.cost_usd), 0),
        sa.func.coalesce(sa.func.sum(c.tokens_in), 0),
        sa.func.coalesce(sa.func.sum(c.tokens_out), 0),
        sa.func.coalesce(sa.func.sum(sa.case((c.cost_known, 0), else_=1)), 0),
    ).group_by(c.agent, c.model, c.status)
    with store._read() as conn:
        rows = conn.execute(query).all()
    return [
        ExecutionGroup(agent, model, status, int(n), float(cost), int(tin), int(tout), int(unk))
        for agent, model, status, n, cost, tin, tout, unk in rows
    ]


def run_times(store: Store) -> list[RunTime]:
    """Wall-clock time of every execution that has ended."""
    c = executions.c
    query = sa.select(c.agent, c.model, c.start_time, c.end_time).where(c.end_time.is_not(None))
    with store._read() as conn:
        rows = conn.execute(query).all()
    return [
        RunTime(agent, model, max(0.0, (end - start).total_seconds()))
        for agent, model, start, end in rows
    ]


def queue_waits(store: Store) -> list[float]:
    """Seconds every start waited QUEUED before it ran (each claim of a task counts once)."""
    queued = task_events.alias("queued")
    entered = (
        sa.select(sa.func.max(queued.c.at))
        .where(
            queued.c.task_id == task_events.c.task_id,
            queued.c.to_state == TaskState.QUEUED.value,
            queued.c.id < task_events.c.id,
        )
        .scalar_subquery()
    )
    query = sa.select(task_events.c.at, entered.label("entered")).where(
        task_events.c.to_state == TaskState.RUNNING.value
    )
    with store._read() as conn:
        rows = conn.execute(query).all()
    return [max(0.0, (started - since).total_seconds()) for started, since in rows if since]
