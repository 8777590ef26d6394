"""A scripted agent for the fast tier: a real :class:`~claudomator.agents.base.Runner` that plays
back a list of outcomes instead of running a CLI.

Each call to :meth:`ScriptedRunner.run` takes the next :class:`Step` and does what an agent would
do through the protocol (``src/claudomator/protocol.py``): writes files in its sandbox (the
attempt commits and delivers them), a question to ``$CLAUDOMATOR_QUESTION_FILE`` (the task
BLOCKS), a summary to ``$CLAUDOMATOR_SUMMARY_FILE``; waits for a stop when told to hold (a
cancel or a shutdown); and reports the scripted :class:`~claudomator.agents.base.Outcome`. It
records every :class:`Call`. No network, no process (``Capabilities.spawns_process=False``).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from claudomator.agents.base import Capabilities, Outcome, RunContext
from claudomator.agents.registry import AgentRegistry, AgentSpec, builtin_agents
from claudomator.models import TaskState

RATE_LIMIT_ERROR = "API Error: 429 Too Many Requests (rate limit exceeded)"


@dataclass(frozen=True)
class Step:
    """One scripted run of the agent."""

    status: TaskState = TaskState.COMPLETED
    text: str = "done"  # the agent's own words (the summary falls back to them)
    error_msg: str = ""
    api_error_status: int | None = None
    question: str = ""  # written to the question file: the task BLOCKS
    options: tuple[str, ...] = ()
    summary: str = ""  # written to the summary file
    files: Mapping[str, str] = field(default_factory=dict)  # written in the sandbox
    hold: bool = False  # wait for ctx.stop (-> CANCELLED), its timeout (-> TIMED_OUT) or release
    cost_usd: float = 0.0
    crash: str = ""  # raise RuntimeError(crash): a bug in the runner


def completed(summary: str = "done", **files: str) -> Step:
    """Success, with ``summary`` in the summary file and ``files`` written in the sandbox."""
    return Step(TaskState.COMPLETED, text=summary, summary=summary, files=files)


def failed(error: str = "the agent gave up") -> Step:
    return Step(TaskState.FAILED, text="", error_msg=error)


def rate_limited() -> Step:
    return Step(TaskState.FAILED, text="", error_msg=RATE_LIMIT_ERROR, api_error_status=429)


def asks(question: str, *options: str) -> Step:
    return Step(TaskState.COMPLETED, text="", question=question, options=options)


def held(then: TaskState = TaskState.COMPLETED) -> Step:
    """Runs until stopped (CANCELLED), timed out (TIMED_OUT) or released (``then``)."""
    return Step(then, hold=True)


def crashes(message: str = "a bug in the runner") -> Step:
    return Step(crash=message)


@dataclass(frozen=True)
class Call:
    """What one run was given."""

    task_id: str
    execution_id: str
    session_id: str
    resume: bool
    prompt: str
    agent: str  # the agent type the attempt ran it as
    workdir: Path
    log_dir: Path
    env: Mapping[str, str]


class ScriptedRunner:
    """Plays back ``steps`` in order, one per run; with none left a run FAILS saying so."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        reports_cost=True, spawns_process=False, options=frozenset({"model"})
    )

    def __init__(self, steps: Iterable[Step] = (), *, name: str = "scripted") -> None:
        self.name = name
        self.steps: deque[Step] = deque(steps)
        self.calls: list[Call] = []
        self.active: set[str] = set()  # task ids running now
        self.most_at_once = 0
        self._releases: dict[str, asyncio.Event] = {}

    def then(self, *steps: Step) -> ScriptedRunner:
        """Add ``steps`` to the end of the script."""
        self.steps.extend(steps)
        return self

    def release(self, task_id: str) -> None:
        """End the held run of ``task_id`` with its step's status."""
        self._releases.setdefault(task_id, asyncio.Event()).set()

    def calls_of(self, task_id: str) -> list[Call]:
        return [c for c in self.calls if c.task_id == task_id]

    async def run(self, ctx: RunContext) -> Outcome:
        call = Call(
            task_id=ctx.task.id,
            execution_id=ctx.execution_id,
            session_id=ctx.session_id,
            resume=ctx.resume,
            prompt=ctx.task.agent.instructions,
            agent=ctx.task.agent.type,
            workdir=ctx.workdir,
            log_dir=ctx.log_dir,
            env=dict(ctx.env),
        )
        self.calls.append(call)
        if not self.steps:
            return Outcome(TaskState.FAILED, error_msg=f"{self.name}: no scripted step left")
        step = self.steps.popleft()
        self.active.add(ctx.task.id)
        self.most_at_once = max(self.most_at_once, len(self.active))
        try:
            return await self._play(step, ctx)
        finally:
            self.active.discard(ctx.task.id)

    async def _play(self, step: Step, ctx: RunContext) -> Outcome:
        if step.hold:
            release = self._releases.setdefault(ctx.task.id, asyncio.Event())
            stop = asyncio.ensure_future(ctx.stop.wait())
            done = asyncio.ensure_future(release.wait())
            await asyncio.wait(
                {stop, done}, timeout=ctx.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            stop.cancel()
            done.cancel()
            self._releases.pop(ctx.task.id, None)
            if ctx.stop.is_set():
                return Outcome(TaskState.CANCELLED, session_id=ctx.session_id, error_msg="stopped")
            if not release.is_set():
                message = f"timed out after {ctx.timeout:g}s"
                return Outcome(TaskState.TIMED_OUT, session_id=ctx.session_id, error_msg=message)
        if step.crash:
            raise RuntimeError(step.crash)
        for rel, content in step.files.items():
            path = ctx.workdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        if step.question:
            question = {"text": step.question, "options": list(step.options)}
            Path(ctx.env["CLAUDOMATOR_QUESTION_FILE"]).write_text(
                json.dumps(question), encoding="utf-8"
            )
        if step.summary:
            Path(ctx.env["CLAUDOMATOR_SUMMARY_FILE"]).write_text(step.summary, encoding="utf-8")
        return Outcome(
            status=step.status,
            exit_code=0 if step.status == TaskState.COMPLETED else 1,
            session_id=ctx.session_id,
            model=ctx.task.agent.model,
            cost_usd=step.cost_usd,
            cost_reported=True,
            error_msg=step.error_msg,
            text=step.text,
            api_error_status=step.api_error_status,
        )


def scripted_spec(runner: ScriptedRunner) -> AgentSpec:
    """``runner`` as a registry's agent (no CLI, always configured): how a Runtime or a Service
    would be given it."""
    return AgentSpec(
        name=runner.name,
        profile="Scripted agent: plays back the outcomes a test wrote for it.",
        capabilities=ScriptedRunner.capabilities,
        make_runner=lambda _settings, _launcher: runner,
    )


def registry_with(*runners: ScriptedRunner, builtins: bool = False) -> AgentRegistry:
    """A registry of the scripted ``runners`` (after the built-in agents if ``builtins``)."""
    registry = AgentRegistry()
    for spec in [*(builtin_agents() if builtins else []), *map(scripted_spec, runners)]:
        registry.register(spec)
    return registry
