"""Looking at tasks: `list`, `show`, `logs`, `agents`."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from claudomator import delivered
from claudomator.checkout import CheckoutNote
from claudomator.cli.common import (
    app,
    fail,
    iso,
    load,
    lookup,
    make_console,
    nest,
    open_service,
    plural,
    short_id,
    state_text,
    task_table,
)
from claudomator.errors import (
    NotFound,
    ValidationError,
)
from claudomator.logs import MAX_READ, LogFile, UnsafeLogFile
from claudomator.logview import Transcript
from claudomator.models import (
    Execution,
    Interaction,
    Task,
    TaskCost,
    TaskEvent,
    TaskState,
)
from claudomator.money import budget_unchecked, cost_text, execution_cost_text
from claudomator.protocol import parse_question

if TYPE_CHECKING:  # the service (SQLAlchemy) is loaded when a command opens it
    from claudomator.checker import CheckStatus
    from claudomator.service import Service

logger = logging.getLogger(__name__)


@app.command("list", rich_help_panel="Look")
def list_tasks(
    state: Annotated[
        list[TaskState] | None,
        typer.Option(
            "--state",
            "-s",
            case_sensitive=False,
            metavar="STATE",
            show_choices=False,
            help="Only tasks in this state (repeat for several): "
            + ", ".join(s.value for s in TaskState)
            + ".",
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="Only this project's tasks (name or directory)."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", help="Only tasks with this tag (repeat: every one)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (newest first).")] = 50,
) -> None:
    """List tasks, newest first; subtasks under their parent; open questions below."""
    service = open_service(load(), quick=True)
    try:
        if project and not Path(project).is_absolute() and not service.project_named(project):
            given = Path(project).expanduser()
            if given.is_dir():  # a directory given relatively, not a project's name
                project = str(given.resolve())
        found = service.list_tasks(states=state, project=project, tags=tag or (), limit=limit)
        tasks = nest(found)
        if not tasks:
            make_console().print("No tasks.")
            return
        console = make_console()
        console.print(task_table(service, tasks))
        _print_waiting(service, tasks)
        blocked = [t for t in tasks if t.state == TaskState.BLOCKED and t.question]
        if blocked:
            console.print("\n[bold magenta]Waiting for an answer[/]")
        for task in blocked:
            question = parse_question(task.question)
            console.print(f"  {short_id(task.id)} {task.name}: ", end="", markup=False)
            console.print(question.text, markup=False)
            for option in question.options:
                console.print(f"      - {option}", markup=False)
        if blocked:
            console.print('  answer with: claudomator answer ID "your answer"', style="dim")
    finally:
        service.close()


@app.command(rich_help_panel="Look")
def agents() -> None:
    """Show which agents can run here and why not (CLI, credentials, rate limits), and their
    health."""
    service = open_service(load(), quick=True)
    try:
        table = Table(header_style="bold")
        for column in ("AGENT", "STATE", "DETAILS", "FAILURES", "LAST ERROR"):
            table.add_column(column, no_wrap=column not in ("DETAILS", "LAST ERROR"))
        styles = {"ready": "green", "rate-limited": "yellow"}
        for ready in service.agent_readiness().values():  # the facts GET /api/agents gives
            table.add_row(
                ready.agent,
                f"[{styles.get(ready.state, 'red')}]{escape(ready.state)}[/]",
                escape("\n".join(ready.details)),
                str(ready.status.consecutive_failures),
                escape(ready.last_error),
            )
        make_console().print(table)
    finally:
        service.close()


def _print_waiting(service: Service, tasks: list[Task]) -> None:
    """Below the list: why QUEUED tasks wait for an agent, each reason once."""
    reasons = service.waiting_reasons(tasks)
    by_reason: dict[str, list[Task]] = {}
    for task in tasks:
        if task.id in reasons:
            by_reason.setdefault(reasons[task.id], []).append(task)
    if not by_reason:
        return
    console = make_console()
    console.print("\n[bold yellow]Waiting for an agent[/]")
    for why, waiting in by_reason.items():
        console.print(f"  {why}", markup=False)
        names = ", ".join(f"{short_id(t.id)} {t.name}" for t in waiting)
        console.print(f"    {names}", markup=False, style="dim")
    console.print("  see which agents can run and why: claudomator agents", style="dim")


@app.command(rich_help_panel="Look")
def show(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (or a unique prefix).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a task: its fields, state history and every execution."""
    service = open_service(load(), quick=True)
    try:
        task = lookup(service, task_id)
        executions = service.executions(task.id)
        events = service.events(task.id)
        talk = service.interactions(task.id)
        cost = service.task_costs([task.id])[task.id]
        if as_json:
            payload = {
                "task": {
                    **task.model_dump(mode="json"),
                    "cost_usd_total": cost.total_usd,  # as the API says it
                    "cost_known": cost.known,
                    "cost_estimated": cost.estimated,
                },
                "executions": [e.model_dump(mode="json") for e in executions],
                "events": [e.model_dump(mode="json") for e in events],
                "interactions": [i.model_dump(mode="json") for i in talk],
                "checkout_notes": {
                    execution_id: note.line
                    for execution_id, note in service.checkout_notes(executions).items()
                },
            }
            check = service.check_status(task)
            if check is not None:
                payload["check"] = check.model_dump(mode="json")
            typer.echo(json.dumps(payload, indent=2))
            return
        notes = service.checkout_notes(executions)
        _print_task(task, executions, events, cost, notes)
        _print_check(service.check_status(task))
        waiting = service.waiting_reasons([task]).get(task.id)
        if waiting:  # a QUEUED task no usable agent can take: say why (see `agents`)
            make_console().print("\n[bold yellow]Waiting:[/] ", end="")
            make_console().print(waiting, markup=False)
        _print_interactions(task, talk)
    finally:
        service.close()


