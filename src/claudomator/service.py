"""The facade every entry point calls: submit, cancel, look up, list.

The CLI, the HTTP API and (later) webhooks go through :class:`Service`; none of them touches the
store or the pool directly. Submitting only writes to the store; a pool (in this process or
another) claims the work from there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from claudomator import projects, protocol, readiness, tokens
from claudomator.agents.registry import AgentRegistry, default_registry
from claudomator.checker import CheckStatus, check_status
from claudomator.config import Settings
from claudomator.errors import (
    InvalidTransition,
    NotFound,
    Problem,
    ProjectExists,
    TaskFileError,
    ValidationError,
)
from claudomator.models import (
    RETRYABLE_STATES,
    AgentStatus,
    Execution,
    Interaction,
    Project,
    PushSubscription,
    Story,
    Task,
    TaskCost,
    TaskEvent,
    TaskState,
    utcnow,
)
from claudomator.readiness import Readiness
from claudomator.store.costs import task_costs
from claudomator.store.open import open_store

if TYPE_CHECKING:
    from claudomator import retention
    from claudomator.store.base import Store
    from claudomator.taskfile import ParsedTasks

logger = logging.getLogger(__name__)

_MIN_PREFIX = 4
_CANDIDATES = 10  # how many tasks an ambiguous name or prefix lists
# what each action says when the task's state does not allow it (the CLI and the API alike)
_REFUSALS = {
    "submit": "task {id} is {state}, not a PENDING draft; nothing to submit",
    "cancel": "task {id} is already {state}; nothing to cancel",
    "answer": "task {id} is {state}, not BLOCKED; no question to answer",
    "accept": "task {id} is {state}, not READY; only READY tasks can be accepted",
    "reject": "task {id} is {state}, not READY; only READY tasks can be rejected",
    "retry": (
        "task {id} is {state}: only FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED tasks "
        "can be retried"
    ),
    "edit": "task {id} is {state}: only PENDING or QUEUED tasks can be edited",
    "again": (
        "task {id} is {state}: only ended (COMPLETED, FAILED, TIMED_OUT, BUDGET_EXCEEDED or "
        "CANCELLED) tasks can be run again"
    ),
    "delete": "task {id} is {state}: cancel it first, then delete it",
}
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
EDITABLE_FIELDS = frozenset(
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


@contextmanager
def _refusing(action: str) -> Iterator[None]:
    """Turn the state machine's refusal into what ``action`` needs and which state it is in."""
    try:
        yield
    except InvalidTransition as exc:
        message = _REFUSALS[action].format(id=exc.task_id, state=exc.source)
        raise InvalidTransition(exc.task_id, exc.source, exc.target, message) from exc


def _described(task: Task) -> str:
    when = f"{task.created_at:%Y-%m-%d %H:%M}"
    return f"{task.id[:8]} {task.name!r} ({task.state.value}, created {when})"


def _same_dir(a: str, b: str) -> bool:
    if not a or not b:
        return a == b
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


