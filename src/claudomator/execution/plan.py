"""How an execution starts: fresh, or resuming the previous one's answered question.

Decisions only: the attempt reads the task's executions and interactions (through the store
executor), opens or creates the sandbox, and asks here what to run and what it continues.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from claudomator import protocol
from claudomator.models import Execution, Interaction, Task, TaskState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """How this execution starts: fresh, or resuming an answered question."""

    prompt: str
    session_id: str
    resume: bool
    previous: Execution | None = None


def plan_for(
    task: Task,
    execution: Execution,
    runs: Sequence[Execution],
    interactions: Sequence[Interaction],
    *,
    text_only: bool,
) -> Plan:
    """Resume the previous execution if it asked a question that is now answered.

    ``runs`` and ``interactions`` are the task's, oldest first; ``text_only`` says the runner
    answers in text (no protocol preamble)."""
    earlier = [
        e
        for e in runs
        if e.id != execution.id and e.status != TaskState.QUEUED  # skip re-queued ones
    ]
    previous = earlier[-1] if earlier else None
    first = task.agent.instructions if text_only else protocol.prompt_for(task)
    fresh = Plan(first, execution.session_id, resume=False)
    if previous is None or previous.status not in (TaskState.BLOCKED, TaskState.READY):
        return fresh
    answered = [i for i in interactions if i.execution_id == previous.id]
    if not answered or not answered[-1].answered_at:
        return fresh
    item = answered[-1]
    prompt = (
        protocol.feedback_prompt(item.answer)
        if item.question == protocol.REVIEW_QUESTION
        else protocol.resume_prompt(item.question, item.answer)
    )
    return Plan(prompt, previous.session_id, resume=True, previous=previous)


def superseded(plan: Plan) -> Execution | None:
    """The READY row of the review round this run continues (a rejected review), if any."""
    if plan.resume and plan.previous is not None and plan.previous.status == TaskState.READY:
        return plan.previous
    return None


def sandbox_to_reopen(plan: Plan) -> str:
    """The preserved sandbox a resumed run goes back to ("" for a fresh sandbox)."""
    if plan.resume and plan.previous is not None:
        return plan.previous.sandbox_dir
    return ""


def without_sandbox(
    plan: Plan,
    task: Task,
    execution: Execution,
    interactions: Sequence[Interaction],
    *,
    resumes_in_place: bool,
) -> Plan:
    """The plan once the sandbox to resume in is gone: a runner whose sessions resume only in
    the same directory starts afresh with the conversation so far; others resume anyway."""
    if not resumes_in_place:
        return plan
    return Plan(protocol.history_prompt(task, interactions), execution.session_id, resume=False)


def delivered_head(runs: Sequence[Execution], execution: Execution, sandbox_dir: str) -> str:
    """The last commit an earlier execution of this task collected in ``sandbox_dir`` ("" if
    none did): a resumed run's own work starts after it."""
    for earlier in reversed(runs):
        same = earlier.id != execution.id and earlier.sandbox_dir == sandbox_dir
        if same and earlier.commits:
            return earlier.commits[-1].hash
    return ""