def _print_interactions(task: Task, talk: list[Interaction]) -> None:
    console = make_console()
    if talk:
        console.print("\n[bold]Questions and answers[/]")
    for item in talk:
        console.print("  Q: ", end="")
        console.print(item.question, markup=False)
        for option in item.options:
            console.print(f"     - {option}", markup=False)
        console.print("  A: ", end="")
        console.print(item.answer or "(waiting for an answer)", markup=False)


def _print_check(check: CheckStatus | None) -> None:
    """The acceptance check: its verdict and report, or that it is pending or has none."""
    if check is None:
        return
    console = make_console()
    style = {"pass": "green", "fail": "bold red", "no verdict": "yellow"}.get(check.state, "dim")
    console.print("\n[bold]Acceptance check[/]: ", end="")
    console.print(check.line, markup=False, style=style)
    if check.state in ("pass", "fail") and check.report:
        console.print(check.report, markup=False)


def _total_cost(task: Task, cost: TaskCost) -> str:
    """The task's cost over its executions, and whether its budget went unchecked."""
    text = cost_text(cost)
    if text and cost.executions > 1:
        text += f" over {plural(cost.executions, 'execution')}"
    return text + (budget_unchecked(task, cost.known) if text else "")


def _print_task(
    task: Task,
    executions: list[Execution],
    events: list[TaskEvent],
    cost: TaskCost,
    notes: Mapping[str, CheckoutNote],
) -> None:
    from claudomator.projects import described  # git: `show` only, not `list`

    console = make_console()
    console.print(f"[bold]{escape(task.name)}[/]  {state_text(task.state)}")
    rows = [
        ("id", task.id),
        ("agent", f"{task.agent.type or 'auto'} {task.agent.model}".strip()),
        ("project", described(task.agent.project_dir)),
        ("priority", task.priority.value),
        ("timeout", f"{task.timeout:g}s" if task.timeout else "default"),
        ("tags", ", ".join(task.tags)),
        ("depends on", ", ".join(task.depends_on)),
        ("created", task.created_at.isoformat(timespec="seconds")),
        ("budget", f"${task.agent.max_budget_usd:g}" if task.agent.max_budget_usd else ""),
        ("cost", _total_cost(task, cost)),
        ("isolation", _isolation_text(task)),
    ]
    for key, value in rows:
        if value:
            console.print(f"  [dim]{key:>10}[/] ", end="")
            console.print(value, markup=False)
    console.print("\n[bold]Instructions[/]")
    console.print(task.agent.instructions, markup=False)
    if task.summary:
        console.print("\n[bold]Summary[/]")
        console.print(task.summary, markup=False)
    last = delivered.latest(executions)
    if last is not None:  # where the work is, still after the review box is gone
        console.print("\n[bold]Delivered[/]")
        console.print(delivered.where(last).line, markup=False, soft_wrap=True)
    console.print("\n[bold]History[/]")
    for event in events:
        at = event.at.strftime("%Y-%m-%d %H:%M:%S")
        src = event.from_state.value if event.from_state else "-"
        console.print(f"  {at}  {src} → {event.to_state.value}  ", end="")
        console.print(event.reason, markup=False, style="dim")
    for number, execution in enumerate(executions, 1):
        console.print(f"\n[bold]Execution {number}[/] {execution.id}")
        details = [
            ("status", execution.status.value),
            ("agent", f"{execution.agent} {execution.model}".strip()),
            ("session", execution.session_id),
            ("started", execution.start_time.isoformat(timespec="seconds")),
            ("ended", iso(execution.end_time)),
            ("exit code", "" if execution.exit_code is None else str(execution.exit_code)),
            ("cost", execution_cost_text(execution)),
            ("tokens", f"{execution.tokens_in} in / {execution.tokens_out} out"),
            ("sandbox", _sandbox_text(execution.sandbox_dir)),
            ("confined", execution.confinement),  # as the agent really ran
            ("stdout", execution.stdout_path),
        ]
        for key, value in details:
            if value:
                console.print(f"  [dim]{key:>10}[/] ", end="")
                console.print(value, markup=False)
        note = notes.get(execution.id)
        if note is not None:  # the user's uncommitted changes were not in the sandbox
            console.print(f"  [dim]{'note':>10}[/] ", end="")
            console.print(note.line, markup=False, style="yellow")
        for commit in execution.commits:
            console.print(f"  [dim]{'commit':>10}[/] {commit.hash[:10]} ", end="")
            console.print(commit.message, markup=False)
        if execution.commits:
            s = execution.changestats
            stats = f"{plural(s.files, 'file')}, +{s.insertions} -{s.deletions}"
            console.print(f"  [dim]{'changes':>10}[/] {stats}")
        if execution.delivery is not None:
            console.print(f"  [dim]{'delivered':>10}[/] ", end="")
            console.print(delivered.where(execution.delivery).line, markup=False, soft_wrap=True)
        if execution.error_msg:  # on a COMPLETED round: why it ended (a review asked for more)
            done = execution.status == TaskState.COMPLETED
            console.print(f"  [dim]{'note' if done else 'error':>10}[/] ", end="")
            console.print(execution.error_msg, markup=False, style="yellow" if done else "red")


