"""Turning a one-line request into a task spec a human reviews before it is stored.

``POST /api/tasks/elaborate`` and ``claudomator elaborate`` call :class:`Elaborator`. It asks
three backends in turn; the first whose answer is a valid task spec wins:

* ``local``: the ``[local_model]`` server, in JSON mode (:meth:`LLMClient.complete_json`);
* ``claude``: ``claude -p --output-format json --model sonnet --tools Read,Glob,Grep
  --no-session-persistence -- <prompt>``; the JSON object is taken from the ``result`` text
  (a ```json fence or prose around it is fine);
* ``gemini``: ``gemini --prompt=<prompt> -o json -m gemini-2.5-flash``; from ``response``.

Order and ``prefer_for_elaborate``. The rule is "the local model when configured and
``prefer_for_elaborate`` is not false". The setting is a bool that defaults to false, so "not
false" is read as "not *set* to false in the config": a configured local model is asked first
when the key is absent (the default) or true, and last, after both CLIs, when the config says
``prefer_for_elaborate = false``. An unconfigured local model is skipped.

The CLIs run in the project's directory (their read-only tools may look at the code), else in an
empty temporary directory. The whole call has one time budget (30 s by default) shared by the
backends: each gets what is left, a CLI is killed when it runs out, and a backend reached with
less than :data:`MIN_TURN` seconds left is skipped. A backend that is missing, fails, or answers
something that is no valid spec is recorded in ``attempts`` with its reason and the next one is
asked; when none succeeds, :class:`ElaborationFailed` carries every reason.

An answer is normalised before it is validated (:func:`normalise_spec`): unknown keys are dropped
with a note, agent fields written at the top level are moved under ``agent``, ``agent.type``
becomes ``claude``, ``gemini``, ``local`` or empty, and a ``project_dir`` the model invented is
replaced by the request's project. The result is checked with
:func:`~claudomator.taskfile.parse_tasks`; nothing is stored here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from claudomator import process
from claudomator.classify import AGENT_PROFILES
from claudomator.config import LocalModelSettings, Settings
from claudomator.durations import parse_duration
from claudomator.errors import ClaudomatorError, TaskFileError, ValidationError
from claudomator.llm import LLMClient, LLMError, parse_json_reply
from claudomator.models import Project
from claudomator.taskfile import AGENT_TYPES, parse_tasks

logger = logging.getLogger(__name__)

DEFAULT_BUDGET = 30.0  # seconds for the whole call, all backends together
MIN_TURN = 1.0  # a backend reached with less time left than this is skipped
CLAUDE_TOOLS = "Read,Glob,Grep"  # read-only: the CLI may look at the project, never change it

TASK_FIELDS = ("name", "description", "agent", "timeout", "priority", "tags")
SPEC_FIELDS = (*TASK_FIELDS, "acceptance_criteria")
AGENT_FIELDS = ("type", "model", "instructions", "max_budget_usd", "allowed_tools")
_PRIORITIES = {"low": "low", "normal": "normal", "high": "high", "medium": "normal"}
_PRIORITIES |= {"urgent": "high", "critical": "high", "minor": "low"}
_UNIT_WORDS = re.compile(
    r"(\d+(?:\.\d+)?)\s*(hours?|hrs?|minutes?|mins?|seconds?|secs?)\b", re.IGNORECASE
)

SYSTEM_PROMPT = (
    "You turn a short request into one task for an AI coding agent that Claudomator runs "
    "unattended in a git sandbox of the project. Write the task so the agent can do it without "
    "asking: the goal, concrete steps, the files or areas to look at when known, constraints, "
    "and how to verify the work (tests to add or run).\n\n"
    "Reply with one JSON object with exactly these keys:\n"
    '- "name": a short kebab-case name, at most 40 characters;\n'
    '- "description": one or two sentences: what and why;\n'
    '- "agent": an object with\n'
    f'  - "type": "claude" ({AGENT_PROFILES["claude"]}), "gemini" ({AGENT_PROFILES["gemini"]}), '
    f'"local" ({AGENT_PROFILES["local"]}), or "" to let Claudomator choose;\n'
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


class Attempt(NamedTuple):
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
    attempts: list[Attempt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ElaborationFailed(ClaudomatorError):
    """No backend produced a valid task spec; ``attempts`` has every backend's reason."""

    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = list(attempts)
        detail = "; ".join(f"{a.backend}: {a.reason}" for a in self.attempts)
        super().__init__(f"no backend produced a valid task spec ({detail})")


class _Unusable(Exception):
    """A backend gave no usable answer; the message says why."""


# -- normalising an answer -------------------------------------------------------------------


def _text(value: object, *, bullets: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        lines = [str(item).strip() for item in value if str(item).strip()]
        return "\n".join(f"- {line}" if bullets else line for line in lines)
    return str(value).strip()


def _names(value: object) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return []
    found = (item.strip() for item in items if isinstance(item, str))
    return list(dict.fromkeys(name for name in found if name))


def _name(value: object, prompt: str, notes: list[str]) -> str:
    lines = _text(value).splitlines()
    if lines and lines[0].strip():
        return lines[0].strip()[:80]
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:6]
    notes.append("the answer had no name; named it from the prompt")
    return "-".join(words) or "task"