class Service:
    """Operations on tasks, shared by every entry point."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        on_submit: Callable[[], None] | None = None,
        agents: AgentRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_submit = on_submit
        self.agents = agents or default_registry()  # the agents it reports on

    @classmethod
    def open(
        cls, settings: Settings, *, agents: AgentRegistry | None = None, quick: bool = False
    ) -> Service:
        """Open the configured database (migrating it) and build the service; the data dir
        gets its agent-token key here if it has none (agents' tokens are never minted with a
        key made later). ``quick``: for a short command (see
        :class:`~claudomator.store.quick.QuickStore`)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.database_url or settings.db_path, quick=quick)
        try:
            tokens.token_key(settings.data_dir)
        except BaseException:
            store.close()
            raise
        return cls(settings, store, agents=agents)

    def close(self) -> None:
        self.store.close()

    # -- retention ---------------------------------------------------------------------------

    def retention_plan(self) -> retention.Plan:
        """What the ``[retention]`` policy would remove now (nothing is removed)."""
        from claudomator import retention  # git plumbing: only for `gc` and the orchestrator

        return retention.plan(self.settings, self.store)

    def apply_retention(self, plan: retention.Plan) -> retention.Applied:
        """Remove what ``plan`` lists (each removal checked again first)."""
        from claudomator import retention

        return retention.apply(self.settings, plan)

    # -- writing -----------------------------------------------------------------------------

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

        A project_dir must lie in ``workspace_root`` (when set); ids must be new; a
        ``depends_on`` or ``parent_task_id`` outside the batch must name a stored task (its id,
        a unique id prefix or a unique name: see :meth:`resolve_id`), and is replaced by its
        full id; a story must exist. Returns the tasks so resolved and every problem found.
        """
        batch = {t.id for t in tasks}
        existing = self.store.states_of(batch)
        root = self.settings.workspace_root
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
                    and _same_dir(stored.agent.project_dir, task.agent.project_dir)
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
        with _refusing("submit"):
            queued = self.store.transition(
                task.id, TaskState.QUEUED, "submitted", expected=TaskState.PENDING
            )
        if self.on_submit is not None:
            self.on_submit()
        return queued

    # -- projects ----------------------------------------------------------------------------

    def projects(self) -> list[tuple[Project, str]]:
        """Every project and where it is defined ("config" or "api")."""
        return projects.all_projects(self.settings, self.store)

    def project(self, name: str) -> tuple[Project, str]:
        for project, source in self.projects():
            if project.name == name:
                return project, source
        raise NotFound("project", name)

    def project_named(self, *names: str) -> Project | None:
        return projects.by_name(self.settings, self.store, *names)

    def save_project(self, project: Project, *, create: bool) -> Project:
        """Create or replace a project managed through the API."""
        if any(p.name == project.name for p in self.settings.projects):
            if create:
                raise ProjectExists(project.name)
            raise ValidationError(
                f"project {project.name!r} is defined in the config file; change it there"
            )
        directory = Path(project.dir).expanduser()
        if not directory.is_absolute() or not directory.is_dir():
            raise ValidationError(f"dir: {project.dir!r} is not an absolute path to a directory")
        if self.settings.outside_workspace(project.dir):
            root = self.settings.workspace_root
            raise ValidationError(f"dir: {project.dir} is outside workspace_root {root}")
        return self.store.save_project(project, create=create)

    def delete_project(self, name: str) -> None:
        if any(p.name == name for p in self.settings.projects):
            raise ValidationError(f"project {name!r} is defined in the config file")
        self.store.delete_project(name)

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

    def cancel(self, task_id: str) -> Task:
        """Cancel a task: at once if it is not running, else ask its pool to stop the agent."""
        for _ in range(5):
            task = self.get(task_id)
            if task.state == TaskState.RUNNING:
                if self.store.request_cancel(task.id):
                    return task.model_copy(update={"cancel_requested": True})
                continue  # it just left RUNNING: look again
            if task.state.is_terminal:
                with _refusing("cancel"):
                    raise InvalidTransition(task.id, task.state.value, TaskState.CANCELLED.value)
            try:
                return self.store.transition(
                    task.id, TaskState.CANCELLED, "cancelled by user", expected=task.state
                )
            except InvalidTransition:
                continue  # it changed state meanwhile (e.g. was claimed)
        message = f"task {task_id} keeps changing state; try to cancel it again"
        raise InvalidTransition(task_id, "changing", TaskState.CANCELLED.value, message)

    def answer(self, ident: str, text: str) -> Task:
        """Answer a BLOCKED task's question; it is re-queued and its agent session resumes."""
        if not text.strip():
            raise ValidationError("the answer is empty")
        task = self.get(ident)
        # the state change decides which of two racing answers wins; then it is recorded
        with _refusing("answer"):
            queued = self.store.transition(
                task.id,
                TaskState.QUEUED,
                "answered; resuming",
                expected=TaskState.BLOCKED,
                question="",
            )
        pending = [i for i in self.store.interactions_of(task.id) if i.answered_at is None]
        if pending and pending[-1].id is not None:
            self.store.answer_interaction(pending[-1].id, text.strip())
        if self.on_submit is not None:
            self.on_submit()
        return queued

    def accept(self, ident: str) -> Task:
        """Accept a READY task's delivered branch: it is COMPLETED and its sandbox released."""
        task = self.get(ident)
        with _refusing("accept"):
            done = self.store.transition(
                task.id, TaskState.COMPLETED, "accepted by reviewer", expected=TaskState.READY
            )
        runs = self.store.executions_of(task.id)
        if runs and runs[-1].status == TaskState.READY:  # the accepted round is done
            self.store.save_execution(runs[-1].model_copy(update={"status": TaskState.COMPLETED}))
        if runs and runs[-1].sandbox_dir and task.agent.project_dir:
            from claudomator.sandbox import Sandboxes  # git plumbing: not for `list`

            sandboxes = Sandboxes(self.settings.sandboxes_dir)
            box = sandboxes.open(Path(runs[-1].sandbox_dir), Path(task.agent.project_dir))
            if box is not None:
                sandboxes.release(box)
        return done

    def reject(self, ident: str, feedback: str) -> Task:
        """Send a READY task back with the reviewer's feedback; the same session resumes."""
        if not feedback.strip():
            raise ValidationError("the feedback is empty")
        task = self.get(ident)
        runs = self.store.executions_of(task.id)
        with _refusing("reject"):
            queued = self.store.transition(
                task.id, TaskState.QUEUED, "rejected with feedback", expected=TaskState.READY
            )
        if runs:
            recorded = self.store.add_interaction(
                Interaction(
                    task_id=task.id,
                    execution_id=runs[-1].id,
                    question=protocol.REVIEW_QUESTION,
                )
            )
            if recorded.id is not None:
                self.store.answer_interaction(recorded.id, feedback.strip())
        if self.on_submit is not None:
            self.on_submit()
        return queued

    def retry(self, ident: str) -> Task:
        """Run a FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED task again (a fresh attempt)."""
        task = self.get(ident)
        with _refusing("retry"):
            if task.state not in RETRYABLE_STATES:
                raise InvalidTransition(task.id, task.state.value, TaskState.QUEUED.value)
            queued = self.store.transition(
                task.id,
                TaskState.QUEUED,
                "retry requested",
                expected=task.state,
                summary="",
                check_verdict="",
                check_report="",
            )
        if self.on_submit is not None:
            self.on_submit()
        return queued

    def run_again(self, ident: str) -> Task:
        """Queue a new task with an ended task's definition (what ``claudomator run --again``
        does with its file); the ended task stays as it is. A checker task is refused: its
        verdict belongs to the task it checks, which is the one to run again."""
        task = self.get(ident)
        with _refusing("again"):
            if not task.state.is_terminal:
                raise InvalidTransition(task.id, task.state.value, TaskState.QUEUED.value)
        if task.checker_for_task_id:
            message = (
                f"task {task.id} checks the work of task {task.checker_for_task_id}; "
                "run that task again instead"
            )
            raise InvalidTransition(task.id, task.state.value, TaskState.QUEUED.value, message)
        data = task.model_dump(include=set(EDITABLE_FIELDS))
        [stored] = self.submit([Task.model_validate(data)])
        logger.info("ran %s again as %s", task.id, stored.id, extra={"action": "again"})
        return stored

    def update(
        self, ident: str, changes: Mapping[str, Any], *, relative_to: Path | None = None
    ) -> Task:
        """Change a task's definition while it is PENDING or QUEUED (fields as in task files).

        A relative ``agent.project_dir`` is taken from ``relative_to`` (the CLI's working
        directory); without one (a request) it is a problem. Every problem with the changes is
        raised at once as :class:`TaskFileError`.
        """
        task = self.get(ident)
        data = task.model_dump(mode="json")
        wrong: list[tuple[str, str]] = []
        editable = ", ".join(sorted(EDITABLE_FIELDS))
        for key in sorted(set(changes) - EDITABLE_FIELDS):
            wrong.append((key, f"cannot be changed; editable: {editable}"))
        changes = {k: v for k, v in changes.items() if k in EDITABLE_FIELDS}
        if "agent" in changes:
            agent_changes = changes["agent"]
            if isinstance(agent_changes, Mapping):
                changes = {**changes, "agent": {**data["agent"], **agent_changes}}
            else:
                wrong.append(("agent", "must be an object"))
                changes = {k: v for k, v in changes.items() if k != "agent"}
        # no id: the edited copy must not count as a second task with this id
        document = {k: v for k, v in {**data, **changes}.items() if k in EDITABLE_FIELDS}
        from claudomator.taskfile import collect_tasks

        new_agent = document.get("agent")
        project = new_agent.get("project_dir") if isinstance(new_agent, Mapping) else None
        relative = isinstance(project, str) and not Path(project).expanduser().is_absolute()
        if relative_to is None and project and relative:
            wrong.append(("agent.project_dir", "must be an absolute path over the API"))
            document["agent"] = {**document["agent"], "project_dir": data["agent"]["project_dir"]}
        parsed = collect_tasks(
            document, source="request", base_dir=relative_to or Path.cwd(), agents=self.agents
        )
        label = parsed.labels[0] if parsed.labels else "task"
        more = [Problem("request", label, key, message) for key, message in wrong]
        checked, found = self.check_tasks(parsed.tasks, source="request")
        more.extend(found)
        if checked and self._reaches(checked[0].depends_on, task.id):
            more.append(Problem("request", label, "depends_on", "that would make a cycle"))
        parsed.raise_problems(more)
        [edited] = checked
        with _refusing("edit"):
            return self.store.replace_task(
                edited.model_copy(update={"id": task.id}),
                only_in=(TaskState.PENDING, TaskState.QUEUED),
            )

    def _reaches(self, start: Sequence[str], target: str) -> bool:
        """Whether following ``depends_on`` from ``start`` leads to ``target``."""
        seen: set[str] = set()
        frontier = list(start)
        while frontier:
            current = frontier.pop()
            if current == target:
                return True
            if current in seen:
                continue
            seen.add(current)
            try:
                frontier.extend(self.store.get_task(current).depends_on)
            except NotFound:  # an unknown id: reported as such by check_tasks
                continue
        return False

    def delete(self, ident: str) -> None:
        """Delete a task and its history (never while it runs)."""
        with _refusing("delete"):
            self.store.delete_task(self.resolve_id(ident), not_in=(TaskState.RUNNING,))

    def interactions(self, task_id: str) -> list[Interaction]:
        return self.store.interactions_of(task_id)

    def check_status(self, task: Task) -> CheckStatus | None:
        """Where ``task``'s acceptance check stands (None without acceptance criteria)."""
        if not task.acceptance_criteria or task.checker_for_task_id:
            return None
        return check_status(task, self.store.children_of([task.id]))

    def agent_health(self) -> list[AgentStatus]:
        return sorted(self.store.agent_statuses().values(), key=lambda s: s.agent)

    def agent_readiness(self, env: Mapping[str, str] | None = None) -> dict[str, Readiness]:
        """Every known agent's readiness as the pool sees it (``env``: this process's)."""
        probed = readiness.probe(self.settings, os.environ if env is None else env, self.agents)
        return readiness.assess(probed, self.store.agent_statuses(), utcnow())

    def waiting_reasons(
        self, tasks: Iterable[Task], ready: Mapping[str, Readiness] | None = None
    ) -> dict[str, str]:
        """Task id -> why it waits, for the QUEUED ones no usable agent can take."""
        queued = [t for t in tasks if t.state == TaskState.QUEUED]
        if not queued:
            return {}
        ready = self.agent_readiness() if ready is None else ready
        reasons = {}
        for task in queued:
            resuming = None
            if not task.agent.type:
                resuming = readiness.resuming_agent(self.store.executions_of(task.id))
            why = readiness.waiting_reason(task, ready, resuming)
            if why is not None:
                reasons[task.id] = why
        return reasons

    # -- reading -----------------------------------------------------------------------------

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
        if len(ident) >= _MIN_PREFIX:
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
        rule = "" if len(ident) >= _MIN_PREFIX else " (an id prefix needs at least 4 characters)"
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

    def project_dir_of(self, project: str) -> str:
        """The directory tasks of ``project`` (a name, or an absolute directory) record."""
        if Path(project).is_absolute():
            return str(Path(project).resolve())
        found, _ = self.project(project)  # NotFound names it
        return str(Path(found.dir).expanduser().resolve())

    # -- stories -----------------------------------------------------------------------------

    def create_story(self, story: Story) -> Story:
        return self.store.add_story(story)

    def stories(self) -> list[tuple[Story, dict[str, int]]]:
        """Every story with its progress (tasks per state)."""
        return [(s, self.story_progress(s.id)) for s in self.store.stories()]

    def story(self, story_id: str) -> tuple[Story, dict[str, int]]:
        story = self.store.get_story(story_id)
        return story, self.story_progress(story.id)

    def story_progress(self, story_id: str) -> dict[str, int]:
        return {state.value: n for state, n in self.store.story_progress(story_id).items()}

    def update_story(
        self, story_id: str, *, name: str | None = None, description: str | None = None
    ) -> tuple[Story, dict[str, int]]:
        """Rename a story or change its description; its progress with it."""
        fields = {"name": name, "description": description}
        self.store.update_story(story_id, **{k: v for k, v in fields.items() if v is not None})
        return self.story(story_id)

    # -- web push ----------------------------------------------------------------------------

    def push_public_key(self) -> str:
        """The VAPID public key browsers subscribe with (generated on first use)."""
        from claudomator import webpush  # cryptography: only for Web Push

        return webpush.load_keys(self.settings).public_key

    def subscribe_push(self, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
        """Remember a browser's Web Push subscription (validated)."""
        from claudomator import webpush

        subscription = webpush.validate_subscription(endpoint, p256dh, auth)
        self.store.save_push_subscription(subscription)
        logger.info(
            "push subscription added for %s",
            urlsplit(endpoint).hostname,
            extra={"action": "webpush"},
        )
        return subscription

    def unsubscribe_push(self, endpoint: str) -> bool:
        """Forget a subscription; False if it was not known."""
        return self.store.delete_push_subscription(endpoint)

    def delete_story(self, story_id: str) -> None:
        self.store.delete_story(story_id)

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

    def executions(self, task_id: str) -> list[Execution]:
        return self.store.executions_of(task_id)

    def latest_execution(self, ident: str) -> Execution:
        """The newest execution of a task (by task id or prefix), or an execution by its id."""
        try:
            task_id = self.resolve_id(ident)
        except NotFound as exc:
            try:
                return self.store.get_execution(ident)
            except NotFound:
                rule = "" if len(ident) >= _MIN_PREFIX else "; a prefix needs 4 characters"
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
            if not self.settings.subtasks_any_project and not _same_dir(project, home):
                return SubtaskRefusal(
                    "agent.project_dir",
                    f"task {task.name!r}: a subtask works in its parent's project "
                    f"({home or 'a scratch repository: leave project_dir empty'}), not "
                    f"{project}; set subtasks_any_project = true in the config to allow others",
                )
            agent = task.agent.model_copy(update={"project_dir": project})
            made.append(task.model_copy(update={"parent_task_id": parent_id, "agent": agent}))
        return made

    def events_since(self, after_id: int) -> list[TaskEvent]:
        """Every task's state changes after event ``after_id``, oldest first."""
        return self.store.events_since(after_id)

    def last_event_id(self) -> int:
        """The id of the newest task state change (0 before any)."""
        return self.store.last_event_id()

    def events(self, task_id: str) -> list[TaskEvent]:
        return self.store.events(task_id)

    def counts(self) -> dict[str, int]:
        """Number of tasks per state (every state present, zeros included)."""
        counts = {s.value: 0 for s in TaskState}
        counts.update({state.value: n for state, n in self.store.count_by_state().items()})
        return counts
