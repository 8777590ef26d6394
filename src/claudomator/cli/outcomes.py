"""What each task of a run came to, printed once they settle: state, commits, delivery,
question, summary, error, and where the logs are."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from claudomator import delivered
from claudomator.checkout import read_note
from claudomator.cli.common import plural, short_id, state_text
from claudomator.models import Task, TaskState
from claudomator.protocol import parse_question

if TYPE_CHECKING:  # the service (SQLAlchemy) is loaded when a command opens it
    from claudomator.service import Service

logger = logging.getLogger(__name__)


def print_outcomes(service: Service, tasks: list[Task], console: Console) -> None:
    from claudomator.projects import in_repository  # git: only once tasks ran

    latest = service.latest_executions(t.id for t in tasks)
    for task in tasks:
        execution = latest.get(task.id)
        console.print(
            f"\n[bold]{escape(task.name)}[/] ({short_id(task.id)}): {state_text(task.state)}"
        )
        if execution is None:
            events = service.events(task.id)
            if events and events[-1].reason:
                console.print(f"  {events[-1].reason}", markup=False)
            continue
        folder = in_repository(task.agent.project_dir) if execution.commits else ""
        if folder:
            console.print(f"  {folder}", markup=False)
        note = read_note(Path(execution.stdout_path).parent) if execution.stdout_path else None
        if note is not None:  # the user's uncommitted changes were not in the sandbox
            console.print(f"  note: {note.line}", style="yellow", markup=False)
        for commit in execution.commits:
            console.print(f"  commit {commit.hash[:10]} {commit.message}", markup=False)
        if execution.commits:
            s = execution.changestats
            console.print(f"  {plural(s.files, 'file')}, +{s.insertions} -{s.deletions}")
        if execution.delivery is not None:
            line = f"  delivered: {delivered.where(execution.delivery).line}"
            console.print(line, markup=False, soft_wrap=True)
        if task.state == TaskState.BLOCKED and task.question:
            _print_question(task, console)
        if task.summary:
            console.print("  " + task.summary.replace("\n", "\n  "), markup=False)
        if execution.error_msg and task.state != TaskState.COMPLETED:
            error = "  " + execution.error_msg.replace("\n", "\n  ")
            console.print(error, style="red", markup=False)
        console.print(f"  logs: claudomator logs {short_id(task.id)}", style="dim")


def _print_question(task: Task, console: Console) -> None:
    """A BLOCKED task's question and what to do about it."""
    question = parse_question(task.question)
    console.print("  The agent asks: ", end="", style="magenta")
    console.print(question.text, markup=False)
    for option in question.options:
        console.print(f"    - {option}", markup=False)
    console.print(
        f'  answer with: claudomator answer {short_id(task.id)} "your answer"; the task then '
        "resumes the same session under `claudomator serve`",
        style="dim",
        markup=False,
        soft_wrap=True,
    )
