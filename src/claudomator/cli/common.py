"""Shared pieces of the command line: the Typer app, settings and service access, tables."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from claudomator import __version__
from claudomator.config import (
    Settings,
    load_settings,
)
from claudomator.errors import (
    ClaudomatorError,
    ConfigError,
    InvalidTransition,
    NotFound,
    TaskFileError,
    ValidationError,
)
from claudomator.logview import last_activity
from claudomator.models import (
    Execution,
    Task,
    TaskState,
    utcnow,
)
from claudomator.money import cost_text

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="claudomator",
    help="Run AI coding agents on a queue of tasks, unattended, safely and in parallel.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)

if TYPE_CHECKING:  # the service (SQLAlchemy) is loaded when a command opens it
    from claudomator.service import Service

STATE_STYLE = {
    TaskState.PENDING: "blue",
    TaskState.QUEUED: "cyan",
    TaskState.RUNNING: "bold yellow",
    TaskState.COMPLETED: "green",
    TaskState.READY: "green",
    TaskState.BLOCKED: "magenta",
    TaskState.FAILED: "bold red",
    TaskState.TIMED_OUT: "red",
    TaskState.BUDGET_EXCEEDED: "red",
    TaskState.CANCELLED: "dim",
}
SETTLED = frozenset(
    {
        TaskState.COMPLETED,
        TaskState.READY,
        TaskState.BLOCKED,
        TaskState.FAILED,
        TaskState.TIMED_OUT,
        TaskState.BUDGET_EXCEEDED,
        TaskState.CANCELLED,
    }
)


class CliState:
    verbose: int = 0


state = CliState()


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, emoji=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def load() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc


def open_service(settings: Settings, *, quick: bool = False) -> Service:
    """The service over the configured database. ``quick`` for the short commands that read a
    few tasks or change one (``list``, ``show``, ``answer``...): they start without loading
    SQLAlchemy where the database allows (:class:`~claudomator.store.quick.QuickStore`)."""
    try:
        from claudomator.service import Service

        return Service.open(settings, quick=quick)
    except ClaudomatorError as exc:
        raise fail(str(exc)) from exc


def _version(value: bool) -> None:
    if value:
        typer.echo(f"claudomator {__version__}")
        raise typer.Exit()


def short_id(task_id: str) -> str:
    return task_id[:8]


def elapsed(execution: Execution | None, now: datetime) -> str:
    if execution is None:
        return ""
    seconds = int(((execution.end_time or now) - execution.start_time).total_seconds())
    return f"{seconds // 60}:{seconds % 60:02d}"


def serve_is_running(settings: Settings, timeout: float = 0.5) -> bool:
    """Whether a ``claudomator serve`` answers at ``server_addr`` (which resumes queued work)."""
    import http.client  # loaded only by the commands that ask
    from urllib.parse import urlsplit

    url = urlsplit(settings.api_url)  # http://<server_addr>: ours, never a user's URL
    try:
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
        try:
            connection.request("GET", "/api/health")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException):
        return False


def resume_hint(settings: Settings) -> str:
    """What happens to a re-queued task next, for the message after answer/reject/retry."""
    if serve_is_running(settings):
        return f"the orchestrator at {settings.api_url} picks it up now"
    return "no orchestrator is running: start `claudomator serve` to run it"


def plural(count: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def verdict_text(task: Task) -> str:
    if task.check_verdict == "pass":
        return " [green]✓ check[/]"
    if task.check_verdict == "fail":
        return " [bold red]✗ check failed[/]"
    return ""


def state_text(state: TaskState) -> str:
    """The state as Rich markup, in its colour (plain for a state without one)."""
    style = STATE_STYLE.get(state)
    return f"[{style}]{state.value}[/]" if style else state.value


def task_table(service: Service, tasks: list[Task], *, activity: bool = False) -> Table:
    table = Table(show_lines=False, header_style="bold")
    for column in ("ID", "NAME", "STATE", "AGENT", "ELAPSED", "COST"):
        if column != "NAME":
            table.add_column(column, no_wrap=True)
        elif activity:  # a live table keeps one line per task and room for the activity
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=28)
        else:
            table.add_column(column)
    if activity:
        table.add_column("ACTIVITY", overflow="ellipsis", no_wrap=True, min_width=16, ratio=1)
    latest = service.latest_executions(t.id for t in tasks)
    costs = service.task_costs(t.id for t in tasks)
    now = utcnow()
    for task in tasks:
        execution = latest.get(task.id)
        row = [
            short_id(task.id),
            escape(task.name),
            state_text(task.state) + verdict_text(task),
            (execution.agent if execution else task.agent.type) or "auto",
            elapsed(execution, now),
            cost_text(costs.get(task.id)),
        ]
        if activity:
            running = execution is not None and task.state == TaskState.RUNNING
            log = Path(execution.stdout_path) if execution is not None else None
            row.append(escape(last_activity(log)) if running and log else "")
        table.add_row(*row)
    return table


# -- commands ----------------------------------------------------------------------------------


def nest(tasks: list[Task]) -> list[Task]:
    """Tasks with each subtask right after its parent (parents keep their order)."""
    ids = {t.id for t in tasks}
    children: dict[str, list[Task]] = {}

    def parent_of(task: Task) -> str | None:
        return task.parent_task_id or task.checker_for_task_id

    for task in tasks:
        parent = parent_of(task)
        if parent in ids:
            children.setdefault(str(parent), []).append(task)
    ordered: list[Task] = []

    def add(task: Task, depth: int) -> None:
        ordered.append(
            task
            if depth == 0
            else task.model_copy(update={"name": "  " * (depth - 1) + "└ " + task.name})
        )
        for child in sorted(children.get(task.id, []), key=lambda t: t.created_at):
            add(child, depth + 1)

    for task in tasks:
        if parent_of(task) not in ids:
            add(task, 0)
    return ordered


def lookup(service: Service, ident: str) -> Task:
    try:
        return service.get(ident)
    except (NotFound, ValidationError) as exc:
        raise fail(str(exc), 2) from exc


@contextmanager
def acting_on(ident: str) -> Iterator[tuple[Service, Task]]:
    """The service and the task ``ident`` names, for one action on it; closed afterwards.

    A state that does not allow the action exits 1 with the service's refusal (which names the
    task, its state and what the action needs, as the API says it); invalid input (an empty
    answer, say) exits 2 with its message.
    """
    service = open_service(load(), quick=True)
    try:
        task = lookup(service, ident)
        try:
            yield service, task
        except InvalidTransition as exc:
            raise fail(str(exc)) from exc
        except ValidationError as exc:
            raise fail(str(exc), 2) from exc
        except TaskFileError as exc:  # new values for a task: every problem, then exit 2
            for problem in exc.problems[:-1]:
                fail(str(problem))
            raise fail(str(exc.problems[-1]) if exc.problems else str(exc), 2) from exc
    finally:
        service.close()
