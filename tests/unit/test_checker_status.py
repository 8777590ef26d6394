"""checker.check_status: where a task's acceptance check stands, for show and the task page."""

from __future__ import annotations

from claudomator.checker import check_status
from claudomator.models import AgentConfig, Task, TaskState


def _task(state: TaskState, **fields: object) -> Task:
    agent = AgentConfig(instructions="x")
    return Task(name="t", agent=agent, acceptance_criteria="tested", state=state, **fields)


def _checker(of: Task, state: TaskState) -> Task:
    return Task(
        name="check", agent=AgentConfig(instructions="c"), checker_for_task_id=of.id, state=state
    )


def test_no_criteria_no_check() -> None:
    plain = Task(name="t", agent=AgentConfig(instructions="x"), state=TaskState.COMPLETED)
    assert check_status(plain, []) is None


def test_pending_while_the_checker_has_not_ended() -> None:
    task = _task(TaskState.COMPLETED)
    checker = _checker(task, TaskState.RUNNING)
    status = check_status(task, [checker])
    assert status is not None
    assert status.state == "pending"
    assert status.line == f"check: pending (checker task {checker.id} RUNNING)"


def test_no_verdict_says_which_checker_ended_how_and_why() -> None:
    task = _task(TaskState.COMPLETED, check_report="the checker ended FAILED: overloaded")
    checker = _checker(task, TaskState.FAILED)
    status = check_status(task, [checker])
    assert status is not None
    assert status.line == f"check: no verdict — checker task {checker.id} FAILED: overloaded"
    accepted = check_status(_task(TaskState.COMPLETED), [])  # accepted in review: no checker
    assert accepted is not None
    assert accepted.line == "check: no verdict: no checker was queued"


def test_a_verdict_wins_and_an_unfinished_task_has_no_check_yet() -> None:
    task = _task(TaskState.COMPLETED, check_verdict="pass", check_report="all good")
    status = check_status(task, [_checker(task, TaskState.COMPLETED)])
    assert status is not None
    assert (status.state, status.report, status.line) == ("pass", "all good", "check: pass")
    retried = _task(TaskState.RUNNING)
    later = check_status(retried, [_checker(retried, TaskState.COMPLETED)])
    assert later is not None
    assert later.state == "not yet"
