"""The ``claudomator`` command line (Typer + Rich). Parses, calls the service, prints.

Exit codes: 0 success; 1 a task did not complete (``run``) or an operation failed;
2 invalid input (a bad task file, an unknown id, a bad option).
"""

from __future__ import annotations

import logging
from typing import Annotated, NoReturn

import typer
from rich.logging import RichHandler
from rich.markup import escape

from claudomator import __version__
from claudomator.cli import intake, manage, run, serve, views
from claudomator.cli.common import app, make_console, state
from claudomator.errors import ClaudomatorError

__all__ = ["app", "main"]
_COMMAND_MODULES = (intake, manage, run, serve, views)  # importing them registers their commands


def _version(value: bool) -> None:
    if value:
        typer.echo(f"claudomator {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Run AI coding agents on a queue of tasks, unattended, safely and in parallel.

    Write tasks in a YAML file and `claudomator run tasks.yaml`, or start the service with
    `claudomator serve`. Configuration: `claudomator init` writes a commented config file.
    """
    state.verbose = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=make_console(stderr=True), show_path=False)],
        force=True,
    )


# -- helpers for tables ------------------------------------------------------------------------


def main() -> None:
    try:
        app()
    except ClaudomatorError as exc:  # a failure the command did not explain itself
        _fatal(str(exc))
    except OSError as exc:  # a full disk, a read-only data dir, ...
        where = f": {exc.filename}" if exc.filename else ""
        _fatal(f"{exc.strerror or exc}{where}")


def _fatal(message: str) -> NoReturn:
    """Print ``message`` as the error it is (never a traceback) and exit 1."""
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise SystemExit(1)
