"""The finish decision as a table, derived from how ``attempt.py`` ended an execution before it
became the :mod:`claudomator.execution` package (``_run``/``_block``/``_finish`` wrote these
states, reasons and flags in that order).

Each row: the agent's outcome status, the pool's stop reason, what the store says (rate limit
and re-queues in a row, a cancel request, acceptance criteria) and what became of the work ->
the task's target state, the reason, the execution row's status and which records follow.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from claudomator import protocol, ratelimit
from claudomator.agents.base import Outcome
from claudomator.execution import finish
from claudomator.execution.finish import MAX_LIMIT_REQUEUES, Handover
from claudomator.execution.stop import StopReason
from claudomator.models import TaskState

C, F, T, B, X = (
    TaskState.COMPLETED,
    TaskState.FAILED,
    TaskState.TIMED_OUT,
    TaskState.BUDGET_EXCEEDED,
    TaskState.CANCELLED,
)
Q, R, BL = TaskState.QUEUED, TaskState.READY, TaskState.BLOCKED
CANCEL, SHUTDOWN = StopReason.CANCEL, StopReason.SHUTDOWN

ERROR = {C: "", F: "boom\nTraceback", T: "timed out after 5s", B: "over budget", X: "stopped"}
LIMITED = "API error 429: rate limit exceeded"
UNTIL = "12:34:56 UTC"
QUESTION = protocol.Question("Which colour?", ("red", "blue"))


class Given(NamedTuple):
    status: TaskState
    stop: StopReason | None = None
    limited: bool = False  # the agent failed on a rate limit (classified as one)
    requeues: int = 0  # its executions re-queued in a row before this one
    cancel_requested: bool = False
    acceptance: bool = False
    handover: Handover = Handover()
    cost_note: str = ""


class Then(NamedTuple):
    target: TaskState
    reason: str
    status: TaskState  # the execution row
    health: bool = True
    checker: bool = False
    notify: bool = True


def _row(given: Given, then: Then) -> tuple[Given, Then]:
    return given, then


STOPS = (None, CANCEL, SHUTDOWN)

TABLE = [
    # -- the agent's own ending, under every stop reason --------------------------------------
    *[_row(Given(C, stop), Then(C, "completed", C)) for stop in STOPS],
    *[_row(Given(F, stop), Then(F, "boom", F)) for stop in STOPS],
    *[_row(Given(T, stop), Then(T, "timed out after 5s", T)) for stop in STOPS],
    *[_row(Given(B, stop), Then(B, "over budget", B)) for stop in STOPS],
    _row(Given(X), Then(X, "stopped", X, health=False)),
    _row(Given(X, CANCEL), Then(X, "stopped", X, health=False)),
    _row(
        Given(X, SHUTDOWN),
        Then(Q, "orchestrator shutdown; re-queued", Q, health=False, notify=False),
    ),
    # a shutdown re-queue the user asked to cancel meanwhile: cancelled, the row says CANCELLED
    _row(
        Given(X, SHUTDOWN, cancel_requested=True),
        Then(X, "cancelled by user", X, health=False),
    ),
    # a cancel request matters only for a re-queue
    _row(Given(F, cancel_requested=True), Then(F, "boom", F)),
    # -- rate limits: re-queued below the limit, failed at it --------------------------------
    *[
        _row(
            Given(F, stop, limited=True, requeues=n),
            Then(Q, f"rate_limit on claude; re-queued until {UNTIL}", Q, False, notify=False),
        )
        for stop in STOPS
        for n in (0, MAX_LIMIT_REQUEUES - 1)
    ],
    *[
        _row(
            Given(F, stop, limited=True, requeues=n),
            Then(F, f"{LIMITED} (gave up after {MAX_LIMIT_REQUEUES} re-queues for limits)", F),
        )
        for stop in STOPS
        for n in (MAX_LIMIT_REQUEUES, MAX_LIMIT_REQUEUES + 3)
    ],
    # the limit was recorded (no health), then the cancel request wins; the row stays FAILED
    _row(
        Given(F, limited=True, cancel_requested=True),
        Then(X, "cancelled by user", F, health=False),
    ),
    # -- acceptance criteria: a checker is queued for a COMPLETED task only -------------------
    _row(Given(C, acceptance=True), Then(C, "completed", C, checker=True)),
    _row(Given(C, SHUTDOWN, acceptance=True), Then(C, "completed", C, checker=True)),
    *[_row(Given(s, acceptance=True), Then(s, ERROR[s].splitlines()[0], s)) for s in (F, T, B)],
    _row(Given(X, acceptance=True), Then(X, "stopped", X, health=False)),
    _row(
        Given(C, acceptance=True, handover=Handover(for_review=True)),
        Then(R, "ready", R),
    ),
    # -- what became of the work -------------------------------------------------------------
    _row(Given(C, handover=Handover(for_review=True)), Then(R, "ready", R)),
    _row(
        Given(C, acceptance=True, handover=Handover(error="push rejected\nhint")),
        Then(F, "push rejected", F),
    ),
    # a delivery error that reads like a limit is classified like any failure
    _row(
        Given(C, limited=True, handover=Handover(error=LIMITED)),
        Then(Q, f"rate_limit on claude; re-queued until {UNTIL}", Q, False, notify=False),
    ),
    _row(
        Given(T, handover=Handover(preserved="/sb/1")),
        Then(T, "timed out after 5s", T),
    ),
    _row(
        Given(C, handover=Handover(preserved="/sb/1")),
        Then(C, "completed", C),
    ),
    # -- a cost that could not be checked is said in the reason --------------------------------
    _row(Given(C, cost_note="cost unknown"), Then(C, "completed; cost unknown", C)),
    _row(
        Given(X, SHUTDOWN, cost_note="cost unknown"),
        Then(Q, "orchestrator shutdown; re-queued; cost unknown", Q, False, notify=False),
    ),
    # -- a question blocks the task, whatever else is true -----------------------------------
    *[
        _row(
            Given(s, stop, acceptance=True, cost_note="n", handover=Handover(question=QUESTION)),
            Then(BL, "question: Which colour?", BL),
        )
        for s in (C, F)
        for stop in STOPS
    ],
    _row(
        Given(F, limited=True, cancel_requested=True, handover=Handover(question=QUESTION)),
        Then(BL, "question: Which colour?", BL),
    ),
]


def _outcome(given: Given) -> Outcome:
    error = LIMITED if given.limited and given.status == F else ERROR[given.status]
    return Outcome(given.status, error_msg=error, api_error_status=None)


def _decide(given: Given) -> finish.Finish:
    """What the attempt does: classify the settled outcome, record the limit to wait out, read
    the cancel request for a re-queue, then decide."""
    outcome = _outcome(given)
    settled = finish.settle(outcome, given.handover)
    verdict = ratelimit.classify(settled) if given.handover.question is None else None
    if given.handover.question is None:
        assert (verdict is not None) == given.limited, "the row's outcome is (not) a limit"
    limit = finish.limit_to_wait(verdict, given.requeues)
    asked = given.cancel_requested and finish.requeues(settled, limit, given.stop)
    history = finish.History(
        verdict=verdict,
        requeues_in_a_row=given.requeues,
        limited_until=UNTIL if limit is not None else "",
        cancel_requested=asked,
        checks_acceptance=given.acceptance,
    )
    return finish.decide(
        outcome, given.handover, history, given.stop, agent="claude", cost_note=given.cost_note
    )


@pytest.mark.parametrize(("given", "then"), TABLE)
def test_finish(given: Given, then: Then) -> None:
    decided = _decide(given)
    assert (decided.target, decided.reason, decided.status) == then[:3]
    assert decided.health is then.health
    assert decided.queue_checker is then.checker
    expected_event = f"task.{then.target.value.lower()}" if then.notify else ""
    assert decided.notify == expected_event
    # a re-queue leaves the review round it continues open; everything else ends it
    assert decided.supersede is (then.status != Q)
    assert decided.question is given.handover.question


def test_the_table_covers_every_outcome_under_every_stop_reason() -> None:
    seen = {(g.status, g.stop) for g, _ in TABLE}
    assert seen >= {(s, stop) for s in (C, F, T, B, X) for stop in STOPS}


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (Given(F), "boom\nTraceback"),
        (Given(X, SHUTDOWN), "interrupted by orchestrator shutdown"),
        (Given(X, SHUTDOWN, cancel_requested=True), "interrupted by orchestrator shutdown"),
        (
            Given(T, handover=Handover(preserved="/sb/1")),
            "timed out after 5s\n(sandbox preserved at /sb/1)",
        ),
        (
            Given(X, CANCEL, handover=Handover(preserved="/sb/1")),
            "stopped\n(sandbox preserved at /sb/1)",
        ),
        (Given(C, handover=Handover(preserved="/sb/1")), ""),
        (Given(C, handover=Handover(error="push rejected\nhint")), "push rejected\nhint"),
        (Given(F, handover=Handover(question=QUESTION)), ""),
    ],
)
def test_the_recorded_error(given: Given, error: str) -> None:
    assert _decide(given).error_msg == error


def test_an_empty_preserved_note_stands_alone() -> None:
    outcome = Outcome(F)
    settled = finish.settle(outcome, Handover(preserved="/sb/2"))
    assert settled.error_msg == "sandbox preserved at /sb/2"
    assert outcome.error_msg == ""  # a new value: the outcome itself is not changed
