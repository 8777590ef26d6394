"""Where an execution runs: the preserved sandbox a resumed run goes back to, else a fresh one.

:func:`open_workspace` runs in the sandbox executor (git work); what to reopen and how the plan
changes when that sandbox is gone are :mod:`~claudomator.execution.plan`'s decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from claudomator.agents.base import Capabilities
from claudomator.checkout import CheckoutNote, write_note
from claudomator.execution import plan
from claudomator.execution.plan import Plan
from claudomator.models import Execution, Interaction, Task
from claudomator.sandbox import Sandbox, Sandboxes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workspace:
    """The sandbox an execution runs in, and what it continues."""

    sandbox: Sandbox
    plan: Plan  # as started (a resume whose sandbox is gone may start afresh)
    since: str = ""  # a reopened sandbox: the head an earlier round already delivered


def open_workspace(
    sandboxes: Sandboxes,
    *,
    task: Task,
    execution: Execution,
    start: Plan,
    project_dir: Path,
    scratch_dir: Path,
    log_dir: Path,
    runs: Sequence[Execution],
    asked: Sequence[Interaction],
    capabilities: Capabilities,
) -> Workspace:
    """Reopen the sandbox ``start`` resumes in, else create a fresh one (``runs`` and
    ``asked``: the task's executions and interactions, as read for the plan)."""
    preserved = plan.sandbox_to_reopen(start)
    if preserved:
        reopened = sandboxes.reopen(Path(preserved), project_dir)
        if reopened is not None:
            since = plan.delivered_head(runs, execution, preserved)
            return Workspace(reopened, start, since)
        logger.warning(
            "task %s: preserved sandbox %s is gone; starting a fresh one",
            task.id,
            preserved,
            extra={"action": "resume"},
        )
        start = plan.without_sandbox(
            start, task, execution, asked, resumes_in_place=capabilities.resumes_in_place
        )
    if not task.agent.project_dir:  # a project-less task gets a scratch repository
        sandboxes.prepare_scratch(project_dir, scratch_dir)
    # create() prepares a project that needs it; a ready one costs no extra git command
    box = sandboxes.create(project_dir, execution.id)
    _note_checkout(sandboxes, task, box, log_dir)
    return Workspace(box, start)


def _note_checkout(sandboxes: Sandboxes, task: Task, box: Sandbox, log_dir: Path) -> None:
    """Say so when the user's checkout has uncommitted changes: the agent starts from the
    last commit without them (logged, and noted for ``run`` and ``show``)."""
    if not task.agent.project_dir or task.checker_for_task_id:
        return  # a scratch repository is ours; a checker changes nothing
    changes = sandboxes.uncommitted(box.project_dir)
    if not changes:
        return
    note = CheckoutNote(
        project_dir=str(box.project_dir),
        branch=box.branch,
        head=box.base_commit,
        changes=changes,
    )
    logger.warning("task %s: %s", task.id, note.line, extra={"action": "sandbox"})
    try:
        write_note(log_dir, note)
    except OSError as exc:
        logger.warning("could not keep the note: %s", exc, extra={"action": "sandbox"})
