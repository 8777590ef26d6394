"""`claudomator run`: run a task file's tasks with live progress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from claudomator import delivered
from claudomator.checkout import read_note
from claudomator.cli.common import (
    SETTLED,
    app,
    load,
    make_console,
    nest,
    open_service,
    plural,
    short_id,
    state_text,
    task_table,
)
from claudomator.config import (
    Settings,
)
from claudomator.errors import (
    ClaudomatorError,
    TaskFileError,
)
from claudomator.models import (
    Task,
    TaskState,
    utcnow,
)
from claudomator.orchestrators import Registration, Serving, running_serves
from claudomator.protocol import parse_question

if TYPE_CHECKING:  # the service (SQLAlchemy) is loaded when a command opens it
    from claudomator.service import Duplicate, Service
    from claudomator.taskfile import ParsedTasks

logger = logging.getLogger(__name__)


@app.command(rich_help_panel="Run")
def run(
    file: Annotated[
        Path, typer.Argument(help="YAML task file: one task, or several in a list under `tasks:`.")
    ],
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            "-j",
            min=1,
            help="Run at most N of the file's tasks at once in this process [default: "
            "max_concurrent]. If a `claudomator serve` runs on the same data dir, it runs "
            "them with its own max_concurrent and -j does not apply; a serve started later "
            "leaves them to this run.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show the tasks; run nothing.")
    ] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Run tasks that repeat stored unfinished or COMPLETED ones without asking.",
        ),
    ] = False,
) -> None:
    """Run the tasks of a YAML file and show live progress until they are done.

    Exits 0 when every task COMPLETED (and every acceptance check passed), 1 otherwise,
    2 if the file is invalid (`--dry-run` checks exactly what a run checks) or repeats stored
    tasks (same name, instructions and project, unfinished or COMPLETED) without `--again`.
    Ctrl-C stops the agents and cancels the tasks (sandboxes are kept); SIGTERM re-queues
    them for the next orchestrator instead. While a `claudomator serve` runs on the same data
    dir, it runs the tasks and `run` follows them (Ctrl-C cancels them; SIGTERM leaves them to
    serve); if it stops first, `run` runs the rest itself.
    """
    settings = load()
    service = open_service(settings)
    try:
        ids = _store(service, file, dry_run=dry_run, again=again)
        if not ids:
            return
        final = asyncio.run(_run_until_settled(settings, service, ids, parallel))
    finally:
        service.close()
    ok = all(t.state == TaskState.COMPLETED and t.check_verdict != "fail" for t in final)
    raise typer.Exit(0 if ok else 1)


def _store(service: Service, file: Path, *, dry_run: bool, again: bool) -> list[str]:
    """Validate ``file`` as a run does and store its tasks (nothing with ``dry_run``): their
    ids. Every problem is printed and exits 2; so does a refused repeat."""
    try:
        from claudomator.taskfile import read_taskfile  # YAML and its models: `run` only

        parsed = service.prepare(read_taskfile(file), source=str(file), base_dir=file.parent)
        duplicates = service.duplicates(parsed.tasks)
        if dry_run:
            _print_plan(parsed)
            if duplicates:
                _print_duplicates(file, duplicates, "run will ask, or refuse without --again")
            return []
        if duplicates and not again:
            _confirm_repeat(file, duplicates)
        stored = service.submit(parsed.tasks, source=str(file))
    except TaskFileError as exc:
        err = make_console(stderr=True)
        for problem in exc.problems:
            err.print(str(problem), markup=False, soft_wrap=True)
        n = len(exc.problems)
        summary = f"{n} problem{'s' if n != 1 else ''} in {file}; nothing was stored."
        err.print(summary, style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    return [t.id for t in stored]


def _print_duplicates(file: Path, duplicates: list[Duplicate], then: str) -> None:
    err = make_console(stderr=True)
    n = len(duplicates)
    err.print(
        f"{file}: {plural(n, 'task')} already stored (same name, instructions and project, "
        f"unfinished or COMPLETED); {then}:",
        style="yellow",
        markup=False,
        soft_wrap=True,
    )
    for duplicate in duplicates:
        stored = duplicate.stored
        err.print(
            f"  {stored.name}: {short_id(stored.id)} is {stored.state.value}",
            markup=False,
            soft_wrap=True,
        )


def _confirm_repeat(file: Path, duplicates: list[Duplicate]) -> None:
    """Ask before storing repeats of stored tasks; without a terminal, refuse (exit 2)."""
    if not sys.stdin.isatty():
        _print_duplicates(file, duplicates, "not running them again without --again")
        raise typer.Exit(2)
    _print_duplicates(file, duplicates, "--again runs them again without asking")
    if not typer.confirm("Run them again?", default=False):
        make_console(stderr=True).print("Nothing was stored.", markup=False)
        raise typer.Exit(2)


def _print_plan(parsed: ParsedTasks) -> None:
    """The tasks a run would store. An id is shown only when the file gives it (``id:``): it
    is the id the run stores; the others get a new id when stored."""
    from claudomator.projects import described  # git: only for the dry run's table

    tasks = parsed.tasks
    table = Table(title="Tasks (dry run: nothing stored)", header_style="bold")
    for column in ("ID", "NAME", "AGENT", "PROJECT", "TIMEOUT", "PRIORITY", "DEPENDS ON"):
        table.add_column(column)
    names = {t.id: t.name for t in tasks}
    for task in tasks:
        table.add_row(
            escape(task.id) if task.id in parsed.given_ids else "(new)",
            escape(task.name),
            task.agent.type or "auto",
            escape(described(task.agent.project_dir)),
            f"{task.timeout:g}s" if task.timeout else "default",
            task.priority.value,
            escape(", ".join(names.get(d, short_id(d)) for d in task.depends_on)),
        )
    console = make_console()
    console.print(table)
    if len(parsed.given_ids) < len(tasks):
        console.print(
            "(new): the id is made when the task is stored (give `id:` in the file to choose "
            "it); until then, and after, a task can be named by its name where unique.",
            style="dim",
            markup=False,
            soft_wrap=True,
        )


class _Interrupt:
    """Ctrl-C (SIGINT: the user wants to stop: cancel) or SIGTERM (the machine is going down:
    re-queue, or leave the tasks to serve)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.requeue = False

    def __call__(self, sig: signal.Signals) -> None:
        self.requeue = sig == signal.SIGTERM
        self.event.set()


