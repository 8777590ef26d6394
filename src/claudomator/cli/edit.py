"""`claudomator submit`, `edit` and `delete`: drafts and queued tasks from the command line."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer

from claudomator.cli.common import acting_on, app, fail, make_console, resume_hint, short_id
from claudomator.models import Priority

logger = logging.getLogger(__name__)

_ID = typer.Argument(metavar="ID", help="Task id (or a unique prefix).")


@app.command(rich_help_panel="Act")
def submit(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A PENDING draft (id or prefix).")],
) -> None:
    """Queue a PENDING draft (made with the web UI or `POST /api/tasks?submit=false`)."""
    with acting_on(task_id) as (service, task):
        service.queue(task.id)
        settings = service.settings
    make_console().print(
        f"Queued {task.name} ({short_id(task.id)}); {resume_hint(settings)}.",
        markup=False,
        soft_wrap=True,
    )


@app.command(rich_help_panel="Act")
def edit(
    task_id: Annotated[str, _ID],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    instructions: Annotated[
        str | None, typer.Option(help="New instructions for the agent.")
    ] = None,
    agent: Annotated[
        str | None, typer.Option(help="Agent type (claude, gemini, local; empty: choose).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model for the agent (empty: default).")] = None,
    project_dir: Annotated[
        str | None, typer.Option(help="Absolute path of the project to work on.")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Time limit, e.g. 20m or 1h30m (empty: the default).")
    ] = None,
    priority: Annotated[Priority | None, typer.Option(case_sensitive=False)] = None,
    budget: Annotated[float | None, typer.Option(min=0, help="max_budget_usd for one run.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Replace the tags (repeat).")
    ] = None,
) -> None:
    """Change a PENDING or QUEUED task; only the options given change.

    Every problem with the new values is reported at once and nothing changes then.
    """
    changes: dict[str, Any] = {}
    agent_changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if timeout is not None:
        changes["timeout"] = timeout or None  # parsed and checked with the rest
    if priority is not None:
        changes["priority"] = priority.value
    if tag is not None:
        changes["tags"] = list(tag)
    for key, value in (
        ("instructions", instructions),
        ("type", agent),
        ("model", model),
        ("project_dir", project_dir),
        ("max_budget_usd", budget),
    ):
        if value is not None:
            agent_changes[key] = value
    if agent_changes:
        changes["agent"] = agent_changes
    if not changes:
        raise fail("nothing to change: give at least one option (see --help)", 2)

    with acting_on(task_id) as (service, task):
        edited = service.update(task.id, changes)
    make_console().print(
        f"Changed {edited.name} ({short_id(edited.id)}): {', '.join(sorted(_described(changes)))}.",
        markup=False,
        soft_wrap=True,
    )


def _described(changes: dict[str, Any]) -> list[str]:
    agent = changes.get("agent", {})
    return [k for k in changes if k != "agent"] + [f"agent.{k}" for k in agent]


@app.command(rich_help_panel="Act")
def delete(
    task_id: Annotated[str, _ID],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a task with its history (not while it runs). Its logs stay on disk."""
    with acting_on(task_id) as (service, task):
        if not yes:
            if not sys.stdin.isatty():
                raise fail(f"not deleting {task.id} without --yes (no terminal to ask on)", 2)
            if not typer.confirm(f"Delete {task.name} ({short_id(task.id)}) and its history?"):
                raise typer.Exit(1)
        service.delete(task.id)  # a running task: InvalidTransition, the service's refusal
    make_console().print(f"Deleted {task.name} ({short_id(task.id)}).", markup=False)