def _agent_type(value: object, notes: list[str]) -> str:
    text = str(value or "").strip().lower()
    if text in AGENT_TYPES or text in ("", "auto", "any", "none", "null"):
        return text if text in AGENT_TYPES else ""
    for name in AGENT_TYPES:
        if name in text:
            notes.append(f"agent.type {value!r} read as {name!r}")
            return name
    notes.append(f"agent.type {value!r} is no agent; left empty (Claudomator chooses)")
    return ""


def _budget(value: object, notes: list[str]) -> float | None:
    if value is None or value == "":
        return None
    amount = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            amount = float(value.strip().lstrip("$"))
    if not (math.isfinite(amount) and amount > 0):
        notes.append(f"dropped agent.max_budget_usd {value!r}: not a positive amount")
        return None
    return amount


def _timeout(value: object, notes: list[str]) -> str | float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = "".join(
            _UNIT_WORDS.sub(lambda m: m.group(1) + m.group(2)[0].lower(), value).split()
        )
    try:
        parse_duration(value)
    except ValueError:
        notes.append(f"dropped timeout {value!r}: not a duration (the default applies)")
        return None
    if isinstance(value, str):
        return value
    seconds = float(value) if isinstance(value, int | float) else math.nan
    return int(seconds) if seconds.is_integer() else seconds


def _priority(value: object, notes: list[str]) -> str:
    if value is None or value == "":
        return "normal"
    found = _PRIORITIES.get(str(value).strip().lower())
    if found is None:
        notes.append(f"priority {value!r} is not low, normal or high; used normal")
        return "normal"
    return found


def _unwrap(raw: object, notes: list[str]) -> dict[str, Any]:
    """The task mapping of an answer; ``{"task": {...}}`` and ``{"tasks": [{...}]}`` are fine."""
    data = raw
    if isinstance(data, Mapping) and len(data) == 1:
        key, inner = next(iter(data.items()))
        if key in ("task", "spec") and isinstance(inner, Mapping):
            data = inner
        elif key == "tasks" and isinstance(inner, list) and inner:
            if len(inner) > 1:
                notes.append(f"the answer had {len(inner)} tasks; kept the first")
            data = inner[0]
    if not isinstance(data, Mapping):
        raise ValueError(f"the answer is no task mapping: {str(raw)[:200]!r}")
    return {str(key): value for key, value in data.items()}


