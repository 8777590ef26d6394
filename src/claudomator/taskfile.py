"""YAML task files -> validated :class:`~claudomator.models.Task` objects.

A file holds one task mapping, or ``tasks:`` with a list of them. Field names are those of
:class:`~claudomator.models.Task` with the agent's under ``agent:``; ``timeout`` takes durations
such as ``10m``. ``depends_on`` names other tasks by id, or by name within the same file.

Every problem in the file is reported, each as ``file:task:field: what is wrong``, and if there
is any problem no task is returned, so nothing half-valid is ever stored. :func:`collect_tasks`
returns the tasks together with every problem, so that a caller
(the service's checks against the store) can add its own problems and report them all at once.

``agent.type`` must name an agent of the registry the caller passes (the service passes the one
it runs with, :attr:`claudomator.service.Service.agents`); without one, the built-in agents.

Ids: a task keeps the ``id:`` its file gives; the others get a fresh random id each time the
file is read, so only given ids are known before a task is stored (see
:attr:`ParsedTasks.given_ids`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from claudomator.agents.registry import AgentRegistry, default_registry
from claudomator.durations import parse_duration
from claudomator.errors import Problem, TaskFileError
from claudomator.models import (
    MAX_TIMEOUT_SECONDS,
    TASK_FIELDS,
    AgentConfig,
    Priority,
    Task,
    TaskIsolation,
    check_text,
    is_text,
    new_id,
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TASK_KEYS = {"id", *TASK_FIELDS}
_AGENT_KEYS = set(AgentConfig.model_fields)
_ISOLATION_KEYS = set(TaskIsolation.model_fields)
# a tag is a short label: no surrounding blanks, at most 100 characters
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")]


class _TaskSpec(BaseModel):
    """A task as written in a file, before ids are assigned and names resolved."""

    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)

    id: str | None = Field(default=None, pattern=_ID.pattern)
    name: str = Field(min_length=1)
    description: str = ""
    agent: AgentConfig
    timeout: float | None = None
    priority: Priority = Priority.NORMAL
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    depends_on: list[str] = Field(default_factory=list)
    parent_task_id: str | None = None
    story_id: str | None = None
    acceptance_criteria: str = ""
    # launcher / network over the project's: tighter always, looser only if the operator lets
    # tasks (checked at submit: claudomator.isolation.policy.override_problems)
    isolation: TaskIsolation = Field(default_factory=TaskIsolation)

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if value is None:
            return None
        seconds = parse_duration(value)
        if seconds > MAX_TIMEOUT_SECONDS:
            raise ValueError(
                f"must be at most {MAX_TIMEOUT_SECONDS:.0f} seconds (30 days), got {value!r}"
            )
        return seconds

    @field_validator("*")
    @classmethod
    def _text(cls, value: object) -> object:
        return check_text(value)


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        nested = {"agent": _AGENT_KEYS, "isolation": _ISOLATION_KEYS}
        known = nested.get(str(loc[0]), _TASK_KEYS) if len(loc) > 1 else _TASK_KEYS
        hint = ""
        if len(loc) == 1 and key in _AGENT_KEYS:
            hint = f" (did you mean agent.{key}?)"
        return f"unknown key{hint}; expected one of: {', '.join(sorted(known))}"
    if kind == "missing":
        return "required but missing"
    if kind == "string_pattern_mismatch" and loc[-1] == "id":
        return "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    if kind == "string_pattern_mismatch" and loc[0] == "tags":
        return f"a tag must not start or end with a blank (got {error['input']!r})"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"{message} (got {error['input']!r})" if kind.endswith("_type") else message


def _label(raw: object, index: int, many: bool) -> str:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if isinstance(name, str) and name and is_text(name):  # a bad name cannot label its errors
        return name
    return f"#{index + 1}" if many else "task"


@dataclass
class ParsedTasks:
    """A file's (or request's) tasks and every problem found. While there are problems,
    ``tasks`` also holds the valid fields of invalid tasks, for further checks only: such a
    batch is never to be stored (:meth:`raise_problems` refuses it)."""

    source: str
    tasks: list[Task]
    problems: list[Problem]
    labels: list[str]  # every task's label (its name, else ``#n``), in file order
    given_ids: frozenset[str] = field(default_factory=frozenset)  # ids the file itself gives

    def sorted_problems(self, more: Iterable[Problem] = ()) -> list[Problem]:
        """These problems and ``more``, in file order (problems of the whole file first)."""
        rank = {label: i for i, label in enumerate(self.labels)}
        return sorted([*self.problems, *more], key=lambda p: rank.get(p.task, -1))

    def raise_problems(self, more: Iterable[Problem] = ()) -> None:
        """Raise :class:`TaskFileError` with every problem (these and ``more``), if any."""
        problems = self.sorted_problems(more)
        if problems:
            raise TaskFileError(problems)


def read_taskfile(path: Path) -> object:
    """The parsed YAML document of ``path``; :class:`TaskFileError` if it cannot be read."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskFileError([Problem(name, "-", "-", f"cannot read file: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise TaskFileError([Problem(name, "-", "-", "not UTF-8 text")]) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f"line {where.line + 1}: " if where is not None else ""
        detail = getattr(exc, "problem", None) or str(exc)
        raise TaskFileError([Problem(name, "-", "-", f"invalid YAML: {line}{detail}")]) from exc
    return document


