"""The pure selection rules of claudomator.dispatch.select, one table each."""

from __future__ import annotations

import pytest

from claudomator.chooser import Choice
from claudomator.dispatch.select import (
    Capacity,
    Dependencies,
    Gate,
    agent_counts,
    dependencies,
    in_scope,
    page_size,
    pick_agent,
)
from claudomator.models import AgentConfig, AgentStatus, Task, TaskState
from claudomator.readiness import Readiness

C, F, Q, R = TaskState.COMPLETED, TaskState.FAILED, TaskState.QUEUED, TaskState.RUNNING


def _task(agent: str = "", *, depends_on: tuple[str, ...] = (), **fields: str) -> Task:
    return Task(
        name="t",
        agent=AgentConfig(instructions="i", type=agent),
        depends_on=list(depends_on),
        state=TaskState.QUEUED,
        **fields,
    )


def _ready(name: str, usable: bool = True, credentials: bool | None = None) -> Readiness:
    reasons = () if usable else (f"{name} is down",)
    return Readiness(
        agent=name,
        usable=usable,
        reasons=reasons,
        short="" if usable else "down",
        credentials=credentials,
        status=AgentStatus(agent=name),
    )


def _capacity(
    total: int = 3,
    running: dict[str, int] | None = None,
    limits: dict[str, int] | None = None,
    down: tuple[str, ...] = (),
    uncredentialed: tuple[str, ...] = (),
    agents: tuple[str, ...] = ("claude", "gemini"),
) -> Capacity:
    ready = {
        n: _ready(n, n not in down, False if n in uncredentialed else None)
        for n in ("claude", "gemini", "local")
    }
    return Capacity(total, running or {}, limits or {}, agents, ready)


@pytest.mark.parametrize(
    ("capacity", "agent", "fits"),
    [
        (_capacity(), "claude", True),
        (_capacity(total=2, running={"claude": 1, "gemini": 1}), "claude", False),
        (_capacity(total=3, running={"claude": 1}, limits={"claude": 1}), "claude", False),
        (_capacity(total=3, running={"claude": 1}, limits={"claude": 1}), "gemini", True),
        (_capacity(total=3, running={"claude": 1}, limits={"claude": 2}), "claude", True),
        (_capacity(total=1, running={"gemini": 2}), "claude", False),  # over the total: none
    ],
)
def test_slots(capacity: Capacity, agent: str, fits: bool) -> None:
    assert capacity.has_slot(agent) is fits


def test_a_claim_takes_a_slot() -> None:
    capacity = _capacity(total=2, limits={"claude": 1})
    after = capacity.claimed("claude")
    assert (after.busy, after.free, after.has_slot("claude"), after.has_slot("gemini")) == (
        1,
        1,
        False,
        True,
    )
    assert capacity.busy == 0  # unchanged
    assert agent_counts(["claude", "gemini", "claude"]) == {"claude": 2, "gemini": 1}


@pytest.mark.parametrize(
    ("free", "largest", "size"),
    [(0, 64, 8), (1, 64, 8), (10, 64, 20), (100, 64, 64), (3, 2, 2)],
)
def test_page_size(free: int, largest: int, size: int) -> None:
    assert page_size(free, largest) == size


@pytest.mark.parametrize(
    ("depends_on", "states", "expected"),
    [
        ((), {}, Dependencies(Gate.READY)),
        (("a", "b"), {"a": C, "b": C}, Dependencies(Gate.READY)),
        (("a", "b"), {"a": C, "b": R}, Dependencies(Gate.WAITING)),
        (("a",), {"a": Q}, Dependencies(Gate.WAITING)),
        (("a",), {"a": TaskState.BLOCKED}, Dependencies(Gate.WAITING)),
        (("a", "b"), {"a": C}, Dependencies(Gate.BROKEN, "dependency b does not exist")),
        (("a", "b"), {"a": R, "b": F}, Dependencies(Gate.BROKEN, "dependency b ended FAILED")),
        (
            ("a",),
            {"a": TaskState.CANCELLED},
            Dependencies(Gate.BROKEN, "dependency a ended CANCELLED"),
        ),
        (
            ("a",),
            {"a": TaskState.TIMED_OUT},
            Dependencies(Gate.BROKEN, "dependency a ended TIMED_OUT"),
        ),
        (
            ("a",),
            {"a": TaskState.BUDGET_EXCEEDED},
            Dependencies(Gate.BROKEN, "dependency a ended BUDGET_EXCEEDED"),
        ),
    ],
)
def test_dependencies(
    depends_on: tuple[str, ...], states: dict[str, TaskState], expected: Dependencies
) -> None:
    assert dependencies(_task(depends_on=depends_on), states) == expected


