"""The launcher seam: every agent CLI process is started through a :class:`Launcher`.

A launcher gets the command a runner built, the working directory, the environment and the
:class:`Access` the agent needs, and returns the command and environment to really start (for
instance the same command under a sandboxing tool). :class:`~claudomator.process.AgentProcess`
calls it just before it spawns a run's agent, and :func:`~claudomator.agents.oneshot.ask_json`
before it runs a one-shot call (with the project read-only: ``workdir_writable=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from claudomator.config import Settings  # the config imports this package


@dataclass(frozen=True)
class Access:
    """What one agent process may touch, beyond the system itself.

    The runner declares the agent's own paths (:meth:`claudomator.agents.cli.CliRunner.
    agent_paths`); the sandbox and the log directory come from the execution. A one-shot call
    (:func:`claudomator.agents.oneshot.ask_json`) runs in the project's directory, which it may
    only read (``workdir_writable=False``), and writes at most in its own temporary directory
    (its ``log_dir``).
    """

    workdir: Path  # the process's working directory: a run's sandbox, a one-shot's project
    log_dir: Path  # the execution's log directory, or a one-shot's temporary one (read-write)
    agent_paths: tuple[Path, ...] = ()  # the CLI's own config, credentials, sessions (read-write)
    read_only: tuple[Path, ...] = ()  # context directories outside the sandbox
    workdir_writable: bool = True  # False: ``workdir`` may be read, never written
    # which private home a confining launcher gives the agent ("" : one of its own, not kept);
    # a run's is its task's id, so the CLI's session store survives from one run to the next
    home_key: str = ""
    # the CLI's settings and credentials to copy into a private home before its first run:
    # (the file in the user's real home, where it goes relative to the private home)
    home_files: tuple[tuple[Path, str], ...] = ()
    # the CLI's own environment variables a confining launcher passes (shell patterns)
    env_patterns: tuple[str, ...] = ()
    # the launcher this process needs ("": the one the orchestrator was configured with);
    # a :class:`Confinement` of a project or task may name another (docs/agents.md §15)
    launcher: str = ""
    # "open": the host's network; "model-only": a network namespace of its own whose only way
    # out is a proxy that lets through ``endpoints`` (what a launcher cannot enforce it refuses)
    network: str = "open"
    # the URLs (scheme://host[:port]) the agent may reach under ``network = "model-only"``:
    # its model's endpoints, the Claudomator API, and the operator's extra ones
    endpoints: tuple[str, ...] = ()

    @property
    def writable(self) -> tuple[Path, ...]:
        """Every path the agent may write, the working directory first when it may."""
        paths = (self.workdir, self.log_dir) if self.workdir_writable else (self.log_dir,)
        return tuple(dict.fromkeys((*paths, *self.agent_paths)))

    @property
    def readable(self) -> tuple[Path, ...]:
        """The paths the agent may only read: ``read_only``, and a read-only ``workdir``."""
        own = () if self.workdir_writable else (self.workdir,)
        return tuple(dict.fromkeys((*own, *self.read_only)))


OPEN = "open"
MODEL_ONLY = "model-only"
NETWORKS = (OPEN, MODEL_ONLY)
"""The network policies: the host's network, or only the model endpoints through a proxy."""


@dataclass(frozen=True)
class Confinement:
    """How one execution's agent is confined, as its project and task settle it over the
    operator's ``[isolation]`` table (:mod:`claudomator.isolation.policy`): what a runner adds to
    the :class:`Access` it builds."""

    launcher: str = ""  # a launcher name; "": the orchestrator's own
    network: str = OPEN
    read_only: tuple[Path, ...] = ()  # extra read-only paths (a shared package cache)
    endpoints: tuple[str, ...] = ()  # extra URLs allowed under model-only (the operator's)
    # more environment variables (shell patterns) a confined agent and its build check get:
    # the operator's ``[isolation] pass_env`` (a private registry's token for the build)
    env_patterns: tuple[str, ...] = ()


class Launcher(Protocol):
    """Turns the command of an agent process into the command that really starts it."""

    name: str  # as ``[isolation] launcher`` names it

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and environment to spawn instead of ``argv`` and ``env``."""
        ...


LauncherFactory = Callable[["Settings"], Launcher]
"""What each launcher module exposes as ``make_launcher``: the launcher for these settings."""
