"""Acting on tasks and configuration: `answer`, `retry`, `cancel`, `init`."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from claudomator.cli.common import app, fail, load, lookup, make_console, open_service, short_id
from claudomator.config import (
    config_path,
    default_data_dir,
    write_default_config,
)
from claudomator.errors import (
    ConfigError,
    InvalidTransition,
    ValidationError,
)
from claudomator.models import (
    TaskState,
)

logger = logging.getLogger(__name__)


@app.command(rich_help_panel="Act")
def answer(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A BLOCKED task (id or prefix).")],
    text: Annotated[str, typer.Argument(help="Your answer to the agent's question.")],
) -> None:
    """Answer a BLOCKED task's question: it resumes the same agent session and sandbox."""
    service = open_service(load())
    try:
        task = lookup(service, task_id)
        try:
            service.answer(task.id, text)
        except InvalidTransition as exc:
            raise fail(
                f"task {task.id} is {task.state.value}, not BLOCKED; no question to answer"
            ) from exc
        except ValidationError as exc:
            raise fail(str(exc), 2) from exc
        make_console().print(f"Answered {task.name} ({short_id(task.id)}); it is queued to resume.")
    finally:
        service.close()


@app.command(rich_help_panel="Act")
def accept(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A READY task (id or prefix).")],
) -> None:
    """Accept a READY task's branch: the task is COMPLETED (merge the branch yourself)."""
    service = open_service(load())
    try:
        task = lookup(service, task_id)
        try:
            service.accept(task.id)
        except InvalidTransition as exc:
            raise fail(f"task {task.id} is {task.state.value}, not READY") from exc
        make_console().print(f"Accepted {task.name} ({short_id(task.id)}).")
    finally:
        service.close()


@app.command(rich_help_panel="Act")
def reject(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A READY task (id or prefix).")],
    feedback: Annotated[str, typer.Argument(help="What the agent should change.")],
) -> None:
    """Send a READY task back with feedback: the same agent session resumes on its branch."""
    service = open_service(load())
    try:
        task = lookup(service, task_id)
        try:
            service.reject(task.id, feedback)
        except InvalidTransition as exc:
            raise fail(f"task {task.id} is {task.state.value}, not READY") from exc
        except ValidationError as exc:
            raise fail(str(exc), 2) from exc
        make_console().print(f"Sent {task.name} ({short_id(task.id)}) back with your feedback.")
    finally:
        service.close()


@app.command(rich_help_panel="Act")
def retry(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (or a unique prefix).")],
) -> None:
    """Queue a FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED task for a fresh attempt."""
    service = open_service(load())
    try:
        task = lookup(service, task_id)
        try:
            service.retry(task.id)
        except InvalidTransition as exc:
            raise fail(
                f"task {task.id} is {task.state.value}; only ended tasks can be retried"
            ) from exc
        make_console().print(f"Queued {task.name} ({short_id(task.id)}) again.")
    finally:
        service.close()


@app.command(rich_help_panel="Act")
def cancel(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (or a unique prefix).")],
) -> None:
    """Cancel a task. A running agent is stopped (its sandbox is kept)."""
    service = open_service(load())
    try:
        task = lookup(service, task_id)
        try:
            result = service.cancel(task.id)
        except InvalidTransition as exc:
            raise fail(f"task {task.id} is already {task.state.value}; nothing to cancel") from exc
        if result.state == TaskState.RUNNING:
            make_console().print(
                f"Asked the orchestrator to stop {task.name} ({short_id(task.id)})."
            )
        else:
            make_console().print(f"Cancelled {task.name} ({short_id(task.id)}).")
    finally:
        service.close()


@app.command(rich_help_panel="Set up")
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented default config file (to $CLAUDOMATOR_CONFIG or <data dir>/config.toml)."""
    path = config_path()
    data_dir = load().data_dir if path.exists() else default_data_dir(os.environ)
    try:
        written = write_default_config(path, data_dir, force=force)
    except ConfigError as exc:
        raise fail(str(exc), 1) from exc
    make_console().print(f"Wrote {written}")