def load_taskfile(path: Path, *, agents: AgentRegistry | None = None) -> list[Task]:
    """Read and validate every task in ``path``; raise :class:`TaskFileError` on any problem."""
    return parse_tasks(read_taskfile(path), source=str(path), base_dir=path.parent, agents=agents)


def parse_tasks(
    document: object, *, source: str, base_dir: Path, agents: AgentRegistry | None = None
) -> list[Task]:
    """Validate an already-parsed document (one task mapping, or ``tasks:`` list)."""
    parsed = collect_tasks(document, source=source, base_dir=base_dir, agents=agents)
    parsed.raise_problems()
    return parsed.tasks


def collect_tasks(
    document: object, *, source: str, base_dir: Path, agents: AgentRegistry | None = None
) -> ParsedTasks:
    """The tasks of a document with every problem found (see :class:`ParsedTasks`).

    ``agent.type`` is checked against ``agents`` (else the built-in agents). A document that is
    not a task or a list of tasks at all raises :class:`TaskFileError`.
    """
    known = (agents or default_registry()).names()
    raws, many = _task_list(document, source)
    order = [_label(raw, i, many) for i, raw in enumerate(raws)]
    problems: list[Problem] = []
    specs: list[tuple[str, _TaskSpec]] = []
    for index, raw in enumerate(raws):
        label = _label(raw, index, many)
        if not isinstance(raw, Mapping):
            problems.append(Problem(source, label, "-", "a task must be a mapping of fields"))
            continue
        agent = raw.get("agent")
        project_dir = agent.get("project_dir") if isinstance(agent, Mapping) else None
        try:
            spec = _TaskSpec.model_validate(raw)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or "-"
                problems.append(Problem(source, label, field, _message(error)))
            if isinstance(project_dir, str):
                problems.extend(_check_project(project_dir, label, source, base_dir))
            # the fields that are valid still get the caller's checks (all problems at once);
            # the task is never stored, as the problems above make the whole file invalid
            wrong = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            try:
                rest = _TaskSpec.model_validate({k: v for k, v in raw.items() if k not in wrong})
            except pydantic.ValidationError:
                continue
            specs.append((label, rest))
            continue
        problems.extend(_check_project(spec.agent.project_dir, label, source, base_dir))
        if spec.agent.type and spec.agent.type not in known:
            message = (
                f"unknown agent type {spec.agent.type!r}; use one of {', '.join(known)} "
                "(or leave it empty to let Claudomator choose)"
            )
            problems.append(Problem(source, label, "agent.type", message))
        if not spec.agent.instructions.strip():
            problems.append(Problem(source, label, "agent.instructions", "must not be empty"))
        specs.append((label, spec))
    tasks, more = _resolve(specs, source, base_dir)
    problems.extend(more)
    given = frozenset(spec.id for _, spec in specs if spec.id)
    return ParsedTasks(source, tasks, problems, order, given)


