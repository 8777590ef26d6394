"""One question to an agent CLI, one JSON object back: what the chooser and elaborate ask.

Each agent module says how (:class:`OneShot`: its argv, where the reply text is in the CLI's
output, the CLI's own paths); :func:`ask_json` runs it off the event loop with one time limit,
in the given directory or an empty temporary one, and returns the JSON object of the reply.
Every way it can fail is a :class:`OneShotFailed` whose message says why, for the caller to
record or log.

Like a run's agent, the call is started through the process's one
:class:`~claudomator.isolation.base.Launcher` (built once by the caller's owner, see
:meth:`~claudomator.agents.registry.AgentRegistry.launcher`), with an
:class:`~claudomator.isolation.base.Access` that says the project directory is read-only
(``workdir_writable=False``) and that the call may write only its own temporary directory and
the CLI's own paths; the launcher enforces what it can (``plain``: nothing; docs/agents.md §12
and §15).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from claudomator import process
from claudomator.errors import AgentError, ConfinementError
from claudomator.isolation.base import Access, Confinement, Launcher

logger = logging.getLogger(__name__)


FailureKind = Literal["missing", "failed", "timed_out", "invalid_reply"]


class OneShotFailed(AgentError):
    """A one-shot call gave no JSON answer; the message says why. ``kind``: the binary is
    ``missing``, the CLI ``failed`` (an error exit or an error reply), it ``timed_out`` (and
    was killed), or it answered but with no JSON object (``invalid_reply``)."""

    def __init__(self, message: str, *, kind: FailureKind = "failed") -> None:
        super().__init__(message)
        self.kind: FailureKind = kind


@dataclass(frozen=True)
class OneShot:
    """How one agent CLI answers one prompt with JSON."""

    argv: Callable[[str, str, str], list[str]]  # (binary, prompt, model) -> argv
    reply: Callable[[process.CommandResult], str]  # the reply text, or raise OneShotFailed
    default_model: str
    # the CLI's own config, credentials and sessions in an environment (read-write for it)
    agent_paths: Callable[[Mapping[str, str]], tuple[Path, ...]] = lambda env: ()
    # its settings and credentials for a private home, and its own variables (as the runner's
    # ``home_copies`` and ``env_patterns``), for a confining launcher
    home_files: Callable[[Mapping[str, str]], tuple[tuple[Path, str], ...]] = lambda env: ()
    env_patterns: tuple[str, ...] = ()
    # the model endpoints the CLI talks to in an environment (as the runner's ``endpoints``):
    # all a ``network = "model-only"`` call may reach besides the confinement's own
    endpoints: Callable[[Mapping[str, str]], tuple[str, ...]] = lambda env: ()


def last_json(text: str) -> object:
    """``text`` as JSON, else the JSON object that ends it on lines of its own, else None."""
    body = text.strip()
    for start in (0, body.rfind("\n{") + 1):
        if body[start : start + 1] == "{":
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(body[start:])
    return None


def error_message(value: object) -> str:
    """The innermost ``error.message`` of a JSON error (which may itself hold JSON text)."""
    for _ in range(3):
        if isinstance(value, str):
            text = value
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return text
        if isinstance(value, Mapping) and isinstance(value.get("error"), Mapping):
            value = value["error"].get("message", "")
        elif isinstance(value, Mapping):
            return json.dumps(value)[:300]
    return str(value)


def one_shot_access(
    cwd: Path,
    scratch: Path,
    agent_paths: tuple[Path, ...],
    home_files: tuple[tuple[Path, str], ...] = (),
    env_patterns: tuple[str, ...] = (),
    network: str = "open",
    endpoints: tuple[str, ...] = (),
) -> Access:
    """What a one-shot call may touch: ``cwd`` (the project) to read only, unless it is its own
    temporary directory ``scratch``; ``scratch`` and the CLI's own paths to write (a confining
    launcher gives it a private home in ``scratch``, with ``home_files`` and the variables
    ``env_patterns`` allow); under ``network = "model-only"`` only ``endpoints``."""
    return Access(
        workdir=cwd,
        log_dir=scratch,
        agent_paths=agent_paths,
        workdir_writable=cwd == scratch,
        home_files=home_files,
        env_patterns=env_patterns,
        network=network,
        endpoints=endpoints,
    )


def _run(
    how: OneShot,
    argv: list[str],
    cwd: str,
    env: Mapping[str, str] | None,
    timeout: float,
    launcher: Launcher,
    confinement: Confinement,
) -> process.CommandResult:
    """``argv`` through ``launcher``, in ``cwd`` (read-only) or an empty temporary directory,
    with ``confinement``'s network."""
    agent_env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="claudomator-oneshot-") as scratch:
        workdir = Path(cwd) if cwd else Path(scratch)
        access = one_shot_access(
            workdir,
            Path(scratch),
            how.agent_paths(agent_env),
            how.home_files(agent_env),
            how.env_patterns,
            confinement.network,
            tuple(dict.fromkeys((*how.endpoints(agent_env), *confinement.endpoints))),
        )
        wrapped, wrapped_env = launcher.wrap(argv, workdir, agent_env, access)
        logger.debug(
            "one-shot %s in %s (launcher %s)",
            Path(argv[0]).name,
            workdir,
            launcher.name,
            extra={"action": "one_shot"},
        )
        return process.run(wrapped, cwd=workdir, env=wrapped_env, timeout=timeout)


async def ask_json(
    how: OneShot,
    binary: str,
    prompt: str,
    *,
    model: str = "",
    cwd: str = "",
    env: Mapping[str, str] | None = None,
    time_limit: float,
    setting: str = "",
    launcher: Launcher,
    confinement: Confinement | None = None,
) -> dict[str, Any]:
    """The JSON object the CLI ``binary`` answers ``prompt`` with (see the module docstring).

    ``setting`` names the config key that sets ``binary``, for the message when it is missing;
    ``launcher`` starts the CLI (the one the runners got); ``confinement`` (the runs' own,
    :func:`claudomator.isolation.policy.confinement_for`) gives its network policy and extra
    endpoints, the CLI's model endpoints added (``how.endpoints``); without it the call has
    the open network.
    """
    from claudomator.llm import LLMError, parse_json_reply  # the model SDK: only when asked

    found = shutil.which(binary) if binary else None
    if found is None:
        raise OneShotFailed(
            f"{binary!r} not found (set {setting or 'its binary path'})", kind="missing"
        )
    argv = how.argv(found, prompt, model or how.default_model)
    policy = confinement or Confinement()
    try:
        result = await asyncio.to_thread(_run, how, argv, cwd, env, time_limit, launcher, policy)
    except ConfinementError as exc:  # the launcher cannot confine it as asked: not started
        raise OneShotFailed(str(exc)) from exc
    if result.returncode == -9:
        raise OneShotFailed(f"killed after {time_limit:.1f}s", kind="timed_out")
    text = how.reply(result)
    try:
        return parse_json_reply(text)
    except LLMError as exc:
        raise OneShotFailed(str(exc), kind="invalid_reply") from exc
