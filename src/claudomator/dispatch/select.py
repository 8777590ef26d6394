"""What a dispatcher may claim next, decided from values alone (no store, no clock, no I/O).

The caller reads what it needs (the queued page, the dependencies' states, the executions of
a task, the agents' readiness) and passes it in; every function here answers with a typed
value and changes nothing. The local pool (:mod:`claudomator.dispatch.local`) is the caller
today; another dispatcher would use the same rules.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from claudomator.agents import DEFAULT_AGENT
from claudomator.chooser import Choice
from claudomator.models import Task, TaskState
from claudomator.readiness import Readiness, waiting_reason

logger = logging.getLogger(__name__)

FAILED_DEPENDENCY = frozenset(
    {TaskState.FAILED, TaskState.TIMED_OUT, TaskState.BUDGET_EXCEEDED, TaskState.CANCELLED}
)
"""The states of a dependency that fail the task waiting for it."""


# -- capacity ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    """The slots of a dispatcher now, and which agents it can use.

    ``total`` tasks at once, at most ``limits[agent]`` of one agent; ``running`` counts the
    tasks running now per agent; ``agents`` are the agents it has runners for (in their
    order of preference on a tie), ``ready`` every agent's readiness.
    """

    total: int
    running: Mapping[str, int] = field(default_factory=dict)
    limits: Mapping[str, int] = field(default_factory=dict)
    agents: tuple[str, ...] = ()
    ready: Mapping[str, Readiness] = field(default_factory=dict)

    @property
    def busy(self) -> int:
        return sum(self.running.values())

    @property
    def free(self) -> int:
        return max(self.total - self.busy, 0)

    def count(self, agent: str) -> int:
        return self.running.get(agent, 0)

    def has_slot(self, agent: str) -> bool:
        """Whether one more task of ``agent`` fits (in the total and in its own limit)."""
        if self.free <= 0:
            return False
        limit = self.limits.get(agent)
        return limit is None or self.count(agent) < limit

    def usable(self, agent: str) -> bool:
        ready = self.ready.get(agent)
        return agent in self.agents and ready is not None and ready.usable

    def claimed(self, agent: str) -> Capacity:
        """This capacity after one more task of ``agent`` started."""
        running = dict(self.running)
        running[agent] = running.get(agent, 0) + 1
        return Capacity(self.total, running, self.limits, self.agents, self.ready)


def page_size(free: int, largest: int) -> int:
    """Queued tasks to read at once: about twice the free slots (most wakes free one slot and
    claim one task), at least 8, at most ``largest``."""
    return min(largest, max(8, 2 * free))


# -- dependencies ------------------------------------------------------------------------------


class Gate(enum.Enum):
    """Where a task's dependencies leave it."""

    READY = "ready"  # none, or all COMPLETED
    WAITING = "waiting"  # some still to finish
    BROKEN = "broken"  # one is missing or ended without completing: the task fails


@dataclass(frozen=True)
class Dependencies:
    gate: Gate
    reason: str = ""  # for BROKEN: why the task fails


def dependencies(task: Task, states: Mapping[str, TaskState]) -> Dependencies:
    """Whether ``task`` may start, given the states of its dependencies (``states``: those
    found; a dependency missing from it does not exist)."""
    for dep in task.depends_on:
        state = states.get(dep)
        if state is None:
            return Dependencies(Gate.BROKEN, f"dependency {dep} does not exist")
        if state in FAILED_DEPENDENCY:
            return Dependencies(Gate.BROKEN, f"dependency {dep} ended {state.value}")
    if all(states[d] == TaskState.COMPLETED for d in task.depends_on):
        return Dependencies(Gate.READY)
    return Dependencies(Gate.WAITING)


# -- scope -------------------------------------------------------------------------------------


def in_scope(task: Task, only: Collection[str] | None) -> bool:
    """Whether a dispatcher limited to the task ids ``only`` (None: every task) may run
    ``task``: one of them, or a checker or subtask of one (the caller adds such a task's id to
    its scope, so the subtasks of subtasks follow)."""
    if only is None or task.id in only:
        return True
    return bool({task.parent_task_id, task.checker_for_task_id} & set(only))


# -- agent choice ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """The agent selection for one task.

    ``choice`` set: the agent is decided and has a slot (``ask`` False). ``ask`` True: the task
    pinned no agent; a chooser may pick among ``available`` (given ``counts`` and ``blocked``),
    else ``fallback`` runs it. Neither: the task waits (its agent is unusable or busy).
    """

    choice: Choice | None = None
    ask: bool = False
    available: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    blocked: Mapping[str, str] = field(default_factory=dict)
    fallback: Choice | None = None

    @property
    def waits(self) -> bool:
        return self.choice is None and not self.ask

    def settle(self, chosen: Choice | None) -> Choice | None:
        """The chooser's answer if it named an available agent, else the fallback."""
        if chosen is not None and chosen.agent in self.available:
            return chosen
        return self.fallback


WAIT = Pick()


def pick_agent(
    task: Task,
    capacity: Capacity,
    *,
    resuming: str | None = None,
    cached: Choice | None = None,
) -> Pick:
    """The agent for ``task``: its pinned agent, the one whose session it resumes
    (``resuming``, see :func:`claudomator.readiness.resuming_agent`), an earlier chooser answer
    (``cached``) while that agent is usable, else the usable agents with a free slot (those
    whose credentials were found first) for a chooser, least-loaded as the fallback."""
    resuming = None if task.agent.type else resuming  # a pinned agent wins
    if waiting_reason(task, capacity.ready, resuming) is not None:
        return WAIT
    decided: Choice | None = None
    if task.agent.type:
        decided = Choice(task.agent.type)
    elif resuming is not None:  # an answered question resumes with the agent that asked it
        decided = Choice(resuming, reason="resumes its session")
    elif (
        cached is not None
        and cached.agent in capacity.ready
        and capacity.ready[cached.agent].usable
    ):
        decided = cached
    if decided is not None:
        return Pick(choice=decided) if capacity.has_slot(decided.agent) else WAIT
    usable = [n for n in capacity.agents if capacity.usable(n)]
    # an agent whose credentials were not found is given a task only if no other can be
    trusted = [n for n in usable if capacity.ready[n].credentials is not False]
    available = tuple(n for n in (trusted or usable) if capacity.has_slot(n))
    if not available:
        return WAIT
    counts = {name: capacity.count(name) for name in capacity.agents}
    least = min(available, key=lambda a: (counts[a], a != DEFAULT_AGENT))
    return Pick(
        ask=True,
        available=available,
        counts=counts,
        blocked={n: "; ".join(r.reasons) for n, r in capacity.ready.items() if not r.usable},
        fallback=Choice(least, reason="least-loaded available agent"),
    )


def agent_counts(agents: Sequence[str]) -> dict[str, int]:
    """Running tasks per agent, from the agent of each running task."""
    counts: dict[str, int] = {}
    for agent in agents:
        counts[agent] = counts.get(agent, 0) + 1
    return counts
