"""`claudomator elaborate`: draft a task file from a one-line request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from claudomator.cli.common import app, fail, load, make_console, open_service, short_id
from claudomator.config import Settings
from claudomator.errors import TaskFileError, ValidationError
from claudomator.models import Project

if TYPE_CHECKING:
    from claudomator.elaborate import Elaborated

logger = logging.getLogger(__name__)

_KEEP_EMPTY = frozenset({"name", "instructions"})


def _without_empty(spec: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, Mapping):
            value = _without_empty(value)
        if value in (None, "", [], {}) and key not in _KEEP_EMPTY:
            continue
        kept[key] = value
    return kept


def spec_yaml(spec: Mapping[str, Any], backend: str) -> str:
    """``spec`` as a task file (empty fields left out), with a header saying where it came from."""
    import yaml  # loaded by the commands that write YAML, not by every start

    class TaskDumper(yaml.SafeDumper):
        """Writes multi-line text as ``|`` blocks, the way people write task files."""

    def str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    TaskDumper.add_representer(str, str_block)
    body = yaml.dump(
        _without_empty(spec),
        Dumper=TaskDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return (
        f"# Drafted by {backend} (`claudomator elaborate`). Review it, then:\n"
        f"#   claudomator run FILE\n{body}"
    )


def _project_arg(known: Sequence[Project], project: str | None) -> str | None:
    """A project's name as given; a directory (relative to here) made absolute."""
    if not project or any(p.name == project for p in known):
        return project
    path = Path(project).expanduser()
    return str(path.resolve()) if path.is_dir() else project


async def _elaborate(
    settings: Settings, prompt: str, project: str | None, known: Sequence[Project]
) -> Elaborated:
    """The one-off command's composition root: it builds the model client (and closes it) and
    the launcher the CLIs start through, and hands both to the elaborator."""
    from claudomator.agents.registry import AgentRegistry
    from claudomator.elaborate import elaborator_factory
    from claudomator.isolation._choice import chosen_settings
    from claudomator.llm import LLMClient  # the local model's SDK: only here

    async with LLMClient(settings.local_model) as llm:
        launcher = AgentRegistry.launcher(chosen_settings(settings))  # "auto" resolved
        async with elaborator_factory(settings, llm=llm, launcher=launcher)() as elaborator:
            return await elaborator.elaborate(prompt, project, known)


@app.command(rich_help_panel="Run")
def elaborate(
    prompt: Annotated[str, typer.Argument(help="What you want done, in a sentence or two.")],
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="A project's name (config or API), or a directory."),
    ] = None,
    submit: Annotated[
        bool,
        typer.Option("--submit", help="Queue the task at once (`claudomator serve` runs it)."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the task file to FILE.")
    ] = None,
) -> None:
    """Draft a task from a one-line request and print it as a YAML task file.

    Asks the local model (JSON mode), then `claude -p`, then the Gemini CLI, within 30 seconds
    in all. Exits 1 when none produced a valid task (each one's reason is printed), 2 for an
    unknown project.
    """
    from claudomator.elaborate import ElaborationFailed  # the local model's SDK: only here

    settings = load()
    err = make_console(stderr=True)
    try:
        service = open_service(settings)
        try:
            known = [found for found, _ in service.projects()]
        finally:
            service.close()
        chosen = _project_arg(known, project)
        done = asyncio.run(_elaborate(settings, prompt, chosen, known))
    except ValidationError as exc:
        raise fail(str(exc), 2) from exc
    except ElaborationFailed as exc:
        err.print("No backend produced a valid task:", style="bold red", markup=False)
        for attempt in exc.attempts:
            err.print(f"  {attempt.backend}: {attempt.reason}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    text = spec_yaml(done.spec, done.backend)
    typer.echo(text, nl=False)
    for note in done.notes:
        err.print(f"note: {note}", markup=False, soft_wrap=True)
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot write {out}: {exc.strerror}") from exc
        err.print(f"Wrote {out}", markup=False, soft_wrap=True)
    if submit:
        service = open_service(settings)
        try:
            from claudomator.taskfile import parse_tasks

            tasks = parse_tasks(
                done.spec,
                source=f"elaborate:{done.backend}",
                base_dir=Path.cwd(),
                agents=service.agents,
            )
            [task] = service.submit(tasks)
        except (TaskFileError, ValidationError) as exc:
            raise fail(str(exc), 2) from exc
        finally:
            service.close()
        logger.info("queued elaborated task %s", task.id, extra={"action": "cli_elaborate"})
        err.print(f"Queued {task.name} ({short_id(task.id)}).", markup=False, soft_wrap=True)
