"""The live progress of a run's tasks: a table on a terminal, else a line per change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from claudomator.cli.common import SETTLED, nest, short_id, task_table
from claudomator.models import Task, TaskState, utcnow

if TYPE_CHECKING:  # the service (SQLAlchemy) is loaded when a command opens it
    from claudomator.service import Service

logger = logging.getLogger(__name__)


async def follow_here(
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
            await follow(service, ids, interrupted, live.update, until=until)
    else:
        await follow(service, ids, interrupted, None, _Changes(console), until=until)


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


async def follow(
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
