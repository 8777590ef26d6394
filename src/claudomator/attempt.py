"""One execution of a claimed task: sandbox, agent run, question or delivery, recorded outcome.

The pool creates an :class:`Attempt` per claimed task and awaits :meth:`Attempt.run`. Every path
ends in :meth:`Attempt._finish`, which writes the execution row and moves the task out of
RUNNING (to its outcome, BLOCKED for a question, or QUEUED for a rate limit or a shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from claudomator import naming, projects, protocol, ratelimit, tokens
from claudomator.agents import Outcome, RunContext, Runner
from claudomator.agents.base import unapplied_options
from claudomator.blocking import Blocking
from claudomator.checker import checker_task, verdict_from
from claudomator.checkout import CheckoutNote, write_note
from claudomator.config import Settings, estimate_cost
from claudomator.delivered import where
from claudomator.errors import (
    ClaudomatorError,
    DeliveryConflict,
    InvalidTransition,
    SandboxError,
    StoreError,
)
from claudomator.models import (
    Commit,
    DeliveryRecord,
    Execution,
    Interaction,
    Task,
    TaskState,
    utcnow,
)
from claudomator.notify import Notifier
from claudomator.persist import until_stored
from claudomator.process import tail_file
from claudomator.sandbox import Delivered, DeliveryKind, Sandbox, Sandboxes
from claudomator.store.base import Store
from claudomator.store.intents import DeliveryIntent
from claudomator.summary import read_summary

logger = logging.getLogger(__name__)

Summarizer = Callable[[str], Awaitable[str]]
P = ParamSpec("P")
T = TypeVar("T")

MAX_LIMIT_REQUEUES = 20  # rate-limit/quota re-queues in a row before a task is failed


@dataclass
class Plan:
    """How this execution starts: fresh, or resuming an answered question."""

    prompt: str
    session_id: str
    resume: bool
    previous: Execution | None = None


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
    ) -> None:
        self.settings = settings
        self.store = store
        self.sandboxes = sandboxes
        self.runner = runner
        self.task = task
        self.execution = execution
        self.stop = stop
        self.stop_reason = ""  # "cancel" or "shutdown", set by the pool before stop is set
        self.base_env = base_env
        self.notifier = notifier
        self.blocking = blocking  # the bounded executors for sandbox work and outcome writes
        self.summarizer = summarizer
        self.log_dir = Path(execution.stdout_path).parent
        self.delivered_to = ""
        # a review round resumed in the sandbox of the last: the head it already delivered
        # (this execution's commits and diff count from there) and the row it supersedes
        self.since = ""
        self.superseded: Execution | None = None
        self.cost_note = ""  # said in the final state change when the budget went unchecked

    # -- the whole attempt -------------------------------------------------------------------

    async def run(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        plan = await self.blocking.store(self._plan)  # the store is read off the loop
        project_dir = self._project_dir()
        try:
            sandbox, plan = await self._off_loop(self._sandbox_for, plan, project_dir)
        except SandboxError as exc:
            await self._finish(Outcome(TaskState.FAILED, error_msg=str(exc)), "")
            return
        started = self.execution.model_copy(
            update={"sandbox_dir": str(sandbox.dir), "session_id": plan.session_id}
        )
        self.execution = await self._kept("its sandbox", self.store.save_execution, started)
        outcome = await self._run_agent(sandbox, plan, project_dir)
        summary = read_summary(protocol.summary_file(self.log_dir), outcome.text)
        question = None
        if outcome.status in (TaskState.COMPLETED, TaskState.FAILED):
            question = protocol.read_question(self.log_dir)
        if question is not None and protocol.looks_like_report(question):
            summary = summary or question.text
            question = None
        if question is not None:
            await self._block(outcome, question, summary)
            return
        if outcome.status == TaskState.COMPLETED and self.task.checker_for_task_id:
            await self._off_loop(self._release, sandbox)  # a checker changes nothing
        elif outcome.status == TaskState.COMPLETED:
            await self._intend_delivery(sandbox)
            await self._deliver(sandbox, outcome)
        elif sandbox.dir.exists():
            where = f"sandbox preserved at {sandbox.dir}"
            outcome.error_msg = f"{outcome.error_msg}\n({where})" if outcome.error_msg else where
        if not summary and self.summarizer is not None and outcome.text:
            summary = await self.summarizer(outcome.text)
        await self._finish(outcome, summary)

    async def _off_loop(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Blocking sandbox work (git, build checks) in the sandbox executor, off the loop."""
        return await self.blocking.sandbox(fn, *args, **kwargs)

    async def _kept(self, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A store step of the outcome, written again until the database takes it."""
        return await until_stored(
            f"task {self.task.id}: {what}",
            lambda: fn(*args, **kwargs),
            store=self.store,
            blocking=self.blocking,
        )

    async def _intend_delivery(self, sandbox: Sandbox, commits: Sequence[Commit] = ()) -> None:
        """Record, before anything is pushed, what this execution is about to deliver: after a
        kill -9 during the push, :meth:`Pool.reconcile` finds the work on the target and
        finishes the record instead of running the agent again. ``commits`` (once collected)
        name the exact head; without them recovery reads the sandbox's HEAD."""
        intent = self._intent(sandbox, commits)
        await self._kept("its delivery intent", self.store.record_delivery_intent, intent)

    def _intent(self, sandbox: Sandbox, commits: Sequence[Commit]) -> DeliveryIntent:
        return DeliveryIntent(
            execution_id=self.execution.id,
            task_id=self.task.id,
            project_dir=str(sandbox.project_dir),
            sandbox_dir=str(sandbox.dir),
            branch=sandbox.branch,
            base_commit=sandbox.base_commit,
            head=commits[-1].hash if commits else "",
        )

    async def _note_head(self, sandbox: Sandbox, commits: Sequence[Commit]) -> None:
        """Add the exact head to the delivery intent recorded before the agent's work was
        collected. Best effort: if the database refuses now, the delivery goes on, and recovery
        reads the head from the sandbox (where a rebase before the push also happens)."""
        intent = self._intent(sandbox, commits)
        try:
            await self.blocking.store(self.store.record_delivery_intent, intent)
        except StoreError as exc:
            logger.warning(
                "task %s: could not add the head to the delivery intent (%s); recovery will "
                "read it from the sandbox",
                self.task.id,
                exc,
                extra={"action": "deliver"},
            )

    # -- before the agent --------------------------------------------------------------------

    def _project_dir(self) -> Path:
        if self.task.agent.project_dir:
            return Path(self.task.agent.project_dir)
        return self.settings.scratch_dir / self.task.id

    def _plan(self) -> Plan:
        """Resume the previous execution if it asked a question that is now answered."""
        runs = [
            e
            for e in self.store.executions_of(self.task.id)
            if e.id != self.execution.id and e.status != TaskState.QUEUED  # skip re-queued ones
        ]
        previous = runs[-1] if runs else None
        first = (
            self.task.agent.instructions
            if self.runner.capabilities.text_only
            else protocol.prompt_for(self.task)
        )
        fresh = Plan(first, self.execution.session_id, resume=False)
        if previous is None or previous.status not in (TaskState.BLOCKED, TaskState.READY):
            return fresh
        answered = [
            i for i in self.store.interactions_of(self.task.id) if i.execution_id == previous.id
        ]
        if not answered or not answered[-1].answered_at:
            return fresh
        item = answered[-1]
        prompt = (
            protocol.feedback_prompt(item.answer)
            if item.question == protocol.REVIEW_QUESTION
            else protocol.resume_prompt(item.question, item.answer)
        )
        return Plan(prompt, previous.session_id, resume=True, previous=previous)

    def _sandbox_for(self, plan: Plan, project_dir: Path) -> tuple[Sandbox, Plan]:
        if plan.resume and plan.previous is not None and plan.previous.status == TaskState.READY:
            self.superseded = plan.previous  # a rejected review: this run is the next round
        if plan.resume and plan.previous is not None and plan.previous.sandbox_dir:
            reopened = self.sandboxes.open(Path(plan.previous.sandbox_dir), project_dir)
            if reopened is not None:
                self.since = self._delivered_head(plan.previous.sandbox_dir)
                return reopened, plan
            logger.warning(
                "task %s: preserved sandbox %s is gone; starting a fresh one",
                self.task.id,
                plan.previous.sandbox_dir,
                extra={"action": "resume"},
            )
            if self.runner.capabilities.resumes_in_place:
                history = self.store.interactions_of(self.task.id)
                plan = Plan(
                    protocol.history_prompt(self.task, history),
                    self.execution.session_id,
                    resume=False,
                )
        if not self.task.agent.project_dir:  # a project-less task gets a scratch repository
            self.sandboxes.prepare_scratch(project_dir, self.settings.scratch_dir)
        # create() prepares a project that needs it; a ready one costs no extra git command
        box = self.sandboxes.create(project_dir, self.execution.id)
        self._note_checkout(box)
        return box, plan

    def _note_checkout(self, box: Sandbox) -> None:
        """Say so when the user's checkout has uncommitted changes: the agent starts from the
        last commit without them (logged, and noted for ``run`` and ``show``)."""
        if not self.task.agent.project_dir or self.task.checker_for_task_id:
            return  # a scratch repository is ours; a checker changes nothing
        changes = self.sandboxes.uncommitted(box.project_dir)
        if not changes:
            return
        note = CheckoutNote(
            project_dir=str(box.project_dir),
            branch=box.branch,
            head=box.base_commit,
            changes=changes,
        )
        logger.warning("task %s: %s", self.task.id, note.line, extra={"action": "sandbox"})
        try:
            write_note(self.log_dir, note)
        except OSError as exc:
            logger.warning("could not keep the note: %s", exc, extra={"action": "sandbox"})

    def _delivered_head(self, sandbox_dir: str) -> str:
        """The last commit an earlier execution of this task collected in ``sandbox_dir``
        ("" if none did): a resumed run's own work starts after it."""
        for earlier in reversed(self.store.executions_of(self.task.id)):
            same = earlier.id != self.execution.id and earlier.sandbox_dir == sandbox_dir
            if same and earlier.commits:
                return earlier.commits[-1].hash
        return ""

    async def _run_agent(self, sandbox: Sandbox, plan: Plan, project_dir: Path) -> Outcome:
        agent = self.task.agent.model_copy(
            update={"instructions": plan.prompt, "type": self.execution.agent}
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
        if plan.previous is not None:
            env["CLAUDOMATOR_PREVIOUS_LOG_DIR"] = str(Path(plan.previous.stdout_path).parent)
        ctx = RunContext(
            task=self.task.model_copy(update={"agent": agent}),
            execution_id=self.execution.id,
            workdir=sandbox.dir / sandbox.subdir if sandbox.subdir else sandbox.dir,
            log_dir=self.log_dir,
            env=env,
            session_id=plan.session_id,
            timeout=self.task.timeout or self.settings.default_timeout,
            kill_grace=self.settings.kill_grace_seconds,
            stop=self.stop,
            resume=plan.resume,
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
            return Outcome(TaskState.FAILED, error_msg=str(exc))
        self._price(outcome)
        return outcome

    def _record_pid(self, pid: int) -> None:
        """Note the agent's pid (best effort: failing here must not orphan the agent)."""
        try:
            self.execution = self.store.save_execution(
                self.execution.model_copy(update={"pid": pid})
            )
        except ClaudomatorError:
            logger.warning("could not record pid %d", pid, extra={"action": "record_pid"})

    def _price(self, outcome: Outcome) -> None:
        """Estimate the cost of agents that report none; enforce the budget for them.

        An agent that ran, reported no cost and whose model has no price (``[prices]``) has an
        unknown cost: it is recorded as unknown (not as $0), and a budget on the task could not
        be checked, which is logged and said in the task's final state change."""
        if outcome.cost_reported:
            return
        model = outcome.model or self.execution.model
        cost = estimate_cost(self.settings.prices, model, outcome.tokens_in, outcome.tokens_out)
        budget = self.task.agent.max_budget_usd
        if cost is None:
            outcome.cost_known = False
            unchecked = "" if budget is None else f"; the budget of ${budget:g} was not checked"
            logger.warning(
                "task %s: %s reported no cost and model %r has no price: its cost is unknown%s",
                self.task.id,
                self.execution.agent,
                model,
                unchecked,
                extra={"action": "price"},
            )
            if budget is not None:
                self.cost_note = (
                    f"cost unknown (no price for model {model or '(unnamed)'}){unchecked}"
                )
            return
        outcome.cost_usd, outcome.cost_estimated = cost, True
        if budget is not None and cost > budget and outcome.status == TaskState.COMPLETED:
            outcome.status = TaskState.BUDGET_EXCEEDED
            outcome.error_msg = (
                f"estimated cost ${cost:.4f} exceeds the budget of ${budget:g}; "
                "the work was not delivered"
            )

    # -- after the agent ---------------------------------------------------------------------

    async def _deliver(self, sandbox: Sandbox, outcome: Outcome) -> None:
        """Build check, autocommit, record and deliver the work; a failure fails the outcome."""
        project, build_dir = await self.blocking.store(
            projects.of_sandbox, self.settings, self.store, sandbox
        )
        build = project.build_command if project else ()
        message = naming.commit_message(
            self.task.name, self.task.id, self.execution.agent, self.task.description
        )
        try:
            collected = await self._off_loop(
                self.sandboxes.collect,
                sandbox,
                build_command=build,
                build_dir=build_dir,
                since=self.since,
                message=message,
            )
            self.execution = self.execution.model_copy(
                update={"commits": collected.commits, "changestats": collected.changestats}
            )
            kept_as_branch = False
            if collected.commits:
                await self._keep_diff(sandbox)
                kwargs = {"delivery": project.delivery} if project else {}
                await self._note_head(sandbox, collected.commits)  # before the push
                runs = await self._kept("its deliveries", self.store.executions_of, self.task.id)
                delivered = await self._off_loop(
                    self.sandboxes.deliver,
                    sandbox,
                    task_id=self.task.id,
                    task_name=self.task.name,
                    branch=naming.recorded_branch(runs),
                    **kwargs,
                )
                self._record_delivery(sandbox, delivered)
                self.delivered_to = self._where().get("delivered", delivered.description)
                kept_as_branch = delivered.how is DeliveryKind.BRANCH
                if delivered.rebased:  # the delivered commits have new hashes
                    commits = await self._off_loop(
                        self.sandboxes.head_commits, sandbox, len(collected.commits)
                    )
                    self.execution = self.execution.model_copy(update={"commits": commits})
                logger.info(
                    "task %s delivered: %s",
                    self.task.id,
                    self.delivered_to,
                    extra={"action": "deliver"},
                )
            # kept, with its sandbox, for the review loop (a round that changed nothing leaves
            # the branch an earlier round delivered, and waits for the reviewer again)
            if project is not None and project.review and (kept_as_branch or self.since):
                outcome.status = TaskState.READY
            else:
                await self._off_loop(self._release, sandbox)
            if not collected.commits:
                self._record_delivery(sandbox, Delivered(DeliveryKind.NOTHING))
        except SandboxError as exc:
            if isinstance(exc, DeliveryConflict):  # the work was kept as a branch instead
                self._record_delivery(sandbox, Delivered(DeliveryKind.BRANCH, branch=exc.branch))
            outcome.status = TaskState.FAILED
            outcome.error_msg = str(exc)

    def _record_delivery(self, sandbox: Sandbox, delivered: Delivered) -> None:
        """Note where the work went on the execution (saved with its outcome)."""
        record = DeliveryRecord(
            how=delivered.how.value,
            project_dir=str(sandbox.project_dir),
            remote=delivered.remote,
            url=delivered.url,
            branch=delivered.branch,
            rebased=delivered.rebased,
        )
        self.execution = self.execution.model_copy(update={"delivery": record})

    async def _keep_diff(self, sandbox: Sandbox) -> None:
        """Save the diff of the work for people to read later; a failure only costs the diff."""
        try:
            diff = protocol.diff_file(self.log_dir)
            await self._off_loop(self.sandboxes.write_diff, sandbox, diff, since=self.since)
        except (OSError, SandboxError) as exc:
            logger.warning(
                "task %s: could not save the diff: %s", self.task.id, exc, extra={"action": "diff"}
            )

    def _release(self, sandbox: Sandbox) -> None:
        """Retire a finished sandbox. A scratch project's tree is deleted, not kept warm: no
        other task shares that project, so a warm tree would only take disk space."""
        if self.task.agent.project_dir:
            self.sandboxes.release(sandbox)
        else:
            self.sandboxes.with_pool(0).release(sandbox)

    async def _block(self, outcome: Outcome, question: protocol.Question, summary: str) -> None:
        """The agent asked a human: keep the sandbox, park the task, tell someone."""
        interaction = Interaction(
            task_id=self.task.id,
            execution_id=self.execution.id,
            question=question.text,
            options=question.options,
        )
        await self._kept("its question", self.store.add_interaction, interaction)
        outcome.status = TaskState.BLOCKED
        outcome.error_msg = ""
        await self._kept("outcome BLOCKED", self._save_execution, outcome, summary)
        await self._kept("the superseded round", self._supersede)
        await self._kept("agent health", self._update_agent_health, outcome)
        blocked = await self._kept(
            "move to BLOCKED",
            self._move,
            TaskState.BLOCKED,
            f"question: {question.text[:200]}",
            question=question.to_json(),
            summary=summary,
        )
        if blocked is None:
            return
        self.notifier.post("task.blocked", blocked, options=list(question.options))

    async def _finish(self, outcome: Outcome, summary: str) -> None:
        target = outcome.status
        reason = outcome.error_msg.splitlines()[0] if outcome.error_msg else target.value.lower()
        verdict = ratelimit.classify(outcome, tail_file(self.log_dir / "stderr.log", 4000))
        if (
            verdict is not None
            and await self._kept("its re-queues", self._requeues_in_a_row) >= MAX_LIMIT_REQUEUES
        ):
            reason = f"{reason} (gave up after {MAX_LIMIT_REQUEUES} re-queues for limits)"
            verdict = None
        if target == TaskState.CANCELLED and self.stop_reason == "shutdown":
            target, reason = TaskState.QUEUED, "orchestrator shutdown; re-queued"
            outcome.error_msg = "interrupted by orchestrator shutdown"
        elif verdict is not None:
            until = await self._kept("its limit", self._record_limit, outcome, verdict)
            target = TaskState.QUEUED
            reason = f"{verdict.limit.value} on {self.execution.agent}; re-queued until {until}"
        if target == TaskState.QUEUED:
            current = await self._kept("its cancel request", self.store.get_task, self.task.id)
            if current.cancel_requested:
                target, reason = TaskState.CANCELLED, "cancelled by user"
        if target == TaskState.QUEUED:
            outcome.status = TaskState.QUEUED  # this execution ended in a re-queue
        await self._kept(f"outcome {outcome.status.value}", self._save_execution, outcome, summary)
        if outcome.status != TaskState.QUEUED:  # re-queued: the next try is still this round
            await self._kept("the superseded round", self._supersede)
        if verdict is None:
            await self._kept("agent health", self._update_agent_health, outcome)
        if target == TaskState.COMPLETED and self.task.acceptance_criteria:
            await self._kept("its checker", self._queue_checker)
        if self.cost_note:
            reason = f"{reason}; {self.cost_note}"
        task = await self._kept(
            f"move to {target.value}", self._move, target, reason, summary=summary
        )
        if task is not None and (target.is_terminal or target == TaskState.READY):
            self.notifier.post(f"task.{target.value.lower()}", task, **self._where())
            await self._acceptance(task, outcome)

    def _where(self) -> dict[str, Any]:
        """Where the work went, for the notification ({} if this execution delivered nothing)."""
        record = self.execution.delivery
        if record is None:
            return {}
        return {"delivery": record.model_dump(mode="json"), "delivered": where(record).line}

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

    def _requeues_in_a_row(self) -> int:
        count = 0
        for execution in reversed(self.store.executions_of(self.task.id)):
            if execution.id == self.execution.id:
                continue
            if execution.status != TaskState.QUEUED:
                break
            count += 1
        return count

    def _queue_checker(self) -> None:
        """Queue the checker of a task with acceptance criteria (before it shows COMPLETED)."""
        if self.task.checker_for_task_id:
            return
        delivered = self.delivered_to or "no new commits"
        [check] = self.store.add_tasks([checker_task(self.task, self.execution, delivered)])
        logger.info("task %s: checker %s queued", self.task.id, check.id, extra={"action": "check"})

    async def _acceptance(self, task: Task, outcome: Outcome) -> None:
        """A finished checker records its verdict on the task it checked."""
        if not task.checker_for_task_id:
            return
        if task.state == TaskState.COMPLETED:
            verdict, report = verdict_from(f"{outcome.text}\n{task.summary}")
        else:
            verdict, report = "", f"the checker ended {task.state.value}: {outcome.error_msg}"
        checked_id = task.checker_for_task_id
        await self._kept(
            f"verdict on {checked_id}",
            self.store.update_task,
            checked_id,
            check_verdict=verdict,
            check_report=report,
        )
        if verdict == "fail":
            checked = await self._kept(f"task {checked_id}", self.store.get_task, checked_id)
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

    def _save_execution(self, outcome: Outcome, summary: str) -> None:
        self.execution = self.store.save_execution(
            self.execution.model_copy(
                update={
                    "status": outcome.status,
                    "end_time": utcnow(),
                    "exit_code": outcome.exit_code,
                    "session_id": outcome.session_id or self.execution.session_id,
                    "model": outcome.model or self.execution.model,
                    "cost_usd": outcome.cost_usd,
                    "cost_estimated": outcome.cost_estimated,
                    "cost_known": outcome.cost_known,
                    "tokens_in": outcome.tokens_in,
                    "tokens_out": outcome.tokens_out,
                    "error_msg": outcome.error_msg,
                    "summary": summary,
                }
            )
        )

    def _backoff(self) -> ratelimit.Backoff:
        s = self.settings
        return ratelimit.Backoff(
            s.rate_limit_backoff_seconds, s.rate_limit_backoff_max_seconds, s.quota_wait_seconds
        )

    def _record_limit(self, outcome: Outcome, verdict: ratelimit.Verdict) -> str:
        now = utcnow()
        status = self.store.agent_status(self.execution.agent)
        status = ratelimit.after_failure(status, verdict, outcome.error_msg, now, self._backoff())
        self.store.save_agent_status(status)
        until = status.blocked_until(now) or now
        logger.warning(
            "%s hit a %s; unavailable until %s",
            self.execution.agent,
            verdict.limit.value,
            until.isoformat(timespec="seconds"),
            extra={"action": "rate_limit"},
        )
        return until.strftime("%H:%M:%S UTC")

    def _update_agent_health(self, outcome: Outcome) -> None:
        if outcome.status in (TaskState.CANCELLED, TaskState.QUEUED):
            return  # stopped by us: says nothing about the agent
        now = utcnow()
        status = self.store.agent_status(self.execution.agent)
        if outcome.status in (TaskState.FAILED, TaskState.TIMED_OUT):
            status = ratelimit.after_failure(status, None, outcome.error_msg, now, self._backoff())
        else:
            status = ratelimit.after_success(status, now)
        self.store.save_agent_status(status)
