"""Recovery of executions whose orchestrator process died (kill -9, a crash, a reboot).

An orchestrator is named by :func:`worker_identity`; :func:`owner_alive` tells whether the
one that claimed an execution still runs. :func:`recover` (the pool runs it at start and
every minute) kills what such an execution left running and moves its task on: re-queued
("orchestrator restarted", or FAILED by ``on_restart``), or COMPLETED when its delivery had
already landed on its target (a kill -9 during the push; see :mod:`claudomator.recovery`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path

from claudomator import naming, projects, recovery
from claudomator.checker import checker_task
from claudomator.config import Settings
from claudomator.errors import InvalidTransition, NotFound
from claudomator.models import Execution, TaskState
from claudomator.process import kill_marked_sync
from claudomator.store.base import Store

logger = logging.getLogger(__name__)


def _start_ticks(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[19]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()[:8]
    except OSError:
        return "noboot"


def worker_identity() -> str:
    """``<host>:<pid>:<boot>-<start>`` of this orchestrator process.

    The boot id and start time make the identity unique even when pids are reused (after a
    reboot or a container restart the same pid can belong to someone else).
    """
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_boot_id()}-{_start_ticks(pid) or 0}"


def owner_alive(worker_id: str) -> bool | None:
    """Whether the orchestrator named ``worker_id`` still runs; None if not ours to judge."""
    host, _, rest = worker_id.partition(":")
    pid_text, _, stamp = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None  # another machine's work (or an unknown format)
    boot, _, start = stamp.partition("-")
    if boot != _boot_id():
        return False  # it ran before the last boot
    return _start_ticks(int(pid_text)) == start


def recover(settings: Settings, store: Store) -> int:
    """Recover tasks whose execution belongs to an orchestrator process that is gone.

    Every process of such an execution (found by its environment mark, so detached ones
    too) is killed; the execution is closed only if it is still RUNNING, and its task is
    moved only if that execution is still the task's latest, so two orchestrators
    reconciling at once never re-queue a live claim.
    """
    count = 0
    target = TaskState.QUEUED if settings.on_restart == "requeue" else TaskState.FAILED
    reason = "orchestrator restarted"
    for execution in store.running_executions():
        if owner_alive(execution.worker_id) is not False:
            continue
        kill_marked_sync(execution.id, settings.kill_grace_seconds)
        if _finish_delivered(settings, store, execution):
            count += 1
            continue
        error = f"{reason}: the orchestrator running it died"
        status = TaskState.QUEUED if target == TaskState.QUEUED else TaskState.FAILED
        # an agent that was started may have spent money nobody recorded
        started = execution.pid is not None
        if not store.close_running_execution(execution.id, status, error, cost_known=not started):
            continue
        latest = store.latest_executions([execution.task_id]).get(execution.task_id)
        if latest is None or latest.id != execution.id:
            continue
        with contextlib.suppress(InvalidTransition, NotFound):
            store.transition(execution.task_id, target, reason, expected=TaskState.RUNNING)
            count += 1
    if count:
        logger.warning("recovered %d task(s) left running", count, extra={"action": "reconcile"})
    return count


def _finish_delivered(settings: Settings, store: Store, execution: Execution) -> bool:
    """COMPLETED for a dead orchestrator's execution whose delivery had landed (and its
    checker queued, if the task has acceptance criteria). A review project's work is
    left to the re-run: it would wait READY with state this recovery does not rebuild."""
    intent = store.delivery_intent(execution.id)
    if intent is None:
        return False
    # the task's own folder first: a monorepo package may be a review project of its own,
    # while the intent names the repository root
    try:
        task = store.get_task(execution.task_id)
    except NotFound:
        task = None
    task_dir = task.agent.project_dir if task else ""
    for folder in dict.fromkeys((task_dir, intent.project_dir)):
        project = projects.by_dir(settings, store, folder)
        if project is not None:
            if project.review:
                return False
            break
    runs = store.executions_of(execution.task_id)
    branches = naming.task_branches(execution.task_id, task.name if task else "", runs)
    found = recovery.landed(intent, branches)
    if found is None:
        return False
    if not store.close_running_execution(
        execution.id,
        TaskState.COMPLETED,
        "",
        commits=found.commits,
        delivery=found.delivery,
    ):
        return False
    logger.warning(
        "task %s: its work was delivered (%s) before the orchestrator died; not run again",
        execution.task_id,
        found.target,
        extra={"action": "reconcile"},
    )
    latest = store.latest_executions([execution.task_id]).get(execution.task_id)
    if latest is not None and latest.id == execution.id:
        with contextlib.suppress(InvalidTransition, NotFound):
            task = store.get_task(execution.task_id)
            if task.acceptance_criteria and task.state == TaskState.RUNNING:
                done = store.get_execution(execution.id)
                store.add_tasks([checker_task(task, done, found.target)])
            store.transition(
                execution.task_id,
                TaskState.COMPLETED,
                f"orchestrator restarted; delivered to {found.target} before it died",
                expected=TaskState.RUNNING,
            )
    return True
