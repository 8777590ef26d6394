"""What tasks have cost: one grouped query over their executions (see :class:`TaskCost`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa

from claudomator.models import TaskCost
from claudomator.store.store import Store
from claudomator.store.tables import executions

logger = logging.getLogger(__name__)

CHUNK = 500  # task ids per query: far below SQLite's limit on bound parameters


def task_costs(store: Store, task_ids: Iterable[str]) -> dict[str, TaskCost]:
    """The :class:`TaskCost` of each task in ``task_ids`` (a task without executions gets
    ``TaskCost()``: nothing spent). One grouped query per 500 tasks, whatever their executions."""
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
        with store._read() as conn:
            rows = conn.execute(query).all()
        for task_id, total, n_unknown, n_estimated, count, n_ended in rows:
            costs[task_id] = TaskCost(
                total_usd=float(total),
                known=not n_unknown,
                estimated=bool(n_estimated),
                executions=int(count),
                ended=int(n_ended),
            )
    return costs
