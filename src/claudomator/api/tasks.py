"""Task routes: create (one or a batch), list, get, edit, and the actions (cancel, retry,
run again, answer, accept, reject)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, field_validator

from claudomator.checker import CheckStatus
from claudomator.errors import NotFound, Problem
from claudomator.isolation import policy
from claudomator.logs import MAX_READ, LogFile
from claudomator.models import (
    Execution,
    Interaction,
    Task,
    TaskEvent,
    TaskIsolation,
    TaskState,
    check_text,
    is_text,
)
from claudomator.readiness import Readiness
from claudomator.service import Service, SubtaskRefusal

MAX_LOG_CHUNK = 4 * 1024 * 1024


class TaskView(Task):
    """A task as the API shows it: the stored task, why it waits if no agent can take it, and
    what it has cost (over all its executions: see ``TaskCost``)."""

    # set on a QUEUED task that no usable agent can take now (readiness.waiting_reason)
    waiting_reason: str | None = None
    cost_usd_total: float = Field(
        default=0.0,
        description="USD spent over all executions; only a lower bound when cost_known is false",
    )
    cost_known: bool = Field(
        default=True,
        description="false when an execution's cost is unknown (the agent reported none and "
        "its model has no price): then any budget on the task was not checked",
    )
    cost_estimated: bool = Field(
        default=False, description="some of the cost was estimated from the price table"
    )


def _views(service: Service, tasks: list[Task]) -> list[TaskView]:
    reasons = service.waiting_reasons(tasks)
    costs = service.task_costs(t.id for t in tasks)
    views = []
    for t in tasks:
        cost = costs[t.id]
        extra = {
            "waiting_reason": reasons.get(t.id),
            "cost_usd_total": cost.total_usd,
            "cost_known": cost.known,
            "cost_estimated": cost.estimated,
        }
        views.append(TaskView.model_validate({**t.model_dump(), **extra}))
    return views


class TaskList(BaseModel):
    """A page of tasks, newest first."""

    tasks: list[TaskView]
    # the newest state change when the page was read: follow ``/api/events?after=`` from here
    last_event_id: int = 0


class TaskDetail(BaseModel):
    """A task with its executions, history and questions."""

    task: TaskView
    executions: list[Execution]
    events: list[TaskEvent]
    interactions: list[Interaction]
    # the acceptance check: verdict, pending, or why there is none (None: no criteria)
    check: CheckStatus | None = None
    # execution id -> the note of an execution that started without the user's uncommitted
    # changes ("the agent started from main@1a2b3c4d; your uncommitted changes in ... were not
    # included"); executions without one are absent
    checkout_notes: dict[str, str] = Field(default_factory=dict)


class AnswerBody(BaseModel):
    """The human's answer to a BLOCKED task's question."""

    answer: str = Field(min_length=1, max_length=20000)

    @field_validator("answer")
    @classmethod
    def _text(cls, value: str) -> object:
        return check_text(value)


class FeedbackBody(BaseModel):
    """A reviewer's reasons for sending work back."""

    feedback: str = Field(min_length=1, max_length=20000)

    @field_validator("feedback")
    @classmethod
    def _text(cls, value: str) -> object:
        return check_text(value)


_EXAMPLE = {
    "name": "csv-export",
    "timeout": "20m",
    "agent": {"type": "claude", "instructions": "Add a CSV export", "project_dir": "/srv/app"},
}


def _relative_projects(document: object) -> list[Problem]:
    """Problems for project_dir values that are not absolute (there is no file to be relative
    to in a request)."""
    raws = document.get("tasks") if isinstance(document, dict) else None
    items = raws if isinstance(raws, list) else [document]
    problems = []
    for index, raw in enumerate(items):
        agent = raw.get("agent") if isinstance(raw, dict) else None
        project = agent.get("project_dir") if isinstance(agent, dict) else None
        if isinstance(project, str) and project and not Path(project).expanduser().is_absolute():
            name = raw.get("name") if isinstance(raw, dict) else None
            label = name if isinstance(name, str) and name and is_text(name) else f"#{index + 1}"
            message = "must be an absolute path over the API"
            problems.append(Problem("request", label, "agent.project_dir", message))
    return problems


