"""The one exception root of Claudomator and its meaningful subclasses.

::

    ClaudomatorError
     ├── ConfigError            the configuration file or environment is unusable
 ├── ConfinementError       a launcher cannot confine an agent as its Access asks
     ├── TaskFileError          a YAML task file is invalid (carries every problem found)
     ├── ValidationError        a task or request is invalid outside a task file
     ├── InvalidTransition      a task state change the state machine does not allow
     ├── NotFound               a task or execution id that does not exist
     ├── ProjectExists          a project name that is already taken
     ├── IntegrityViolation     a duplicate id or a record of a missing task (memory store)
     ├── StoreError             the database cannot be opened or migrated
     ├── SandboxError           git refused to create, commit or deliver a sandbox
     │    ├── BuildFailed       the project's build check failed; nothing was committed
     │    ├── SandboxTampered   a sandbox's .git would make git act outside the sandbox
     │    └── DeliveryConflict  the work conflicts with the target; kept as a branch instead
     └── AgentError             an agent could not be started (binary missing, bad config)

Errors carry their data as attributes so callers never parse messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ClaudomatorError(Exception):
    """Root of every error Claudomator raises on purpose."""


class ConfigError(ClaudomatorError):
    """The configuration file or environment is unusable."""


class ConfinementError(ClaudomatorError):
    """A launcher cannot confine an agent as its :class:`~claudomator.isolation.base.Access`
    asks (``plain`` and ``network = "model-only"``); the agent is not started."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a task file: where it is and what is wrong."""

    file: str
    task: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.task}:{self.field}: {self.message}"


class TaskFileError(ClaudomatorError):
    """A task file is invalid. ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ValidationError(ClaudomatorError):
    """A task or request is invalid (outside a task file)."""


class InvalidTransition(ClaudomatorError):
    """A task state change that the state machine does not allow."""

    def __init__(self, task_id: str, source: str, target: str, message: str = "") -> None:
        self.task_id = task_id
        self.source = source
        self.target = target
        super().__init__(message or f"task {task_id}: cannot go from {source} to {target}")


class NotFound(ClaudomatorError):
    """A task or execution id that does not exist."""

    def __init__(self, kind: str, ident: str, message: str = "") -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(message or f"no {kind} with id {ident!r}")


class ProjectExists(ClaudomatorError):
    """A project name that is already taken (in the config file or the database)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a project named {name!r} already exists")


class IntegrityViolation(ClaudomatorError):
    """A write broke a uniqueness or reference rule (a duplicate id, a record of a task that
    does not exist): a bug in the caller, never worth retrying. Raised by the in-memory store;
    the SQL store raises its driver's integrity error for the same writes."""


class StoreError(ClaudomatorError):
    """The database cannot be opened, migrated or written."""


class SandboxError(ClaudomatorError):
    """Git refused to create, commit or deliver a sandbox."""

    def __init__(self, message: str, sandbox_dir: str | None = None) -> None:
        self.sandbox_dir = sandbox_dir
        if sandbox_dir:
            message = f"{message} (sandbox preserved at {sandbox_dir})"
        super().__init__(message)


class BuildFailed(SandboxError):
    """The build check failed after the agent ran, so nothing was committed."""

    def __init__(self, command: Sequence[str], output_tail: str, sandbox_dir: str) -> None:
        self.command = tuple(command)
        self.output_tail = output_tail
        super().__init__(
            f"build check `{' '.join(command)}` failed; refusing to autocommit:\n{output_tail}",
            sandbox_dir,
        )


class AgentError(ClaudomatorError):
    """An agent could not be started: missing binary, unusable configuration."""


class SandboxTampered(SandboxError):
    """A sandbox's git layout was changed so that git would act outside it; it is not used."""

    def __init__(self, tree: str, reason: str) -> None:
        self.tree = tree
        self.reason = reason
        super().__init__(f"sandbox {tree} was tampered with ({reason}); not touching it with git")


class DeliveryConflict(SandboxError):
    """The work conflicts with the target's new commits; it was kept as a branch instead."""

    def __init__(self, target: str, branch: str, files: Sequence[str], sandbox_dir: str) -> None:
        self.target = target
        self.branch = branch
        self.files = tuple(files)
        listed = ", ".join(self.files) or "(git named none)"
        super().__init__(
            f"the work conflicts with new commits on {target} in {listed}; "
            f"it was kept as branch {branch} in the project",
            sandbox_dir,
        )
