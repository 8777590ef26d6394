"""Aggregates over many rows, in one grouped query each: task costs and ``/metrics`` numbers."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa

from claudomator.models import TaskCost, TaskState
from claudomator.store.sql import rows as conv
from claudomator.store.sql.base import SqlBase
from claudomator.store.stats import ExecutionGroup, RunTime
from claudomator.store.tables import executions, task_events

logger = logging.getLogger(__name__)

CHUNK = 500  # task ids per query: far below SQLite's limit on bound parameters


class StatsQueries(SqlBase):
    """The :class:`~claudomator.store.base.StatsStore` part of the SQL store."""

    def task_costs(self, task_ids: Iterable[str]) -> dict[str, TaskCost]:
        """The :class:`TaskCost` of each task in ``task_ids`` (a task without executions gets
        ``TaskCost()``: nothing spent). One grouped query per 500 tasks, whatever their
        executions."""
        ids = list(dict.fromkeys(task_ids))
        costs = {task_id: TaskCost() for task_id in ids}
        c = executions.c
        unknown = sa.func.sum(sa.case((c.cost_known, 0), else_=1))
        estimated = sa.func.sum(sa.case((c.cost_estimated, 1), else_=0))
        ended = sa.func.count(c.end_time)
        for start in range(0, len(ids), CHUNK):
            query = (
                sa.select(
                    c.task_id,
                    sa.func.coalesce(sa.func.sum(c.cost_usd), 0),
                    unknown,
                    estimated,
                    sa.func.count(),
                    ended,
                )
                .where(c.task_id.in_(ids[start : start + CHUNK]))
                .group_by(c.task_id)
            )
            with self._read() as conn:
                rows = conn.execute(query).all()
            costs.update(conv.task_cost_from(row) for row in rows)
        return costs

    def execution_groups(self) -> list[ExecutionGroup]:
        """Count, cost, unknown costs and tokens of every execution, per agent, model, status."""
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
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            ExecutionGroup(agent, model, status, int(n), float(cost), int(tin), int(tout), int(unk))
            for agent, model, status, n, cost, tin, tout, unk in rows
        ]

    def run_times(self) -> list[RunTime]:
        """Wall-clock time of every execution that has ended."""
        c = executions.c
        query = sa.select(c.agent, c.model, c.start_time, c.end_time).where(c.end_time.is_not(None))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            RunTime(agent, model, max(0.0, (end - start).total_seconds()))
            for agent, model, start, end in rows
        ]

    def queue_waits(self) -> list[float]:
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
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [max(0.0, (started - since).total_seconds()) for started, since in rows if since]
