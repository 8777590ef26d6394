"""Acting on tasks and configuration: `answer`, `retry`, `cancel`, `init`."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from claudomator.cli.common import (
    acting_on,
    app,
    fail,
    load,
    make_console,
    resume_hint,
    short_id,
)
from claudomator.config import (
    config_path,
    default_data_dir,
    write_default_config,
)
from claudomator.errors import (
    ConfigError,
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
    with acting_on(task_id) as (service, task):
        service.answer(task.id, text)
        settings = service.settings
    make_console().print(
        f"Answered {task.name} ({short_id(task.id)}): it is queued to resume the same agent "
        f"session; {resume_hint(settings)}.",
        markup=False,
        soft_wrap=True,
    )


@app.command(rich_help_panel="Act")
def accept(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A READY task (id or prefix).")],
) -> None:
    """Accept a READY task's branch: the task is COMPLETED (merge the branch yourself)."""
    with acting_on(task_id) as (service, task):
        service.accept(task.id)
    make_console().print(f"Accepted {task.name} ({short_id(task.id)}).", markup=False)


@app.command(rich_help_panel="Act")
def reject(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A READY task (id or prefix).")],
    feedback: Annotated[str, typer.Argument(help="What the agent should change.")],
) -> None:
    """Send a READY task back with feedback: the same agent session resumes on its branch."""
    with acting_on(task_id) as (service, task):
        service.reject(task.id, feedback)
        settings = service.settings
    make_console().print(
        f"Sent {task.name} ({short_id(task.id)}) back with your feedback; {resume_hint(settings)}.",
        markup=False,
        soft_wrap=True,
    )


@app.command(rich_help_panel="Act")
def retry(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (or a unique prefix).")],
) -> None:
    """Queue a FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED task for a fresh attempt."""
    with acting_on(task_id) as (service, task):
        service.retry(task.id)
        settings = service.settings
    make_console().print(
        f"Queued {task.name} ({short_id(task.id)}) again; {resume_hint(settings)}.",
        markup=False,
        soft_wrap=True,
    )


@app.command(rich_help_panel="Act")
def cancel(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (or a unique prefix).")],
) -> None:
    """Cancel a task. A running agent is stopped (its sandbox is kept)."""
    with acting_on(task_id) as (service, task):
        result = service.cancel(task.id)
    if result.state == TaskState.RUNNING:
        make_console().print(
            f"Asked the orchestrator to stop {task.name} ({short_id(task.id)}).", markup=False
        )
    else:
        make_console().print(f"Cancelled {task.name} ({short_id(task.id)}).", markup=False)


@app.command(rich_help_panel="Set up")
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented default config file: to $CLAUDOMATOR_CONFIG, else the data dir's
    `config.toml`."""
    path = config_path()
    data_dir = load().data_dir if path.exists() else default_data_dir(os.environ)
    try:
        written = write_default_config(path, data_dir, force=force)
    except ConfigError as exc:
        raise fail(str(exc), 1) from exc
    make_console().print(f"Wrote {written}")
