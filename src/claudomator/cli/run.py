"""`claudomator run`: store a task file's tasks (after the check for repeats) and run them
with live progress, or show them with ``--dry-run``. Who runs them is
:mod:`~claudomator.cli.orchestration`; the progress :mod:`~claudomator.cli.progress`; what each
came to :mod:`~claudomator.cli.outcomes`."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from claudomator.cli.common import (
    app,
    load,
    make_console,
    open_service,
    plural,
    short_id,
)
from claudomator.cli.confinement import announce, confinement
from claudomator.cli.orchestration import run_until_settled
from claudomator.errors import TaskFileError
from claudomator.models import TaskState

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
    # which confinement; an unusable explicit bubblewrap exits 2, storing nothing
    choice = None if dry_run else confinement(settings)
    service = open_service(settings)
    try:
        ids = _store(service, file, dry_run=dry_run, again=again)
        if not ids:
            return
        if choice is not None:  # once the tasks are stored: a refused write is the one error
            announce(choice)
        final = asyncio.run(run_until_settled(settings, service, ids, parallel))
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
