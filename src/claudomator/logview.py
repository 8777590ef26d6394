"""Human-readable lines from an agent's raw stream-json log (for ``logs`` and live progress)."""

from __future__ import annotations

import json
from pathlib import Path
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
        cost = event.get("total_cost_usd")
        status = "error" if event.get("is_error") else "done"
        text = event.get("result") or "; ".join(map(str, event.get("errors") or []))
        cost_text = f" ${cost:.4f}" if isinstance(cost, int | float) else ""
        return f"[{status}{cost_text}] {_short(str(text or ''))}".rstrip()
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


def last_activity(stdout_path: Path, max_bytes: int = 16384) -> str:
    """The most recent describable event of a log (for a live progress column)."""
    try:
        with stdout_path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    for line in reversed(tail.splitlines()):
        text = describe(line) if line.startswith("{") else None
        if text:
            return _short(text.strip(), 70)
    return ""
