"""The ``claudomator`` command line (Typer + Rich). Parses, calls the service, prints.

Exit codes: 0 success; 1 a task did not complete (``run``) or an operation failed;
2 invalid input (a bad task file, an unknown id, a bad option).

Start-up is kept short (``list``, ``show`` and ``answer`` answer in well under half a second):
this package imports nothing, :func:`main` answers ``--version`` by itself, and otherwise
imports only the module that defines the command given (:data:`COMMAND_MODULES`), or all of
them when the command line names none it knows (help, a typo: Typer then lists them all).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

__all__ = ["COMMAND_MODULES", "app", "main", "modules_for"]

COMMAND_MODULES: dict[str, str] = {
    "project": "catalog",
    "story": "catalog",
    "submit": "edit",
    "edit": "edit",
    "delete": "edit",
    "doctor": "doctor",
    "gc": "gc",
    "elaborate": "intake",
    "answer": "manage",
    "accept": "manage",
    "reject": "manage",
    "retry": "manage",
    "cancel": "manage",
    "init": "manage",
    "run": "run",
    "serve": "serve",
    "list": "views",
    "agents": "views",
    "show": "views",
    "logs": "views",
}
"""Each command, and the module under ``claudomator.cli`` that defines it (a test holds this
equal to what the modules register)."""


def command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` (without the program name) names: its first word that is not an
    option (the global options, ``-v`` and ``--version``, take no value); None if none."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def modules_for(argv: Sequence[str]) -> list[str]:
    """The command modules to import for ``argv``: the command's own, else all (in a fixed
    order, which is the order of the help's panels)."""
    command = command_of(argv)
    if command in COMMAND_MODULES:
        return [COMMAND_MODULES[command]]
    return sorted(set(COMMAND_MODULES.values()))


def main() -> None:
    """The ``claudomator`` program."""
    argv = sys.argv[1:]
    if command_of(argv) is None and "--version" in argv:
        from claudomator import __version__

        print(f"claudomator {__version__}")
        return
    from claudomator.cli import root

    root.main(modules_for(argv))


def __getattr__(name: str) -> Any:
    """``app``: the whole Typer app, every command registered (for tests and embedding)."""
    if name == "app":
        from claudomator.cli import root

        root.register(sorted(set(COMMAND_MODULES.values())))
        app: typer.Typer = root.app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
