"""The line per task start and end that serve shows (issue 11 item 21)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from claudomator import tasklog
from claudomator.models import AgentConfig, Execution, Task, TaskState, utcnow


def _task() -> Task:
    return Task(id="t1", name="fix\nthe\x1b[31m login", agent=AgentConfig(instructions="x"))


def _ended(**fields: object) -> Execution:
    start = utcnow() - timedelta(seconds=72)
    return Execution(
        id="e1",
        task_id="t1",
        agent="claude",
        start_time=start,
        end_time=start + timedelta(seconds=72),
        **fields,
    )


def test_started_names_the_task_agent_model_and_execution(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="claudomator.tasklog")
    tasklog.started(_task(), Execution(id="e1", task_id="t1", agent="gemini", model="flash"))
    [record] = caplog.records
    assert (
        record.getMessage()
        == "task t1 fix the [31m login started: agent gemini (flash), execution e1"
    )
    assert record.action == "task_started"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fields", "delivered", "line"),
    [
        (
            {"status": TaskState.COMPLETED, "cost_usd": 0.0123},
            "merged into main",
            "task t1 COMPLETED in 1m12s, $0.0123, delivered: merged into main",
        ),
        (
            {"status": TaskState.COMPLETED, "cost_usd": 0.5, "cost_estimated": True},
            "",
            "task t1 COMPLETED in 1m12s, ~$0.5000, no new commits",
        ),
        (
            {"status": TaskState.FAILED, "cost_known": False, "error_msg": "\nexit 1\nmore"},
            "",
            "task t1 FAILED in 1m12s, cost unknown, exit 1",
        ),
        (
            {"status": TaskState.QUEUED, "error_msg": "interrupted by orchestrator shutdown"},
            "",
            "task t1 QUEUED in 1m12s, $0.0000, re-queued: interrupted by orchestrator shutdown",
        ),
        (
            {"status": TaskState.BLOCKED},
            "",
            "task t1 BLOCKED in 1m12s, $0.0000, waiting for an answer to its question",
        ),
    ],
)
def test_ended_says_state_duration_cost_and_outcome(
    caplog: pytest.LogCaptureFixture, fields: dict[str, object], delivered: str, line: str
) -> None:
    caplog.set_level(logging.INFO, logger="claudomator.tasklog")
    tasklog.ended(_task(), _ended(**fields), delivered)
    [record] = caplog.records
    assert record.getMessage() == line
    assert record.action == "task_ended"  # type: ignore[attr-defined]
