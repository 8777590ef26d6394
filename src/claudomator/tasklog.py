"""The two lines an orchestrator logs per attempt: when it starts and when it ends.

``claudomator serve`` shows them on its console by default (see ``cli/serve.py``); ``run``
shows them with ``-v``. Both are one line each, made from stored facts; the task's name and
the agent's error come from people and agents, so control characters are flattened.
"""

from __future__ import annotations

import logging
import re

from claudomator.durations import format_duration
from claudomator.models import Execution, Task, TaskState, utcnow
from claudomator.money import execution_cost_text

logger = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_MAX_TEXT = 200


def _flat(text: str, limit: int = _MAX_TEXT) -> str:
    """``text`` on one line, control characters collapsed, at most ``limit`` characters."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _cost(execution: Execution) -> str:
    """``$0.0123``, ``~$0.0123`` (estimated) or ``cost unknown``."""
    text = execution_cost_text(execution)
    return "cost unknown" if text == "unknown" else text or "$0.0000"


def started(task: Task, execution: Execution) -> None:
    """``task <id> <name> started: agent <agent> (<model>), execution <id>``."""
    logger.info(
        "task %s %s started: agent %s (%s), execution %s",
        task.id,
        _flat(task.name),
        execution.agent,
        _flat(execution.model) or "its default model",
        execution.id,
        extra={"action": "task_started", "task_id": task.id, "execution_id": execution.id},
    )


def ended(task: Task, execution: Execution, delivered_to: str = "") -> None:
    """``task <id> <STATE> in 1m12s, $0.0123, <what became of it>``."""
    status = execution.status
    took = (execution.end_time or utcnow()) - execution.start_time
    error = execution.error_msg.strip()
    error = _flat(error.splitlines()[0]) if error else ""
    if status in (TaskState.COMPLETED, TaskState.READY):
        outcome = f"delivered: {_flat(delivered_to)}" if delivered_to else "no new commits"
    elif status == TaskState.BLOCKED:
        outcome = "waiting for an answer to its question"
    elif status == TaskState.QUEUED:
        outcome = f"re-queued: {error or 'to run again'}"
    else:
        outcome = error or status.value.lower()
    logger.info(
        "task %s %s in %s, %s, %s",
        task.id,
        status.value,
        format_duration(took.total_seconds()),
        _cost(execution),
        outcome,
        extra={
            "action": "task_ended",
            "task_id": task.id,
            "execution_id": execution.id,
            "status": status.value,
        },
    )
