"""The dispatcher: claims QUEUED tasks from the store and runs them within the limits.

One :class:`Pool` per orchestrator process. It wakes when told (in-process submits) and polls the
store otherwise (writers in other processes). Per claimed task it creates an execution, prepares a
sandbox, runs the agent, and records the outcome; nothing leaves a task RUNNING behind:

* a cancel request (``Task.cancel_requested``, set by any process) stops the agent -> CANCELLED;
* :meth:`Pool.shutdown` stops every agent (SIGTERM, SIGKILL after the grace period) and puts
  their tasks back to QUEUED with reason "orchestrator shutdown";
* :meth:`Pool.reconcile` (run at start) finds executions whose orchestrator process died, kills
  any agent process group that survived it, and re-queues their tasks ("orchestrator restarted").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from claudomator.agents import DEFAULT_AGENT, Runner
from claudomator.attempt import Attempt, Summarizer
from claudomator.classify import Choice, Chooser
from claudomator.config import Settings
from claudomator.errors import ClaudomatorError, InvalidTransition, NotFound
from claudomator.models import AgentStatus, Execution, Task, TaskState, new_id, utcnow
from claudomator.notify import Notifier
from claudomator.process import group_alive, kill_group_sync, kill_marked_sync
from claudomator.sandbox import Sandboxes
from claudomator.store import Store

logger = logging.getLogger(__name__)

_FAILED_DEPENDENCY = frozenset(
    {TaskState.FAILED, TaskState.TIMED_OUT, TaskState.BUDGET_EXCEEDED, TaskState.CANCELLED}
)


def worker_identity() -> str:
    """``<host>:<pid>`` of this orchestrator process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _Running:
    task: Task
    agent: str
    attempt: Attempt
    job: asyncio.Task[None] | None = None


