"""A task's life after it is stored: queueing a draft aside, the actions people take on it
(cancel, answer, accept, reject, retry, run again), editing it while it waits, deleting it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from claudomator import protocol
from claudomator.errors import InvalidTransition, NotFound, Problem, ValidationError
from claudomator.models import RETRYABLE_STATES, TASK_FIELDS, Interaction, Task, TaskState
from claudomator.service.core import refusing
from claudomator.service.submission import Submission

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = TASK_FIELDS  # what an edit may change: the definition


class Lifecycle(Submission):
    """The actions on stored tasks."""

    def cancel(self, task_id: str) -> Task:
        """Cancel a task: at once if it is not running, else ask its pool to stop the agent."""
        for _ in range(5):
            task = self.get(task_id)
            if task.state == TaskState.RUNNING:
                if self.store.request_cancel(task.id):
                    return task.model_copy(update={"cancel_requested": True})
                continue  # it just left RUNNING: look again
            if task.state.is_terminal:
                with refusing("cancel"):
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
        with refusing("answer"):
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
        with refusing("accept"):
            done = self.store.transition(
                task.id, TaskState.COMPLETED, "accepted by reviewer", expected=TaskState.READY
            )
        runs = self.store.executions_of(task.id)
        if runs and runs[-1].status == TaskState.READY:  # the accepted round is done
            self.store.save_execution(runs[-1].model_copy(update={"status": TaskState.COMPLETED}))
        if runs and runs[-1].sandbox_dir and task.agent.project_dir:
            sandboxes = self.sandboxes()
            box = sandboxes.reopen(Path(runs[-1].sandbox_dir), Path(task.agent.project_dir))
            if box is not None:
                sandboxes.release(box)
        return done

    def reject(self, ident: str, feedback: str) -> Task:
        """Send a READY task back with the reviewer's feedback; the same session resumes."""
        if not feedback.strip():
            raise ValidationError("the feedback is empty")
        task = self.get(ident)
        runs = self.store.executions_of(task.id)
        with refusing("reject"):
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
        with refusing("retry"):
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
        with refusing("again"):
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
        with refusing("edit"):
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
        with refusing("delete"):
            self.store.delete_task(self.resolve_id(ident), not_in=(TaskState.RUNNING,))
