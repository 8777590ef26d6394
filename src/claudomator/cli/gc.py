"""`claudomator gc`: the retention policy, shown (``--dry-run``) or applied, from the command
line (with or without `serve` running)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from claudomator.cli.common import app, fail, load, make_console, open_service, plural, short_id

if TYPE_CHECKING:  # retention (git, the sandbox package) is loaded when the command runs
    from claudomator.retention import Removal

logger = logging.getLogger(__name__)


def _table(removals: tuple[Removal, ...], data_dir: Path) -> Table:
    from claudomator.retention import human_size

    table = Table(header_style="bold", caption=f"folders are under {escape(str(data_dir))}")
    for column in ("WHAT", "TARGET", "TASK", "WHY", "SIZE"):
        table.add_column(column, overflow="fold")
    for removal in removals:
        if removal.repo:
            target = f"{removal.target} in {removal.repo}"
        else:
            path = Path(removal.target)
            target = str(path.relative_to(data_dir) if path.is_relative_to(data_dir) else path)
        table.add_row(
            removal.kind.value,
            escape(target),
            short_id(removal.task_id) if removal.task_id else "",
            escape(removal.reason),
            human_size(removal.size) if removal.size is not None else "",
        )
    return table


@app.command(rich_help_panel="Set up")
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Only show what would be removed.")
    ] = False,
) -> None:
    """Remove what ended tasks left behind: old log folders, kept sandboxes, merged branches.

    The `[retention]` section of the config sets how many days after its task ended each kind
    is kept (`0` keeps forever):

    * `logs_days` (30): the log folder of each execution, `<data_dir>/logs/<execution-id>`;
    and a deleted task's scratch repository (`<scratch dir>/<task-id>`: a stored task keeps its);

    * `sandboxes_days` (7): kept sandboxes, `<data_dir>/sandboxes/<execution-id>`, warm
    trees unused that long (`<data_dir>/sandboxes/.warm`), and confined agents' private homes
    (`<data_dir>/homes/<task-id>`);

    * `branches_days` (14): `claudomator/*` branches in project repositories whose commits are
    all on another local branch;

    * `unmerged_branches_days` (0: never): `claudomator/*` branches with commits on no other
    branch (that work is lost);

    * `every` ("1h"): how often `serve` and `run` apply the policy themselves (0: only here).

    A task has ended when it is COMPLETED, FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED;
    what no stored task owns (a deleted task's) counts from when it last changed. Nothing of a
    PENDING, QUEUED, RUNNING, BLOCKED or READY task is removed, nor a checked-out branch, nor a
    task itself. Exit 0 when everything planned was removed, 1 when something could not be.
    """
    settings = load()
    service = open_service(settings)
    try:
        planned = service.retention_plan()
        applied = None if dry_run else service.apply_retention(planned)
    finally:
        service.close()
    from claudomator.retention import human_size

    console = make_console()
    errors = make_console(stderr=True)
    for problem in planned.problems:
        errors.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)
    if not planned.removals:
        console.print(
            "Nothing to remove: everything is within the [retention] policy.", markup=False
        )
        return
    console.print(_table(planned.removals, settings.data_dir))
    total = f"{plural(len(planned.removals), 'item')}, {human_size(planned.size)}"
    if applied is None:
        console.print(f"Would remove {total}. Run without --dry-run to remove them.")
        return
    console.print(
        f"Removed {plural(len(applied.removed), 'item')}, {human_size(applied.size)} freed."
    )
    for failure in applied.failed:
        fail(f"{failure.removal.kind.value} {failure.removal.target}: {failure.error}")
    if applied.failed:
        raise typer.Exit(1)
