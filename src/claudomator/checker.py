"""Acceptance checks: a task with ``acceptance_criteria`` gets a checker task once it completes.

The checker is an ordinary task (``checker_for_task_id`` names the task it checks) whose agent
inspects the delivered commits against the criteria, changes nothing, and ends with a JSON
verdict. The verdict and report are stored on the original task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from claudomator.models import AgentConfig, Execution, Task, TaskState

VERDICTS = ("pass", "fail")


def checker_task(task: Task, execution: Execution, delivered_to: str) -> Task:
    """The task that checks ``task``'s delivered work against its acceptance criteria."""
    commits = "\n".join(f"- {c.hash} {c.message}" for c in execution.commits) or "- (none)"
    instructions = f"""You are checking work another agent delivered. Do not change any files.

Task: {task.name}
Its instructions:
{task.agent.instructions}

Acceptance criteria:
{task.acceptance_criteria}

The work was delivered as these commits ({delivered_to}):
{commits}
Inspect them with git (`git show <hash>`, `git log`, `git diff`); if a commit is missing from
your copy, fetch it from where it was delivered. Run the project's tests if that helps.

Finish with one line of JSON and nothing after it:
{{"verdict": "pass" or "fail", "report": "what you checked and what you found"}}
"""
    agent = AgentConfig(
        type=execution.agent,
        model=task.agent.model,
        instructions=instructions,
        project_dir=task.agent.project_dir,
        permission_mode=task.agent.permission_mode,
        skip_planning=True,
    )
    return Task(
        name=f"check: {task.name}",
        description=f"acceptance check of task {task.id}",
        agent=agent,
        timeout=task.timeout,
        priority=task.priority,
        tags=(*task.tags, "checker"),
        checker_for_task_id=task.id,
    )


def verdict_from(text: str) -> tuple[str, str]:
    """(verdict, report) from the checker's words; ("", reason) if it gave no verdict.

    The last JSON object with a valid verdict wins; reports may quote code with braces.
    """
    decoder = json.JSONDecoder()
    found: tuple[str, str] | None = None
    for match in re.finditer(r"\{", text):
        try:
            data, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            verdict = str(data.get("verdict", "")).strip().lower()
            if verdict in VERDICTS:
                found = (verdict, str(data.get("report", "")).strip())
    return found or ("", "the checker gave no verdict")


class CheckStatus(BaseModel):
    """Where a task's acceptance check stands, for every view (``show``, the task page).

    ``state``: ``pass`` or ``fail`` (a verdict), ``pending`` (the checker is queued or
    running), ``no verdict`` (the checker ended without one: it failed, was cancelled, or gave
    none), or ``not yet`` (the task has not completed, so no checker was queued).
    """

    model_config = ConfigDict(frozen=True)

    state: str
    checker_id: str = ""  # the newest checker task, if any
    checker_state: TaskState | None = None
    report: str = ""  # the verdict's report, or why there is none
    line: str = ""  # the same in one line for people (see _line)


def _line(status: CheckStatus) -> str:
    """``check: pass``, ``check: pending (checker task X QUEUED)``, ``check: no verdict —
    checker task X FAILED: why``..."""
    checker = f"checker task {status.checker_id}" if status.checker_id else ""
    state = status.checker_state
    if status.state == "pending":
        return f"check: pending ({checker} {state.value})" if state else "check: pending"
    if status.state == "no verdict":
        ended = f" — {checker} {state.value}" if state else ""
        why = f": {status.report}" if status.report else ""
        return f"check: no verdict{ended}{why}"
    if status.state == "not yet":
        return "check: after the task completes"
    return f"check: {status.state}"


def check_status(task: Task, checkers: Sequence[Task]) -> CheckStatus | None:
    """The acceptance check of ``task`` (None if it has no acceptance criteria); ``checkers``
    are tasks whose ``checker_for_task_id`` is ``task``'s id (others are ignored)."""
    status = _status(task, checkers)
    return None if status is None else status.model_copy(update={"line": _line(status)})


def _status(task: Task, checkers: Sequence[Task]) -> CheckStatus | None:
    if not task.acceptance_criteria or task.checker_for_task_id:
        return None
    mine = [c for c in checkers if c.checker_for_task_id == task.id]
    latest = max(mine, key=lambda c: c.created_at) if mine else None
    ident = latest.id if latest else ""
    state = latest.state if latest else None
    if task.check_verdict:
        verdict, report = task.check_verdict, task.check_report
        return CheckStatus(state=verdict, checker_id=ident, checker_state=state, report=report)
    if latest is not None and not latest.state.is_terminal:
        return CheckStatus(state="pending", checker_id=ident, checker_state=state)
    if task.state != TaskState.COMPLETED:  # not completed (again, after a retry): no check yet
        return CheckStatus(state="not yet")
    if latest is None:  # e.g. accepted in review: only a run that completes queues one
        return CheckStatus(state="no verdict", report="no checker was queued")
    report = task.check_report.removeprefix(f"the checker ended {latest.state.value}: ")
    return CheckStatus(state="no verdict", checker_id=ident, checker_state=state, report=report)