def _confined_as_parent(service: Service, parent_id: str, tasks: list[Task]) -> list[Task]:
    """An agent's subtasks, each confined at least as its parent (an empty isolation field
    takes the parent's when the subtask's project would give less); 403 naming the field for
    one that asks for less."""
    parent = service.get(parent_id)
    known = [p for p, _ in service.projects()]
    above = policy.governing_project(known, parent.agent.project_dir)
    confined = []
    for task in tasks:
        project = policy.governing_project(known, task.agent.project_dir)
        launcher, network, problems = policy.for_subtask(
            service.settings, above, parent.isolation, project, task.isolation
        )
        if problems:
            field, message = problems[0]
            raise HTTPException(status_code=403, detail=f"{field}: task {task.name!r}: {message}")
        isolation = TaskIsolation(launcher=launcher, network=network)
        confined.append(task.model_copy(update={"isolation": isolation}))
    return confined


def task_routes(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/tasks", tags=["tasks"])

    @router.post("", response_model=TaskList, status_code=201)
    def create_tasks(
        request: Request,
        document: dict[str, Any] = Body(..., examples=[_EXAMPLE]),  # noqa: B008
        submit: bool = Query(
            default=True, description="queue at once; false stores PENDING drafts"
        ),
    ) -> TaskList:
        """Create one task, or a batch (`{"tasks": [...]}`, dependencies by name); all or none.

        Fields are those of a task file (see the README). They are queued at once, or kept as
        PENDING drafts with ``?submit=false`` (queue them with ``POST /api/tasks/{id}/submit``).
        With an agent's token, every task must be a subtask of that agent's task
        (``parent_task_id`` is filled in when missing).
        """
        parsed = service.prepare(
            document, source="request", base_dir=Path.cwd(), problems=_relative_projects(document)
        )
        tasks = parsed.tasks
        agent_task = getattr(request.state, "agent_task", None)
        if agent_task is not None:
            made = service.as_subtasks(agent_task, tasks)
            if isinstance(made, SubtaskRefusal):
                raise HTTPException(status_code=403, detail=f"{made.field}: {made.message}")
            tasks = _confined_as_parent(service, agent_task, made)
        return TaskList(tasks=_views(service, service.submit(tasks, queue=submit)))

    @router.get("", response_model=TaskList)
    def list_tasks(
        state: list[TaskState] | None = Query(default=None),  # noqa: B008
        parent: str | None = Query(default=None, description="only subtasks of this task"),
        story: str | None = Query(default=None, description="only tasks of this story"),
        project: str | None = Query(
            default=None,
            min_length=1,
            max_length=4096,
            description="only tasks of this project (its name, or an absolute directory)",
        ),
        tag: list[str] = Query(  # noqa: B008
            default=[], description="only tasks with this tag (repeat: every one of them)"
        ),
        limit: int = Query(default=100, ge=1, le=1000),
        offset: int = Query(default=0, ge=0, le=1_000_000),
    ) -> TaskList:
        """Tasks, newest first. Filters combine: any of the given states, a parent, a story,
        a project, every given tag. Page with ``offset`` and ``limit``. ``last_event_id``
        is where to start following ``/api/events`` to keep the page up to date."""
        last_event_id = service.last_event_id()  # before the read: a change between is resent
        return TaskList(
            last_event_id=last_event_id,
            tasks=_views(
                service,
                service.list_tasks(
                    states=state,
                    parent=parent,
                    story=story,
                    project=project,
                    tags=tag,
                    limit=limit,
                    offset=offset,
                ),
            ),
        )

    @router.get("/{task_id}", response_model=TaskDetail)
    def get_task(task_id: str) -> TaskDetail:
        """A task (by id or unique prefix) with its executions, history and questions."""
        task = service.get(task_id)
        executions = service.executions(task.id)
        notes = service.checkout_notes(executions)
        return TaskDetail(
            task=_views(service, [task])[0],
            executions=executions,
            events=service.events(task.id),
            interactions=service.interactions(task.id),
            check=service.check_status(task),
            checkout_notes={execution_id: note.line for execution_id, note in notes.items()},
        )

    @router.get("/{task_id}/executions", response_model=list[Execution])
    def list_executions(task_id: str) -> list[Execution]:
        """Every attempt at a task, oldest first."""
        return service.executions(service.resolve_id(task_id))

    @router.patch("/{task_id}", response_model=Task)
    def update_task(
        task_id: str,
        changes: dict[str, Any] = Body(..., examples=[{"priority": "high", "timeout": "30m"}]),  # noqa: B008
    ) -> Task:
        """Change a task while it is PENDING or QUEUED (409 otherwise); ``agent`` is merged."""
        return service.update(task_id, changes)

    @router.delete("/{task_id}", status_code=204)
    def delete_task(task_id: str) -> None:
        """Delete a task with its history and executions (409 while it runs)."""
        service.delete(task_id)

    @router.post("/{task_id}/submit", response_model=Task)
    def submit_task(task_id: str) -> Task:
        """Queue a PENDING draft (409 unless PENDING)."""
        return service.queue(task_id)

    @router.post("/{task_id}/cancel", response_model=Task)
    def cancel_task(task_id: str) -> Task:
        """Cancel a task; a running agent is asked to stop (its sandbox is kept)."""
        return service.cancel(service.resolve_id(task_id))

    @router.post("/{task_id}/retry", response_model=Task)
    def retry_task(task_id: str) -> Task:
        """Queue an ended (FAILED, TIMED_OUT, BUDGET_EXCEEDED, CANCELLED) task again."""
        return service.retry(task_id)

    @router.post("/{task_id}/again", response_model=Task, status_code=201)
    def run_task_again(task_id: str) -> Task:
        """Queue a new task with an ended task's definition (``claudomator run --again``); the
        ended task is kept. 409 unless it ended, or for a checker task. To re-queue a FAILED,
        TIMED_OUT, BUDGET_EXCEEDED or CANCELLED task itself, use ``/retry``."""
        return service.run_again(task_id)

    @router.post("/{task_id}/answer", response_model=Task)
    def answer_task(task_id: str, body: AnswerBody) -> Task:
        """Answer a BLOCKED task's question; the same agent session resumes."""
        return service.answer(task_id, body.answer)

    @router.post("/{task_id}/accept", response_model=Task)
    def accept_task(task_id: str) -> Task:
        """Accept a READY task's delivered branch (409 unless READY)."""
        return service.accept(task_id)

    @router.post("/{task_id}/reject", response_model=Task)
    def reject_task(task_id: str, body: FeedbackBody) -> Task:
        """Send a READY task back with feedback; the agent's session resumes on its branch."""
        return service.reject(task_id, body.feedback)

    return router


def execution_routes(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/executions", tags=["executions"])

    @router.get("/{execution_id}", response_model=Execution)
    def get_execution(execution_id: str) -> Execution:
        """One execution: status, cost, tokens, session, sandbox, commits, diff stats."""
        return service.execution(execution_id)

    @router.get(
        "/{execution_id}/log",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def get_log(
        execution_id: str,
        stream: Literal["stdout", "stderr"] = "stdout",
        offset: int = Query(default=0, ge=0),
    ) -> PlainTextResponse:
        """The agent's raw log (stream-json on stdout) from a byte offset; the
        ``X-Next-Offset`` header says where to continue."""
        execution = service.execution(execution_id)
        name = LogFile.STDOUT if stream == "stdout" else LogFile.STDERR
        data = service.logs.read(execution, name, offset, MAX_LOG_CHUNK) or b""
        return PlainTextResponse(
            data.decode("utf-8", errors="replace"),
            headers={"X-Next-Offset": str(offset + len(data))},
        )

    @router.get(
        "/{execution_id}/diff",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def get_diff(execution_id: str) -> PlainTextResponse:
        """The unified diff of the work this execution delivered (from the commit its sandbox
        started at; cut at 4 MiB); 404 when it delivered nothing."""
        execution = service.execution(execution_id)
        data = None
        if execution.commits:
            data = service.logs.read(execution, LogFile.DIFF, 0, MAX_READ)
        if data is None:
            raise NotFound("diff for execution", execution_id)
        return PlainTextResponse(data.decode("utf-8", errors="replace"))

    return router


def agent_routes(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/agents", tags=["agents"])

    @router.get("", response_model=list[Readiness])
    def agents() -> list[Readiness]:
        """Every known agent (built-in or a plugin's): whether it can run here and why not (CLI
        found, credentials found, configured, rate-limited or out of quota), with its health."""
        return list(service.agent_readiness().values())

    return router
