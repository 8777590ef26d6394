"""The service's queries: finding a task by what a person types, listing tasks, and a task's
executions, events, interactions, costs and acceptance check."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from claudomator.checker import CheckStatus, check_status
from claudomator.checkout import MAX_NOTE, CheckoutNote, parse_note
from claudomator.errors import NotFound, ValidationError
from claudomator.logs.base import LogFile, UnsafeLogFile
from claudomator.models import Execution, Interaction, Task, TaskCost, TaskEvent, TaskState
from claudomator.service.catalog import Catalog
from claudomator.store.costs import task_costs

logger = logging.getLogger(__name__)

MIN_PREFIX = 4  # the shortest id prefix that names a task
_CANDIDATES = 10  # how many tasks an ambiguous name or prefix lists


def _described(task: Task) -> str:
    when = f"{task.created_at:%Y-%m-%d %H:%M}"
    return f"{task.id[:8]} {task.name!r} ({task.state.value}, created {when})"


class Queries(Catalog):
    """Reading tasks and what happened to them."""

    def resolve_id(self, ident: str) -> str:
        """A full task id from what a person types: an id, a unique id prefix of at least 4
        characters, or a unique task name.

        :class:`NotFound` says which of these was tried; an ambiguous prefix or name raises
        :class:`ValidationError` listing the candidates.
        """
        try:
            return self.store.get_task(ident).id
        except NotFound:
            pass
        matches = {t.id: t for t in self.store.tasks_named(ident, limit=_CANDIDATES + 1)}
        named = bool(matches)
        if len(ident) >= MIN_PREFIX:
            matches.update((t.id, t) for t in self.store.find_tasks(ident))
        if len(matches) == 1:
            return next(iter(matches))
        if matches:
            by_name = all(t.name == ident for t in matches.values())
            what = "name" if by_name else "name or id prefix" if named else "id prefix"
            shown = sorted(matches.values(), key=lambda t: t.created_at, reverse=True)
            listed = "; ".join(_described(t) for t in shown[:_CANDIDATES])
            more = ", and more" if len(shown) > _CANDIDATES else ""
            raise ValidationError(
                f"task {what} {ident!r} is ambiguous: it matches {listed}{more}; "
                "use the id (or a longer prefix) of the one you mean"
            )
        rule = "" if len(ident) >= MIN_PREFIX else " (an id prefix needs at least 4 characters)"
        raise NotFound("task", ident, f"no task with id, id prefix or name {ident!r}{rule}")

    def get(self, ident: str) -> Task:
        return self.store.get_task(self.resolve_id(ident))

    def list_tasks(
        self,
        *,
        states: Sequence[TaskState] | None = None,
        parent: str | None = None,
        story: str | None = None,
        project: str | None = None,
        tags: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> list[Task]:
        """Tasks, newest first, every filter applying (AND).

        ``parent`` may be an id prefix; ``project`` is a project's name or an absolute
        directory; a task must carry every one of ``tags``.
        """
        parent_id = self.resolve_id(parent) if parent else None
        if story:
            self.store.get_story(story)
        project_dir = self.project_dir_of(project) if project else None
        return self.store.list_tasks(
            states=states,
            parent=parent_id,
            story=story,
            project_dir=project_dir,
            tags=tags,
            limit=limit,
            offset=offset,
        )

    def family(self, task_ids: Sequence[str]) -> list[Task]:
        """The given tasks followed by every subtask and checker that grew from them."""
        found = self.store.list_tasks(ids=task_ids)
        order = {task_id: i for i, task_id in enumerate(task_ids)}
        found.sort(key=lambda t: order.get(t.id, len(order)))
        seen = {t.id for t in found}
        frontier = list(seen)
        while frontier:
            new = [t for t in self.store.children_of(frontier) if t.id not in seen]
            found.extend(new)
            seen.update(t.id for t in new)
            frontier = [t.id for t in new]
        return found

    def counts(self) -> dict[str, int]:
        """Number of tasks per state (every state present, zeros included)."""
        counts = {s.value: 0 for s in TaskState}
        counts.update({state.value: n for state, n in self.store.count_by_state().items()})
        return counts

    def interactions(self, task_id: str) -> list[Interaction]:
        return self.store.interactions_of(task_id)

    def check_status(self, task: Task) -> CheckStatus | None:
        """Where ``task``'s acceptance check stands (None without acceptance criteria)."""
        if not task.acceptance_criteria or task.checker_for_task_id:
            return None
        return check_status(task, self.store.children_of([task.id]))

    # -- executions and costs ----------------------------------------------------------------

    def executions(self, task_id: str) -> list[Execution]:
        return self.store.executions_of(task_id)

    def checkout_notes(self, executions: Iterable[Execution]) -> dict[str, CheckoutNote]:
        """The dirty-checkout note of each execution that has a valid one (by execution id):
        the agent started without the user's uncommitted changes. The note is in the log
        folder, the agent's to write: read through the log store, a file it refuses or a
        malformed note is no note."""
        notes: dict[str, CheckoutNote] = {}
        for execution in executions:
            try:
                text = self.logs.read(execution, LogFile.CHECKOUT, 0, MAX_NOTE)
            except (UnsafeLogFile, OSError):
                continue
            note = parse_note(text, execution.stdout_path)
            if note is not None:
                notes[execution.id] = note
        return notes

    def latest_execution(self, ident: str) -> Execution:
        """The newest execution of a task (by task id or prefix), or an execution by its id."""
        try:
            task_id = self.resolve_id(ident)
        except NotFound as exc:
            try:
                return self.store.get_execution(ident)
            except NotFound:
                rule = "" if len(ident) >= MIN_PREFIX else "; a prefix needs 4 characters"
                message = f"no task or execution {ident!r} (by id, id prefix or name{rule})"
                raise NotFound("task or execution", ident, message) from exc
        runs = self.store.executions_of(task_id)
        if not runs:
            raise NotFound("execution of task", task_id, f"task {task_id} has no execution yet")
        return runs[-1]

    def latest_executions(self, task_ids: Iterable[str]) -> dict[str, Execution]:
        """The newest execution of each task that has one."""
        return self.store.latest_executions(task_ids)

    def task_costs(self, task_ids: Iterable[str]) -> dict[str, TaskCost]:
        """What each task has cost over all its executions (one query, see TaskCost)."""
        return task_costs(self.store, task_ids)

    def execution(self, execution_id: str) -> Execution:
        return self.store.get_execution(execution_id)

    def execution_running(self, task_id: str, execution_id: str) -> bool:
        """Whether execution ``execution_id`` of task ``task_id`` is running now (what makes
        an agent token valid)."""
        try:
            execution = self.store.get_execution(execution_id)
            task = self.store.get_task(task_id) if execution.task_id == task_id else None
        except NotFound:
            return False
        return (
            task is not None
            and task.state == TaskState.RUNNING
            and execution.status == TaskState.RUNNING
            and execution.end_time is None
        )

    # -- events ------------------------------------------------------------------------------

    def events_since(self, after_id: int) -> list[TaskEvent]:
        """Every task's state changes after event ``after_id``, oldest first."""
        return self.store.events_since(after_id)

    def last_event_id(self) -> int:
        """The id of the newest task state change (0 before any)."""
        return self.store.last_event_id()

    def events(self, task_id: str) -> list[TaskEvent]:
        return self.store.events(task_id)
