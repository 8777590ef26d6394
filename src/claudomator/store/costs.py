"""What tasks have cost (see :class:`~claudomator.models.TaskCost`), as the store computes it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from claudomator.models import TaskCost

if TYPE_CHECKING:
    from claudomator.store.base import StatsStore


def task_costs(store: StatsStore, task_ids: Iterable[str]) -> dict[str, TaskCost]:
    """The :class:`TaskCost` of each task in ``task_ids`` (a task without executions gets
    ``TaskCost()``: nothing spent); the SQL store runs one grouped query per 500 tasks."""
    return store.task_costs(task_ids)
