"""What every agent-CLI runner shares: finding the binary, spawning it in its own process group
through the launcher it was given, start errors, and how a timeout or a stop maps to the
execution's state.

A runner for a new CLI subclasses :class:`CliRunner`, declares ``name``, ``label``,
``install_hint``, ``capabilities`` and the paths of its own it needs (``home_paths``), builds
its argv and maps its stream to an :class:`~claudomator.agents.base.Outcome` (see
docs/design.md, "Adding an agent").
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

from claudomator.agents.base import Capabilities, RunContext
from claudomator.config import binary_setting
from claudomator.errors import AgentError
from claudomator.isolation.base import Access, Launcher
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, TaskState
from claudomator.process import AgentProcess, Exit

logger = logging.getLogger(__name__)


def env_truthy(value: str | None) -> bool:
    """Whether an environment variable is set to something other than empty, 0, false, no."""
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def read_json(path: Path) -> object:
    """A JSON file's value, None when it cannot be read (a CLI's own config files)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def home_of(env: Mapping[str, str]) -> Path:
    """The home directory the agent process gets."""
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def context_dirs(agent: AgentConfig, workdir: Path) -> list[str]:
    """Directories outside the sandbox that hold the task's context files (for ``--add-dir``)."""
    dirs: list[str] = []
    for name in agent.context_files:
        path = Path(name).expanduser()
        if not path.is_absolute():
            continue  # relative context files live in the project, hence in the sandbox
        parent = (path if path.is_dir() else path.parent).resolve()
        if not parent.is_relative_to(workdir.resolve()) and str(parent) not in dirs:
            dirs.append(str(parent))
    return dirs


def instructions_with_context(agent: AgentConfig) -> str:
    """The instructions, with the context files named so the agent reads them first.

    (The first prompt with the protocol preamble is :func:`claudomator.protocol.prompt_for`;
    this is what a CLI gets as its prompt argument.)
    """
    prompt = agent.instructions
    if agent.context_files:
        files = "\n".join(f"- {f}" for f in agent.context_files)
        prompt = f"{prompt}\n\nRead these context files before you start:\n{files}"
    return prompt


def ended_early(ended: Exit, ctx: RunContext) -> tuple[TaskState, str] | None:
    """The state and message of a run that timed out or was stopped, else None."""
    if ended.timed_out:
        return (
            TaskState.TIMED_OUT,
            f"timed out after {ctx.timeout:g}s; killed the agent's process tree",
        )
    if ended.stopped:
        return TaskState.CANCELLED, "stopped before it finished"
    return None


class CliRunner:
    """Base of the runners that drive an agent CLI process."""

    name: str
    label: ClassVar[str]  # for people: "Claude Code CLI"
    install_hint: ClassVar[str]  # how to install it: "npm install -g ..."
    capabilities: ClassVar[Capabilities]
    # what the CLI keeps under $HOME and must read and write (config, credentials, sessions);
    # with the sandbox and the log directory, all a launcher lets it touch
    home_paths: ClassVar[tuple[str, ...]] = ()
    # of those, the files a private home needs before the first run (settings, credentials)
    home_files: ClassVar[tuple[str, ...]] = ()
    # the CLI's own environment variables (shell patterns), all a confining launcher passes
    # besides the common ones (locale, proxies, PATH, CLAUDOMATOR_*)
    env_patterns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, binary: str, launcher: Launcher) -> None:
        self.binary = binary
        self.launcher = launcher

    def agent_paths(self, env: Mapping[str, str]) -> tuple[Path, ...]:
        """The CLI's own paths in the environment it runs with (``home_paths`` under $HOME)."""
        home = home_of(env)
        return tuple(home / p for p in self.home_paths)

    def home_copies(self, env: Mapping[str, str]) -> tuple[tuple[Path, str], ...]:
        """The files to copy into a private home: (in the real home, relative to the private
        one), from ``home_files``."""
        home = home_of(env)
        return tuple((home / f, f) for f in self.home_files)

    def confined(self, ctx: RunContext) -> bool:
        """Whether this run starts under a confining launcher (its private home then at the
        launcher's path): the run's own (a project's or task's, ``ctx.confinement``), else the
        orchestrator's."""
        return (ctx.confinement.launcher or self.launcher.name) != PlainLauncher.name

    def endpoints(self, env: Mapping[str, str]) -> tuple[str, ...]:
        """The URLs (``scheme://host[:port]``) the CLI talks to its model through, in the
        environment it runs with: all a ``network = "model-only"`` agent may reach besides the
        Claudomator API. None by default: a runner that declares none has no network."""
        return ()

    def access(self, ctx: RunContext) -> Access:
        """What the agent of ``ctx`` may touch: the sandbox, the log directory, its own paths,
        (to read) the directories of its context files outside the sandbox and the
        confinement's extra paths, and under ``model-only`` its model's endpoints."""
        outside = context_dirs(ctx.task.agent, ctx.workdir)
        policy = ctx.confinement
        return Access(
            workdir=ctx.workdir,
            log_dir=ctx.log_dir,
            agent_paths=self.agent_paths(ctx.env),
            read_only=(*(Path(d) for d in outside), *policy.read_only),
            home_key=ctx.task.id,
            home_files=self.home_copies(ctx.env),
            env_patterns=(*self.env_patterns, *policy.env_patterns),
            launcher=policy.launcher,
            network=policy.network,
            endpoints=tuple(dict.fromkeys((*self.endpoints(ctx.env), *policy.endpoints))),
        )

    def resolve_binary(self) -> str:
        """The binary's full path; :class:`AgentError` saying how to get it when missing."""
        found = shutil.which(self.binary)
        if found is None:
            raise AgentError(
                f"{self.label} not found: {self.binary!r} (install it with "
                f"`{self.install_hint}` or set {binary_setting(self.name)})"
            )
        return found

    async def spawn(
        self, ctx: RunContext, argv: list[str], on_line: Callable[[str], None], *, mark: str
    ) -> AgentProcess:
        """Start ``argv`` in the sandbox in its own process group, through the launcher, logging
        to ``ctx``'s files; ``ctx.on_started`` gets its pid. A start failure is an
        :class:`AgentError`."""
        proc = AgentProcess(
            argv,
            cwd=ctx.workdir,
            env=ctx.env,
            mark=mark,
            stdout_path=ctx.stdout_path,
            stderr_path=ctx.stderr_path,
            on_line=on_line,
            launcher=self.launcher,
            access=self.access(ctx),
            kill_grace=ctx.kill_grace,
        )
        try:
            await proc.start()
        except OSError as exc:
            raise AgentError(f"cannot start {argv[0]}: {exc}") from exc
        if ctx.on_started is not None and proc.pid is not None:
            ctx.on_started(proc.pid)
        return proc

    @staticmethod
    async def wait(proc: AgentProcess, ctx: RunContext, halt: asyncio.Event | None = None) -> Exit:
        """Wait for the process to end: its timeout, ``ctx.stop`` or ``halt`` end it early."""
        if halt is None:
            return await proc.wait(ctx.timeout, ctx.stop)
        relay = asyncio.create_task(_relay(ctx.stop, halt))
        try:
            return await proc.wait(ctx.timeout, halt)
        finally:
            relay.cancel()


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    """Set ``target`` when ``source`` is set (a stop also halts a guarded run)."""
    await source.wait()
    target.set()
