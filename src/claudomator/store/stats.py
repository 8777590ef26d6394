"""Aggregates of the execution history for ``/metrics``, read from the store at scrape time.

Facts of the store rather than of one process, so every process sharing a database reports the
same numbers. Each backend computes them (the SQL one in one grouped query each).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claudomator.store.base import StatsStore


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


def execution_groups(store: StatsStore) -> list[ExecutionGroup]:
    """Count, cost, unknown costs and tokens of every execution, per agent, model and status."""
    return store.execution_groups()


def run_times(store: StatsStore) -> list[RunTime]:
    """Wall-clock time of every execution that has ended."""
    return store.run_times()


def queue_waits(store: StatsStore) -> list[float]:
    """Seconds every start waited QUEUED before it ran (each claim of a task counts once)."""
    return store.queue_waits()
