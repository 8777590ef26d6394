"""A claim: a QUEUED task moved to RUNNING with its new execution, in one guarded write.

The write runs in the store executor and is shielded from cancellation: a shutdown that cancels
the claiming coroutine meanwhile waits for the write and, if it landed, puts the task back
(QUEUED), so no claim is left without the attempt that would finish it.
"""

from __future__ import annotations

import asyncio
import logging

from claudomator.blocking import Blocking
from claudomator.chooser import Choice
from claudomator.config import Settings
from claudomator.errors import ClaudomatorError, InvalidTransition
from claudomator.models import Execution, Task, TaskState, new_id
from claudomator.store.base import Store

logger = logging.getLogger(__name__)


def new_execution(settings: Settings, task: Task, choice: Choice, worker_id: str) -> Execution:
    """The execution a claim of ``task`` by ``worker_id`` inserts (a fresh session id)."""
    execution_id = new_id()
    log_dir = settings.logs_dir / execution_id
    return Execution(
        id=execution_id,
        task_id=task.id,
        agent=choice.agent,
        model=task.agent.model or choice.model,
        stdout_path=str(log_dir / "stdout.log"),
        stderr_path=str(log_dir / "stderr.log"),
        session_id=new_id(),
        worker_id=worker_id,
    )


def claim_reason(worker_id: str, choice: Choice) -> str:
    """The reason of the QUEUED -> RUNNING event: who claimed it, and why this agent."""
    reason = f"claimed by {worker_id}"
    if choice.reason:
        model = f"/{choice.model}" if choice.model else ""
        reason += f"; agent {choice.agent}{model}: {choice.reason}"
    return reason


async def claim(
    store: Store, blocking: Blocking, task: Task, execution: Execution, reason: str
) -> Task | None:
    """QUEUED -> RUNNING with ``execution``; None if another process claimed or cancelled the
    task first. Cancelled meanwhile, it waits for the write and undoes a claim that landed."""
    write = asyncio.ensure_future(
        blocking.store(
            store.transition,
            task.id,
            TaskState.RUNNING,
            reason,
            expected=TaskState.QUEUED,
            execution=execution,
        )
    )
    try:
        return await asyncio.shield(write)
    except InvalidTransition:
        return None
    except asyncio.CancelledError:
        await _unclaim(store, blocking, write, task.id, execution.id)
        raise


async def _unclaim(
    store: Store, blocking: Blocking, write: asyncio.Future[Task], task_id: str, execution_id: str
) -> None:
    """Put back a claim whose write landed while we were being stopped."""
    try:
        await write
    except ClaudomatorError:
        return  # the claim did not happen
    reason = "orchestrator shutdown before it started; re-queued"
    try:
        await blocking.store(store.close_running_execution, execution_id, TaskState.QUEUED, reason)
        await blocking.store(
            store.transition, task_id, TaskState.QUEUED, reason, expected=TaskState.RUNNING
        )
    except ClaudomatorError as exc:  # the next start's reconcile re-queues it
        logger.error(
            "task %s: claimed during shutdown and not put back: %s",
            task_id,
            exc,
            extra={"action": "claim"},
        )