async def _run_until_settled(
    settings: Settings, service: Service, ids: list[str], parallel: int | None
) -> list[Task]:
    console = make_console()
    interrupt = _Interrupt()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig)
    try:
        serving = running_serves(settings.data_dir)
        if not serving or not await _under_serve(
            settings, service, ids, serving, interrupt, parallel
        ):
            if serving:  # serve stopped before the tasks settled: the rest run here
                console.print(
                    f"{_serves_text(serving)} stopped; running the rest here "
                    f"(at most {parallel or settings.max_concurrent} at once)",
                    style="yellow",
                    markup=False,
                    soft_wrap=True,
                )
            await _in_process(settings, service, ids, parallel, interrupt, console)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    tasks = nest(service.family(ids))
    console.print(task_table(service, tasks))
    _print_outcomes(service, tasks, console)
    return tasks


async def _in_process(
    settings: Settings,
    service: Service,
    ids: list[str],
    parallel: int | None,
    interrupt: _Interrupt,
    console: Console,
) -> None:
    """Run the tasks with a pool of this process (at most ``parallel`` agents at once)."""
    from claudomator.runtime import Runtime  # agents, pool, local model: only when running

    runtime = Runtime(settings, only=ids, max_concurrent=parallel, service=service)
    # a serve started while this runs leaves these tasks (and what grows from them) to us
    holding = Registration(settings.data_dir, "", runtime.pool.max_concurrent, tasks=ids)
    with holding:
        async with runtime:
            await _follow_here(service, ids, interrupt.event, console)
            if interrupt.event.is_set():
                runtime.requeue_on_exit = interrupt.requeue
                console.print("[yellow]Interrupted: stopping agents…[/]")
                if not interrupt.requeue:  # Ctrl-C: the waiting tasks are cancelled too
                    _cancel_unfinished(service, ids, (TaskState.QUEUED, TaskState.PENDING))