def normalise_spec(
    raw: object, *, project_dir: str = "", prompt: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """A task-file document from a model's answer, and notes on what was changed.

    Raises ``ValueError`` when the answer is no task mapping or has no instructions.
    """
    notes: list[str] = []
    data = _unwrap(raw, notes)
    given = data.get("agent")
    agent_in = {str(k): v for k, v in given.items()} if isinstance(given, Mapping) else {}
    if given is not None and not isinstance(given, Mapping):
        notes.append("dropped agent: not a mapping")
    for key in AGENT_FIELDS:
        if key in data and key not in agent_in:
            agent_in[key] = data[key]
            notes.append(f"moved {key} into agent")
        elif key in data:
            notes.append(f"dropped {key!r}: agent.{key} is set")
    notes.extend(
        f"dropped unknown key {key!r}"
        for key in data
        if key not in SPEC_FIELDS and key not in AGENT_FIELDS
    )
    for key in agent_in:
        if key == "project_dir":
            notes.append("dropped agent.project_dir: the project comes from the request")
        elif key not in AGENT_FIELDS:
            notes.append(f"dropped unknown key 'agent.{key}'")
    instructions = _text(agent_in.get("instructions"))
    if not instructions:
        raise ValueError("the answer has no agent.instructions")
    model = agent_in.get("model")
    agent = {
        "type": _agent_type(agent_in.get("type"), notes),
        "model": model.strip() if isinstance(model, str) else "",
        "instructions": instructions,
        "project_dir": project_dir,
        "max_budget_usd": _budget(agent_in.get("max_budget_usd"), notes),
        "allowed_tools": _names(agent_in.get("allowed_tools")),
    }
    spec = {
        "name": _name(data.get("name"), prompt, notes),
        "description": _text(data.get("description")),
        "agent": agent,
        "timeout": _timeout(data.get("timeout"), notes),
        "priority": _priority(data.get("priority"), notes),
        "tags": _names(data.get("tags")),
        "acceptance_criteria": _text(data.get("acceptance_criteria"), bullets=True),
    }
    return spec, notes


def check_spec(spec: Mapping[str, Any], source: str, base_dir: Path) -> None:
    """Raise ``ValueError`` naming every problem unless ``spec`` is a valid task document."""
    try:
        parse_tasks(dict(spec), source=source, base_dir=base_dir)
    except TaskFileError as exc:
        problems = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
        raise ValueError(f"not a valid task spec: {problems}") from exc


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


def _error_message(value: object) -> str:
    """The innermost ``error.message`` of a JSON error (which may itself hold JSON text)."""
    for _ in range(3):
        if isinstance(value, str):
            text = value
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return text
        if isinstance(value, Mapping) and isinstance(value.get("error"), Mapping):
            value = value["error"].get("message", "")
        elif isinstance(value, Mapping):
            return json.dumps(value)[:300]
    return str(value)


def _last_json(text: str) -> object:
    """``text`` as JSON, else the JSON object that ends it on lines of its own, else None."""
    body = text.strip()
    for start in (0, body.rfind("\n{") + 1):
        if body[start : start + 1] == "{":
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(body[start:])
    return None


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
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.env = dict(env) if env is not None else None
        self.budget = budget
        self.claude_model = claude_model
        self.gemini_model = gemini_model

    def order(self) -> tuple[str, ...]:
        """The backends, in the order they are asked."""
        if self.llm is not None and self.llm.available and not local_first(self.llm.settings):
            return ("claude", "gemini", "local")
        return ("local", "claude", "gemini")

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
        attempts: list[Attempt] = []
        for backend in self.order():
            left = deadline - loop.time()
            try:
                if left < MIN_TURN:
                    raise _Unusable(f"skipped: the {self.budget:g}s budget was used up")
                answer = await self._ask(backend, request, project_dir, left)
                spec, notes = normalise_spec(answer, project_dir=project_dir, prompt=text)
                check_spec(spec, backend, Path(project_dir or self.settings.data_dir))
            except (_Unusable, ValueError) as exc:
                attempts.append(Attempt(backend, str(exc)))
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
        binary_setting, model = {
            "claude": (self.settings.claude_binary_path, self.claude_model),
            "gemini": (self.settings.gemini_binary_path, self.gemini_model),
        }[backend]
        binary = shutil.which(binary_setting) if binary_setting else None
        if binary is None:
            raise _Unusable(f"{binary_setting!r} not found (set {backend}_binary_path)")
        prompt = cli_prompt(request, in_project=bool(project_dir))
        if backend == "claude":
            argv = [binary, "-p", "--output-format", "json", "--model", model, "--tools"]
            argv += [CLAUDE_TOOLS, "--no-session-persistence", "--", prompt]
        else:
            argv = [binary, f"--prompt={prompt}", "-o", "json", "-m", model]
        result = await asyncio.to_thread(self._run, argv, project_dir, left)
        if result.returncode == -9:
            raise _Unusable(f"stopped after {left:.1f}s: the elaborate budget ran out")
        if backend == "claude":
            return self._claude_answer(result)
        return self._gemini_answer(result)

    async def _ask_local(self, request: str, left: float) -> object:
        if self.llm is None or not self.llm.available:
            raise _Unusable("not configured: set [local_model] endpoint and model")
        try:
            return await self.llm.complete_json(SYSTEM_PROMPT, request, timeout=left)
        except LLMError as exc:
            raise _Unusable(str(exc)) from exc

    def _run(self, argv: list[str], project_dir: str, timeout: float) -> process.CommandResult:
        if project_dir:
            return process.run(argv, cwd=project_dir, env=self.env, timeout=timeout)
        with tempfile.TemporaryDirectory(prefix="claudomator-elaborate-") as scratch:
            return process.run(argv, cwd=scratch, env=self.env, timeout=timeout)

    @staticmethod
    def _claude_answer(result: process.CommandResult) -> object:
        reply = _last_json(result.stdout)
        if not isinstance(reply, Mapping):
            raise _Unusable(f"exit {result.returncode}: {result.tail(3) or 'no output'}")
        text = str(reply.get("result") or "")
        if reply.get("is_error") or not result.ok:
            detail = text or str(reply.get("subtype") or "") or result.tail(3)
            raise _Unusable(f"exit {result.returncode}: {detail[:500]}")
        return _json_in(text)

    @staticmethod
    def _gemini_answer(result: process.CommandResult) -> object:
        reply = _last_json(result.stdout) or _last_json(result.stderr)
        if isinstance(reply, Mapping) and "error" in reply:
            raise _Unusable(f"exit {result.returncode}: {_error_message(reply)[:500]}")
        if not result.ok or not isinstance(reply, Mapping):
            raise _Unusable(f"exit {result.returncode}: {result.tail(3) or 'no output'}")
        return _json_in(str(reply.get("response") or ""))


def _json_in(text: str) -> dict[str, Any]:
    try:
        return parse_json_reply(text)
    except LLMError as exc:
        raise _Unusable(str(exc)) from exc


ElaboratorFactory = Callable[[], AbstractAsyncContextManager[Elaborator]]
"""Makes an :class:`Elaborator` for one request and cleans up after it (its LLM client)."""


def elaborator_factory(
    settings: Settings, *, env: Mapping[str, str] | None = None, budget: float = DEFAULT_BUDGET
) -> ElaboratorFactory:
    """A factory whose elaborators own a fresh :class:`LLMClient`, closed when done."""

    @contextlib.asynccontextmanager
    async def open_elaborator() -> AsyncIterator[Elaborator]:
        async with LLMClient(settings.local_model) as llm:
            yield Elaborator(settings, llm if llm.available else None, env=env, budget=budget)

    return open_elaborator
