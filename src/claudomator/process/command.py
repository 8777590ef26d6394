"""Short commands (git, a build check): :func:`run` runs one to completion in its own process
group and captures its output as a :class:`CommandResult`."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claudomator.process.group import killpg

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    """What a finished short command did."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of stdout and stderr together, for error messages."""
        text = "\n".join(part.strip() for part in (self.stdout, self.stderr) if part.strip())
        return "\n".join(text.splitlines()[-lines:])


def _with_pwd(env: Mapping[str, str] | None, cwd: Path | str | None) -> dict[str, str] | None:
    """``env`` with ``PWD`` naming ``cwd`` (a shell, or a CLI, trusts it over getcwd)."""
    if env is None:
        return None if cwd is None else {**os.environ, "PWD": str(Path(cwd).absolute())}
    return {**env, "PWD": str(Path(cwd).absolute())} if cwd is not None else dict(env)


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input_text: str | None = None,
) -> CommandResult:
    """Run ``argv`` to completion in its own process group; never raises on a non-zero exit.

    On timeout the whole process group is killed and the result has return code -9.
    A missing executable gives return code 127 with the error in ``stderr``.
    """
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=_with_pwd(env, cwd),
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        return CommandResult(tuple(argv), 127, "", f"cannot run {argv[0]}: {exc}")
    try:
        out, err = proc.communicate(input_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(killed after {timeout:g}s)"
        return CommandResult(tuple(argv), -9, out, err)
    return CommandResult(tuple(argv), proc.returncode, out, err)