class Pool:
    """Runs queued tasks, at most ``max_concurrent`` at once (and per-agent limits)."""

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
        usable: Collection[str] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runners = dict(runners)
        self.sandboxes = sandboxes or Sandboxes(settings.sandboxes_dir)
        self.only = set(only) if only is not None else None  # claim only these task ids
        self.poll_interval = poll_interval
        self.max_concurrent = max_concurrent or settings.max_concurrent
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.worker_id = worker_identity()
        self.chooser = chooser
        # agents an unpinned task may be given (installed CLIs, a configured local model)
        self.usable = set(usable) if usable is not None else set(self.runners)
        self.summarizer = summarizer
        self.notifier = notifier or Notifier(settings.webhook_url, settings.webhook_secret)
        self._running: dict[str, _Running] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._loop_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Reconcile what a dead orchestrator left behind, then start claiming."""
        await asyncio.to_thread(self.reconcile)
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
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for running in self._running.values():
            running.attempt.stop_reason = "shutdown" if requeue else "cancel"
            running.attempt.stop.set()
        jobs = [r.job for r in self._running.values() if r.job is not None]
        if jobs:
            logger.info("waiting for %d agent(s) to stop", len(jobs), extra={"action": "shutdown"})
            await asyncio.gather(*jobs, return_exceptions=True)

    def reconcile(self) -> int:
        """Re-queue tasks whose execution belongs to an orchestrator process that is gone."""
        host = socket.gethostname()
        count = 0
        for execution in self.store.running_executions():
            owner_host, _, owner_pid = execution.worker_id.rpartition(":")
            if owner_host != host or not owner_pid.isdigit():
                continue  # another machine's work (or unknown): not ours to judge
            if int(owner_pid) == os.getpid() or _pid_alive(int(owner_pid)):
                continue
            if execution.pid is not None and group_alive(execution.pid):
                kill_group_sync(execution.pid, self.settings.kill_grace_seconds)
            kill_marked_sync(execution.id, self.settings.kill_grace_seconds)
            reason = "orchestrator restarted"
            target = TaskState.QUEUED if self.settings.on_restart == "requeue" else TaskState.FAILED
            self.store.save_execution(
                execution.model_copy(
                    update={
                        "status": TaskState.FAILED,
                        "end_time": utcnow(),
                        "error_msg": f"{reason}: the orchestrator running it died",
                    }
                )
            )
            with contextlib.suppress(InvalidTransition, NotFound):
                self.store.transition(execution.task_id, target, reason, expected=TaskState.RUNNING)
                count += 1
        if count:
            logger.warning(
                "recovered %d task(s) left running", count, extra={"action": "reconcile"}
            )
        return count

    # -- claiming ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._closing:
            try:
                self._watch_cancels()
                await self._claim_all()
            except ClaudomatorError:
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

    def _blocked_agents(self) -> dict[str, str]:
        """Agents that must not start now (rate-limited or out of quota), with why."""
        now = utcnow()
        blocked: dict[str, str] = {}
        for name, status in self.store.agent_statuses().items():
            until = status.blocked_until(now)
            if until is not None:
                kind = "out of quota" if status.unavailable_until == until else "rate-limited"
                blocked[name] = f"{kind} until {until.isoformat(timespec='seconds')}"
        return blocked

    async def _choose(self, task: Task, blocked: dict[str, str]) -> Choice | None:
        """The agent for ``task``, or None if it must wait (its pinned agent is blocked)."""
        pinned = task.agent.type
        if pinned and pinned in self.runners:
            return Choice(pinned) if pinned not in blocked else None
        available = [n for n in self.runners if n in self.usable and n not in blocked]
        if not available:
            return None
        counts = {name: self._count(name) for name in self.runners}
        if self.chooser is not None:
            choice = await self.chooser(task, available, counts, blocked)
            if choice.agent in available:
                return choice
        if DEFAULT_AGENT in available and counts.get(DEFAULT_AGENT, 0) == min(
            counts[a] for a in available
        ):
            return Choice(DEFAULT_AGENT, reason="default agent")
        least = min(available, key=lambda a: counts[a])
        return Choice(least, reason="least-loaded available agent")

    async def _claim_all(self) -> None:
        if len(self._running) >= self.max_concurrent:
            return
        blocked = self._blocked_agents()
        for task in self.store.queued_tasks():
            if self._closing or len(self._running) >= self.max_concurrent:
                return
            if not self._in_scope(task):
                continue
            if task.id in self._running or not self._dependencies_ready(task):
                continue
            choice = await self._choose(task, blocked)
            if choice is None or not self._has_slot(choice.agent):
                continue
            self._claim(task, choice)

    def _in_scope(self, task: Task) -> bool:
        """Whether this pool may run ``task``: all tasks, or those it was given and the
        checkers and subtasks that grew from them."""
        if self.only is None or task.id in self.only:
            return True
        related = {task.parent_task_id, task.checker_for_task_id} & self.only
        if related:
            self.only.add(task.id)
        return bool(related)

    def _claim(self, task: Task, choice: Choice) -> None:
        execution = self._new_execution(task, choice)
        reason = f"claimed by {self.worker_id}"
        if choice.reason:
            model = f"/{choice.model}" if choice.model else ""
            reason += f"; agent {choice.agent}{model}: {choice.reason}"
        try:
            claimed = self.store.transition(
                task.id, TaskState.RUNNING, reason, expected=TaskState.QUEUED, execution=execution
            )
        except InvalidTransition:
            return  # another process claimed or cancelled it first
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
            summarizer=self.summarizer,
        )
        running = _Running(claimed, choice.agent, attempt)
        running.job = asyncio.create_task(self._run(running), name=f"task-{task.id}")
        self._running[task.id] = running

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
        for task in self.store.list_tasks(ids=list(self._running)):
            running = self._running.get(task.id)
            if running is None or not task.cancel_requested or running.attempt.stop.is_set():
                continue
            logger.info("cancelling task %s", task.id, extra={"action": "cancel"})
            running.attempt.stop_reason = "cancel"
            running.attempt.stop.set()

    async def _run(self, running: _Running) -> None:
        try:
            await running.attempt.run()
        except Exception as exc:  # never leave a task RUNNING because of a bug
            logger.exception("task %s crashed", running.task.id, extra={"action": "execute"})
            with contextlib.suppress(ClaudomatorError):
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
                self.store.transition(running.task.id, TaskState.FAILED, f"internal error: {exc}")
        finally:
            self._running.pop(running.task.id, None)
            self._wake.set()

    def agent_health(self) -> dict[str, AgentStatus]:
        """Every registered agent's status (defaults for agents never used)."""
        known = self.store.agent_statuses()
        return {name: known.get(name, AgentStatus(agent=name)) for name in self.runners}
