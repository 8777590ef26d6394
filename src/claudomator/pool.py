"""The dispatcher: claims QUEUED tasks from the store and runs them within the limits.

One :class:`Pool` per orchestrator process. It wakes when told (in-process submits) and polls the
store otherwise (writers in other processes). Per claimed task it creates an execution, prepares a
sandbox, runs the agent, and records the outcome; nothing leaves a task RUNNING behind:

* a cancel request (``Task.cancel_requested``, set by any process) stops the agent -> CANCELLED;
* :meth:`Pool.shutdown` stops every agent (SIGTERM, SIGKILL after the grace period) and puts
  their tasks back to QUEUED with reason "orchestrator shutdown";
* :meth:`Pool.reconcile` (run at start) finds executions whose orchestrator process died, kills
  any agent process group that survived it, and re-queues their tasks ("orchestrator restarted")
  -- unless the execution's recorded delivery already landed on its target (a kill -9 during
  the push): then the record is finished COMPLETED and the agent does not run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from claudomator import tasklog
from claudomator.agents import DEFAULT_AGENT, Runner
from claudomator.blocking import Blocking
from claudomator.chooser import Choice, Chooser
from claudomator.config import Settings
from claudomator.errors import ClaudomatorError, InvalidTransition
from claudomator.execution.attempt import Attempt, Summarizer
from claudomator.execution.stop import StopReason
from claudomator.models import AgentStatus, Execution, Task, TaskState, new_id, utcnow
from claudomator.notify import Notifier
from claudomator.persist import until_stored
from claudomator.projects import all_projects
from claudomator.readiness import Readiness, assess, resuming_agent, waiting_reason
from claudomator.reconcile import recover, worker_identity
from claudomator.sandbox import Sandboxes
from claudomator.store.base import Store
from claudomator.webpush import WebPush

__all__ = ["Pool", "worker_identity"]  # worker_identity: where it lived before reconcile.py

logger = logging.getLogger(__name__)

_FAILED_DEPENDENCY = frozenset(
    {TaskState.FAILED, TaskState.TIMED_OUT, TaskState.BUDGET_EXCEEDED, TaskState.CANCELLED}
)


@dataclass
class _Running:
    task: Task
    agent: str
    attempt: Attempt
    job: asyncio.Task[None] | None = None


class Pool:
    """Runs queued tasks, at most ``max_concurrent`` at once (and per-agent limits)."""

    RECONCILE_EVERY = 60.0  # seconds: also catch orchestrators that die while we run
    CLAIM_PAGE = 64  # queued tasks read at a time: a long queue is not read whole at every wake

    def __init__(
        self,
        settings: Settings,
        store: Store,
        runners: Mapping[str, Runner],
        *,
        sandboxes: Sandboxes | None = None,
        only: Collection[str] | None = None,
        poll_interval: float = 1.0,
        max_concurrent: int | None = None,
        base_env: Mapping[str, str] | None = None,
        chooser: Chooser | None = None,
        summarizer: Summarizer | None = None,
        notifier: Notifier | None = None,
        probe: Callable[[], Mapping[str, Readiness]] | None = None,
        blocking: Blocking | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runners = dict(runners)
        self.sandboxes = sandboxes or Sandboxes(
            settings.sandboxes_dir,
            data_dir=settings.data_dir,  # plain project folders must not be or hold these
            projects=lambda: [Path(p.dir) for p, _ in all_projects(settings, store)],
        )
        self.only = set(only) if only is not None else None  # claim only these task ids
        self.poll_interval = poll_interval
        self.max_concurrent = max_concurrent or settings.max_concurrent
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.worker_id = worker_identity()
        self.chooser = chooser
        # which agents this machine can run (readiness.probe); by default every runner given
        self.probe = probe or self._every_runner
        self.summarizer = summarizer
        self.notifier = notifier or Notifier(
            settings.webhook_url, settings.webhook_secret, push=WebPush(settings, store)
        )
        # sandbox work and outcome writes run in these bounded executors, never in asyncio's
        # default one (the API's webhooks and streams need that); made here if not given
        self._owns_blocking = blocking is None
        self.blocking = blocking or Blocking.for_slots(self.max_concurrent)
        self._running: dict[str, _Running] = {}
        self._choices: dict[str, Choice] = {}  # classifier answers, asked once per task
        self._wake = asyncio.Event()
        self._closing = False
        self._loop_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Reconcile what a dead orchestrator left behind, then start claiming."""
        await self.blocking.sandbox(self.reconcile)
        self._loop_task = asyncio.create_task(self._loop(), name="claudomator-pool")

    def wake(self) -> None:
        """Look at the queue now (an in-process submit or a finished task)."""
        self._wake.set()

    @property
    def running(self) -> dict[str, str]:
        """Task id -> agent of the tasks this pool is running now."""
        return {task_id: r.agent for task_id, r in self._running.items()}

    async def shutdown(self, *, requeue: bool = True) -> None:
        """Stop claiming, stop every running agent and wait for their tasks to be recorded.

        Tasks go back to QUEUED ("orchestrator shutdown") if ``requeue``, else CANCELLED.
        """
        self._closing = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop_task
        for running in self._running.values():
            running.attempt.stop_reason = StopReason.SHUTDOWN if requeue else StopReason.CANCEL
            running.attempt.stop.set()
        jobs = [r.job for r in self._running.values() if r.job is not None]
        if jobs:
            logger.info("waiting for %d agent(s) to stop", len(jobs), extra={"action": "shutdown"})
            await asyncio.gather(*jobs, return_exceptions=True)
        await self.notifier.drain()
        if self._owns_blocking:
            await asyncio.get_running_loop().run_in_executor(None, self.blocking.shutdown)

    def reconcile(self) -> int:
        """Recover tasks whose execution belongs to an orchestrator process that is gone
        (see :func:`claudomator.reconcile.recover`); the number of tasks moved."""
        return recover(self.settings, self.store)

    # -- claiming ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        last_reconcile = time.monotonic()
        while not self._closing:
            try:
                self._watch_cancels()
                await self._claim_all()
                if time.monotonic() - last_reconcile > self.RECONCILE_EVERY:
                    last_reconcile = time.monotonic()
                    await self.blocking.sandbox(self.reconcile)
            except Exception:  # the loop must outlive any one bad iteration
                logger.exception("pool iteration failed", extra={"action": "pool_loop"})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    def _count(self, agent: str) -> int:
        return sum(r.agent == agent for r in self._running.values())

    def _has_slot(self, agent: str) -> bool:
        if len(self._running) >= self.max_concurrent:
            return False
        limit = self.settings.agent_limits.get(agent)
        return limit is None or self._count(agent) < limit

    def _every_runner(self) -> dict[str, Readiness]:
        return {
            name: Readiness(agent=name, usable=True, status=AgentStatus(agent=name))
            for name in self.runners
        }

    def readiness(self) -> dict[str, Readiness]:
        """Every agent's readiness now: this machine's probe and the recorded rate limits.
        An agent without a runner here is not usable."""
        probed = {
            name: r
            if name in self.runners or not r.usable
            else r.model_copy(
                update={
                    "usable": False,
                    "reasons": ("no runner for it here",),
                    "short": "no runner",
                }
            )
            for name, r in self.probe().items()
        }
        return assess(probed, self.store.agent_statuses(), utcnow())

    async def _choose(self, task: Task, ready: Mapping[str, Readiness]) -> Choice | None:
        """The agent for ``task``, or None if it must wait (its agent is unusable or busy)."""
        resuming = None if task.agent.type else self._resuming_agent(task)
        if waiting_reason(task, ready, resuming) is not None:
            return None
        pinned = task.agent.type
        if pinned:
            return Choice(pinned)
        if resuming is not None:  # an answered question resumes with the agent that asked it
            return Choice(resuming, reason="resumes its session")
        cached = self._choices.get(task.id)
        if cached is not None and cached.agent in ready and ready[cached.agent].usable:
            return cached
        usable = [n for n in self.runners if n in ready and ready[n].usable]
        # an agent whose credentials were not found is given a task only if no other can be
        trusted = [n for n in usable if ready[n].credentials is not False]
        available = [n for n in (trusted or usable) if self._has_slot(n)]
        if not available:
            return None
        blocked = {n: "; ".join(r.reasons) for n, r in ready.items() if not r.usable}
        counts = {name: self._count(name) for name in self.runners}
        choice: Choice | None = None
        if self.chooser is not None:
            choice = await self.chooser(task, available, counts, blocked)
            if choice.agent not in available:
                choice = None
        if choice is None:
            least = min(available, key=lambda a: (counts[a], a != DEFAULT_AGENT))
            choice = Choice(least, reason="least-loaded available agent")
        self._choices[task.id] = choice
        return choice

    def _resuming_agent(self, task: Task) -> str | None:
        return resuming_agent(self.store.executions_of(task.id))

    async def _claim_all(self) -> None:
        if len(self._running) >= self.max_concurrent:
            return
        ready = self.readiness()
        # a page about the size of the free slots: most wakes free one slot and claim one task
        size = min(self.CLAIM_PAGE, max(8, 2 * (self.max_concurrent - len(self._running))))
        offset = 0
        while True:
            page = self.store.queued_tasks(limit=size, offset=offset)
            left = 0  # tasks of this page that left the queue (claimed or failed)
            for task in page:
                if self._closing or len(self._running) >= self.max_concurrent:
                    return
                if not self._in_scope(task) or task.id in self._running:
                    continue
                # writes (a claim, a failed dependency) wait off the loop for a locked database
                if not await self.blocking.store(self._dependencies_ready, task):
                    left += self.store.get_task(task.id).state != TaskState.QUEUED
                    continue
                choice = await self._choose(task, ready)
                if choice is None or not self._has_slot(choice.agent):
                    continue
                await self._claim(task, choice)
                left += 1  # claimed, or (a lost race) claimed or cancelled by someone else
            if len(page) < size:
                return
            offset += len(page) - left  # the next page starts after the tasks still queued
            size = self.CLAIM_PAGE

    def _in_scope(self, task: Task) -> bool:
        """Whether this pool may run ``task``: all tasks, or those it was given and the
        checkers and subtasks that grew from them."""
        if self.only is None or task.id in self.only:
            return True
        related = {task.parent_task_id, task.checker_for_task_id} & self.only
        if related:
            self.only.add(task.id)
        return bool(related)

    async def _claim(self, task: Task, choice: Choice) -> None:
        execution = self._new_execution(task, choice)
        reason = f"claimed by {self.worker_id}"
        if choice.reason:
            model = f"/{choice.model}" if choice.model else ""
            reason += f"; agent {choice.agent}{model}: {choice.reason}"
        # written off the loop (a locked database must not stall the API), and shielded: a
        # shutdown that cancels us meanwhile must not leave a claim without its attempt
        write = asyncio.ensure_future(
            self.blocking.store(
                self.store.transition,
                task.id,
                TaskState.RUNNING,
                reason,
                expected=TaskState.QUEUED,
                execution=execution,
            )
        )
        try:
            claimed = await asyncio.shield(write)
        except InvalidTransition:
            return  # another process claimed or cancelled it first
        except asyncio.CancelledError:
            await self._unclaim(write, task.id, execution.id)
            raise
        self._choices.pop(task.id, None)
        attempt = Attempt(
            settings=self.settings,
            store=self.store,
            sandboxes=self.sandboxes,
            runner=self.runners[choice.agent],
            task=claimed,
            execution=execution,
            stop=asyncio.Event(),
            base_env=self.base_env,
            notifier=self.notifier,
            blocking=self.blocking,
            summarizer=self.summarizer,
        )
        running = _Running(claimed, choice.agent, attempt)
        running.job = asyncio.create_task(self._run(running), name=f"task-{task.id}")
        self._running[task.id] = running
        tasklog.started(claimed, execution)

    async def _unclaim(self, write: asyncio.Future[Task], task_id: str, execution_id: str) -> None:
        """Put back a claim whose write landed while we were being stopped."""
        try:
            await write
        except ClaudomatorError:
            return  # the claim did not happen
        reason = "orchestrator shutdown before it started; re-queued"
        try:
            await self.blocking.store(
                self.store.close_running_execution, execution_id, TaskState.QUEUED, reason
            )
            await self.blocking.store(
                self.store.transition, task_id, TaskState.QUEUED, reason, expected=TaskState.RUNNING
            )
        except ClaudomatorError as exc:  # the next start's reconcile re-queues it
            logger.error(
                "task %s: claimed during shutdown and not put back: %s",
                task_id,
                exc,
                extra={"action": "claim"},
            )

    def _new_execution(self, task: Task, choice: Choice) -> Execution:
        execution_id = new_id()
        log_dir = self.settings.logs_dir / execution_id
        return Execution(
            id=execution_id,
            task_id=task.id,
            agent=choice.agent,
            model=task.agent.model or choice.model,
            stdout_path=str(log_dir / "stdout.log"),
            stderr_path=str(log_dir / "stderr.log"),
            session_id=new_id(),
            worker_id=self.worker_id,
        )

    def _dependencies_ready(self, task: Task) -> bool:
        if not task.depends_on:
            return True
        states = self.store.states_of(task.depends_on)
        for dep in task.depends_on:
            state = states.get(dep)
            if state is None:
                self._fail_queued(task, f"dependency {dep} does not exist")
                return False
            if state in _FAILED_DEPENDENCY:
                self._fail_queued(task, f"dependency {dep} ended {state.value}")
                return False
        return all(states[d] == TaskState.COMPLETED for d in task.depends_on)

    def _fail_queued(self, task: Task, reason: str) -> None:
        with contextlib.suppress(InvalidTransition):
            self.store.transition(task.id, TaskState.FAILED, reason, expected=TaskState.QUEUED)

    def _watch_cancels(self) -> None:
        if not self._running:
            return
        for task_id in self.store.cancel_requested(self._running):
            running = self._running.get(task_id)
            if running is None or running.attempt.stop.is_set():
                continue
            logger.info("cancelling task %s", task_id, extra={"action": "cancel"})
            running.attempt.stop_reason = StopReason.CANCEL
            running.attempt.stop.set()

    async def _run(self, running: _Running) -> None:
        try:
            await running.attempt.run()
            ended = running.attempt.execution
        except Exception as exc:  # never leave a task RUNNING because of a bug
            ended = running.attempt.execution.model_copy(
                update={"status": TaskState.FAILED, "error_msg": f"internal error: {exc!r}"}
            )
            logger.exception("task %s crashed", running.task.id, extra={"action": "execute"})
            try:
                await until_stored(
                    f"task {running.task.id}: internal-error outcome",
                    functools.partial(self._record_crash, running, exc),
                    store=self.store,
                    blocking=self.blocking,
                )
            except ClaudomatorError as why:  # not the database refusing: nothing to wait for
                logger.error(
                    "task %s: the internal error could not be recorded: %s",
                    running.task.id,
                    why,
                    extra={"action": "execute"},
                )
        finally:
            self._running.pop(running.task.id, None)
            self._wake.set()
        tasklog.ended(running.task, ended, running.attempt.delivered_to)

    def _record_crash(self, running: _Running, exc: Exception) -> None:
        """FAILED "internal error" for the execution, and for its task if still RUNNING."""
        execution = self.store.get_execution(running.attempt.execution.id)
        self.store.save_execution(
            execution.model_copy(
                update={
                    "status": TaskState.FAILED,
                    "end_time": utcnow(),
                    "error_msg": f"internal error: {exc!r}",
                }
            )
        )
        with contextlib.suppress(InvalidTransition):
            self.store.transition(
                running.task.id,
                TaskState.FAILED,
                f"internal error: {exc}",
                expected=TaskState.RUNNING,
            )

    def agent_health(self) -> dict[str, AgentStatus]:
        """Every registered agent's status (defaults for agents never used)."""
        known = self.store.agent_statuses()
        return {name: known.get(name, AgentStatus(agent=name)) for name in self.runners}
