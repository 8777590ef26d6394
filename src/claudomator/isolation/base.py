"""The launcher seam: every agent CLI process is started through a :class:`Launcher`.

A launcher gets the command a runner built, the working directory, the environment and the
:class:`Access` the agent needs, and returns the command and environment to really start (for
instance the same command under a sandboxing tool). :class:`~claudomator.process.AgentProcess`
calls it just before it spawns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Access:
    """What one agent process may touch, beyond the system itself.

    The runner declares the agent's own paths (:meth:`claudomator.agents.cli.CliRunner.
    agent_paths`); the sandbox and the log directory come from the execution.
    """

    workdir: Path  # the sandbox (read-write; the process's working directory)
    log_dir: Path  # the execution's log directory (read-write: question and summary files)
    agent_paths: tuple[Path, ...] = ()  # the CLI's own config, credentials, sessions (read-write)
    read_only: tuple[Path, ...] = ()  # context directories outside the sandbox

    @property
    def writable(self) -> tuple[Path, ...]:
        """Every path the agent may write, sandbox first."""
        return (self.workdir, self.log_dir, *self.agent_paths)


class Launcher(Protocol):
    """Turns the command of an agent process into the command that really starts it."""

    name: str  # as ``[isolation] launcher`` names it

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and environment to spawn instead of ``argv`` and ``env``."""
        ...


LauncherFactory = Callable[[], Launcher]
"""What each launcher module exposes as ``make_launcher``."""
