"""Value objects of Claudomator and the task state machine.

Models are frozen: a change is a new object (``model_copy(update=...)``) that the store persists.
The state machine lives here and only here: :data:`TRANSITIONS` lists every allowed change and
:func:`check_transition` is the one place that decides.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from claudomator.errors import InvalidTransition
from claudomator.isolation import policy


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh random identifier (UUID4 as text)."""
    return str(uuid.uuid4())


class TaskState(StrEnum):
    """Where a task is in its life. See docs/design.md §2."""

    PENDING = "PENDING"  # stored but not yet submitted for running
    QUEUED = "QUEUED"  # waiting for a slot (and for its dependencies)
    RUNNING = "RUNNING"  # an execution is in progress
    READY = "READY"  # finished, waiting for a human to accept or reject the work
    COMPLETED = "COMPLETED"  # finished successfully; final
    BLOCKED = "BLOCKED"  # the agent asked a question; waiting for an answer
    FAILED = "FAILED"  # the agent or its delivery failed; may be retried
    TIMED_OUT = "TIMED_OUT"  # killed at its timeout; may be retried
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"  # stopped at its cost budget; may be retried
    CANCELLED = "CANCELLED"  # stopped by a human; may be retried

    @property
    def is_terminal(self) -> bool:
        """True when nothing more will happen to the task without a human."""
        return self in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        """True while the task is waiting to run or running."""
        return self in (TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING)


TERMINAL_STATES = frozenset(
    {
        TaskState.COMPLETED,
        TaskState.FAILED,
        TaskState.TIMED_OUT,
        TaskState.BUDGET_EXCEEDED,
        TaskState.CANCELLED,
    }
)

RETRYABLE_STATES = frozenset(
    {TaskState.FAILED, TaskState.TIMED_OUT, TaskState.BUDGET_EXCEEDED, TaskState.CANCELLED}
)

TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset({TaskState.QUEUED, TaskState.CANCELLED}),
    # QUEUED -> FAILED: a dependency failed or was cancelled.
    TaskState.QUEUED: frozenset({TaskState.RUNNING, TaskState.FAILED, TaskState.CANCELLED}),
    # RUNNING -> QUEUED: rate-limited, or the orchestrator shut down / restarted.
    TaskState.RUNNING: frozenset(
        {
            TaskState.COMPLETED,
            TaskState.READY,
            TaskState.BLOCKED,
            TaskState.FAILED,
            TaskState.TIMED_OUT,
            TaskState.BUDGET_EXCEEDED,
            TaskState.CANCELLED,
            TaskState.QUEUED,
        }
    ),
    TaskState.READY: frozenset({TaskState.COMPLETED, TaskState.QUEUED, TaskState.CANCELLED}),
    TaskState.BLOCKED: frozenset({TaskState.QUEUED, TaskState.CANCELLED}),
    TaskState.COMPLETED: frozenset(),
    **{state: frozenset({TaskState.QUEUED}) for state in RETRYABLE_STATES},
}


def can_transition(source: TaskState, target: TaskState) -> bool:
    """Whether the state machine allows ``source -> target``."""
    return target in TRANSITIONS[source]


def check_transition(task_id: str, source: TaskState, target: TaskState) -> None:
    """Raise :class:`InvalidTransition` unless ``source -> target`` is allowed."""
    if not can_transition(source, target):
        raise InvalidTransition(task_id, source.value, target.value)


class Priority(StrEnum):
    """How eagerly the pool picks a task among those queued."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """Higher ranks are claimed first."""
        return {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}[self]


_FROZEN = ConfigDict(frozen=True, extra="forbid")
# what a person writes (a task, its agent): no infinite or NaN numbers either
_WRITTEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

MAX_TIMEOUT_SECONDS = 30 * 86400.0  # a task may run at most 30 days
MAX_BUDGET_USD = 100_000.0
MAX_TOKENS = 10_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(value: object) -> object:
    """``value`` unchanged if every string in it is text a file, git or a process can take.

    Refuses NUL characters (no path, argument or environment value can hold one) and lone
    surrogates (not Unicode: they cannot be stored or written as UTF-8), in a string or in the
    strings of a tuple or list.
    """
    if isinstance(value, str):
        if "\0" in value:
            raise PydanticCustomError("text_nul", "must not contain a NUL character (\\0)")
        if _SURROGATE.search(value):
            raise PydanticCustomError(
                "text_surrogate", "must be valid Unicode text (it holds a lone surrogate)"
            )
    elif isinstance(value, tuple | list):
        for item in value:
            check_text(item)
    return value


def is_text(value: str) -> bool:
    """Whether ``value`` passes :func:`check_text`."""
    return "\0" not in value and not _SURROGATE.search(value)


_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


class AgentConfig(BaseModel):
    """How to run the agent for one task."""

    model_config = _WRITTEN

    type: str = ""  # "claude", "gemini", "local"; empty: let Claudomator choose
    model: str = ""  # passed to the CLI unchanged; empty: the CLI's default
    instructions: str
    project_dir: str = ""  # the user's project; empty: a scratch directory
    max_budget_usd: float | None = Field(default=None, gt=0, le=MAX_BUDGET_USD)
    permission_mode: str = "bypassPermissions"
    allowed_tools: tuple[str, ...] = ()
    disallowed_tools: tuple[str, ...] = ()
    system_prompt_append: str = ""
    additional_args: tuple[str, ...] = ()
    context_files: tuple[str, ...] = ()
    skip_planning: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)

    @field_validator("*")
    @classmethod
    def _text(cls, value: object) -> object:
        return check_text(value)


TASK_FIELDS = frozenset(
    {
        "name",
        "description",
        "agent",
        "timeout",
        "priority",
        "tags",
        "depends_on",
        "parent_task_id",
        "story_id",
        "acceptance_criteria",
        "isolation",
    }
)
"""The fields a task's definition sets (a task file, a request, an edit); the rest is its state."""


