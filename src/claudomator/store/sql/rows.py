"""Rows to records and back: the one place that knows how a model is laid out in a table.

Plain mappings in and out (no SQLAlchemy here): the quick store (:mod:`claudomator.store.quick`)
reads rows with the standard library's ``sqlite3`` and builds records with the same functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from claudomator.models import (
    AgentConfig,
    ChangeStats,
    Commit,
    Delivery,
    DeliveryRecord,
    Execution,
    Priority,
    Project,
    Task,
    TaskCost,
    TaskEvent,
    TaskIsolation,
    TaskState,
)


def task_row(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "name": task.name,
        "description": task.description,
        "agent": task.agent.model_dump(mode="json"),
        "timeout": task.timeout,
        "priority": task.priority.value,
        "priority_rank": task.priority.rank,
        "tags": list(task.tags),
        "depends_on": list(task.depends_on),
        "parent_task_id": task.parent_task_id,
        "story_id": task.story_id,
        "state": task.state.value,
        "summary": task.summary,
        "question": task.question,
        "cancel_requested": task.cancel_requested,
        "acceptance_criteria": task.acceptance_criteria,
        "checker_for_task_id": task.checker_for_task_id,
        "check_verdict": task.check_verdict,
        "check_report": task.check_report,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "project_dir": task.agent.project_dir,
        "isolation": task.isolation.model_dump(mode="json"),
    }


def event_row(
    task_id: str, source: TaskState | None, target: TaskState, reason: str, at: datetime
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "at": at,
        "from_state": source.value if source else None,
        "to_state": target.value,
        "reason": reason,
    }


def tag_rows(task: Task) -> list[dict[str, str]]:
    return [{"task_id": task.id, "tag": tag} for tag in sorted(set(task.tags))]


def task_from(row: Mapping[Any, Any]) -> Task:
    return Task(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        agent=AgentConfig.model_validate(row["agent"]),
        timeout=row["timeout"],
        priority=Priority(row["priority"]),
        tags=tuple(row["tags"]),
        depends_on=tuple(row["depends_on"]),
        parent_task_id=row["parent_task_id"],
        story_id=row["story_id"],
        state=TaskState(row["state"]),
        summary=row["summary"],
        question=row["question"],
        cancel_requested=bool(row["cancel_requested"]),
        acceptance_criteria=row["acceptance_criteria"],
        checker_for_task_id=row["checker_for_task_id"],
        check_verdict=row["check_verdict"],
        check_report=row["check_report"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        isolation=TaskIsolation.model_validate(row.get("isolation") or {}),
    )


def project_row(project: Project) -> dict[str, Any]:
    """A project's row, but for its name and creation time."""
    return {
        "dir": project.dir,
        "build_command": list(project.build_command),
        "delivery": project.delivery.value,
        "review": project.review,
        "launcher": project.launcher,
        "network": project.network,
        "read_only_paths": list(project.read_only_paths),
        "allowed_endpoints": list(project.allowed_endpoints),
    }


def project_from(row: Mapping[Any, Any]) -> Project:
    return Project(
        name=row["name"],
        dir=row["dir"],
        build_command=tuple(row["build_command"]),
        delivery=Delivery(row["delivery"]),
        review=bool(row["review"]),
        launcher=row.get("launcher") or "",
        network=row.get("network") or "",
        read_only_paths=tuple(row.get("read_only_paths") or ()),
        allowed_endpoints=tuple(row.get("allowed_endpoints") or ()),
    )


def event_from(row: Mapping[Any, Any]) -> TaskEvent:
    return TaskEvent(
        id=row["id"],
        task_id=row["task_id"],
        at=row["at"],
        from_state=TaskState(row["from_state"]) if row["from_state"] else None,
        to_state=TaskState(row["to_state"]),
        reason=row["reason"],
    )


def execution_row(execution: Execution) -> dict[str, Any]:
    row = execution.model_dump(mode="python", exclude={"commits", "changestats", "delivery"})
    row["status"] = execution.status.value
    row["commits"] = [c.model_dump() for c in execution.commits]
    row["changestats"] = execution.changestats.model_dump()
    row["delivery"] = execution.delivery.model_dump() if execution.delivery else None
    return row


def execution_from(row: Mapping[Any, Any]) -> Execution:
    data = dict(row)
    data["start_time"] = data["start_time"]
    data["end_time"] = data["end_time"]
    data["commits"] = tuple(Commit.model_validate(c) for c in data["commits"])
    data["changestats"] = ChangeStats.model_validate(data["changestats"])
    data["cost_estimated"] = bool(data["cost_estimated"])
    data["cost_known"] = bool(data["cost_known"])
    if data["delivery"] is not None:
        data["delivery"] = DeliveryRecord.model_validate(data["delivery"])
    return Execution.model_validate(data)


def task_cost_from(row: Sequence[Any]) -> tuple[str, TaskCost]:
    """A task's cost from its grouped row: task id, sum of costs, executions of unknown cost,
    estimated ones, all of them, ended ones."""
    task_id, total, n_unknown, n_estimated, count, n_ended = row
    return str(task_id), TaskCost(
        total_usd=float(total),
        known=not n_unknown,
        estimated=bool(n_estimated),
        executions=int(count),
        ended=int(n_ended),
    )