@pytest.mark.parametrize(
    ("fields", "only", "expected"),
    [
        ({}, None, True),
        ({"id": "t1"}, {"t1"}, True),
        ({"id": "t2"}, {"t1"}, False),
        ({"id": "t2", "parent_task_id": "t1"}, {"t1"}, True),
        ({"id": "t2", "checker_for_task_id": "t1"}, {"t1"}, True),
        ({"id": "t3", "parent_task_id": "t2"}, {"t1"}, False),
        ({"id": "t2"}, set(), False),
    ],
)
def test_in_scope(fields: dict[str, str], only: set[str] | None, expected: bool) -> None:
    assert in_scope(_task().model_copy(update=fields), only) is expected


LEAST = "least-loaded available agent"


@pytest.mark.parametrize(
    ("task", "capacity", "resuming", "cached", "choice", "available"),
    [
        # pinned: that agent, if usable and it has a slot
        (_task("gemini"), _capacity(), None, None, Choice("gemini"), ()),
        (_task("gemini"), _capacity(down=("gemini",)), None, None, None, ()),
        (_task("gemini"), _capacity(limits={"gemini": 0}), None, None, None, ()),
        (_task("mystery"), _capacity(), None, None, None, ()),  # not known here
        # pinned wins over a resumed session's agent
        (_task("claude"), _capacity(), "gemini", None, Choice("claude"), ()),
        # resuming: the agent that asked
        (
            _task(),
            _capacity(),
            "gemini",
            None,
            Choice("gemini", reason="resumes its session"),
            (),
        ),
        (_task(), _capacity(down=("gemini",)), "gemini", None, None, ()),
        # an earlier chooser answer, while its agent is usable
        (
            _task(),
            _capacity(),
            None,
            Choice("gemini", reason="r"),
            Choice("gemini", reason="r"),
            (),
        ),
        (
            _task(),
            _capacity(down=("gemini",)),
            None,
            Choice("gemini", reason="r"),
            None,
            ("claude",),
        ),
        # unpinned: the usable agents with a slot, for a chooser
        (_task(), _capacity(), None, None, None, ("claude", "gemini")),
        (_task(), _capacity(down=("claude",)), None, None, None, ("gemini",)),
        (_task(), _capacity(limits={"claude": 0}), None, None, None, ("gemini",)),
        (_task(), _capacity(uncredentialed=("claude",)), None, None, None, ("gemini",)),
        (
            _task(),
            _capacity(uncredentialed=("claude", "gemini")),
            None,
            None,
            None,
            ("claude", "gemini"),
        ),
        (_task(), _capacity(agents=("gemini",)), None, None, None, ("gemini",)),  # no runner
        (_task(), _capacity(down=("claude", "gemini")), None, None, None, ()),
        (_task(), _capacity(total=1, running={"claude": 1}), None, None, None, ()),
    ],
)
def test_pick_agent(
    task: Task,
    capacity: Capacity,
    resuming: str | None,
    cached: Choice | None,
    choice: Choice | None,
    available: tuple[str, ...],
) -> None:
    pick = pick_agent(task, capacity, resuming=resuming, cached=cached)
    assert pick.choice == choice
    assert pick.available == available
    assert pick.ask is bool(available)
    assert pick.waits is (choice is None and not available)


@pytest.mark.parametrize(
    ("running", "chosen", "settled"),
    [
        ({}, None, Choice("claude", reason=LEAST)),  # a tie: the default agent
        ({"claude": 1}, None, Choice("gemini", reason=LEAST)),
        ({"claude": 1}, Choice("claude", reason="c"), Choice("claude", reason="c")),
        ({}, Choice("local", reason="c"), Choice("claude", reason=LEAST)),  # not available
    ],
)
def test_a_chooser_answer_is_kept_only_if_available(
    running: dict[str, int], chosen: Choice | None, settled: Choice
) -> None:
    pick = pick_agent(_task(), _capacity(running=running))
    assert pick.settle(chosen) == settled
    assert dict(pick.counts) == {"claude": running.get("claude", 0), "gemini": 0}


def test_the_chooser_is_told_why_agents_are_blocked() -> None:
    pick = pick_agent(_task(), _capacity(down=("gemini",)))
    assert dict(pick.blocked) == {"gemini": "gemini is down"}