def _task_list(document: object, source: str) -> tuple[Sequence[object], bool]:
    if isinstance(document, Mapping) and "tasks" in document:
        extra = sorted(str(k) for k in document if k != "tasks")
        if extra:
            raise TaskFileError(
                [Problem(source, "-", extra[0], "unknown top-level key next to 'tasks'")]
            )
        items = document["tasks"]
        if not isinstance(items, list) or not items:
            raise TaskFileError([Problem(source, "-", "tasks", "must be a non-empty list")])
        return items, True
    if isinstance(document, Mapping):
        return [document], False
    if document is None:
        raise TaskFileError([Problem(source, "-", "-", "the file is empty")])
    raise TaskFileError(
        [Problem(source, "-", "-", "expected a task mapping or a 'tasks:' list at the top")]
    )


def _project_path(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path)


def _check_project(project_dir: str, label: str, source: str, base_dir: Path) -> list[Problem]:
    if not project_dir or "\0" in project_dir:  # a NUL is the model's problem to report
        return []
    project = _project_path(project_dir, base_dir)
    if project.is_dir():
        return []
    what = "is not a directory" if project.exists() else "does not exist"
    return [Problem(source, label, "agent.project_dir", f"{project} {what}")]


def _resolve(
    specs: list[tuple[str, _TaskSpec]], source: str, base_dir: Path
) -> tuple[list[Task], list[Problem]]:
    """Assign ids, make project paths absolute, resolve ``depends_on`` names; also the problems."""
    problems: list[Problem] = []
    ids: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for label, spec in specs:
        task_id = spec.id or new_id()
        if task_id in ids.values():
            problems.append(Problem(source, label, "id", f"duplicate id {task_id!r} in this file"))
        if spec.name in by_name:
            problems.append(Problem(source, label, "name", "duplicate task name in this file"))
        ids[label] = task_id
        by_name.setdefault(spec.name, task_id)
    tasks: list[Task] = []
    for label, spec in specs:
        depends: list[str] = []
        for dep in spec.depends_on:
            target = by_name.get(dep, dep)
            if target == ids[label]:
                message = "a task cannot depend on itself"
                problems.append(Problem(source, label, "depends_on", message))
            depends.append(target)
        agent = spec.agent
        if agent.project_dir:
            resolved = str(_project_path(agent.project_dir, base_dir).resolve())
            agent = agent.model_copy(update={"project_dir": resolved})
        tasks.append(
            Task(
                id=ids[label],
                name=spec.name,
                description=spec.description,
                agent=agent,
                timeout=spec.timeout,
                priority=spec.priority,
                tags=tuple(spec.tags),
                depends_on=tuple(depends),
                parent_task_id=spec.parent_task_id,
                story_id=spec.story_id,
                acceptance_criteria=spec.acceptance_criteria,
                isolation=spec.isolation,
            )
        )
    problems.extend(_cycles(tasks, source))
    return tasks, problems


def _cycles(tasks: Sequence[Task], source: str) -> list[Problem]:
    """Dependency cycles among the tasks of one file, one problem per cycle found."""
    graph = {t.id: [d for d in t.depends_on if d != t.id] for t in tasks}
    names = {t.id: t.name for t in tasks}
    problems: list[Problem] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                cycle = [*trail[trail.index(dep) :], dep] if dep in trail else [node, dep]
                path = " -> ".join(names[c] for c in cycle)
                problems.append(Problem(source, names[node], "depends_on", f"cycle: {path}"))
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for task in tasks:
        if task.id not in state:
            visit(task.id, [task.id])
    return problems
