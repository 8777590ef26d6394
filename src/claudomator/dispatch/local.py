"""The local dispatcher: claims QUEUED tasks from the store and runs them in this process.

One :class:`Pool` per orchestrator process (it implements :class:`~claudomator.dispatch.base.
Dispatcher`). It wakes when told (in-process submits) and polls the
store otherwise (writers in other processes). Per claimed task it creates an execution, prepares a
sandbox, runs the agent, and records the outcome; nothing leaves a task RUNNING behind:

* a cancel request (``Task.cancel_requested``, set by any process) stops the agent -> CANCELLED;
* :meth:`Pool.shutdown` stops every agent (SIGTERM, SIGKILL after the grace period) and puts
  their tasks back to QUEUED with reason "orchestrator shutdown";
* :meth:`Pool.reconcile` (run at start and every minute, see :mod:`claudomator.dispatch.
  liveness`) finds executions whose orchestrator process died, kills
  any agent process group that survived it, and re-queues their tasks ("orchestrator restarted")
  -- unless the execution's recorded delivery already landed on its target (a kill -9 during
  the push): then the record is finished COMPLETED and the agent does not run again.

What to claim is decided by the pure functions of :mod:`claudomator.dispatch.select`; this module
reads their inputs from the store and writes their results. Store methods are synchronous: the
loop calls them only through ``await self.blocking.store(...)`` or
:func:`~claudomator.persist.until_stored`, never directly (a locked database must not stall
the API's routes and streams, which share the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from claudomator import tasklog
from claudomator.agents import Runner
from claudomator.blocking import Blocking
from claudomator.chooser import Choice, Chooser
from claudomator.config import Settings
from claudomator.dispatch.claim import claim, claim_reason, new_execution
from claudomator.dispatch.liveness import RECONCILE_EVERY, Liveness
from claudomator.dispatch.select import (
    Capacity,
    Gate,
    agent_counts,
    dependencies,
    held_by,
    in_scope,
    page_size,
    pick_agent,
)
from claudomator.errors import ClaudomatorError, InvalidTransition, NotFound
from claudomator.execution.attempt import Attempt, Summarizer
from claudomator.execution.stop import StopReason
from claudomator.isolation.base import Launcher
from claudomator.models import AgentStatus, Task, TaskState, utcnow
from claudomator.notify import Notifier
from claudomator.persist import until_stored
from claudomator.readiness import Readiness, assess, resuming_agent
from claudomator.sandbox import Sandboxes
from claudomator.store.base import Store

__all__ = ["Pool"]

logger = logging.getLogger(__name__)


@dataclass
class _Running:
    task: Task
    agent: str
    attempt: Attempt
    job: asyncio.Task[None] | None = None


class Pool:
    """Runs queued tasks, at most ``max_concurrent`` at once (and per-agent limits). Its
    sandboxes and notifier are given (:func:`claudomator.runtime.pool_parts` builds them)."""

    RECONCILE_EVERY = RECONCILE_EVERY  # seconds: also catch orchestrators that die while we run
    CLAIM_PAGE = 64  # queued tasks read at a time: a long queue is not read whole at every wake

    def __init__(
        self,
        settings: Settings,
        store: Store,
        runners: Mapping[str, Runner],
        *,
        sandboxes: Sandboxes,
        notifier: Notifier,
        only: Collection[str] | None = None,
        poll_interval: float = 1.0,
        max_concurrent: int | None = None,
        base_env: Mapping[str, str] | None = None,
        chooser: Chooser | None = None,
        summarizer: Summarizer | None = None,
        probe: Callable[[], Mapping[str, Readiness]] | None = None,
        blocking: Blocking | None = None,
        held_elsewhere: Callable[[], Collection[str]] | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runners = dict(runners)
        self.sandboxes = sandboxes
        self.only = set(only) if only is not None else None  # claim only these task ids
        # the ids of tasks another orchestrator runs itself (a `run` with its own pool): left
        # to it, with their subtasks and checkers; read at every claim round
        self.held_elsewhere = held_elsewhere
        self.poll_interval = poll_interval
        self.max_concurrent = max_concurrent or settings.max_concurrent
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.liveness = Liveness(settings, store)
        self.worker_id = self.liveness.worker_id
        self.chooser = chooser
        # which agents this machine can run (readiness.probe); by default every runner given
        self.probe = probe or self._every_runner
        self.summarizer = summarizer
        self.notifier = notifier
        # the agents' launcher: each task's build check starts through it (None: as it is)
        self.launcher = launcher
        # sandbox work and outcome writes run in these bounded executors, never in asyncio's
        # default one (the API's webhooks and streams need that); the Runtime gives its own,
        # a pool built without (tests, benchmarks) makes and owns a pair
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
        return self.liveness.reconcile()

    # -- claiming ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._closing:
            try:
                await self._watch_cancels()
                await self._claim_all()
                if self.liveness.due(self.RECONCILE_EVERY):
                    await self.blocking.sandbox(self.reconcile)
            except Exception:  # the loop must outlive any one bad iteration
                logger.exception("pool iteration failed", extra={"action": "pool_loop"})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    def _capacity(self, ready: Mapping[str, Readiness]) -> Capacity:
        return Capacity(
            total=self.max_concurrent,
            running=agent_counts([r.agent for r in self._running.values()]),
            limits=self.settings.agent_limits,
            agents=tuple(self.runners),
            ready=ready,
        )

    def _every_runner(self) -> dict[str, Readiness]:
        return {
            name: Readiness(agent=name, usable=True, status=AgentStatus(agent=name))
            for name in self.runners
        }

    def readiness(self) -> dict[str, Readiness]:
        """Every agent's readiness now: this machine's probe and the recorded rate limits.
        An agent without a runner here is not usable. Blocking (it reads the store)."""
        return assess(self._probed(), self.store.agent_statuses(), utcnow())

    async def _readiness(self) -> dict[str, Readiness]:
        """:meth:`readiness` from the loop: the store is read in the store executor."""
        probed = self._probed()
        return assess(probed, await self.blocking.store(self.store.agent_statuses), utcnow())

    def _probed(self) -> dict[str, Readiness]:
        """This machine's probe, with the agents that have no runner here made unusable."""
        return {
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

    async def _choose(self, task: Task, capacity: Capacity) -> Choice | None:
        """The agent for ``task``, or None if it must wait (its agent is unusable or busy)."""
        resuming = None
        if not task.agent.type:
            runs = await self.blocking.store(self.store.executions_of, task.id)
            resuming = resuming_agent(runs)
        pick = pick_agent(task, capacity, resuming=resuming, cached=self._choices.get(task.id))
        if not pick.ask:
            return pick.choice
        chosen = None
        if self.chooser is not None:
            chosen = await self.chooser(
                task, list(pick.available), dict(pick.counts), dict(pick.blocked)
            )
        choice = pick.settle(chosen)
        if choice is not None:
            self._choices[task.id] = choice
        return choice

    async def _claim_all(self) -> None:
        if len(self._running) >= self.max_concurrent:
            return
        ready = await self._readiness()
        held = frozenset(await self.blocking.sandbox(self.held_elsewhere or frozenset))
        # a page about the size of the free slots: most wakes free one slot and claim one task
        size = page_size(self.max_concurrent - len(self._running), self.CLAIM_PAGE)
        offset = 0
        while True:
            page = await self.blocking.store(self.store.queued_tasks, limit=size, offset=offset)
            left = 0  # tasks of this page that left the queue (claimed or failed)
            for task in page:
                if self._closing or len(self._running) >= self.max_concurrent:
                    return
                if not self._in_scope(task) or task.id in self._running:
                    continue
                if held and await self._held(task, held):
                    continue  # a `run` runs it with its own pool (and its -j)
                # writes (a claim, a failed dependency) wait off the loop for a locked database
                if await self.blocking.store(self._dependencies, task) is not Gate.READY:
                    current = await self.blocking.store(self.store.get_task, task.id)
                    left += current.state != TaskState.QUEUED
                    continue
                choice = await self._choose(task, self._capacity(ready))
                if choice is None:
                    continue
                await self._claim(task, choice)
                left += 1  # claimed, or (a lost race) claimed or cancelled by someone else
            if len(page) < size:
                return
            offset += len(page) - left  # the next page starts after the tasks still queued
            size = self.CLAIM_PAGE

    async def _held(self, task: Task, held: frozenset[str]) -> bool:
        """Whether another orchestrator holds ``task`` (see :func:`held_by`)."""
        found: bool = await self.blocking.store(held_by, task, held, self._task_or_none)
        return found

    def _task_or_none(self, task_id: str) -> Task | None:
        try:
            return self.store.get_task(task_id)
        except NotFound:
            return None

    def _in_scope(self, task: Task) -> bool:
        """Whether this pool may run ``task``: all tasks, or those it was given and the
        checkers and subtasks that grew from them."""
        if not in_scope(task, self.only):
            return False
        if self.only is not None:
            self.only.add(task.id)  # its own subtasks and checker follow
        return True

    async def _claim(self, task: Task, choice: Choice) -> None:
        execution = new_execution(self.settings, task, choice, self.worker_id)
        reason = claim_reason(self.worker_id, choice)
        claimed = await claim(self.store, self.blocking, task, execution, reason)
        if claimed is None:
            return  # another process claimed or cancelled it first
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
            launcher=self.launcher,
        )
        running = _Running(claimed, choice.agent, attempt)
        running.job = asyncio.create_task(self._run(running), name=f"task-{task.id}")
        self._running[task.id] = running
        tasklog.started(claimed, execution)

    def _dependencies(self, task: Task) -> Gate:
        """Where ``task``'s dependencies leave it; a broken one fails it (in the store pool)."""
        if not task.depends_on:
            return Gate.READY
        verdict = dependencies(task, self.store.states_of(task.depends_on))
        if verdict.gate is Gate.BROKEN:
            self._fail_queued(task, verdict.reason)
        return verdict.gate

    def _fail_queued(self, task: Task, reason: str) -> None:
        with contextlib.suppress(InvalidTransition):
            self.store.transition(task.id, TaskState.FAILED, reason, expected=TaskState.QUEUED)

    async def _watch_cancels(self) -> None:
        if not self._running:
            return
        requested = await self.blocking.store(self.store.cancel_requested, list(self._running))
        for task_id in requested:
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
        """Every registered agent's status (defaults for agents never used). Blocking."""
        known = self.store.agent_statuses()
        return {name: known.get(name, AgentStatus(agent=name)) for name in self.runners}
