"""``GET /metrics`` in the Prometheus text format, written by ``prometheus_client``.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (built by
:func:`metrics_registry`, never the library's global one). What is a fact of the database —
tasks by state, executions, their cost, tokens, run and queue times, agent health — is read
from the store at every scrape by :class:`StoreCollector`, so several processes sharing one
database report the same values. The write backlog is this process's own; process metrics
(CPU, memory, open files) come from the library's ``ProcessCollector``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from claudomator.service import Service
from claudomator.store import stats

QUEUE_WAIT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0)
RUN_TIME_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)


def _buckets(values: Iterable[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs of ``values`` over ``bounds``, ending with +Inf."""
    counts = [0] * (len(bounds) + 1)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1
    pairs: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        running += count
        pairs.append((bound, running))
    return pairs


class StoreCollector(Collector):
    """Metrics computed from the database (and the store's write backlog) at scrape time."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        store = self.service.store
        tasks = GaugeMetricFamily("claudomator_tasks", "Tasks by state.", labels=["state"])
        for state, count in sorted(self.service.counts().items()):
            tasks.add_metric([state], count)
        yield tasks
        yield from self._executions(stats.execution_groups(store))
        yield from self._run_times(stats.run_times(store))
        waits = stats.queue_waits(store)
        queue = HistogramMetricFamily(
            "claudomator_queue_wait_seconds", "Time a task waited QUEUED before it started."
        )
        queue.add_metric([], _buckets(waits, QUEUE_WAIT_BUCKETS), sum_value=sum(waits))
        yield queue
        failures = GaugeMetricFamily(
            "claudomator_agent_consecutive_failures",
            "Failures in a row per agent.",
            labels=["agent"],
        )
        for health in self.service.agent_health():
            failures.add_metric([health.agent], health.consecutive_failures)
        yield failures
        backlog = store.backlog.state()
        yield GaugeMetricFamily(
            "claudomator_pending_outcomes",
            "Writes refused by the database, being retried (this process).",
            value=backlog.pending,
        )
        yield CounterMetricFamily(
            "claudomator_store_write_refusals",
            "Writes the database refused (this process).",
            value=backlog.failures_total,
        )

    @staticmethod
    def _executions(groups: list[stats.ExecutionGroup]) -> Iterator[Metric]:
        count = CounterMetricFamily(
            "claudomator_executions",
            "Executions per agent, model and status (RUNNING while they run).",
            labels=["agent", "model", "status"],
        )
        cost: dict[tuple[str, str], float] = defaultdict(float)
        unknown: dict[tuple[str, str], int] = defaultdict(int)
        tokens: dict[tuple[str, str, str], int] = defaultdict(int)
        for group in groups:
            count.add_metric([group.agent, group.model, group.status], group.count)
            cost[group.agent, group.model] += group.cost_usd
            unknown[group.agent, group.model] += group.cost_unknown
            tokens[group.agent, group.model, "in"] += group.tokens_in
            tokens[group.agent, group.model, "out"] += group.tokens_out
        yield count
        cost_family = CounterMetricFamily(
            "claudomator_cost_usd",
            "Cost of executions in USD (reported or estimated; those of unknown cost add 0).",
            labels=["agent", "model"],
        )
        for key, value in sorted(cost.items()):
            cost_family.add_metric(list(key), value)
        yield cost_family
        unknown_family = CounterMetricFamily(
            "claudomator_executions_cost_unknown",
            "Executions whose cost is unknown (no cost reported and no price for the model, "
            "or lost with their orchestrator): claudomator_cost_usd leaves them out.",
            labels=["agent", "model"],
        )
        for key, n in sorted(unknown.items()):
            unknown_family.add_metric(list(key), n)
        yield unknown_family
        token_family = CounterMetricFamily(
            "claudomator_tokens",
            "Model tokens of executions, in (prompt) and out (completion).",
            labels=["agent", "model", "direction"],
        )
        for token_key, value in sorted(tokens.items()):
            token_family.add_metric(list(token_key), value)
        yield token_family

    @staticmethod
    def _run_times(runs: list[stats.RunTime]) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "claudomator_run_seconds",
            "Wall-clock time of ended executions per agent and model.",
            labels=["agent", "model"],
        )
        grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
        for run in runs:
            grouped[run.agent, run.model].append(run.seconds)
        for (agent, model), seconds in sorted(grouped.items()):
            family.add_metric(
                [agent, model], _buckets(seconds, RUN_TIME_BUCKETS), sum_value=sum(seconds)
            )
        yield family


def metrics_registry(service: Service) -> CollectorRegistry:
    """A registry of its own for one app: the store's metrics and this process's."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(service))
    ProcessCollector(registry=registry)
    return registry


def metrics_routes(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", response_class=Response)
    def metrics() -> Response:
        """Tasks by state; executions, cost, tokens and run time per agent and model; queue
        wait; agent health; the write backlog; process metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