class TaskIsolation(BaseModel):
    """How a task's agent is confined, over its project's and the operator's settings
    (:func:`claudomator.isolation.policy.confinement_for`): "" leaves a field to them. A task
    may always tighten (plain -> auto -> bubblewrap, open -> model-only); it may loosen only
    when ``[isolation] allow_task_override = true`` (checked at submit)."""

    model_config = _WRITTEN

    launcher: str = ""  # plain | bubblewrap | auto; "": the project's
    network: str = ""  # open | model-only; "": the project's

    @field_validator("launcher")
    @classmethod
    def _launcher(cls, value: str) -> str:
        return policy.check_launcher(value, inherit=True)

    @field_validator("network")
    @classmethod
    def _network(cls, value: str) -> str:
        return policy.check_network(value, inherit=True)


class Task(BaseModel):
    """One unit of work for an agent."""

    model_config = _WRITTEN

    id: str = Field(default_factory=new_id)
    name: str
    description: str = ""
    agent: AgentConfig
    # seconds; None: the configured default
    timeout: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS)
    priority: Priority = Priority.NORMAL
    tags: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()  # task ids
    parent_task_id: str | None = None
    story_id: str | None = None  # the story this task belongs to
    state: TaskState = TaskState.PENDING
    summary: str = ""
    question: str = ""  # the agent's question while BLOCKED (JSON text)
    cancel_requested: bool = False  # set by `cancel`; the pool running the task acts on it
    acceptance_criteria: str = ""  # if set, a checker task inspects the work once it completes
    isolation: TaskIsolation = Field(default_factory=TaskIsolation)
    checker_for_task_id: str | None = None  # this task checks that task's delivered work
    check_verdict: str = ""  # "pass" or "fail", written by the checker task
    check_report: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("*")
    @classmethod
    def _text(cls, value: object) -> object:
        return check_text(value)


class Commit(BaseModel):
    """A commit the agent's work produced."""

    model_config = _FROZEN

    hash: str
    message: str


class ChangeStats(BaseModel):
    """Size of the agent's change against the sandbox's base commit."""

    model_config = _FROZEN

    files: int = 0
    insertions: int = 0
    deletions: int = 0


class DeliveryRecord(BaseModel):
    """Where an execution's commits went, as recorded after its delivery."""

    model_config = _FROZEN

    how: str  # "pushed", "branch" or "nothing" (sandbox.delivery.DeliveryKind)
    project_dir: str = ""  # the user's repository that received them
    remote: str = ""  # the remote's name ("origin", "local"); "" for a kept branch
    url: str = ""  # the remote's URL or path; "" for a kept branch
    branch: str = ""  # the branch pushed to, or the branch kept in the project
    rebased: bool = False  # rebased onto new upstream work first: the commits have new hashes


class Execution(BaseModel):
    """One attempt at a task."""

    model_config = _FROZEN

    id: str = Field(default_factory=new_id)
    task_id: str
    agent: str = ""
    model: str = ""
    start_time: datetime = Field(default_factory=utcnow)
    end_time: datetime | None = None
    exit_code: int | None = None
    status: TaskState = TaskState.RUNNING
    stdout_path: str = ""
    stderr_path: str = ""
    cost_usd: float = 0.0
    cost_estimated: bool = False
    # False when neither the agent nor the price table gave a cost (an unpriced model):
    # ``cost_usd`` is then 0 and means nothing, and the budget could not be checked
    cost_known: bool = True
    tokens_in: int = 0
    tokens_out: int = 0
    error_msg: str = ""
    session_id: str = ""
    sandbox_dir: str = ""
    commits: tuple[Commit, ...] = ()
    changestats: ChangeStats = Field(default_factory=ChangeStats)
    delivery: DeliveryRecord | None = None  # None until delivered (and for older rows)
    summary: str = ""
    worker_id: str = ""  # "<host>:<pid>" of the orchestrator process running it
    pid: int | None = None  # the agent's process (and process group) id
    # the confinement the agent really got, as isolation.policy.describe says it
    # ("bubblewrap, network model-only", "plain, network open (auto: ...)"); "" before it
    # started (and for older rows)
    confinement: str = ""


