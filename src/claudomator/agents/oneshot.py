"""One question to an agent CLI, one JSON object back: what the chooser and elaborate ask.

Each agent module says how (:class:`OneShot`: its argv and where the reply text is in the
CLI's output); :func:`ask_json` runs it off the event loop with one time limit, in the given
directory or an empty temporary one, and returns the JSON object of the reply. Every way it can
fail is a :class:`OneShotFailed` whose message says why, for the caller to record or log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from claudomator import process
from claudomator.errors import AgentError

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


def _run(
    argv: list[str], cwd: str, env: Mapping[str, str] | None, timeout: float
) -> process.CommandResult:
    if cwd:
        return process.run(argv, cwd=cwd, env=env, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="claudomator-oneshot-") as scratch:
        return process.run(argv, cwd=scratch, env=env, timeout=timeout)


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
) -> dict[str, Any]:
    """The JSON object the CLI ``binary`` answers ``prompt`` with (see the module docstring).

    ``setting`` names the config key that sets ``binary``, for the message when it is missing.
    """
    from claudomator.llm import LLMError, parse_json_reply  # the model SDK: only when asked

    found = shutil.which(binary) if binary else None
    if found is None:
        raise OneShotFailed(
            f"{binary!r} not found (set {setting or 'its binary path'})", kind="missing"
        )
    argv = how.argv(found, prompt, model or how.default_model)
    result = await asyncio.to_thread(_run, argv, cwd, env, time_limit)
    if result.returncode == -9:
        raise OneShotFailed(f"killed after {time_limit:.1f}s", kind="timed_out")
    text = how.reply(result)
    try:
        return parse_json_reply(text)
    except LLMError as exc:
        raise OneShotFailed(str(exc), kind="invalid_reply") from exc
