"""The ``claudomator`` command line (Typer + Rich). Parses, calls the service, prints.

Exit codes: 0 success; 1 a task did not complete (``run``) or an operation failed;
2 invalid input (a bad task file, an unknown id, a bad option).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table

from claudomator import __version__
from claudomator.config import (
    Settings,
    config_path,
    default_data_dir,
    load_settings,
    write_default_config,
)
from claudomator.errors import (
    ClaudomatorError,
    ConfigError,
    InvalidTransition,
    NotFound,
    TaskFileError,
    ValidationError,
)
from claudomator.logview import describe, last_activity
from claudomator.models import (
    AgentStatus,
    Execution,
    Interaction,
    Task,
    TaskEvent,
    TaskState,
    utcnow,
)
from claudomator.protocol import parse_question
from claudomator.runtime import Runtime
from claudomator.service import Service
from claudomator.taskfile import load_taskfile

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="claudomator",
    help="Run AI coding agents on a queue of tasks, unattended, safely and in parallel.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

_STATE_STYLE = {
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
_SETTLED = frozenset(
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


class _State:
    verbose: int = 0


_state = _State()


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise _fail(str(exc), 2) from exc


def _open_service(settings: Settings) -> Service:
    try:
        return Service.open(settings)
    except ClaudomatorError as exc:
        raise _fail(str(exc)) from exc


def _version(value: bool) -> None:
    if value:
        typer.echo(f"claudomator {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Run AI coding agents on a queue of tasks, unattended, safely and in parallel.

    Write tasks in a YAML file and `claudomator run tasks.yaml`, or start the service with
    `claudomator serve`. Configuration: `claudomator init` writes a commented config file.
    """
    _state.verbose = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=_console(stderr=True), show_path=False)],
        force=True,
    )


# -- helpers for tables ------------------------------------------------------------------------


def _short(task_id: str) -> str:
    return task_id[:8]


def _elapsed(execution: Execution | None, now: datetime) -> str:
    if execution is None:
        return ""
    seconds = int(((execution.end_time or now) - execution.start_time).total_seconds())
    return f"{seconds // 60}:{seconds % 60:02d}"


def _cost(execution: Execution | None) -> str:
    if execution is None or (execution.cost_usd == 0 and execution.end_time is None):
        return ""
    return f"{'~' if execution.cost_estimated else ''}${execution.cost_usd:.4f}"


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def _verdict_text(task: Task) -> str:
    if task.check_verdict == "pass":
        return " [green]✓ check[/]"
    if task.check_verdict == "fail":
        return " [bold red]✗ check failed[/]"
    return ""


def _state_text(state: TaskState) -> str:
    return f"[{_STATE_STYLE.get(state, '')}]{state.value}[/]"


def _task_table(service: Service, tasks: list[Task], *, activity: bool = False) -> Table:
    table = Table(show_lines=False, header_style="bold")
    for column in ("ID", "NAME", "STATE", "AGENT", "ELAPSED", "COST"):
        table.add_column(column, no_wrap=column != "NAME")
    if activity:
        table.add_column("ACTIVITY", overflow="ellipsis", no_wrap=True, max_width=60)
    latest = service.store.latest_executions(t.id for t in tasks)
    now = utcnow()
    for task in tasks:
        execution = latest.get(task.id)
        row = [
            _short(task.id),
            task.name,
            _state_text(task.state) + _verdict_text(task),
            (execution.agent if execution else task.agent.type) or "auto",
            _elapsed(execution, now),
            _cost(execution),
        ]
        if activity:
            running = execution is not None and task.state == TaskState.RUNNING
            log = Path(execution.stdout_path) if execution is not None else None
            row.append(last_activity(log) if running and log else "")
        table.add_row(*row)
    return table