class TaskCost(BaseModel):
    """What a task has cost: the one definition the CLI, the API, the web UI and the metrics
    share (computed by one grouped query, :func:`claudomator.store.costs.task_costs`).

    ``total_usd`` is the sum of the ``cost_usd`` of every execution of the task (re-queued ones
    included; a running one counts once it ends). ``known`` is False as soon as one execution's
    cost is unknown (an unpriced model): the total is then only a lower bound. ``estimated`` is
    True when any execution's cost came from the price table rather than from the agent.
    """

    model_config = _FROZEN

    total_usd: float = 0.0
    known: bool = True
    estimated: bool = False
    executions: int = 0  # how many executions were counted (0: the task never ran)
    ended: int = 0  # how many of them have ended (a running one has no cost yet)


class TaskEvent(BaseModel):
    """One recorded state change of a task."""

    model_config = _FROZEN

    id: int | None = None
    task_id: str
    at: datetime = Field(default_factory=utcnow)
    from_state: TaskState | None
    to_state: TaskState
    reason: str = ""


class Delivery(StrEnum):
    """What happens to the agent's commits."""

    AUTO = "auto"  # push if the project has a `local` remote or a local-path `origin`, else branch
    PUSH = "push"  # push to the project's bare remote (rebasing once on non-fast-forward)
    BRANCH = "branch"  # keep as branch `claudomator/<short-id>-<slug>` in the project repository


class Project(BaseModel):
    """A named git repository on disk."""

    model_config = _FROZEN

    # a repository's name, optionally with its owner ("webapp", "octo-org/webapp")
    name: str = Field(max_length=200)
    dir: str
    build_command: tuple[str, ...] = ()  # argv; empty: detect (Makefile, gradlew, go.mod)
    delivery: Delivery = Delivery.AUTO
    review: bool = False  # work kept as a branch waits READY for accept / reject-with-feedback
    # how its agents are confined, over the operator's [isolation] (docs/confinement.md):
    # a launcher (plain | bubblewrap | auto) and a network (open | model-only), "" for the
    # operator's; read-only paths and endpoints are added to the operator's
    launcher: str = ""
    network: str = ""
    read_only_paths: tuple[str, ...] = ()  # absolute host paths (a shared package cache)
    allowed_endpoints: tuple[str, ...] = ()  # scheme://host[:port], under network model-only

    @field_validator("*")
    @classmethod
    def _text(cls, value: object) -> object:
        return check_text(value)

    @field_validator("name")
    @classmethod
    def _repository_name(cls, value: str) -> str:
        if not _PROJECT_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a project name: use letters, digits, '.', '_' and '-' "
                "(starting with a letter or digit), optionally as owner/name"
            )
        return value

    @field_validator("launcher")
    @classmethod
    def _launcher(cls, value: str) -> str:
        return policy.check_launcher(value, inherit=True)

    @field_validator("network")
    @classmethod
    def _network(cls, value: str) -> str:
        return policy.check_network(value, inherit=True)

    @field_validator("read_only_paths")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return policy.check_paths(value)

    @field_validator("allowed_endpoints")
    @classmethod
    def _endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return policy.check_endpoints(value)


class Interaction(BaseModel):
    """One question an agent asked and, once given, the human's answer."""

    model_config = _FROZEN

    id: int | None = None
    task_id: str
    execution_id: str
    question: str  # the question text
    options: tuple[str, ...] = ()
    answer: str = ""
    asked_at: datetime = Field(default_factory=utcnow)
    answered_at: datetime | None = None


class AgentStatus(BaseModel):
    """What the pool knows about an agent's health: rate-limit windows, quota, failures."""

    model_config = _FROZEN

    agent: str
    limited_until: datetime | None = None  # rate-limited: do not start it before this
    unavailable_until: datetime | None = None  # quota exhausted: do not use it before this
    consecutive_failures: int = 0
    rate_limit_strikes: int = 0  # consecutive rate limits, for the exponential backoff
    last_error: str = ""
    updated_at: datetime = Field(default_factory=utcnow)

    def blocked_until(self, now: datetime) -> datetime | None:
        """When the agent can be used again, or None if it can be used now."""
        later = [t for t in (self.limited_until, self.unavailable_until) if t and t > now]
        return max(later) if later else None


class Story(BaseModel):
    """A named group of tasks toward one goal."""

    model_config = _FROZEN

    id: str = Field(default_factory=new_id)
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("*")
    @classmethod
    def _text(cls, value: object) -> object:
        return check_text(value)


class PushSubscription(BaseModel):
    """A browser's Web Push subscription (the PushSubscription JSON, flattened)."""

    model_config = _FROZEN

    endpoint: str = Field(min_length=1, max_length=2048)
    p256dh: str = Field(min_length=1, max_length=255)
    auth: str = Field(min_length=1, max_length=255)
    created_at: datetime = Field(default_factory=utcnow)
