"""The OpenAI Responses API part of :class:`fakes.openai_server.FakeOpenAI` (``POST
/v1/responses``, the only API the Codex CLI 0.169 speaks; docs/agents.md §3b).

A streamed reply is Server-Sent Events framed ``event: NAME\\ndata: JSON\\n\\n``:
``response.created``, then for each output item ``response.output_item.added``, its
``response.output_text.delta`` events (text) and ``response.output_item.done``, then
``response.completed`` with the usage. A `ToolCall` entry adds a ``function_call`` item (after
an optional text message); :func:`exec_command` is Codex's shell tool. A `StreamFailure` entry
sends ``response.created`` and then ``response.failed`` with its error.

This module builds events only; the handler in :mod:`fakes.openai_server` writes them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "RESPONSES_PATH",
    "ResponsesRequest",
    "StreamFailure",
    "ToolCall",
    "exec_command",
    "failed_events",
    "reply_events",
]

RESPONSES_PATH: Final = "/v1/responses"

Event = tuple[str, dict[str, Any]]
"""One SSE event: its name and its JSON data (which repeats the name as ``type``)."""


@dataclass(frozen=True)
class ToolCall:
    """A reply asking for one function call (``arguments`` sent as a JSON string); a non-empty
    ``text`` goes out first, as an assistant message of the same response."""

    name: str
    arguments: dict[str, Any]
    text: str = ""
    call_id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:16]}")


@dataclass(frozen=True)
class StreamFailure:
    """HTTP 200 and ``response.created``, then ``response.failed`` with this error."""

    message: str = "The model failed mid-stream (fake)"
    code: str = "server_error"


def exec_command(cmd: str, *, text: str = "", yield_time_ms: int = 10000) -> ToolCall:
    """Codex's shell tool: ``exec_command {cmd, workdir?, yield_time_ms}`` (run with
    ``/bin/bash -lc`` in the session's cwd)."""
    return ToolCall("exec_command", {"cmd": cmd, "yield_time_ms": yield_time_ms}, text=text)


@dataclass(frozen=True)
class ResponsesRequest:
    """A view of one ``POST /v1/responses`` body: the ``input`` items Codex resent."""

    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "")

    @property
    def items(self) -> list[dict[str, Any]]:
        value = self.body.get("input")
        return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []

    def texts(self, role: str | None = None) -> list[str]:
        """The text of every message item (of ``role``), in order."""
        found: list[str] = []
        for item in self.items:
            if item.get("type", "message") != "message":
                continue
            if role is not None and item.get("role") != role:
                continue
            content = item.get("content")
            if isinstance(content, str):
                found.append(content)
                continue
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    found.append(part["text"])
        return found

    def function_calls(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i.get("type") == "function_call"]

    def function_outputs(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i.get("type") == "function_call_output"]

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools the request offers the model."""
        tools = self.body.get("tools")
        names = (
            [t.get("name") for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []
        )
        return [str(n) for n in names if n]


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _response(ident: str, model: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "response",
        "created_at": 0,
        "status": status,
        "model": model,
        "output": output,
    }


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _message_events(
    text: str, index: int, pieces: Sequence[str]
) -> tuple[list[Event], dict[str, Any]]:
    ident = _new_id("msg")
    started = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    events: list[Event] = [
        ("response.output_item.added", {"output_index": index, "item": started}),
        (
            "response.content_part.added",
            {
                "item_id": ident,
                "output_index": index,
                "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            },
        ),
    ]
    for piece in pieces:
        events.append(
            (
                "response.output_text.delta",
                {"item_id": ident, "output_index": index, "content_index": 0, "delta": piece},
            )
        )
    done = started | {
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    events.append(("response.output_item.done", {"output_index": index, "item": done}))
    return events, done


def _call_events(call: ToolCall, index: int) -> tuple[list[Event], dict[str, Any]]:
    arguments = json.dumps(call.arguments)
    item = {
        "id": _new_id("fc"),
        "type": "function_call",
        "status": "in_progress",
        "name": call.name,
        "call_id": call.call_id,
        "arguments": "",
    }
    done = item | {"status": "completed", "arguments": arguments}
    events: list[Event] = [
        ("response.output_item.added", {"output_index": index, "item": item}),
        (
            "response.function_call_arguments.delta",
            {"item_id": item["id"], "output_index": index, "delta": arguments},
        ),
        ("response.output_item.done", {"output_index": index, "item": done}),
    ]
    return events, done


def reply_events(
    reply: str | ToolCall,
    model: str,
    tokens: tuple[int, int] | None,
    split: Any,
) -> list[Event]:
    """The events of one streamed response: text (split into deltas by ``split``) or a tool
    call; ``tokens`` (input, output) go into ``response.completed`` (None: no usage)."""
    ident = _new_id("resp")
    events: list[Event] = [
        ("response.created", {"response": _response(ident, model, "in_progress", [])})
    ]
    output: list[dict[str, Any]] = []
    text = reply if isinstance(reply, str) else reply.text
    if text:
        more, item = _message_events(text, len(output), split(text))
        events += more
        output.append(item)
    if isinstance(reply, ToolCall):
        more, item = _call_events(reply, len(output))
        events += more
        output.append(item)
    completed = _response(ident, model, "completed", output)
    if tokens is not None:
        completed["usage"] = usage(*tokens)
    events.append(("response.completed", {"response": completed}))
    return [(name, {"type": name, **data}) for name, data in events]


def failed_events(failure: StreamFailure, model: str) -> list[Event]:
    """``response.created``, then ``response.failed`` carrying ``failure``'s error."""
    ident = _new_id("resp")
    failed = _response(ident, model, "failed", []) | {
        "error": {"code": failure.code, "message": failure.message}
    }
    events: list[Event] = [
        ("response.created", {"response": _response(ident, model, "in_progress", [])}),
        ("response.failed", {"response": failed}),
    ]
    return [(name, {"type": name, **data}) for name, data in events]