# -- commands ----------------------------------------------------------------------------------


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="YAML task file: one task, or a `tasks:` list.")],
    parallel: Annotated[
        int | None,
        typer.Option("--parallel", "-j", min=1, help="Run at most N tasks at once."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show the tasks; run nothing.")
    ] = False,
) -> None:
    """Run the tasks of a YAML file and show live progress until they are done.

    Exits 0 when every task COMPLETED, 1 if any did not, 2 if the file is invalid.
    Ctrl-C stops the agents and cancels the tasks (their sandboxes are kept).
    """
    settings = _settings()
    try:
        tasks = load_taskfile(file)
    except TaskFileError as exc:
        err = _console(stderr=True)
        for problem in exc.problems:
            err.print(str(problem), markup=False, soft_wrap=True)
        n = len(exc.problems)
        summary = f"{n} problem{'s' if n != 1 else ''} in {file}; nothing was stored."
        err.print(summary, style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    if dry_run:
        _print_plan(tasks)
        return
    service = _open_service(settings)
    try:
        stored = service.submit(tasks)
    except ValidationError as exc:
        raise _fail(f"{file}: {exc}", 2) from exc
    ids = [t.id for t in stored]
    try:
        final = asyncio.run(_run_until_settled(settings, service, ids, parallel))
    finally:
        service.close()
    ok = all(t.state == TaskState.COMPLETED and t.check_verdict != "fail" for t in final)
    raise typer.Exit(0 if ok else 1)


def _print_plan(tasks: list[Task]) -> None:
    table = Table(title="Tasks (dry run: nothing stored)", header_style="bold")
    for column in ("ID", "NAME", "AGENT", "PROJECT", "TIMEOUT", "PRIORITY", "DEPENDS ON"):
        table.add_column(column)
    names = {t.id: t.name for t in tasks}
    for task in tasks:
        table.add_row(
            _short(task.id),
            task.name,
            task.agent.type or "auto",
            task.agent.project_dir or "(scratch)",
            f"{task.timeout:g}s" if task.timeout else "default",
            task.priority.value,
            ", ".join(names.get(d, d) for d in task.depends_on),
        )
    _console().print(table)


async def _run_until_settled(
    settings: Settings, service: Service, ids: list[str], parallel: int | None
) -> list[Task]:
    console = _console()
    runtime = Runtime(settings, only=ids, max_concurrent=parallel, service=service)
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        # SIGINT: the user wants to stop: cancel. SIGTERM: the machine is going down: re-queue.
        runtime.requeue_on_exit = sig == signal.SIGTERM
        interrupted.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with runtime:
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                while True:
                    tasks = _nest(service.family(ids))
                    live.update(_task_table(service, tasks, activity=True))
                    if all(t.state in _SETTLED for t in tasks) or interrupted.is_set():
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(interrupted.wait(), 0.5)
            if interrupted.is_set():
                console.print("[yellow]Interrupted: stopping agents…[/]")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    tasks = _nest(service.family(ids))
    console.print(_task_table(service, tasks))
    _print_outcomes(service, tasks, console)
    return tasks


def _print_outcomes(service: Service, tasks: list[Task], console: Console) -> None:
    latest = service.store.latest_executions(t.id for t in tasks)
    for task in tasks:
        execution = latest.get(task.id)
        console.print(f"\n[bold]{task.name}[/] ({_short(task.id)}): {_state_text(task.state)}")
        if execution is None:
            events = service.events(task.id)
            if events and events[-1].reason:
                console.print(f"  {events[-1].reason}", markup=False)
            continue
        for commit in execution.commits:
            console.print(f"  commit {commit.hash[:10]} {commit.message}", markup=False)
        if execution.commits:
            s = execution.changestats
            console.print(f"  {s.files} file(s), +{s.insertions} -{s.deletions}")
        if task.summary:
            console.print("  " + task.summary.replace("\n", "\n  "), markup=False)
        if execution.error_msg and task.state != TaskState.COMPLETED:
            error = "  " + execution.error_msg.replace("\n", "\n  ")
            console.print(error, style="red", markup=False)
        console.print(f"  logs: claudomator logs {_short(task.id)}", style="dim")


@app.command("list")
def list_tasks(
    state: Annotated[
        list[TaskState] | None,
        typer.Option("--state", "-s", case_sensitive=False, help="Only tasks in this state."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (newest first).")] = 50,
) -> None:
    """List tasks, newest first; subtasks under their parent; open questions below."""
    service = _open_service(_settings())
    try:
        tasks = _nest(service.list_tasks(states=state, limit=limit))
        if not tasks:
            _console().print("No tasks.")
            return
        console = _console()
        console.print(_task_table(service, tasks))
        blocked = [t for t in tasks if t.state == TaskState.BLOCKED and t.question]
        if blocked:
            console.print("\n[bold magenta]Waiting for an answer[/]")
        for task in blocked:
            question = parse_question(task.question)
            console.print(f"  {_short(task.id)} {task.name}: ", end="", markup=False)
            console.print(question.text, markup=False)
            for option in question.options:
                console.print(f"      - {option}", markup=False)
        if blocked:
            console.print('  answer with: claudomator answer ID "your answer"', style="dim")
    finally:
        service.close()


def _nest(tasks: list[Task]) -> list[Task]:
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


@app.command()
def answer(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A BLOCKED task (id or prefix).")],
    text: Annotated[str, typer.Argument(help="Your answer to the agent's question.")],
) -> None:
    """Answer a BLOCKED task's question: it resumes the same agent session and sandbox."""
    service = _open_service(_settings())
    try:
        task = _lookup(service, task_id)
        try:
            service.answer(task.id, text)
        except InvalidTransition as exc:
            raise _fail(
                f"task {task.id} is {task.state.value}, not BLOCKED; no question to answer"
            ) from exc
        except ValidationError as exc:
            raise _fail(str(exc), 2) from exc
        _console().print(f"Answered {task.name} ({_short(task.id)}); it is queued to resume.")
    finally:
        service.close()


@app.command()
def retry(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (or a unique prefix).")],
) -> None:
    """Queue a FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED task for a fresh attempt."""
    service = _open_service(_settings())
    try:
        task = _lookup(service, task_id)
        try:
            service.retry(task.id)
        except InvalidTransition as exc:
            raise _fail(
                f"task {task.id} is {task.state.value}; only ended tasks can be retried"
            ) from exc
        _console().print(f"Queued {task.name} ({_short(task.id)}) again.")
    finally:
        service.close()


@app.command()
def agents() -> None:
    """Show each agent's health: rate-limit windows, quota, consecutive failures."""
    service = _open_service(_settings())
    try:
        table = Table(header_style="bold")
        for column in ("AGENT", "STATUS", "UNTIL", "FAILURES IN A ROW", "LAST ERROR"):
            table.add_column(column)
        now = utcnow()
        statuses = {s.agent: s for s in service.agent_health()}
        for name in sorted({"claude", "gemini", "local", *statuses}):
            status = statuses.get(name, AgentStatus(agent=name))
            until = status.blocked_until(now)
            label = "available"
            if until is not None:
                label = "out of quota" if status.unavailable_until == until else "rate-limited"
            table.add_row(
                name,
                label,
                _iso(until),
                str(status.consecutive_failures),
                status.last_error.splitlines()[0][:80] if status.last_error else "",
            )
        _console().print(table)
    finally:
        service.close()


def _lookup(service: Service, ident: str) -> Task:
    try:
        return service.get(ident)
    except (NotFound, ValidationError) as exc:
        raise _fail(str(exc), 2) from exc


@app.command()
def show(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (or a unique prefix).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a task: its fields, state history and every execution."""
    service = _open_service(_settings())
    try:
        task = _lookup(service, task_id)
        executions = service.executions(task.id)
        events = service.events(task.id)
        talk = service.interactions(task.id)
        if as_json:
            payload = {
                "task": task.model_dump(mode="json"),
                "executions": [e.model_dump(mode="json") for e in executions],
                "events": [e.model_dump(mode="json") for e in events],
                "interactions": [i.model_dump(mode="json") for i in talk],
            }
            typer.echo(json.dumps(payload, indent=2))
            return
        _print_task(task, executions, events)
        _print_interactions(task, talk)
    finally:
        service.close()


def _print_interactions(task: Task, talk: list[Interaction]) -> None:
    console = _console()
    if talk:
        console.print("\n[bold]Questions and answers[/]")
    for item in talk:
        console.print("  Q: ", end="")
        console.print(item.question, markup=False)
        for option in item.options:
            console.print(f"     - {option}", markup=False)
        console.print("  A: ", end="")
        console.print(item.answer or "(waiting for an answer)", markup=False)
    if task.check_verdict:
        style = "green" if task.check_verdict == "pass" else "bold red"
        console.print(f"\n[bold]Acceptance check[/]: [{style}]{task.check_verdict.upper()}[/]")
        if task.check_report:
            console.print(task.check_report, markup=False)


def _print_task(task: Task, executions: list[Execution], events: list[TaskEvent]) -> None:
    console = _console()
    console.print(f"[bold]{task.name}[/]  {_state_text(task.state)}")
    rows = [
        ("id", task.id),
        ("agent", f"{task.agent.type or 'auto'} {task.agent.model}".strip()),
        ("project", task.agent.project_dir or "(scratch)"),
        ("priority", task.priority.value),
        ("timeout", f"{task.timeout:g}s" if task.timeout else "default"),
        ("tags", ", ".join(task.tags)),
        ("depends on", ", ".join(task.depends_on)),
        ("created", task.created_at.isoformat(timespec="seconds")),
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
            ("ended", _iso(execution.end_time)),
            ("exit code", "" if execution.exit_code is None else str(execution.exit_code)),
            ("cost", _cost(execution)),
            ("tokens", f"{execution.tokens_in} in / {execution.tokens_out} out"),
            ("sandbox", execution.sandbox_dir),
            ("stdout", execution.stdout_path),
        ]
        for key, value in details:
            if value:
                console.print(f"  [dim]{key:>10}[/] ", end="")
                console.print(value, markup=False)
        for commit in execution.commits:
            console.print(f"  [dim]{'commit':>10}[/] {commit.hash[:10]} ", end="")
            console.print(commit.message, markup=False)
        if execution.commits:
            s = execution.changestats
            stats = f"{s.files} file(s), +{s.insertions} -{s.deletions}"
            console.print(f"  [dim]{'changes':>10}[/] {stats}")
        if execution.error_msg:
            console.print(f"  [dim]{'error':>10}[/] ", end="")
            console.print(execution.error_msg, markup=False, style="red")


@app.command()
def logs(
    ident: Annotated[str, typer.Argument(metavar="ID", help="Task id/prefix or execution id.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the execution ends.")
    ] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print the raw stream-json lines.")] = False,
    stderr: Annotated[bool, typer.Option("--stderr", help="Show stderr.log instead.")] = False,
) -> None:
    """Show an execution's agent log (the task's latest execution by default)."""
    service = _open_service(_settings())
    try:
        try:
            execution = service.latest_execution(ident)
        except (NotFound, ValidationError) as exc:
            raise _fail(str(exc), 2) from exc
        path = Path(execution.stderr_path if stderr else execution.stdout_path)
        _print_log(service, execution, path, follow=follow, raw=raw or stderr)
    finally:
        service.close()


def _print_log(
    service: Service, execution: Execution, path: Path, *, follow: bool, raw: bool
) -> None:
    position = 0
    pending = ""
    while True:
        with contextlib.suppress(FileNotFoundError), path.open("rb") as fh:
            fh.seek(position)
            chunk = fh.read()
            position = fh.tell()
            pending += chunk.decode("utf-8", errors="replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                text = line if raw else describe(line)
                if text:
                    typer.echo(text)
        if not follow or service.store.get_execution(execution.id).end_time is not None:
            if pending.strip():
                text = pending if raw else describe(pending)
                if text:
                    typer.echo(text)
            if follow or position or raw:
                return
            if not path.exists():
                raise _fail(f"no log yet at {path}", 1)
            return
        time.sleep(0.3)


@app.command()
def cancel(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (or a unique prefix).")],
) -> None:
    """Cancel a task. A running agent is stopped (its sandbox is kept)."""
    service = _open_service(_settings())
    try:
        task = _lookup(service, task_id)
        try:
            result = service.cancel(task.id)
        except InvalidTransition as exc:
            raise _fail(f"task {task.id} is already {task.state.value}; nothing to cancel") from exc
        if result.state == TaskState.RUNNING:
            _console().print(f"Asked the orchestrator to stop {task.name} ({_short(task.id)}).")
        else:
            _console().print(f"Cancelled {task.name} ({_short(task.id)}).")
    finally:
        service.close()


@app.command()
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented default config file (to $CLAUDOMATOR_CONFIG or <data dir>/config.toml)."""
    path = config_path()
    data_dir = _settings().data_dir if path.exists() else default_data_dir(os.environ)
    try:
        written = write_default_config(path, data_dir, force=force)
    except ConfigError as exc:
        raise _fail(str(exc), 1) from exc
    _console().print(f"Wrote {written}")


def load_settings_defaults() -> Path:
    import os

    from claudomator.config import default_data_dir

    return default_data_dir(os.environ)


@app.command()
def serve(
    addr: Annotated[
        str | None, typer.Option("--addr", help="host:port to listen on (default: server_addr).")
    ] = None,
) -> None:
    """Start the orchestrator: the pool that runs queued tasks, and the HTTP API."""
    settings = _settings()
    if addr:
        settings = settings.model_copy(update={"server_addr": addr})
    host, _, port = settings.server_addr.rpartition(":")
    if not port.isdigit():
        raise _fail(f"server_addr {settings.server_addr!r} is not host:port", 2)
    service = _open_service(settings)
    try:
        asyncio.run(_serve(settings, service, host or "127.0.0.1", int(port)))
    finally:
        service.close()


async def _serve(settings: Settings, service: Service, host: str, port: int) -> None:
    import uvicorn

    from claudomator.api import create_app

    class _Server(uvicorn.Server):
        # We own SIGINT/SIGTERM: uvicorn would re-raise them after serving, killing the
        # process before the pool has stopped its agents and re-queued their tasks.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    runtime = Runtime(settings, service=service)
    server = _Server(uvicorn.Config(create_app(service), host=host, port=port, log_level="warning"))
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        logger.info("received %s; shutting down", sig.name, extra={"action": "serve_stop"})
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        async with runtime:
            _console(stderr=True).print(
                f"Claudomator {__version__} serving on http://{host}:{port} "
                f"(data: {settings.data_dir}); Ctrl-C to stop.",
                markup=False,
                soft_wrap=True,
            )
            await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main() -> None:
    app()