async def _under_serve(
    settings: Settings,
    service: Service,
    ids: list[str],
    serving: list[Serving],
    interrupt: _Interrupt,
    parallel: int | None,
) -> bool:
    """Follow the tasks while the running serve runs them; False if it stops before they
    settle (this process then runs the rest)."""
    one = len(serving) == 1
    limit = sum(s.max_concurrent for s in serving)
    known = all(s.max_concurrent for s in serving)
    concurrency = f" ({'its' if one else 'their'} concurrency: {limit})" if known else ""
    err = make_console(stderr=True)
    err.print(
        f"{_serves_text(serving)} {'is' if one else 'are'} running on this data dir: "
        f"{'it runs' if one else 'they run'} these tasks{concurrency}"
        f"{'; -j does not apply' if parallel else ''}",
        style="yellow",
        markup=False,
        soft_wrap=True,
    )
    console = make_console()
    gone = asyncio.Event()

    def serve_gone() -> bool:
        if not running_serves(settings.data_dir):
            gone.set()
        return gone.is_set()

    await _follow_here(service, ids, interrupt.event, console, until=serve_gone)
    if gone.is_set() and not interrupt.event.is_set():
        return all(t.state in SETTLED for t in service.family(ids))
    if interrupt.event.is_set() and interrupt.requeue:
        console.print(
            f"[yellow]Stopped following; {_serves_text(serving)} keeps running them "
            "(`claudomator list` shows how they are doing)[/]"
        )
    elif interrupt.event.is_set():
        console.print("[yellow]Interrupted: cancelling the tasks; serve stops their agents…[/]")
        _cancel_unfinished(service, ids, (TaskState.QUEUED, TaskState.PENDING, TaskState.RUNNING))
        # serve stops their agents within kill_grace_seconds of its next look: wait that long
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.kill_grace_seconds + 10
        await _follow(service, ids, asyncio.Event(), None, until=lambda: loop.time() > deadline)
    return True


def _serves_text(serving: list[Serving]) -> str:
    """``serve (pid 12)``, ``serves (pids 12, 34)``."""
    pids = ", ".join(str(s.pid) for s in serving)
    return f"serve (pid {pids})" if len(serving) == 1 else f"serves (pids {pids})"


def _cancel_unfinished(service: Service, ids: list[str], states: tuple[TaskState, ...]) -> None:
    for task in service.family(ids):
        if task.state in states:
            with contextlib.suppress(ClaudomatorError):
                service.cancel(task.id)


async def _follow_here(
    service: Service,
    ids: list[str],
    interrupted: asyncio.Event,
    console: Console,
    until: Callable[[], bool] | None = None,
) -> None:
    """Follow as a live table on a terminal (replaced by the final one), else a line per
    change of state."""
    if console.is_terminal:
        with Live(console=console, refresh_per_second=4, transient=True) as live:
            await _follow(service, ids, interrupted, live.update, until=until)
    else:
        await _follow(service, ids, interrupted, None, _Changes(console), until=until)


class _Changes:
    """Prints a line for each task whose state changed since the last look."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.seen: dict[str, tuple[TaskState, str]] = {}

    def __call__(self, tasks: list[Task], waiting: dict[str, str]) -> None:
        for task in tasks:
            why = waiting.get(task.id, "")
            if self.seen.get(task.id) == (task.state, why):
                continue
            self.seen[task.id] = (task.state, why)
            at = utcnow().strftime("%H:%M:%S")
            agent = f" ({task.agent.type})" if task.agent.type else ""
            waits = f" - waiting: {why}" if why else ""
            self.console.print(
                f"{at} {short_id(task.id)} {task.name}: {task.state.value}{agent}{waits}",
                markup=False,
                soft_wrap=True,
            )


async def _follow(
    service: Service,
    ids: list[str],
    interrupted: asyncio.Event,
    show_table: Callable[[RenderableType], None] | None,
    show_changes: Callable[[list[Task], dict[str, str]], None] | None = None,
    until: Callable[[], bool] | None = None,
) -> None:
    """Look at the tasks twice a second until all of them settle, the user interrupts or
    ``until()`` is true; a queued task that no agent here can take says why it waits."""
    while True:
        tasks = nest(service.family(ids))
        waiting = service.waiting_reasons(tasks)
        if show_table is not None:
            notes = [
                Text(f"{short_id(i)} waits: {why}", style="yellow") for i, why in waiting.items()
            ]
            show_table(Group(task_table(service, tasks, activity=True), *notes))
        if show_changes is not None:
            show_changes(tasks, waiting)
        if all(t.state in SETTLED for t in tasks) or interrupted.is_set():
            return
        if until is not None and until():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(interrupted.wait(), 0.5)


def _print_outcomes(service: Service, tasks: list[Task], console: Console) -> None:
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
