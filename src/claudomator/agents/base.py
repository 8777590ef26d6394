"""What every runner gets and gives back, and the one way to run an agent CLI process.

A runner turns a task into an argv and environment, runs it through
:class:`~claudomator.process.AgentProcess`, parses the agent's stream and maps the outcome to
an :class:`Outcome` with the state the execution ended in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from claudomator.isolation.base import Confinement
from claudomator.models import AgentConfig, Task, TaskState

MAX_KEPT_TEXT = 256 * 1024
"""How many characters of an agent's own words a stream parser keeps, the newest: enough for
the summary and error messages, however much the agent writes."""


def trim_oldest(texts: list[str], kept: int, limit: int = MAX_KEPT_TEXT) -> int:
    """Once ``texts`` (``kept`` characters in all) hold over twice ``limit`` characters, drop the
    oldest down to ``limit`` (in place) and cut an entry still longer to its tail; returns the
    characters kept. Called after every append, it costs amortised constant time."""
    if kept <= 2 * limit:
        return kept
    drop = 0
    while kept > limit and drop < len(texts) - 1:
        kept -= len(texts[drop])
        drop += 1
    del texts[:drop]
    if kept > limit:
        texts[-1] = texts[-1][-limit:]
        kept = len(texts[-1])
    return kept


@dataclass(frozen=True)
class RunContext:
    """Everything a runner needs for one execution."""

    task: Task
    execution_id: str
    workdir: Path  # the sandbox the agent works in
    log_dir: Path  # stdout.log and stderr.log go here
    env: dict[str, str]  # the full environment of the agent process
    session_id: str  # the agent session to start (or resume)
    timeout: float  # seconds
    kill_grace: float  # seconds between SIGTERM and SIGKILL
    stop: asyncio.Event  # set to stop the agent (cancel or shutdown)
    resume: bool = False  # resume ``session_id`` instead of starting it
    on_started: Callable[[int], None] | None = None  # called with the pid once spawned
    # for agents that report no cost: (model, tokens in, tokens out) -> USD, None if unpriced
    estimate_cost: Callable[[str, int, int], float | None] | None = None
    # how the agent is confined beyond the sandbox (launcher, network, extra read-only paths)
    confinement: Confinement = field(default_factory=Confinement)

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / "stderr.log"


@dataclass(frozen=True)
class Outcome:
    """How an agent run ended, as far as the agent itself is concerned.

    Frozen: a runner builds it once; the attempt's pricing and finish decision make new values
    (``dataclasses.replace``) instead of changing it."""

    status: TaskState  # COMPLETED, FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED
    exit_code: int | None = None
    session_id: str = ""
    model: str = ""  # the model that actually answered, when the agent says
    cost_usd: float = 0.0
    cost_reported: bool = False  # the agent reported cost itself (else it may be estimated)
    cost_estimated: bool = False
    cost_known: bool = True  # False: not reported and the model has no price (priced later)
    tokens_in: int = 0
    tokens_out: int = 0
    error_msg: str = ""  # for failures: what went wrong, in the agent's words where possible
    text: str = ""  # the agent's own words (for the summary)
    api_error_status: int | None = None  # HTTP status of the model API failure, if known
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    """What a runner can do, declared on its class (the attempt and the chooser read these,
    never probe the runner)."""

    text_only: bool = False  # answers in text, edits no files: no protocol preamble
    resumes_in_place: bool = False  # a resumed session must run in the same directory
    reports_cost: bool = False  # the agent reports its cost (else the pool estimates it)
    enforces_budget: bool = False  # the agent itself stops at ``max_budget_usd``
    spawns_process: bool = True  # runs a CLI process (``ctx.on_started`` gets its pid)
    # the :class:`~claudomator.models.AgentConfig` options the runner applies; the others
    # are logged as ignored
    options: frozenset[str] = frozenset()


def _is_set(agent: AgentConfig, option: str) -> bool:
    value = getattr(agent, option)
    if option == "permission_mode":
        return value not in ("", "bypassPermissions")  # the default is what every CLI does
    return value is not None and value != "" and value != ()


OPTIONS = (
    "max_budget_usd",
    "system_prompt_append",
    "allowed_tools",
    "disallowed_tools",
    "permission_mode",
    "temperature",
    "max_tokens",
)
"""The :class:`AgentConfig` options an agent may or may not apply (see
:attr:`Capabilities.options`), in the order they are reported."""


def unapplied_options(agent: AgentConfig, capabilities: Capabilities) -> list[str]:
    """Options set in ``agent`` that a runner with ``capabilities`` does not apply."""
    return [o for o in OPTIONS if o not in capabilities.options and _is_set(agent, o)]


class Runner(Protocol):
    """Drives one kind of agent."""

    name: str
    capabilities: ClassVar[Capabilities]

    async def run(self, ctx: RunContext) -> Outcome:
        """Run the agent for ``ctx`` to its end and report what happened."""
        ...
