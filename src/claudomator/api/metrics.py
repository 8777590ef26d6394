"""``GET /metrics`` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from claudomator.service import Service


def metrics_routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Tasks by state, executions and their cost by status, agent health."""
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
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return router
