"""Turning a one-line request into a task spec a human reviews before it is stored.

``POST /api/tasks/elaborate`` and ``claudomator elaborate`` call :class:`Elaborator`. It asks
three backends in turn; the first whose answer is a valid task spec wins:

* ``local``: the ``[local_model]`` server, in JSON mode (:meth:`LLMClient.complete_json`);
* ``claude`` and ``gemini``: the agent registry's one-shot call
  (:func:`claudomator.agents.oneshot.ask_json`): ``claude -p --output-format json --model sonnet
  --tools Read,Glob,Grep --no-session-persistence -- <prompt>`` (the JSON object is taken from
  the ``result`` text; a ```json fence or prose around it is fine), and ``gemini
  --prompt=<prompt> -o json -m gemini-2.5-flash`` (from ``response``).

Order and ``prefer_for_elaborate``. The rule is "the local model when configured and
``prefer_for_elaborate`` is not false". The setting is a bool that defaults to false, so "not
false" is read as "not *set* to false in the config": a configured local model is asked first
when the key is absent (the default) or true, and last, after both CLIs, when the config says
``prefer_for_elaborate = false``. An unconfigured local model is skipped.

The CLIs run in the project's directory (their read-only tools may look at the code), else in an
empty temporary directory, started through the launcher the runners get with the project read-only
(:func:`~claudomator.agents.oneshot.ask_json`). The whole call has one time budget (30 s by
default) shared by the backends: each gets what is left, a CLI is killed when it runs out, and a
backend reached with less than :data:`MIN_TURN` seconds left is skipped. A backend that is missing,
fails, or answers something that is no valid spec is recorded in ``attempts`` with its reason and
the next one is asked; when none succeeds, :class:`ElaborationFailed` carries every reason.

An answer is normalised and checked by :mod:`claudomator.elaborate.spec` before it is returned;
nothing is stored here. :class:`Tried` records a backend that was not used, and why. The
elaborator builds nothing long-lived: it is given the process's model client and launcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from claudomator.agents.oneshot import OneShotFailed, ask_json
from claudomator.agents.registry import AgentRegistry, default_registry
from claudomator.config import LocalModelSettings, Settings
from claudomator.elaborate.spec import check_spec, normalise_spec
from claudomator.errors import ClaudomatorError, ValidationError
from claudomator.isolation.base import Launcher
from claudomator.isolation.policy import confinement_for
from claudomator.llm import LLMClient, LLMError
from claudomator.models import Project

logger = logging.getLogger(__name__)

_AGENT_CHOICES = ", ".join(f'"{spec.name}" ({spec.profile})' for spec in default_registry())

DEFAULT_BUDGET = 30.0  # seconds for the whole call, all backends together
MIN_TURN = 1.0  # a backend reached with less time left than this is skipped
SYSTEM_PROMPT = (
    "You turn a short request into one task for an AI coding agent that Claudomator runs "
    "unattended in a git sandbox of the project. Write the task so the agent can do it without "
    "asking: the goal, concrete steps, the files or areas to look at when known, constraints, "
    "and how to verify the work (tests to add or run).\n\n"
    "Reply with one JSON object with exactly these keys:\n"
    '- "name": a short kebab-case name, at most 40 characters;\n'
    '- "description": one or two sentences: what and why;\n'
    '- "agent": an object with\n'
    f'  - "type": {_AGENT_CHOICES}, or "" to let Claudomator choose;\n'
    '  - "model": "" unless the request names a model;\n'
    '  - "instructions": the complete instructions for the agent, ending with: End with a '
    '"## Summary" of what you changed.;\n'
    '  - "max_budget_usd": a limit in US dollars, or null;\n'
    '  - "allowed_tools": a list of tool names, or [] for the default;\n'
    '- "timeout": a duration such as "15m" or "1h";\n'
    '- "priority": "low", "normal" or "high";\n'
    '- "tags": a few short lowercase words;\n'
    '- "acceptance_criteria": statements a reviewer can check in the delivered commits, or "".\n'
    "Add no other keys and no project directory."
)


class Tried(NamedTuple):
    """A backend that was not used, and why."""

    backend: str
    reason: str


@dataclass(frozen=True)
class Elaborated:
    """A valid task spec (a task-file document), who wrote it and what happened on the way.

    ``attempts`` lists the backends tried or skipped before ``backend``; ``notes`` what the
    normalisation changed in the answer.
    """

    spec: dict[str, Any]
    backend: str
    attempts: list[Tried] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ElaborationFailed(ClaudomatorError):
    """No backend produced a valid task spec; ``attempts`` has every backend's reason."""

    def __init__(self, attempts: list[Tried]) -> None:
        self.attempts = list(attempts)
        detail = "; ".join(f"{a.backend}: {a.reason}" for a in self.attempts)
        super().__init__(f"no backend produced a valid task spec ({detail})")


