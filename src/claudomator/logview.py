"""Human-readable lines from an agent's raw stream-json log (for ``logs`` and live progress).

Every agent's stream shape is read: Claude Code's (``system``/``assistant``/``user``/``result``,
which Qwen Code and the local runner write too), the Gemini CLI's (``init``/``message``/
``tool_use``/``tool_result``/``error``/``result``), Codex's (``thread.started``, ``item.*``,
``turn.completed``/``turn.failed``, ``error``) and OpenCode's (``step_start``, ``text``,
``tool_use`` with a ``part``, ``step_finish``, ``error``); see ``docs/agents.md``.
:func:`describe` reads one line; :class:`Transcript` reads a whole log and joins the Gemini
CLI's streamed text pieces.
"""

from __future__ import annotations

import json
from typing import Any

_WIDTH = 200


def _short(text: str, width: int = _WIDTH) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _tool_input(data: object) -> str:
    if isinstance(data, dict):
        for key in ("command", "file_path", "path", "pattern", "url", "description"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return json.dumps(data, ensure_ascii=False)


def describe(line: str) -> str | None:
    """One line of text for a stream-json event, or None for events not worth showing."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return _short(line) if line.strip() else None
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind == "system":
        return _system(event)
    if kind == "assistant":
        return _assistant(event)
    if kind == "user":
        return _tool_results(event)
    if kind == "result":
        return _result(event)
    if isinstance(kind, str) and kind.startswith(("thread.", "turn.", "item.")):
        return _codex(event)
    if isinstance(event.get("part"), dict) or kind in ("step_start", "step_finish"):
        return _opencode(event)
    if kind == "error" and isinstance(event.get("error"), dict):
        return _opencode(event)
    return _gemini(event)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _codex(event: dict[str, Any]) -> str | None:
    """A Codex CLI event (``codex exec --json``); None for the turn's start and unknown ones."""
    kind = event.get("type")
    if kind == "thread.started":
        return f"session {event.get('thread_id', '?')}"
    if kind == "turn.completed":
        usage = _dict(event.get("usage"))
        tokens = f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out"
        return f"[done {tokens}]"
    if kind == "turn.failed":
        error = event.get("error")
        text = error.get("message") if isinstance(error, dict) else error
        return f"[error] {_short(str(text or ''))}"
    item = event.get("item")
    if not isinstance(item, dict):
        return None
    return _codex_item(str(kind), item)


def _codex_item(kind: str, item: dict[str, Any]) -> str | None:
    """One ``item.started``/``item.completed``: a message, a command, a file change, an error."""
    what = item.get("type")
    if what == "agent_message" and kind == "item.completed":
        return _short(str(item.get("text") or "")) or None
    if what == "reasoning" and kind == "item.completed":
        return f"(thinking) {_short(str(item.get('text') or ''), 120)}"
    if what == "command_execution":
        if kind == "item.started":
            return f"→ shell: {_short(str(item.get('command') or ''), 120)}"
        failed = item.get("exit_code") not in (0, None) or item.get("status") == "failed"
        output = str(item.get("aggregated_output") or "")
        return f"  {'✗' if failed else '←'} {_short(output, 120)}".rstrip()
    if what == "file_change" and kind == "item.completed":
        changes = item.get("changes")
        changes = changes if isinstance(changes, list) else []
        paths = [
            f"{c.get('kind', 'change')} {c.get('path', '?')}"
            for c in changes
            if isinstance(c, dict)
        ]
        return f"→ files: {_short(', '.join(paths), 120)}"
    if what == "error":
        return f"[warning] {_short(str(item.get('message') or ''))}"
    return None


def _opencode(event: dict[str, Any]) -> str | None:
    """An OpenCode event (``opencode run --format json``); None for a step's start."""
    kind = event.get("type")
    part = _dict(event.get("part"))
    if kind == "text":
        return _short(str(part.get("text") or "")) or None
    if kind == "tool_use":
        state = _dict(part.get("state"))
        call = f"→ {part.get('tool')}: {_short(_tool_input(state.get('input')), 120)}"
        failed = state.get("status") == "error"
        result = state.get("error") if failed else state.get("output")
        return f"{call}\n  {'✗' if failed else '←'} {_short(str(result or ''), 120)}".rstrip()
    if kind == "step_finish":
        tokens = _dict(part.get("tokens"))
        cost = part.get("cost")
        money = f" ${cost:.4f}" if isinstance(cost, int | float) else ""
        used = f" {tokens.get('input', 0)} in / {tokens.get('output', 0)} out"
        return f"[step {part.get('reason', '?')}{money}{used}]"
    if kind == "error":
        error = _dict(event.get("error"))
        data = _dict(error.get("data"))
        text = data.get("message") or error.get("name") or json.dumps(error)
        status = f" (HTTP {data['statusCode']})" if data.get("statusCode") else ""
        return f"[error] {_short(str(text))}{status}"
    return None


def _result(event: dict[str, Any]) -> str:
    """The last line of a run, Claude's (``is_error``, ``result``) or Gemini's (``status``)."""
    cost = event.get("total_cost_usd")
    failed = bool(event.get("is_error")) or event.get("status") == "error"
    status = "error" if failed else "done"
    text = event.get("result") or "; ".join(map(str, event.get("errors") or []))
    error = event.get("error")
    if not text and isinstance(error, dict):
        text = str(error.get("message") or json.dumps(error, ensure_ascii=False))
    bits = [f" ${cost:.4f}"] if isinstance(cost, int | float) else []
    # no cost reported (Gemini): the tokens say how big the run was
    usage = event.get("usage") or event.get("stats")
    if (
        not bits
        and isinstance(usage, dict)
        and (usage.get("input_tokens") or usage.get("output_tokens"))
    ):
        bits.append(f" {usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out")
    return f"[{status}{''.join(bits)}] {_short(str(text or ''))}".rstrip()


def _gemini(event: dict[str, Any]) -> str | None:
    """A Gemini CLI event; None for the prompt echo and unknown events."""
    kind = event.get("type")
    if kind == "init":
        return f"session {event.get('session_id', '?')} model {event.get('model', '?')}"
    if kind == "message" and event.get("role") == "assistant":
        return _short(str(event.get("content") or "")) or None
    if kind == "tool_use":
        return f"→ {event.get('tool_name')}: {_short(_tool_input(event.get('parameters')), 120)}"
    if kind == "tool_result":
        error = event.get("error")
        failed = event.get("status") == "error"
        text = error.get("message") if failed and isinstance(error, dict) else None
        return f"  {'✗' if failed else '←'} {_short(str(text or event.get('output') or ''), 120)}"
    if kind == "error":
        return f"[error] {_short(str(event.get('message') or json.dumps(event)))}"
    return None


class Transcript:
    """A log read line by line into readable lines; streamed text pieces become one line.

    The Gemini CLI streams its answer as ``message`` events with ``delta: true``; they are
    joined until another event arrives (or :meth:`close`), as the web UI shows them.
    """

    def __init__(self) -> None:
        self._text: list[str] = []

    def feed(self, line: str) -> list[str]:
        """The readable lines this log line completes (none while text is still streaming)."""
        delta = _delta_text(line)
        if delta is not None:
            self._text.append(delta)
            return []
        out = self.close()
        text = describe(line)
        return [*out, text] if text else out

    def close(self) -> list[str]:
        """What is still held back (the end of the log)."""
        joined = _short("".join(self._text)) if self._text else ""
        self._text = []
        return [joined] if joined else []


def _delta_text(line: str) -> str | None:
    """The text of a streamed Gemini answer piece, or None for any other line."""
    if '"delta"' not in line:
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if (
        isinstance(event, dict)
        and event.get("type") == "message"
        and event.get("role") == "assistant"
        and event.get("delta") is True
    ):
        return str(event.get("content") or "")
    return None


def _system(event: dict[str, Any]) -> str | None:
    if event.get("subtype") == "init":
        return f"session {event.get('session_id', '?')} model {event.get('model', '?')}"
    if event.get("subtype") == "api_retry":
        delay = event.get("retry_delay_ms")
        return (
            f"retry {event.get('attempt')}/{event.get('max_retries')} after "
            f"{delay} ms ({event.get('error')}, status {event.get('error_status')})"
        )
    return None


def _assistant(event: dict[str, Any]) -> str | None:
    message = event.get("message")
    parts: list[str] = []
    for block in (message or {}).get("content") or [] if isinstance(message, dict) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and block.get("text"):
            parts.append(_short(str(block["text"])))
        elif block.get("type") == "tool_use":
            parts.append(f"→ {block.get('name')}: {_short(_tool_input(block.get('input')), 120)}")
    return " ".join(parts) or None


def _tool_results(event: dict[str, Any]) -> str | None:
    message = event.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return None
    parts: list[str] = []
    for block in message["content"]:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            content = block.get("content")
            if isinstance(content, list):
                content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            mark = "✗" if block.get("is_error") else "←"
            parts.append(f"  {mark} {_short(str(content or ''), 120)}")
    return "\n".join(parts) or None


ACTIVITY_TAIL = 16384  # how much of a log's end :func:`last_activity` needs


def last_activity(tail: bytes) -> str:
    """The most recent describable event in the end of a log (for a live progress column)."""
    for line in reversed(tail.decode("utf-8", errors="replace").splitlines()):
        text = describe(line) if line.startswith("{") else None
        if text:
            return _short(text.strip(), 70)
    return ""
