"""`claudomator project ...` and `claudomator story ...`: what the API's projects and stories
routes do, from the command line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pydantic
import typer
from rich.markup import escape
from rich.table import Table

from claudomator.cli.common import app, fail, load, make_console, open_service, short_id
from claudomator.errors import NotFound, ProjectExists, ValidationError
from claudomator.models import Delivery, Project, Story

logger = logging.getLogger(__name__)

projects_app = typer.Typer(
    help="Named projects: the config file's (read-only) and those added here or over the API.",
    no_args_is_help=True,
)

if TYPE_CHECKING:  # the service (SQLAlchemy) is loaded when a command opens it
    from claudomator.service import Service
stories_app = typer.Typer(help="Stories: tasks grouped toward one goal.", no_args_is_help=True)
app.add_typer(projects_app, name="project", rich_help_panel="Set up")
app.add_typer(stories_app, name="story", rich_help_panel="Set up")


@contextmanager
def _service() -> Iterator[Service]:
    """The service for one command; unknown names exit 2, refusals exit 1 with their reason."""
    service = open_service(load())
    try:
        yield service
    except NotFound as exc:
        raise fail(str(exc), 2) from exc
    except (ValidationError, ProjectExists) as exc:
        raise fail(str(exc), 1) from exc
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise fail(problems, 2) from exc
    finally:
        service.close()


# -- projects ------------------------------------------------------------------------------


@projects_app.command("list")
def list_projects() -> None:
    """Every project with its directory, delivery, review and where it is defined."""
    with _service() as service:
        found = service.projects()
    if not found:
        make_console().print(
            "No projects. Add one: claudomator project add NAME /path/to/repo", markup=False
        )
        return
    table = Table(header_style="bold")
    for column in ("NAME", "DIR", "DELIVERY", "REVIEW", "BUILD", "FROM"):
        table.add_column(column)
    for project, source in found:
        table.add_row(
            escape(project.name),
            escape(project.dir),
            project.delivery.value,
            "yes" if project.review else "",
            escape(" ".join(project.build_command) or "(detected)"),
            source,
        )
    make_console().print(table)


@projects_app.command("add")
def add_project(
    name: Annotated[str, typer.Argument(help="A repository name: webapp, or owner/webapp.")],
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The project's directory.")],
    build: Annotated[
        str | None,
        typer.Option(help="Build check command, split on spaces (default: detected)."),
    ] = None,
    delivery: Annotated[Delivery, typer.Option(case_sensitive=False)] = Delivery.AUTO,
    review: Annotated[
        bool, typer.Option(help="Work delivered as a branch waits READY for accept/reject.")
    ] = False,
    replace: Annotated[bool, typer.Option(help="Replace a project of that name.")] = False,
) -> None:
    """Add a project (stored in the database, like projects added over the API)."""
    with _service() as service:
        project = Project(
            name=name,
            dir=str(directory.expanduser().resolve()),
            build_command=tuple(build.split()) if build else (),
            delivery=delivery,
            review=review,
        )
        saved = service.save_project(project, create=not replace)
    make_console().print(f"Project {saved.name}: {saved.dir}", markup=False, soft_wrap=True)


@projects_app.command("remove")
def remove_project(name: Annotated[str, typer.Argument(help="The project's name.")]) -> None:
    """Forget a project added here or over the API (its directory is not touched)."""
    with _service() as service:
        service.delete_project(name)
    make_console().print(f"Removed project {name}.", markup=False)


# -- stories -------------------------------------------------------------------------------


def _progress(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    done = counts.get("COMPLETED", 0)
    return f"{done}/{total} completed" if total else "no tasks yet"


@stories_app.command("list")
def list_stories() -> None:
    """Every story with its progress."""
    with _service() as service:
        found = service.stories()
    if not found:
        make_console().print('No stories. Add one: claudomator story add "NAME"', markup=False)
        return
    table = Table(header_style="bold")
    for column in ("ID", "NAME", "PROGRESS", "DESCRIPTION"):
        table.add_column(column)
    for story, counts in found:
        table.add_row(
            short_id(story.id), escape(story.name), _progress(counts), escape(story.description)
        )
    make_console().print(table)


@stories_app.command("add")
def add_story(
    name: Annotated[str, typer.Argument(help="What the story is for.")],
    description: Annotated[str, typer.Option(help="More about the goal.")] = "",
) -> None:
    """Create a story; give tasks `story_id: <id>` to put them in it."""
    with _service() as service:
        story = service.create_story(Story(name=name, description=description))
    make_console().print(f"Story {story.name}: {story.id}", markup=False, soft_wrap=True)


@stories_app.command("show")
def show_story(
    story_id: Annotated[str, typer.Argument(metavar="ID", help="The story id.")],
) -> None:
    """A story with its tasks per state."""
    with _service() as service:
        story, counts = service.story(story_id)
    console = make_console()
    console.print(f"{story.name} ({story.id}): {_progress(counts)}", markup=False)
    if story.description:
        console.print(story.description, markup=False)
    for state, count in sorted(counts.items()):
        console.print(f"  {state}: {count}", markup=False)


@stories_app.command("remove")
def remove_story(
    story_id: Annotated[str, typer.Argument(metavar="ID", help="The story id.")],
) -> None:
    """Delete a story (its tasks stay, without a story)."""
    with _service() as service:
        service.delete_story(story_id)
    make_console().print(f"Removed story {story_id}.", markup=False)
