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
from dataclasses import dataclass, field
from pathlib import Path

from claudomator.agents import DEFAULT_AGENT, Outcome, RunContext, Runner
from claudomator.config import Settings
from claudomator.errors import ClaudomatorError, InvalidTransition, NotFound, SandboxError
from claudomator.models import Execution, Task, TaskState, new_id, utcnow
from claudomator.process import group_alive, kill_group_sync
from claudomator.sandbox import Sandbox, Sandboxes
from claudomator.store import Store
from claudomator.summary import read_summary

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
    execution: Execution
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str = ""  # "cancel" or "shutdown"
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
            running.stop_reason = "shutdown" if requeue else "cancel"
            running.stop.set()
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
            reason = "orchestrator restarted"
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
                self.store.transition(
                    execution.task_id, TaskState.QUEUED, reason, expected=TaskState.RUNNING
                )
                count += 1
        if count:
            logger.warning(
                "re-queued %d task(s) left running", count, extra={"action": "reconcile"}
            )
        return count

    # -- claiming ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._closing:
            try:
                self._watch_cancels()
                self._claim_all()
            except ClaudomatorError:
                logger.exception("pool iteration failed", extra={"action": "pool_loop"})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    def _agent_for(self, task: Task) -> str:
        return task.agent.type or DEFAULT_AGENT

    def _has_slot(self, agent: str) -> bool:
        if len(self._running) >= self.max_concurrent:
            return False
        limit = self.settings.agent_limits.get(agent)
        return limit is None or sum(r.agent == agent for r in self._running.values()) < limit

    def _claim_all(self) -> None:
        if len(self._running) >= self.max_concurrent:
            return
        for task in self.store.queued_tasks():
            if self._closing or len(self._running) >= self.max_concurrent:
                return
            if self.only is not None and task.id not in self.only:
                continue
            if task.id in self._running or not self._dependencies_ready(task):
                continue
            agent = self._agent_for(task)
            if agent not in self.runners:
                self._fail_queued(task, f"unknown agent type {agent!r}")
                continue
            if not self._has_slot(agent):
                continue
            execution = self._new_execution(task, agent)
            try:
                claimed = self.store.transition(
                    task.id,
                    TaskState.RUNNING,
                    f"claimed by {self.worker_id}",
                    expected=TaskState.QUEUED,
                    execution=execution,
                )
            except InvalidTransition:
                continue  # another process claimed or cancelled it first
            running = _Running(claimed, agent, execution)
            running.job = asyncio.create_task(self._run(running), name=f"task-{task.id}")
            self._running[task.id] = running

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
            self.store.transition(
                task.id, TaskState.FAILED, reason, expected=TaskState.QUEUED, summary=""
            )

    def _watch_cancels(self) -> None:
        if not self._running:
            return
        for task in self.store.list_tasks(ids=list(self._running)):
            running = self._running.get(task.id)
            if running is not None and task.cancel_requested and not running.stop.is_set():
                logger.info("cancelling task %s", task.id, extra={"action": "cancel"})
                running.stop_reason = "cancel"
                running.stop.set()

    # -- running one task --------------------------------------------------------------------

    async def _run(self, running: _Running) -> None:
        task = running.task
        try:
            await self._execute(running)
        except Exception as exc:  # never leave a task RUNNING because of a bug
            logger.exception("task %s crashed", task.id, extra={"action": "execute"})
            with contextlib.suppress(ClaudomatorError):
                execution = self.store.get_execution(running.execution.id)
                failed = Outcome(TaskState.FAILED, error_msg=f"internal error: {exc!r}")
                self._finish(running, execution, failed, "")
        finally:
            self._running.pop(task.id, None)
            self._wake.set()

    def _project_dir(self, task: Task) -> Path:
        if task.agent.project_dir:
            return Path(task.agent.project_dir)
        return self.settings.scratch_dir / task.id

    def _new_execution(self, task: Task, agent: str) -> Execution:
        execution_id = new_id()
        log_dir = self.settings.logs_dir / execution_id
        return Execution(
            id=execution_id,
            task_id=task.id,
            agent=agent,
            model=task.agent.model,
            stdout_path=str(log_dir / "stdout.log"),
            stderr_path=str(log_dir / "stderr.log"),
            session_id=new_id(),
            worker_id=self.worker_id,
        )

    async def _execute(self, running: _Running) -> None:
        task = running.task
        execution = running.execution
        execution_id = execution.id
        log_dir = self.settings.logs_dir / execution_id
        log_dir.mkdir(parents=True, exist_ok=True)
        project_dir = self._project_dir(task)
        try:
            sandbox = await asyncio.to_thread(self._make_sandbox, project_dir, execution_id)
        except SandboxError as exc:
            self._finish(running, execution, Outcome(TaskState.FAILED, error_msg=str(exc)), "")
            return
        execution = self.store.save_execution(
            execution.model_copy(update={"sandbox_dir": str(sandbox.dir)})
        )
        ctx = RunContext(
            task=task,
            execution_id=execution_id,
            workdir=sandbox.dir,
            log_dir=log_dir,
            env=self._agent_env(task, project_dir, log_dir),
            session_id=execution.session_id,
            timeout=task.timeout or self.settings.default_timeout,
            kill_grace=self.settings.kill_grace_seconds,
            stop=running.stop,
            on_started=lambda pid: self._record_pid(execution_id, pid),
        )
        try:
            outcome = await self.runners[running.agent].run(ctx)
        except ClaudomatorError as exc:
            outcome = Outcome(TaskState.FAILED, error_msg=str(exc))
        summary = read_summary(log_dir / "summary.txt", outcome.text)
        execution = self.store.get_execution(execution_id)
        if outcome.status == TaskState.COMPLETED:
            execution = await self._deliver(task, sandbox, execution, outcome)
        elif sandbox.dir.exists():
            where = f"sandbox preserved at {sandbox.dir}"
            outcome.error_msg = f"{outcome.error_msg}\n({where})" if outcome.error_msg else where
        self._finish(running, execution, outcome, summary)

    def _make_sandbox(self, project_dir: Path, execution_id: str) -> Sandbox:
        self.sandboxes.prepare_project(project_dir)
        return self.sandboxes.create(project_dir, execution_id)

    async def _deliver(
        self, task: Task, sandbox: Sandbox, execution: Execution, outcome: Outcome
    ) -> Execution:
        """Build check, autocommit, record and deliver the work; a failure fails the outcome."""
        project = self.settings.project_for(str(sandbox.project_dir))
        build = project.build_command if project else ()
        try:
            collected = await asyncio.to_thread(
                self.sandboxes.collect, sandbox, build_command=build
            )
            execution = execution.model_copy(
                update={"commits": collected.commits, "changestats": collected.changestats}
            )
            if collected.commits:
                delivery = project.delivery if project else None
                kwargs = {"delivery": delivery} if delivery is not None else {}
                where = await asyncio.to_thread(
                    self.sandboxes.deliver, sandbox, task_id=task.id, **kwargs
                )
                logger.info("task %s delivered: %s", task.id, where, extra={"action": "deliver"})
            await asyncio.to_thread(self.sandboxes.release, sandbox)
        except SandboxError as exc:
            outcome.status = TaskState.FAILED
            outcome.error_msg = str(exc)
        return execution

    def _agent_env(self, task: Task, project_dir: Path, log_dir: Path) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(
            {
                "CLAUDOMATOR_API_URL": self.settings.api_url,
                "CLAUDOMATOR_TASK_ID": task.id,
                "CLAUDOMATOR_PROJECT_DIR": str(project_dir),
                "CLAUDOMATOR_QUESTION_FILE": str(log_dir / "question.json"),
                "CLAUDOMATOR_SUMMARY_FILE": str(log_dir / "summary.txt"),
            }
        )
        return env

    def _record_pid(self, execution_id: str, pid: int) -> None:
        execution = self.store.get_execution(execution_id)
        self.store.save_execution(execution.model_copy(update={"pid": pid}))

    def _finish(
        self, running: _Running, execution: Execution, outcome: Outcome, summary: str
    ) -> None:
        task = running.task
        status = outcome.status
        target = status
        reason = outcome.error_msg.splitlines()[0] if outcome.error_msg else status.value.lower()
        if status == TaskState.CANCELLED and running.stop_reason == "shutdown":
            target, reason = TaskState.QUEUED, "orchestrator shutdown; re-queued"
            outcome.error_msg = "interrupted by orchestrator shutdown"
        self.store.save_execution(
            execution.model_copy(
                update={
                    "status": status,
                    "end_time": utcnow(),
                    "exit_code": outcome.exit_code,
                    "session_id": outcome.session_id or execution.session_id,
                    "cost_usd": outcome.cost_usd,
                    "cost_estimated": outcome.cost_estimated,
                    "tokens_in": outcome.tokens_in,
                    "tokens_out": outcome.tokens_out,
                    "error_msg": outcome.error_msg,
                    "summary": summary,
                }
            )
        )
        self.store.transition(task.id, target, reason, summary=summary)