class _Unusable(Exception):
    """A backend gave no usable answer; the message says why."""


# -- the request ------------------------------------------------------------------------------


def resolve_project(
    settings: Settings, project: str | None, known: Sequence[Project] | None = None
) -> tuple[str, str]:
    """(name, absolute dir) of a project name or an absolute directory.

    ``known`` are the projects to look in (default: the config file's). Empty for no project;
    raises :class:`ValidationError` for anything else.
    """
    if not project or not project.strip():
        return "", ""
    projects = settings.projects if known is None else tuple(known)
    wanted = project.strip()
    for candidate in projects:
        if candidate.name == wanted:
            return candidate.name, str(Path(candidate.dir).expanduser().resolve())
    path = Path(wanted).expanduser()
    if path.is_absolute():
        if path.is_dir():
            resolved = str(path.resolve())
            named = next(
                (p for p in projects if Path(p.dir).expanduser().resolve() == Path(resolved)),
                None,
            )
            return (named.name if named else ""), resolved
        what = "is not a directory" if path.exists() else "does not exist"
        raise ValidationError(f"project: {wanted} {what}")
    names = ", ".join(p.name for p in projects) or "none configured"
    raise ValidationError(
        f"project: unknown project {wanted!r}; give a configured project name ({names}) "
        "or an absolute directory"
    )


def request_text(prompt: str, project_name: str, project_dir: str) -> str:
    """The user turn: the request and where the work happens."""
    if project_dir:
        where = f"{project_name} at {project_dir}" if project_name else project_dir
        where = f"the git repository {where}"
    else:
        where = "none (the agent starts in an empty scratch repository)"
    return f"Request:\n{prompt}\n\nProject: {where}"


def cli_prompt(request: str, *, in_project: bool) -> str:
    """The single prompt for an agent CLI: instructions, then the request."""
    look = (
        "You may read the project's files to make the instructions concrete; change nothing. "
        if in_project
        else "Do not use tools. "
    )
    return f"{SYSTEM_PROMPT}\n\n{look}Reply with the JSON object only.\n\n{request}"


def local_first(local: LocalModelSettings) -> bool:
    """Whether the local model is asked before the CLIs (see the module docstring)."""
    return local.prefer_for_elaborate or "prefer_for_elaborate" not in local.model_fields_set


# -- the elaborator ---------------------------------------------------------------------------


