"""The task state machine and the value objects (docs/design.md §2)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pydantic
import pytest

from claudomator.errors import ClaudomatorError, InvalidTransition
from claudomator.models import (
    TERMINAL_STATES,
    TRANSITIONS,
    AgentConfig,
    ChangeStats,
    Commit,
    Execution,
    Priority,
    Project,
    Task,
    TaskState,
    can_transition,
    check_transition,
)

S = TaskState

# docs/design.md §2, written out independently of the code: every edge its table allows.
DESIGN_EDGES: dict[TaskState, set[TaskState]] = {
    S.PENDING: {S.QUEUED, S.CANCELLED},
    # claim; a dependency failed or was cancelled; cancelled by a human
    S.QUEUED: {S.RUNNING, S.FAILED, S.CANCELLED},
    # finished; waiting for review; asked a question; the failures; cancelled;
    # rate-limited / orchestrator restarted -> back to QUEUED
    S.RUNNING: {
        S.COMPLETED,
        S.READY,
        S.BLOCKED,
        S.FAILED,
        S.TIMED_OUT,
        S.BUDGET_EXCEEDED,
        S.CANCELLED,
        S.QUEUED,
    },
    S.READY: {S.COMPLETED, S.QUEUED, S.CANCELLED},  # accept; reject + feedback; cancel
    S.BLOCKED: {S.QUEUED, S.CANCELLED},  # answer; cancel
    S.COMPLETED: set(),  # final
    S.FAILED: {S.QUEUED},  # retry
    S.TIMED_OUT: {S.QUEUED},
    S.BUDGET_EXCEEDED: {S.QUEUED},
    S.CANCELLED: {S.QUEUED},
}
ALLOWED = sorted((a, b) for a, targets in DESIGN_EDGES.items() for b in targets)
ILLEGAL = sorted(
    (a, b) for a, b in itertools.product(TaskState, TaskState) if b not in DESIGN_EDGES[a]
)


def _agent(**fields: object) -> AgentConfig:
    return AgentConfig.model_validate({"instructions": "do the thing", **fields})


# -- transitions ------------------------------------------------------------------------------


def test_table_covers_every_state_exactly_as_designed() -> None:
    assert set(TRANSITIONS) == set(TaskState)
    assert {k: set(v) for k, v in TRANSITIONS.items()} == DESIGN_EDGES


@pytest.mark.parametrize(("source", "target"), ALLOWED, ids=lambda s: str(s))
def test_allowed_edge(source: TaskState, target: TaskState) -> None:
    assert can_transition(source, target)
    check_transition("t-1", source, target)  # does not raise


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=lambda s: str(s))
def test_illegal_edge_raises_with_its_data(source: TaskState, target: TaskState) -> None:
    assert not can_transition(source, target)
    with pytest.raises(InvalidTransition) as info:
        check_transition("task-42", source, target)
    err = info.value
    assert isinstance(err, ClaudomatorError)
    assert (err.task_id, err.source, err.target) == ("task-42", source.value, target.value)
    assert "task-42" in str(err)
    assert source.value in str(err)
    assert target.value in str(err)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.PENDING, S.RUNNING),
        (S.QUEUED, S.COMPLETED),
        (S.QUEUED, S.READY),
        (S.BLOCKED, S.RUNNING),
        (S.READY, S.RUNNING),
        (S.FAILED, S.COMPLETED),
        (S.CANCELLED, S.RUNNING),
        (S.RUNNING, S.PENDING),
        (S.RUNNING, S.RUNNING),
    ],
)
def test_sample_of_illegal_edges(source: TaskState, target: TaskState) -> None:
    with pytest.raises(InvalidTransition, match=f"from {source.value} to {target.value}"):
        check_transition("x", source, target)


def test_completed_is_final() -> None:
    assert TRANSITIONS[S.COMPLETED] == frozenset()
    for target in TaskState:
        assert not can_transition(S.COMPLETED, target)


def test_no_state_transitions_to_itself_or_back_to_pending() -> None:
    for source in TaskState:
        assert not can_transition(source, source)
        assert not can_transition(source, S.PENDING)


def test_every_terminal_state_but_completed_can_be_retried() -> None:
    for state in TERMINAL_STATES - {S.COMPLETED}:
        assert can_transition(state, S.QUEUED), state


def test_terminal_and_active_properties() -> None:
    terminal = {s for s in TaskState if s.is_terminal}
    active = {s for s in TaskState if s.is_active}
    assert terminal == {S.COMPLETED, S.FAILED, S.TIMED_OUT, S.BUDGET_EXCEEDED, S.CANCELLED}
    assert active == {S.PENDING, S.QUEUED, S.RUNNING}
    # waiting for a human: neither finished nor active
    for state in (S.READY, S.BLOCKED):
        assert not state.is_terminal
        assert not state.is_active


def test_states_are_their_names_as_text() -> None:
    assert S("QUEUED") is S.QUEUED
    assert str(S.BUDGET_EXCEEDED) == "BUDGET_EXCEEDED"


# -- priority ---------------------------------------------------------------------------------


def test_priority_rank_orders_low_normal_high() -> None:
    assert Priority.LOW.rank < Priority.NORMAL.rank < Priority.HIGH.rank
    ordered = sorted(Priority, key=lambda p: p.rank, reverse=True)
    assert ordered == [Priority.HIGH, Priority.NORMAL, Priority.LOW]
    assert Priority("high") is Priority.HIGH


# -- frozen value objects ---------------------------------------------------------------------


def test_task_defaults() -> None:
    task = Task(name="t", agent=_agent())
    other = Task(name="t", agent=_agent())
    assert task.state == S.PENDING
    assert task.priority == Priority.NORMAL
    assert task.id != other.id
    assert len(task.id) == 36
    assert task.created_at.utcoffset() == timedelta(0)
    assert task.timeout is None
    assert task.depends_on == ()
    assert not task.cancel_requested


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (Task(name="t", agent=_agent()), "name", "other"),
        (Task(name="t", agent=_agent()), "state", S.RUNNING),
        (_agent(), "instructions", "changed"),
        (Execution(task_id="t"), "cost_usd", 1.0),
        (Commit(hash="abc", message="m"), "hash", "def"),
        (ChangeStats(), "files", 3),
        (Project(name="p", dir="/tmp/p"), "dir", "/elsewhere"),
    ],
    ids=["task.name", "task.state", "agent", "execution", "commit", "changestats", "project"],
)
def test_models_are_frozen(model: pydantic.BaseModel, field: str, value: object) -> None:
    before = getattr(model, field)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        setattr(model, field, value)
    assert getattr(model, field) == before


def test_change_is_a_new_object() -> None:
    task = Task(name="t", agent=_agent())
    moved = task.model_copy(update={"state": S.QUEUED})
    assert moved.state == S.QUEUED
    assert task.state == S.PENDING
    assert moved.id == task.id


@pytest.mark.parametrize(
    "model",
    [Task, Execution, Commit, ChangeStats, Project, AgentConfig],
)
def test_models_forbid_extra_keys(model: type[pydantic.BaseModel]) -> None:
    bases: dict[type[pydantic.BaseModel], dict[str, object]] = {
        Task: {"name": "t", "agent": {"instructions": "x"}},
        Execution: {"task_id": "t"},
        Commit: {"hash": "h", "message": "m"},
        ChangeStats: {},
        Project: {"name": "p", "dir": "/p"},
        AgentConfig: {"instructions": "x"},
    }
    base = bases[model]
    model.model_validate(base)  # valid without the extra key
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({**base, "bogus": 1})


# -- AgentConfig validation -------------------------------------------------------------------


def test_agent_config_defaults() -> None:
    agent = _agent()
    assert agent.permission_mode == "bypassPermissions"
    assert agent.type == ""
    assert agent.max_budget_usd is None
    assert agent.allowed_tools == ()
    assert not agent.skip_planning


def test_agent_config_requires_instructions() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        AgentConfig.model_validate({"model": "opus"})
    assert [e["loc"] for e in info.value.errors()] == [("instructions",)]
    assert info.value.errors()[0]["type"] == "missing"


def test_agent_config_unknown_key_is_named() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        _agent(instrucitons="typo")
    assert [e["loc"] for e in info.value.errors()] == [("instrucitons",)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_budget_usd", 0),
        ("max_budget_usd", -1.0),
        ("temperature", -0.1),
        ("temperature", 2.01),
        ("max_tokens", 0),
        ("max_tokens", -5),
    ],
)
def test_agent_config_rejects_out_of_bounds(field: str, value: object) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        _agent(**{field: value})
    assert info.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_budget_usd", 0.01),
        ("temperature", 0),
        ("temperature", 2),
        ("max_tokens", 1),
    ],
)
def test_agent_config_accepts_bounds(field: str, value: object) -> None:
    assert getattr(_agent(**{field: value}), field) == value


def test_agent_config_tuples_from_lists() -> None:
    agent = _agent(allowed_tools=["Bash", "Read"], additional_args=["--max-turns", "3"])
    assert agent.allowed_tools == ("Bash", "Read")
    assert agent.additional_args == ("--max-turns", "3")


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_task_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(pydantic.ValidationError):
        Task(name="t", agent=_agent(), timeout=timeout)


def test_task_rejects_unknown_priority_and_state() -> None:
    with pytest.raises(pydantic.ValidationError):
        Task.model_validate({"name": "t", "agent": {"instructions": "x"}, "priority": "urgent"})
    with pytest.raises(pydantic.ValidationError):
        Task.model_validate({"name": "t", "agent": {"instructions": "x"}, "state": "DONE"})
