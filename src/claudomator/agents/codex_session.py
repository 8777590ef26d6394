"""What a Codex session file (``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread>.jsonl``)
tells the runner that ``codex exec --json`` does not (docs/agents.md §3b).

One JSON object a line, ``{timestamp, type, payload}``: ``session_meta``, ``turn_context
{model, cwd, ...}``, ``response_item`` (the conversation: ``message``, ``function_call``,
``function_call_output {call_id, output}``) and ``event_msg`` (``token_count {info:
{total_token_usage}}``, ...). The runner reads three things from it:

* the session's tokens before a resumed run (``turn.completed`` reports the session's total);
* the model, when neither the task nor ``[agents.codex]`` named one (Codex's default);
* commands that failed because Codex's own sandbox could not start (outputs beginning
  ``bwrap: ...``): stdout shows no item for them and the run exits 0.

The file is the agent's (untrusted): unreadable lines are skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

logger = logging.getLogger(__name__)

_OUTPUT: Final = re.compile(r"Process exited with code (\d+).*?\nOutput:\n(?P<out>.*)", re.S)
_SANDBOX_FAILURE: Final = re.compile(r"\A(bwrap: |.*codex-linux-sandbox)", re.S)
_MAX_LINE: Final = 4 * 1024 * 1024  # longer lines (a huge tool output) are not parsed


@dataclass(frozen=True)
class SandboxCheck:
    """Commands of this run that Codex's own sandbox kept from running."""

    failed: int = 0
    first: str = ""  # the first one's error line

    def message(self) -> str:
        return (
            f"Codex's own sandbox could not run {self.failed} of the agent's commands "
            f"({self.first}); the run exited 0 but its commands did nothing"
        )


def find_rollout(codex_home: Path, thread_id: str) -> Path | None:
    """The session file of ``thread_id`` under ``codex_home``, if there is one."""
    if not thread_id or "/" in thread_id or not (codex_home / "sessions").is_dir():
        return None
    found = sorted((codex_home / "sessions").glob(f"*/*/*/rollout-*-{thread_id}.jsonl"))
    return found[-1] if found else None


def size_of(path: Path | None) -> int:
    """The file's size (0 when there is none): a run's own lines start there."""
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0


def _records(path: Path | None, start: int = 0) -> Iterator[dict[str, Any]]:
    if path is None:
        return
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            for raw in handle:
                if len(raw) > _MAX_LINE:
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("payload"), dict):
                    yield record
    except OSError as exc:
        logger.debug("cannot read %s: %s", path, exc, extra={"action": "codex_session"})


def session_usage(path: Path | None) -> tuple[int, int]:
    """The session's (input, output) tokens so far: its last ``token_count`` total."""
    found = (0, 0)
    for record in _records(path):
        payload = record["payload"]
        if payload.get("type") != "token_count" or not isinstance(payload.get("info"), dict):
            continue
        total = payload["info"].get("total_token_usage")
        if isinstance(total, dict):
            found = (_int(total.get("input_tokens")), _int(total.get("output_tokens")))
    return found


def session_model(path: Path | None) -> str:
    """The model of the session's last turn ("" when unknown)."""
    model = ""
    for record in _records(path):
        if record.get("type") == "turn_context":
            model = str(record["payload"].get("model") or model)
    return model


def sandbox_failures(path: Path | None, start: int = 0) -> SandboxCheck:
    """The commands (from byte ``start`` on: this run's) that Codex's sandbox kept from
    running: a non-zero exit whose output begins with bwrap's complaint."""
    failed, first = 0, ""
    for record in _records(path, start):
        payload = record["payload"]
        if payload.get("type") != "function_call_output":
            continue
        match = _OUTPUT.search(str(payload.get("output") or ""))
        if match is None or match.group(1) == "0":
            continue
        output = match["out"].strip()
        if _SANDBOX_FAILURE.match(output):
            failed += 1
            first = first or output.splitlines()[0][:300]
    return SandboxCheck(failed, first)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)
