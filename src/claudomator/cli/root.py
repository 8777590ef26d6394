"""The command line's root: its global options, and how an unexpected error reaches the user.

:func:`claudomator.cli.main` imports this module, then the command modules the command line
needs (:func:`main` here takes their names), then runs the app.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.logging import RichHandler
from rich.markup import escape

from claudomator import __version__
from claudomator.cli.common import app, make_console, state
from claudomator.config import default_data_dir
from claudomator.errors import ClaudomatorError

__all__ = ["app", "main", "register"]
CRASH_LOG = "cli-errors.log"  # in <data dir>/logs: the tracebacks a user is spared


def register(modules: Iterable[str]) -> None:
    """Import the command modules ``modules`` (names under ``claudomator.cli``): importing one
    registers its commands on :data:`app`."""
    for name in modules:
        importlib.import_module(f"claudomator.cli.{name}")


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


def main(modules: Iterable[str]) -> None:
    """Run the app with the commands of ``modules`` registered; every error ends in one line."""
    try:
        register(modules)
        app()
    except ClaudomatorError as exc:  # a failure the command did not explain itself
        _fatal(str(exc))
    except OSError as exc:  # a full disk, a read-only data dir, ...
        where = f": {exc.filename}" if exc.filename else ""
        _fatal(f"{exc.strerror or exc}{where}")
    except Exception as exc:  # a bug of ours: one line here, the traceback in a file
        report = _crash_report(exc)
        kept = f"details in {report}" if report else "the details could not be written anywhere"
        _fatal(f"unexpected error ({type(exc).__name__}: {exc}); {kept}")


def _crash_report(exc: Exception) -> Path | None:
    """Append the traceback of ``exc`` to the crash log; where it went (None if nowhere).

    The data dir's ``logs/`` if it can be written (the config may be what failed, so the data
    dir is the one the environment names or the default), else the temporary directory.
    """
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    text = f"--- {stamp} claudomator {__version__}\n{''.join(traceback.format_exception(exc))}"
    places = (
        default_data_dir(os.environ) / "logs" / CRASH_LOG,
        Path(tempfile.gettempdir()) / f"claudomator-{os.getuid()}-{CRASH_LOG}",
    )
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    for path in places:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with os.fdopen(os.open(path, flags, 0o600), "a", encoding="utf-8") as out:
                out.write(text)
        except OSError:
            continue
        return path
    return None


def _fatal(message: str) -> NoReturn:
    """Print ``message`` as the error it is (never a traceback) and exit 1."""
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise SystemExit(1)