def _isolation_text(task: Task) -> str:
    """The task's own confinement settings ("" when it leaves them to its project)."""
    fields = (("launcher", task.isolation.launcher), ("network", task.isolation.network))
    return ", ".join(f"{key} {value}" for key, value in fields if value)


def _sandbox_text(sandbox_dir: str) -> str:
    """The sandbox's path, marked "(removed)" once it no longer exists (released after
    delivery); a link left there counts as existing (it is not followed)."""
    if not sandbox_dir:
        return ""
    return sandbox_dir if os.path.lexists(sandbox_dir) else f"{sandbox_dir} (removed)"


@app.command(rich_help_panel="Look")
def logs(
    ident: Annotated[str, typer.Argument(metavar="ID", help="Task id/prefix or execution id.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the execution ends.")
    ] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print the raw stream-json lines.")] = False,
    stderr: Annotated[bool, typer.Option("--stderr", help="Show stderr.log instead.")] = False,
) -> None:
    """Show an execution's agent log (the task's latest execution by default)."""
    service = open_service(load(), quick=True)
    try:
        try:
            execution = service.latest_execution(ident)
        except (NotFound, ValidationError) as exc:
            raise fail(str(exc), 2) from exc
        name = LogFile.STDERR if stderr else LogFile.STDOUT
        try:
            _print_log(service, execution, name, follow=follow, raw=raw or stderr)
        except UnsafeLogFile as exc:
            raise fail(str(exc), 1) from exc
    finally:
        service.close()


def _print_log(
    service: Service, execution: Execution, name: LogFile, *, follow: bool, raw: bool
) -> None:
    """Print the log from the log store, a bounded chunk at a time (following it if asked)."""
    position = 0
    pending = ""
    transcript = Transcript()
    found = False
    while True:
        chunk = service.logs.read(execution, name, position, MAX_READ)
        found = found or chunk is not None
        if chunk:
            position += len(chunk)
            pending += chunk.decode("utf-8", errors="replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                for text in [line] if raw else transcript.feed(line):
                    if text:
                        typer.echo(text)
            continue  # read on until the end of what is there
        if not follow or service.execution(execution.id).end_time is not None:
            last = [pending] if raw else [*transcript.feed(pending), *transcript.close()]
            for text in last:
                if text.strip():
                    typer.echo(text)
            if follow or position or raw:
                return
            if not found:
                where = execution.stderr_path if name is LogFile.STDERR else execution.stdout_path
                raise fail(f"no log yet at {where}", 1)
            return
        time.sleep(0.3)
