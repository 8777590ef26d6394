"""Where a finished attempt's task goes, and what is recorded: a pure decision.

The attempt gathers the inputs (the priced :class:`~claudomator.agents.base.Outcome`, what
became of the work as a :class:`Handover`, what the store says as a :class:`History`, and the
pool's :class:`~claudomator.execution.stop.StopReason`), calls :func:`decide`, and applies the
:class:`Finish` it gets in one place (:meth:`claudomator.execution.attempt.Attempt.run`). Nothing
here reads or writes anything.

Two inputs depend on writes the decision orders: :func:`limit_to_wait` says which rate limit
to record before deciding (the re-queue reason names when it ends), and :func:`requeues` whether
the task's cancel request must be read.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from claudomator import protocol, ratelimit
from claudomator.agents.base import Outcome
from claudomator.execution.stop import StopReason
from claudomator.models import Execution, TaskState

logger = logging.getLogger(__name__)

MAX_LIMIT_REQUEUES = 20  # rate-limit/quota re-queues in a row before a task is failed

ASKING_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED})
"""Outcomes after which the agent's question file is read (a question blocks the task)."""


@dataclass(frozen=True)
class Handover:
    """What became of the work once the agent ended."""

    question: protocol.Question | None = None  # the agent asked a human: the task blocks
    for_review: bool = False  # delivered and kept, with its sandbox, for the review loop
    error: str = ""  # the delivery failed: why (the outcome fails)
    preserved: str = ""  # the sandbox kept for people to look at (an outcome not completed)


@dataclass(frozen=True)
class History:
    """What the attempt read for the decision (see :func:`limit_to_wait`, :func:`requeues`)."""

    verdict: ratelimit.Verdict | None = None  # the settled outcome classified as a limit
    requeues_in_a_row: int = 0  # this task's executions re-queued just before this one
    limited_until: str = ""  # when the limit recorded for :func:`limit_to_wait` ends
    cancel_requested: bool = False  # a user asked to cancel the task meanwhile
    checks_acceptance: bool = False  # the task has acceptance criteria (and is no checker)


@dataclass(frozen=True)
class Finish:
    """The decision: how the execution row ends and where the task moves from RUNNING."""

    target: TaskState  # the task's next state
    reason: str  # the state change's reason, for people
    status: TaskState  # the execution row's status
    error_msg: str  # the execution row's error message
    supersede: bool  # end the READY row of the review round this run followed
    health: bool  # record what this outcome says about the agent
    queue_checker: bool  # queue the checker of the task's acceptance criteria
    notify: str  # the event to post once moved ("" for none)
    question: protocol.Question | None = None  # to record, and to block the task on

    def row(self, execution: Execution, outcome: Outcome, summary: str, now: datetime) -> Execution:
        """The execution row as this decision ends it at ``now``."""
        return execution.model_copy(
            update={
                "status": self.status,
                "end_time": now,
                "exit_code": outcome.exit_code,
                "session_id": outcome.session_id or execution.session_id,
                "model": outcome.model or execution.model,
                "cost_usd": outcome.cost_usd,
                "cost_estimated": outcome.cost_estimated,
                "cost_known": outcome.cost_known,
                "tokens_in": outcome.tokens_in,
                "tokens_out": outcome.tokens_out,
                "error_msg": self.error_msg,
                "summary": summary,
            }
        )


def requeues_in_a_row(runs: Sequence[Execution], execution_id: str) -> int:
    """How many of the task's executions (``runs``, oldest first) just before this one
    (``execution_id``) ended re-queued."""
    count = 0
    for execution in reversed(runs):
        if execution.id == execution_id:
            continue
        if execution.status != TaskState.QUEUED:
            break
        count += 1
    return count


def settle(outcome: Outcome, handover: Handover) -> Outcome:
    """The outcome as the handover leaves it: a failed delivery fails it, a delivery kept for
    review makes it READY, a question makes it BLOCKED, a preserved sandbox is said."""
    if handover.question is not None:
        return dataclasses.replace(outcome, status=TaskState.BLOCKED, error_msg="")
    if outcome.status == TaskState.COMPLETED and handover.error:
        return dataclasses.replace(outcome, status=TaskState.FAILED, error_msg=handover.error)
    if outcome.status == TaskState.COMPLETED and handover.for_review:
        return dataclasses.replace(outcome, status=TaskState.READY)
    if outcome.status != TaskState.COMPLETED and handover.preserved:
        where = f"sandbox preserved at {handover.preserved}"
        error = f"{outcome.error_msg}\n({where})" if outcome.error_msg else where
        return dataclasses.replace(outcome, error_msg=error)
    return outcome


def limit_to_wait(
    verdict: ratelimit.Verdict | None, requeues_in_a_row: int
) -> ratelimit.Verdict | None:
    """The limit to record and wait out by re-queueing (None: none, or given up on)."""
    if verdict is None or requeues_in_a_row >= MAX_LIMIT_REQUEUES:
        return None
    return verdict


def _shutdown(settled: Outcome, stop: StopReason | None) -> bool:
    return settled.status == TaskState.CANCELLED and stop is StopReason.SHUTDOWN


def requeues(settled: Outcome, limit: ratelimit.Verdict | None, stop: StopReason | None) -> bool:
    """Whether the task would go back to QUEUED (unless a user asked to cancel it)."""
    return _shutdown(settled, stop) or limit is not None


def decide(
    outcome: Outcome,
    handover: Handover,
    history: History,
    stop: StopReason | None,
    *,
    agent: str,
    cost_note: str = "",
) -> Finish:
    """Where the task goes from RUNNING, and what the execution row says."""
    settled = settle(outcome, handover)
    if handover.question is not None:
        return Finish(
            target=TaskState.BLOCKED,
            reason=f"question: {handover.question.text[:200]}",
            status=TaskState.BLOCKED,
            error_msg="",
            supersede=True,
            health=True,
            queue_checker=False,
            notify="task.blocked",
            question=handover.question,
        )
    target = settled.status
    error = settled.error_msg
    reason = error.splitlines()[0] if error else target.value.lower()
    limit = limit_to_wait(history.verdict, history.requeues_in_a_row)
    if history.verdict is not None and limit is None:
        reason = f"{reason} (gave up after {MAX_LIMIT_REQUEUES} re-queues for limits)"
    if _shutdown(settled, stop):
        target, reason = TaskState.QUEUED, "orchestrator shutdown; re-queued"
        error = "interrupted by orchestrator shutdown"
    elif limit is not None:
        target = TaskState.QUEUED
        reason = f"{limit.limit.value} on {agent}; re-queued until {history.limited_until}"
    if target == TaskState.QUEUED and history.cancel_requested:
        target, reason = TaskState.CANCELLED, "cancelled by user"
    status = TaskState.QUEUED if target == TaskState.QUEUED else settled.status
    if cost_note:
        reason = f"{reason}; {cost_note}"
    notify = target.is_terminal or target == TaskState.READY
    return Finish(
        target=target,
        reason=reason,
        status=status,
        error_msg=error,
        # re-queued: the next try is still this round
        supersede=status != TaskState.QUEUED,
        # a limit was recorded instead; stopped by us, it says nothing about the agent
        health=limit is None and status not in (TaskState.CANCELLED, TaskState.QUEUED),
        queue_checker=target == TaskState.COMPLETED and history.checks_acceptance,
        notify=f"task.{target.value.lower()}" if notify else "",
    )