class Elaborator:
    """Asks the backends in order for a task spec; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        llm: LLMClient | None,
        *,
        env: Mapping[str, str] | None = None,
        budget: float = DEFAULT_BUDGET,
        claude_model: str = "sonnet",
        gemini_model: str = "gemini-2.5-flash",
        agents: AgentRegistry | None = None,
        launcher: Launcher,
    ) -> None:
        self.settings = settings
        self.llm = llm  # the process's client (its owner closes it), or None
        self.launcher = launcher  # starts the CLIs: the one the runners get
        self.env = dict(env) if env is not None else None
        self.budget = budget
        self.agents = agents or default_registry()
        self.models = {"claude": claude_model, "gemini": gemini_model}

    def order(self) -> tuple[str, ...]:
        """The backends, in the order they are asked."""
        clis = tuple(spec.name for spec in self.agents if spec.one_shot is not None)
        if self.llm is not None and self.llm.available and not local_first(self.llm.settings):
            return (*clis, "local")
        return ("local", *clis)

    async def elaborate(
        self, prompt: str, project: str | None = None, known: Sequence[Project] | None = None
    ) -> Elaborated:
        """A valid task spec for ``prompt``; raise :class:`ElaborationFailed` if none came.

        ``project`` is the name of a project in ``known`` (default: the config file's) or an
        absolute directory (it becomes ``agent.project_dir``); anything else raises
        :class:`ValidationError` at once.
        """
        text = prompt.strip()
        if not text:
            raise ValidationError("prompt: must not be empty")
        name, project_dir = resolve_project(self.settings, project, known)
        request = request_text(text, name, project_dir)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.budget
        attempts: list[Tried] = []
        for backend in self.order():
            left = deadline - loop.time()
            try:
                if left < MIN_TURN:
                    raise _Unusable(f"skipped: the {self.budget:g}s budget was used up")
                answer = await self._ask(backend, request, project_dir, left)
                spec, notes = normalise_spec(answer, project_dir=project_dir, prompt=text)
                check_spec(spec, backend, Path(project_dir or self.settings.data_dir))
            except (_Unusable, ValueError) as exc:
                attempts.append(Tried(backend, str(exc)))
                logger.warning(
                    "elaborate: %s gave no spec: %s", backend, exc, extra={"action": "elaborate"}
                )
                continue
            logger.info(
                "elaborate: spec %r from %s in %.1fs",
                spec["name"],
                backend,
                self.budget - (deadline - loop.time()),
                extra={"action": "elaborate"},
            )
            return Elaborated(spec, backend, attempts, notes)
        raise ElaborationFailed(attempts)

    async def _ask(self, backend: str, request: str, project_dir: str, left: float) -> object:
        if backend == "local":
            return await self._ask_local(request, left)
        spec = self.agents[backend]
        assert spec.one_shot is not None  # order() lists only agents with a one-shot call
        try:
            return await ask_json(
                spec.one_shot,
                spec.binary(self.settings),
                cli_prompt(request, in_project=bool(project_dir)),
                model=self.models.get(backend, ""),
                cwd=project_dir,
                env=self.env,
                time_limit=left,
                setting=spec.binary_setting,
                launcher=self.launcher,
                confinement=confinement_for(self.settings),
            )
        except OneShotFailed as exc:
            if exc.kind == "timed_out":
                raise _Unusable(f"stopped after {left:.1f}s: the elaborate budget ran out") from exc
            raise _Unusable(str(exc)) from exc

    async def _ask_local(self, request: str, left: float) -> object:
        if self.llm is None or not self.llm.available:
            raise _Unusable("not configured: set [local_model] endpoint and model")
        try:
            return await self.llm.complete_json(SYSTEM_PROMPT, request, timeout=left)
        except LLMError as exc:
            raise _Unusable(str(exc)) from exc


ElaboratorFactory = Callable[[], AbstractAsyncContextManager[Elaborator]]
"""Makes an :class:`Elaborator` for one request (and cleans up after it)."""


def elaborator_factory(
    settings: Settings,
    *,
    llm: LLMClient | None,
    launcher: Launcher,
    env: Mapping[str, str] | None = None,
    budget: float = DEFAULT_BUDGET,
    agents: AgentRegistry | None = None,
) -> ElaboratorFactory:
    """A factory whose elaborators use ``llm`` and ``launcher``, the process's own: nothing is
    built per request, and nothing is closed after it (``llm``'s owner closes it)."""
    model = llm if llm is not None and llm.available else None

    @contextlib.asynccontextmanager
    async def open_elaborator() -> AsyncIterator[Elaborator]:
        yield Elaborator(settings, model, env=env, budget=budget, agents=agents, launcher=launcher)

    return open_elaborator
