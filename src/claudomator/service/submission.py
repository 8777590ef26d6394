"""Taking new work in: validating tasks (a task file's or a request's) against the settings and
the store, spotting duplicates, storing them (all or none), and subtasks an agent asks for."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.errors import NotFound, Problem, TaskFileError, ValidationError
from claudomator.isolation import policy
from claudomator.models import Task, TaskState
from claudomator.projects import all_projects
from claudomator.service.core import refusing, same_dir
from claudomator.service.queries import Queries

if TYPE_CHECKING:
    from claudomator.taskfile import ParsedTasks

logger = logging.getLogger(__name__)

# a stored task in one of these states makes a new task with the same definition a duplicate
_DUPLICATE_STATES = frozenset(
    {
        TaskState.PENDING,
        TaskState.QUEUED,
        TaskState.RUNNING,
        TaskState.BLOCKED,
        TaskState.READY,
        TaskState.COMPLETED,
    }
)


@dataclass(frozen=True)
class SubtaskRefusal:
    """Why an agent may not create these subtasks: the field at fault and what is wrong."""

    field: str
    message: str


@dataclass(frozen=True)
class Duplicate:
    """A task about to be stored that repeats a stored one (same name, instructions and
    project) which is unfinished or COMPLETED."""

    new: Task
    stored: Task


class Submission(Queries):
    """Checking and storing new tasks."""

    def prepare(
        self,
        document: object,
        *,
        source: str,
        base_dir: Path,
        problems: Sequence[Problem] = (),
    ) -> ParsedTasks:
        """Validate a task file's (or request's) document exactly as :meth:`submit` will.

        The document's own checks and :meth:`check_tasks` run together, and every problem
        (with ``problems`` the caller found, which replace the document's own for the same
        task and field) is raised at once as :class:`TaskFileError`. The tasks returned have
        their references resolved to full ids, ready to submit.
        """
        from claudomator.taskfile import collect_tasks  # YAML and its models: not for `list`

        parsed = collect_tasks(document, source=source, base_dir=base_dir, agents=self.agents)
        taken = {(p.task, p.field) for p in problems}
        parsed.problems = [p for p in parsed.problems if (p.task, p.field) not in taken]
        checked, more = self.check_tasks(parsed.tasks, source=source)
        parsed.raise_problems([*problems, *more])
        parsed.tasks = checked
        return parsed

    def check_tasks(
        self, tasks: Sequence[Task], *, source: str = "request"
    ) -> tuple[list[Task], list[Problem]]:
        """What the settings and the store say about ``tasks``, before storing them.

        A project_dir must lie in ``workspace_root`` (when set); ``isolation`` must not loosen
        the project's confinement unless ``[isolation] allow_task_override``; ids must be new; a
        ``depends_on`` or ``parent_task_id`` outside the batch must name a stored task (its id,
        a unique id prefix or a unique name: see :meth:`resolve_id`), and is replaced by its
        full id; a story must exist. Returns the tasks so resolved and every problem found.
        """
        batch = {t.id for t in tasks}
        existing = self.store.states_of(batch)
        root = self.settings.workspace_root
        # the projects, read once, when a task sets its own confinement (to check it loosens
        # nothing its project gives unless the operator lets tasks)
        overriding = any(t.isolation.launcher or t.isolation.network for t in tasks)
        known = [p for p, _ in all_projects(self.settings, self.store)] if overriding else []
        problems: list[Problem] = []
        checked: list[Task] = []
        for task in tasks:

            def problem(field: str, message: str, label: str = task.name) -> None:
                problems.append(Problem(source, label, field, message))

            if self.settings.outside_workspace(task.agent.project_dir):
                where = task.agent.project_dir
                problem("agent.project_dir", f"{where} is outside workspace_root {root}")
            if task.id in existing:
                problem("id", f"a task with id {task.id!r} already exists")
            if overriding:
                project = policy.governing_project(known, task.agent.project_dir)
                for field, message in policy.override_problems(
                    self.settings, project, task.isolation
                ):
                    problem(field, message)
            depends: list[str] = []
            for dep in task.depends_on:
                target, why = (dep, "") if dep in batch else self._reference(dep)
                if why:
                    problem("depends_on", why)
                depends.append(target)
            parent = task.parent_task_id
            if parent and parent not in batch:
                parent, why = self._reference(parent)
                if why:
                    problem("parent_task_id", why)
            if task.story_id:
                try:
                    self.store.get_story(task.story_id)
                except NotFound:
                    problem("story_id", f"no story with id {task.story_id!r}")
            checked.append(
                task.model_copy(update={"depends_on": tuple(depends), "parent_task_id": parent})
            )
        return checked, problems

    def _reference(self, ident: str) -> tuple[str, str]:
        """(full id, "") for a stored task ``ident`` names, else (``ident``, why not)."""
        try:
            return self.resolve_id(ident), ""
        except NotFound:
            return ident, (
                f"unknown task id {ident!r}: neither the name of a task given with it nor a "
                "stored task's id, id prefix (at least 4 characters) or name"
            )
        except ValidationError as exc:  # ambiguous: the message lists the candidates
            return ident, str(exc)

    def duplicates(self, tasks: Sequence[Task]) -> list[Duplicate]:
        """Stored tasks that ``tasks`` would repeat: same name, instructions and project, and
        unfinished or COMPLETED (running a file twice by mistake); one per new task at most."""
        found: list[Duplicate] = []
        for task in tasks:
            for stored in self.store.tasks_named(task.name):
                if (
                    stored.id != task.id
                    and stored.state in _DUPLICATE_STATES
                    and stored.agent.instructions == task.agent.instructions
                    and same_dir(stored.agent.project_dir, task.agent.project_dir)
                ):
                    found.append(Duplicate(task, stored))
                    break
        return found

    def submit(
        self, tasks: Sequence[Task], *, queue: bool = True, source: str = "request"
    ) -> list[Task]:
        """Store ``tasks`` as QUEUED (PENDING drafts unless ``queue``), all or none.

        :meth:`check_tasks` must find nothing wrong (else :class:`TaskFileError` lists every
        problem, each named after ``source``); references are stored as full ids.
        """
        checked, problems = self.check_tasks(tasks, source=source)
        if problems:
            raise TaskFileError(problems)
        stored = self.store.add_tasks(checked, submit=queue)
        logger.info("stored %d task(s), queued: %s", len(stored), queue, extra={"action": "submit"})
        if queue and self.on_submit is not None:
            self.on_submit()
        return stored

    def queue(self, ident: str) -> Task:
        """Submit a PENDING draft for running (QUEUED)."""
        task = self.get(ident)
        with refusing("submit"):
            queued = self.store.transition(
                task.id, TaskState.QUEUED, "submitted", expected=TaskState.PENDING
            )
        if self.on_submit is not None:
            self.on_submit()
        return queued

    def intake_holder(self, key: str) -> str | None:
        """The task an intake event ``key`` (e.g. a CI failure) already created, if any."""
        return self.store.intake_holder(key)

    def submit_once(self, key: str, task: Task) -> tuple[Task | None, str]:
        """Submit ``task`` unless event ``key`` already made one: (stored, "") or (None, holder).

        The key is reserved first (of two racing callers exactly one wins) and given back if
        the task could not be stored.
        """
        holder = self.store.reserve_intake_key(key, task.id)
        if holder is not None:
            return None, holder
        try:
            [stored] = self.submit([task])
        except BaseException:
            if not self.store.states_of([task.id]):  # not stored: the key is free again
                self.store.release_intake_key(key, task.id)
            raise
        return stored, ""

    def as_subtasks(self, parent_id: str, tasks: Sequence[Task]) -> list[Task] | SubtaskRefusal:
        """``tasks`` made subtasks of ``parent_id`` for an agent's request, or why not.

        A missing ``parent_task_id`` is filled in; another parent is refused. A subtask works in
        its parent's ``project_dir`` (filled in when empty) unless ``subtasks_any_project``.
        """
        parent = self.store.get_task(parent_id)
        home = parent.agent.project_dir
        made = []
        for task in tasks:
            if (task.parent_task_id or parent_id) != parent_id:
                return SubtaskRefusal(
                    "parent_task_id",
                    f"task {task.name!r}: an agent may only create subtasks of its own task",
                )
            project = task.agent.project_dir or home
            if not self.settings.subtasks_any_project and not same_dir(project, home):
                return SubtaskRefusal(
                    "agent.project_dir",
                    f"task {task.name!r}: a subtask works in its parent's project "
                    f"({home or 'a scratch repository: leave project_dir empty'}), not "
                    f"{project}; set subtasks_any_project = true in the config to allow others",
                )
            agent = task.agent.model_copy(update={"project_dir": project})
            made.append(task.model_copy(update={"parent_task_id": parent_id, "agent": agent}))
        return made
