"""Who runs the tasks of a `claudomator run` until they settle: a `claudomator serve` on the
same data dir (this process follows them), else, or once that serve stops, a pool in this
process. Ctrl-C cancels the tasks; SIGTERM re-queues them (or leaves them to the serve)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING

from rich.console import Console

from claudomator.cli.common import SETTLED, make_console, nest, task_table
from claudomator.cli.outcomes import print_outcomes
from claudomator.cli.progress import follow, follow_here
from claudomator.config import Settings
from claudomator.errors import ClaudomatorError
from claudomator.models import Task, TaskState
from claudomator.orchestrators import Registration, Serving, running_serves

if TYPE_CHECKING:  # the service (SQLAlchemy) is loaded when a command opens it
    from claudomator.service import Service

logger = logging.getLogger(__name__)


class _Interrupt:
    """Ctrl-C (SIGINT: the user wants to stop: cancel) or SIGTERM (the machine is going down:
    re-queue, or leave the tasks to serve)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.requeue = False

    def __call__(self, sig: signal.Signals) -> None:
        self.requeue = sig == signal.SIGTERM
        self.event.set()


async def run_until_settled(
    settings: Settings, service: Service, ids: list[str], parallel: int | None
) -> list[Task]:
    """Have the tasks ``ids`` run (by a running serve, else or then here) and follow them until
    they settle or the user interrupts; print the final table and outcomes; the tasks, nested."""
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
    print_outcomes(service, tasks, console)
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
            await follow_here(service, ids, interrupt.event, console)
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

    await follow_here(service, ids, interrupt.event, console, until=serve_gone)
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
        await follow(service, ids, asyncio.Event(), None, until=lambda: loop.time() > deadline)
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
