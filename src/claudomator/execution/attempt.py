"""One execution of a claimed task: sandbox, agent run, question or delivery, recorded outcome.

The pool creates an :class:`Attempt` per claimed task and awaits :meth:`Attempt.run`. The
attempt orchestrates: :mod:`~claudomator.execution.plan` says how it starts,
:mod:`~claudomator.execution.price` prices the runner's frozen outcome,
:mod:`~claudomator.execution.delivery` hands the work over, and every path ends in
:meth:`Attempt._finish`, which gathers what :func:`~claudomator.execution.finish.decide` needs
and applies its :class:`~claudomator.execution.finish.Finish` in one place: the execution row,
then the task out of RUNNING (to its outcome, READY, BLOCKED for a question, or QUEUED for a
rate limit or a shutdown). Every store call goes through the store executor
(:class:`~claudomator.execution.access.StoreAccess`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from claudomator import projects, protocol, ratelimit, tokens
from claudomator.agents import Outcome, RunContext, Runner
from claudomator.agents.base import unapplied_options
from claudomator.blocking import Blocking
from claudomator.checker import checker_task, verdict_from
from claudomator.config import Settings, estimate_cost
from claudomator.delivered import where
from claudomator.errors import ClaudomatorError, InvalidTransition, SandboxError
from claudomator.execution import confine, finish, health, plan
from claudomator.execution.access import StoreAccess
from claudomator.execution.delivery import Delivery, release
from claudomator.execution.finish import Finish, Handover, History
from claudomator.execution.plan import Plan
from claudomator.execution.price import Priced, price
from claudomator.execution.stop import StopReason
from claudomator.execution.workspace import open_workspace
from claudomator.isolation.base import Access, Confinement, Launcher
from claudomator.models import Execution, Interaction, Task, TaskState, utcnow
from claudomator.notify import Notifier
from claudomator.process import tail_file
from claudomator.sandbox import Sandbox, Sandboxes
from claudomator.store.base import Store
from claudomator.summary import read_summary

logger = logging.getLogger(__name__)

Summarizer = Callable[[str], Awaitable[str]]
P = ParamSpec("P")
T = TypeVar("T")


class Attempt:
    """Runs one claimed task to a recorded outcome."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        sandboxes: Sandboxes,
        runner: Runner,
        task: Task,
        execution: Execution,
        stop: asyncio.Event,
        base_env: Mapping[str, str],
        notifier: Notifier,
        blocking: Blocking,
        summarizer: Summarizer | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.sandboxes = sandboxes
        self.runner = runner
        self.task = task
        self.execution = execution
        self.stop = stop
        self.stop_reason: StopReason | None = None  # set by the pool before stop is set
        self.base_env = base_env
        self.notifier = notifier
        self.blocking = blocking  # the bounded executors for sandbox work and store calls
        self.access = StoreAccess(store, blocking, task.id)
        self.summarizer = summarizer
        # what started the agent: the build check starts through it too (None: as it is)
        self.launcher = launcher
        self.confinement = Confinement()  # the agent's, settled before it starts
        self.log_dir = Path(execution.stdout_path).parent
        self.delivered_to = ""
        # a review round resumed in the sandbox of the last: the head it already delivered
        # (this execution's commits and diff count from there) and the row it supersedes
        self.since = ""
        self.superseded: Execution | None = None
        self._pid_saved: asyncio.Task[None] | None = None

    # -- the whole attempt -------------------------------------------------------------------

    async def run(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        refusal = await self._confine()
        if refusal:
            await self._finish(Priced(Outcome(TaskState.FAILED, error_msg=refusal)), Handover())
            return
        runs = await self.access.once(self.store.executions_of, self.task.id)
        asked = await self.access.once(self.store.interactions_of, self.task.id)
        start = plan.plan_for(
            self.task, self.execution, runs, asked, text_only=self.runner.capabilities.text_only
        )
        project_dir = self._project_dir()
        # a rejected review: this run is the next round (ended even if no sandbox opens)
        self.superseded = plan.superseded(start)
        try:
            workspace = await self._off_loop(
                open_workspace,
                self.sandboxes,
                task=self.task,
                execution=self.execution,
                start=start,
                project_dir=project_dir,
                scratch_dir=self.settings.scratch_dir,
                log_dir=self.log_dir,
                runs=runs,
                asked=asked,
                capabilities=self.runner.capabilities,
            )
        except SandboxError as exc:
            await self._finish(Priced(Outcome(TaskState.FAILED, error_msg=str(exc))), Handover())
            return
        sandbox, start = workspace.sandbox, workspace.plan
        self.since = workspace.since
        started = self.execution.model_copy(
            update={"sandbox_dir": str(sandbox.dir), "session_id": start.session_id}
        )
        self.execution = await self.access.kept("its sandbox", self.store.save_execution, started)
        priced = await self._run_agent(sandbox, start, project_dir)
        outcome = priced.outcome
        summary = read_summary(protocol.summary_file(self.log_dir), outcome.text)
        question = None
        if outcome.status in finish.ASKING_STATES:
            question = protocol.read_question(self.log_dir)
        if question is not None and protocol.looks_like_report(question):
            summary = summary or question.text
            question = None
        if question is not None:
            await self._finish(priced, Handover(question=question), summary)
            return
        handover = Handover()
        if outcome.status == TaskState.COMPLETED and self.task.checker_for_task_id:
            # a checker changes nothing
            await self._off_loop(release, self.sandboxes, self.task, sandbox)
        elif outcome.status == TaskState.COMPLETED:
            handed = await self._delivery().hand_over(sandbox, self.execution)
            self.execution, handover = handed.execution, handed.handover
            self.delivered_to = handed.delivered_to
        elif sandbox.dir.exists():
            handover = Handover(preserved=str(sandbox.dir))
        if not summary and self.summarizer is not None and outcome.text:
            summary = await self.summarizer(outcome.text)
        await self._finish(priced, handover, summary)

    async def _confine(self) -> str:
        """Settle the agent's confinement (the operator's, its project's, its own), record it
        on the execution, and say in the log when ``auto`` fell back to plain; the refusal
        ("": none) of a launcher that cannot run here, which fails the task."""
        known = await self.access.once(projects.all_projects, self.settings, self.store)
        asked = confine.wanted(self.settings, (p for p, _ in known), self.task)
        settled = await self._off_loop(confine.settle, asked, self.launcher)
        if settled.warning:
            logger.warning(
                "task %s: %s", self.task.id, settled.warning, extra={"action": "isolation"}
            )
        self.confinement = settled.confinement
        recorded = self.execution.model_copy(update={"confinement": settled.record})
        self.execution = await self.access.kept(
            "its confinement", self.store.save_execution, recorded
        )
        return settled.refusal

    async def _off_loop(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Blocking sandbox work (git, build checks) in the sandbox executor, off the loop."""
        return await self.blocking.sandbox(fn, *args, **kwargs)

    def _delivery(self) -> Delivery:
        return Delivery(
            settings=self.settings,
            sandboxes=self.sandboxes,
            blocking=self.blocking,
            access=self.access,
            task=self.task,
            log_dir=self.log_dir,
            since=self.since,
            build_access=self._build_access(),
            launcher=self.launcher,
        )

    def _build_access(self) -> Access:
        """What the build check may touch: what the agent could, without its CLI's own paths,
        files and variables (its credentials), in the agent's private home."""
        policy = self.confinement
        return Access(
            workdir=self._project_dir(),  # replaced by each command's folder in the sandbox
            log_dir=self.log_dir,
            read_only=policy.read_only,
            home_key=self.task.id,
            launcher=policy.launcher,
            network=policy.network,
            endpoints=policy.endpoints,
            env_patterns=policy.env_patterns,
        )

    # -- before the agent --------------------------------------------------------------------

    def _project_dir(self) -> Path:
        if self.task.agent.project_dir:
            return Path(self.task.agent.project_dir)
        return self.settings.scratch_dir / self.task.id

    async def _run_agent(self, sandbox: Sandbox, start: Plan, project_dir: Path) -> Priced:
        agent = self.task.agent.model_copy(
            update={"instructions": start.prompt, "type": self.execution.agent}
        )
        if self.execution.model:
            agent = agent.model_copy(update={"model": self.execution.model})
        env = protocol.agent_env(
            self.base_env,
            api_url=self.settings.api_url,
            task_id=self.task.id,
            project_dir=project_dir,
            log_dir=self.log_dir,
            api_token=tokens.agent_token(self.settings.data_dir, self.task.id, self.execution.id),
        )
        if start.previous is not None:
            env["CLAUDOMATOR_PREVIOUS_LOG_DIR"] = str(Path(start.previous.stdout_path).parent)
        ctx = RunContext(
            task=self.task.model_copy(update={"agent": agent}),
            execution_id=self.execution.id,
            workdir=sandbox.dir / sandbox.subdir if sandbox.subdir else sandbox.dir,
            log_dir=self.log_dir,
            env=env,
            session_id=start.session_id,
            timeout=self.task.timeout or self.settings.default_timeout,
            kill_grace=self.settings.kill_grace_seconds,
            stop=self.stop,
            confinement=self.confinement,
            resume=start.resume,
            on_started=self._record_pid,
            estimate_cost=lambda model, tokens_in, tokens_out: estimate_cost(
                self.settings.prices, model, tokens_in, tokens_out
            ),
        )
        ignored = unapplied_options(ctx.task.agent, self.runner.capabilities)
        if ignored:
            logger.warning(
                "the %s agent cannot apply %s; ignored for task %s",
                self.runner.name,
                ", ".join(ignored),
                self.task.id,
                extra={"action": "agent_options"},
            )
        try:
            outcome = await self.runner.run(ctx)
        except ClaudomatorError as exc:
            return Priced(Outcome(TaskState.FAILED, error_msg=str(exc)))
        finally:
            if self._pid_saved is not None:
                await self._pid_saved  # before anything else writes the execution row
        return price(
            outcome,
            prices=self.settings.prices,
            model=self.execution.model,
            budget=self.task.agent.max_budget_usd,
            task_id=self.task.id,
            agent=self.execution.agent,
        )

    def _record_pid(self, pid: int) -> None:
        """Note the agent's pid, in the store executor (the runner calls this on the loop)."""
        with_pid = self.execution.model_copy(update={"pid": pid})
        self._pid_saved = asyncio.get_running_loop().create_task(self._save_pid(with_pid, pid))

    async def _save_pid(self, with_pid: Execution, pid: int) -> None:
        """Best effort: failing here must not orphan the agent."""
        try:
            self.execution = await self.access.once(self.store.save_execution, with_pid)
        except ClaudomatorError:
            logger.warning("could not record pid %d", pid, extra={"action": "record_pid"})

    # -- the end -----------------------------------------------------------------------------

    async def _finish(self, priced: Priced, handover: Handover, summary: str = "") -> None:
        """Decide where the task goes (:func:`finish.decide`), then apply the decision."""
        outcome = priced.outcome
        history = History(
            checks_acceptance=bool(self.task.acceptance_criteria)
            and not self.task.checker_for_task_id
        )
        if handover.question is None:
            history = await self._history(outcome, handover, history)
        decided = finish.decide(
            outcome,
            handover,
            history,
            self.stop_reason,
            agent=self.execution.agent,
            cost_note=priced.cost_note,
        )
        await self._apply(outcome, decided, summary)

    async def _history(self, outcome: Outcome, handover: Handover, history: History) -> History:
        """Read (and record) what the decision needs: a rate limit, how many re-queues came
        before, the limit's end once recorded, and a cancel request for a re-queue."""
        settled = finish.settle(outcome, handover)
        verdict = ratelimit.classify(settled, tail_file(self.log_dir / "stderr.log", 4000))
        requeues = 0
        if verdict is not None:
            runs = await self.access.kept("its re-queues", self.store.executions_of, self.task.id)
            requeues = finish.requeues_in_a_row(runs, self.execution.id)
        limit = finish.limit_to_wait(verdict, requeues)
        until = ""
        if limit is not None:
            until = await self.access.kept(
                "its limit",
                health.record_limit,
                self.store,
                self.execution.agent,
                limit,
                settled.error_msg,
                health.backoff(self.settings),
            )
        cancel_requested = False
        if finish.requeues(settled, limit, self.stop_reason):
            current = await self.access.kept(
                "its cancel request", self.store.get_task, self.task.id
            )
            cancel_requested = current.cancel_requested
        return dataclasses.replace(
            history,
            verdict=verdict,
            requeues_in_a_row=requeues,
            limited_until=until,
            cancel_requested=cancel_requested,
        )

    async def _apply(self, outcome: Outcome, decided: Finish, summary: str) -> None:
        """Record the decision, in this order: the question, the execution row, the review
        round it supersedes, the agent's health, the checker, the move, the notification."""
        kept = self.access.kept
        question = decided.question
        if question is not None:
            interaction = Interaction(
                task_id=self.task.id,
                execution_id=self.execution.id,
                question=question.text,
                options=question.options,
            )
            await kept("its question", self.store.add_interaction, interaction)
        status = decided.status.value
        await kept(f"outcome {status}", self._save_execution, outcome, decided, summary)
        if decided.supersede:
            await kept("the superseded round", self._supersede)
        if decided.health:
            await kept(
                "agent health",
                health.record_health,
                self.store,
                self.execution.agent,
                decided.status,
                decided.error_msg,
                health.backoff(self.settings),
            )
        if decided.queue_checker:
            await kept("its checker", self._queue_checker)
        fields: dict[str, Any] = {"summary": summary}
        if question is not None:
            fields = {"question": question.to_json(), "summary": summary}
        target = decided.target
        task = await kept(f"move to {target.value}", self._move, target, decided.reason, **fields)
        if task is None or not decided.notify:
            return
        if question is not None:
            self.notifier.post(decided.notify, task, options=list(question.options))
            return
        self.notifier.post(decided.notify, task, **self._where())
        await self._acceptance(task, outcome.text, decided.error_msg)

    def _where(self) -> dict[str, Any]:
        """Where the work went, for the notification ({} if this execution delivered nothing)."""
        record = self.execution.delivery
        if record is None:
            return {}
        return {"delivery": record.model_dump(mode="json"), "delivered": where(record).line}

    # -- store steps (each runs in the store executor, through self.access) ------------------

    def _move(self, target: TaskState, reason: str, **fields: Any) -> Task | None:
        """RUNNING -> ``target``; None (logged) if someone else moved the task meanwhile."""
        try:
            return self.store.transition(
                self.task.id, target, reason, expected=TaskState.RUNNING, **fields
            )
        except InvalidTransition as exc:
            logger.warning(
                "task %s left RUNNING elsewhere; outcome %s not applied (%s)",
                self.task.id,
                target.value,
                exc,
                extra={"action": "finish"},
            )
            return None

    def _queue_checker(self) -> None:
        """Queue the checker of a task with acceptance criteria (before it shows COMPLETED)."""
        delivered = self.delivered_to or "no new commits"
        [check] = self.store.add_tasks([checker_task(self.task, self.execution, delivered)])
        logger.info("task %s: checker %s queued", self.task.id, check.id, extra={"action": "check"})

    async def _acceptance(self, task: Task, text: str, error_msg: str) -> None:
        """A finished checker records its verdict on the task it checked."""
        if not task.checker_for_task_id:
            return
        if task.state == TaskState.COMPLETED:
            verdict, report = verdict_from(f"{text}\n{task.summary}")
        else:
            verdict, report = "", f"the checker ended {task.state.value}: {error_msg}"
        checked_id = task.checker_for_task_id
        await self.access.kept(
            f"verdict on {checked_id}",
            self.store.update_task,
            checked_id,
            check_verdict=verdict,
            check_report=report,
        )
        if verdict == "fail":
            checked = await self.access.kept(f"task {checked_id}", self.store.get_task, checked_id)
            self.notifier.post("task.check_failed", checked, report=report)

    def _supersede(self) -> None:
        """End the READY row of the review round this run followed: its work was reviewed
        and changes were asked for, so it is COMPLETED, saying which execution went on."""
        previous = self.superseded
        if previous is None:
            return
        current = self.store.get_execution(previous.id)
        if current.status != TaskState.READY:
            return
        note = f"review asked for changes; continued by execution {self.execution.id}"
        self.store.save_execution(
            current.model_copy(update={"status": TaskState.COMPLETED, "error_msg": note})
        )
        self.superseded = None

    def _save_execution(self, outcome: Outcome, decided: Finish, summary: str) -> None:
        ended = decided.row(self.execution, outcome, summary, utcnow())
        self.execution = self.store.save_execution(ended)
