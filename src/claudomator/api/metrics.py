"""``GET /metrics`` in the Prometheus text format."""

from __future__ import annotations

import math

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from claudomator.service import Service

QUEUE_WAIT_WINDOW = 1000


def _quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank); NaN without values."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def metrics_routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Tasks by state, executions and their cost by status, agent health, queue wait."""
        lines = [
            "# HELP claudomator_tasks Tasks by state.",
            "# TYPE claudomator_tasks gauge",
        ]
        for state, count in sorted(service.counts().items()):
            lines.append(f'claudomator_tasks{{state="{state}"}} {count}')
        totals = service.execution_totals()
        lines += [
            "# HELP claudomator_executions_total Executions by final status.",
            "# TYPE claudomator_executions_total counter",
        ]
        for status, (count, _) in sorted(totals.items()):
            lines.append(f'claudomator_executions_total{{status="{status}"}} {count}')
        lines += [
            "# HELP claudomator_cost_usd_total Cost of executions (reported or estimated).",
            "# TYPE claudomator_cost_usd_total counter",
        ]
        for status, (_, cost) in sorted(totals.items()):
            lines.append(f'claudomator_cost_usd_total{{status="{status}"}} {cost:.6f}')
        lines += [
            "# HELP claudomator_agent_consecutive_failures Failures in a row per agent.",
            "# TYPE claudomator_agent_consecutive_failures gauge",
        ]
        for health in service.agent_health():
            lines.append(
                f'claudomator_agent_consecutive_failures{{agent="{health.agent}"}} '
                f"{health.consecutive_failures}"
            )
        waits = sorted(service.queue_waits(QUEUE_WAIT_WINDOW))
        lines += [
            f"# HELP claudomator_queue_wait_seconds Time queued before starting "
            f"(the last {QUEUE_WAIT_WINDOW} starts).",
            "# TYPE claudomator_queue_wait_seconds summary",
        ]
        for quantile in (0.5, 0.9, 0.99):
            value = _quantile(waits, quantile)
            shown = "NaN" if math.isnan(value) else f"{value:.3f}"
            lines.append(f'claudomator_queue_wait_seconds{{quantile="{quantile}"}} {shown}')
        lines.append(f"claudomator_queue_wait_seconds_sum {sum(waits):.3f}")
        lines.append(f"claudomator_queue_wait_seconds_count {len(waits)}")
        backlog = service.store.backlog.state()
        lines += [
            "# HELP claudomator_pending_outcomes Writes refused by the database, being retried.",
            "# TYPE claudomator_pending_outcomes gauge",
            f"claudomator_pending_outcomes {backlog.pending}",
            "# HELP claudomator_store_write_refusals_total Writes the database refused.",
            "# TYPE claudomator_store_write_refusals_total counter",
            f"claudomator_store_write_refusals_total {backlog.failures_total}",
        ]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return router
