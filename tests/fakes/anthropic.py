"""A scripted fake of the Anthropic Messages API, for running the real Claude Code CLI offline.

`FakeAnthropic` is a real HTTP server on 127.0.0.1 (random free port) that runs in a
background thread. It serves what Claude Code needs (see docs/agents.md §13):

- ``HEAD /`` answers 200 (the CLI's pre-warm).
- ``POST /v1/messages`` (the CLI adds ``?beta=true``) answers with Server-Sent Events when the
  body has ``stream: true`` and with one JSON message otherwise.
- Anything else answers 404 with an Anthropic-style JSON error.

Agent-loop requests (those whose body carries ``tools``) each consume the next entry of the
script: `Text`, `ToolUse`, `ApiError` or `Hang`. Once the script is exhausted the last entry
repeats if ``repeat_last`` is set; otherwise the reply is `DONE_TEXT`. A retry by the CLI is
just another request, so it consumes the next entry. Side calls without ``tools`` (such as the
session-title call) get a short text reply and leave the script alone.

Example::

    with FakeAnthropic([ToolUse("Bash", {"command": "ls"}), Text("## Summary\\nok")]) as fake:
        subprocess.run([claude, "-p", "--", "list files"], env=claude_env(fake.url, home))
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from fakes.serving import ScriptedFake, TrackedHandler

__all__ = [
    "DONE_TEXT",
    "SIDE_CALL_TEXT",
    "ApiError",
    "FakeAnthropic",
    "Hang",
    "RecordedRequest",
    "Reply",
    "Text",
    "ToolUse",
    "claude_env",
]

DONE_TEXT: Final = "Done.\n\n## Summary\nNothing left to do."
"""The reply to agent-loop requests once the script is exhausted (without ``repeat_last``)."""

SIDE_CALL_TEXT: Final = "Fake reply."
"""The reply to requests that are not agent-loop calls (no ``tools`` in the body)."""

DEFAULT_MODEL: Final = "claude-fake"
"""The model name echoed back when a request does not name one."""

_JSON_PIECES: Final = 3
"""How many ``content_block_delta`` events a tool input or a text is split into (at most)."""


@dataclass(frozen=True)
class Text:
    """A reply made of one text block; ends the turn (``stop_reason: "end_turn"``)."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    """A reply asking for one tool call (``stop_reason: "tool_use"``).

    A non-empty ``text`` is sent as a text block before the ``tool_use`` block.
    """

    name: str
    input: dict[str, Any]
    text: str = ""


@dataclass(frozen=True)
class ApiError:
    """An HTTP error reply: ``status`` with ``{"type": "error", "error": {...}}``.

    ``retry_after`` (seconds) is sent as the ``retry-after`` header when given.
    """

    status: int
    error_type: str = "api_error"
    message: str = "Internal server error (fake)"
    retry_after: float | None = None


@dataclass(frozen=True)
class Hang:
    """Accept the request, then send nothing for ``seconds``.

    After the wait the same request is answered with the *next* script entry (consumed then;
    `DONE_TEXT` when the script is exhausted), so ``[Hang(2), Text("late")]`` is a slow reply.
    When the server stops during the wait, the connection is closed without a reply.
    """

    seconds: float


Reply = Text | ToolUse | ApiError | Hang
"""One scripted answer of the fake server."""


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake server received: raw path (with query), headers, parsed JSON body."""

    path: str
    headers: dict[str, str]
    """Header names are lower-case."""
    body: dict[str, Any]

    @property
    def session_id(self) -> str | None:
        """The ``x-claude-code-session-id`` header, if sent."""
        return self.headers.get("x-claude-code-session-id")

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streaming (SSE) reply."""
        return bool(self.body.get("stream"))


def claude_env(base_url: str, home: Path) -> dict[str, str]:
    """Return the full environment for running the real Claude Code CLI offline.

    It is a copy of ``os.environ`` without inherited ``ANTHROPIC_*`` / ``CLAUDE*`` variables
    (a parent Claude Code session or a ``CLAUDE_CONFIG_DIR`` would leak in), plus the model
    server at ``base_url``, a fake key, the switches that keep the CLI off the network and
    allow ``bypassPermissions`` as root, at most 2 retries, and ``HOME=home`` with
    ``TMPDIR=home/tmp`` (created here).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "CLAUDE"))
    }
    tmpdir = home / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    no_proxy = ",".join(p for p in (env.get("NO_PROXY", ""), "127.0.0.1,localhost") if p)
    env.update(
        {
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": "fake-key",
            "IS_SANDBOX": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_NON_ESSENTIAL_MODEL_CALLS": "1",
            "CLAUDE_CODE_MAX_RETRIES": "2",
            "HOME": str(home),
            "TMPDIR": str(tmpdir),
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
    )
    return env


@dataclass
class _Route:
    marker: str
    script: list[Reply]
    repeat_last: bool
    position: int = 0

    def next(self) -> Reply:
        if self.position < len(self.script):
            self.position += 1
            return self.script[self.position - 1]
        if self.repeat_last and self.script:
            return self.script[-1]
        return Text(DONE_TEXT)


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _split(text: str, pieces: int = _JSON_PIECES) -> list[str]:
    """Split ``text`` into at most ``pieces`` non-empty parts (one empty part for "")."""
    if not text:
        return [""]
    size = -(-len(text) // pieces)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _content_blocks(reply: Text | ToolUse) -> list[dict[str, Any]]:
    if isinstance(reply, Text):
        return [{"type": "text", "text": reply.text}]
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    blocks.append(
        {"type": "tool_use", "id": _new_id("toolu_"), "name": reply.name, "input": reply.input}
    )
    return blocks


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode()


class _Handler(TrackedHandler):
    """Serves one connection (HTTP/1.1 keep-alive) for the owning `FakeAnthropic`."""

    server_version = "FakeAnthropic/1.0"

    @property
    def owner(self) -> FakeAnthropic:
        owner = self.fake
        assert isinstance(owner, FakeAnthropic)
        return owner

    # --- routing -------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        status = 200 if urlsplit(self.path).path == "/" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._discard_body()
        self._send_not_found()

    def do_PUT(self) -> None:
        self.do_GET()

    def do_DELETE(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        raw = self._read_body()
        if urlsplit(self.path).path != "/v1/messages":
            self._send_not_found()
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send_error_json(400, "invalid_request_error", "Body is not a JSON object (fake)")
            return
        try:
            self._answer_messages(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- /v1/messages ----------------------------------------------------------------------

    def _answer_messages(self, body: dict[str, Any]) -> None:
        owner = self.owner
        recorded = RecordedRequest(
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        reply: Reply
        if body.get("tools"):
            reply = owner._take_reply(recorded)
        else:
            owner._record_side_call(recorded)
            reply = Text(SIDE_CALL_TEXT)
        while isinstance(reply, Hang):
            if owner._stopping.wait(reply.seconds):
                self.close_connection = True
                return
            reply = owner._next_reply()
        if isinstance(reply, ApiError):
            headers: dict[str, str] = {}
            if reply.retry_after is not None:
                seconds = float(reply.retry_after)
                headers["retry-after"] = str(int(seconds)) if seconds.is_integer() else str(seconds)
            self._send_error_json(reply.status, reply.error_type, reply.message, headers)
            return
        model = str(body.get("model") or DEFAULT_MODEL)
        if body.get("stream"):
            self._send_stream(reply, model)
        else:
            self._send_message(reply, model)

    def _usage_start(self) -> dict[str, int]:
        return {
            "input_tokens": self.owner.input_tokens,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def _send_message(self, reply: Text | ToolUse, model: str) -> None:
        message = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": _content_blocks(reply),
            "stop_reason": "tool_use" if isinstance(reply, ToolUse) else "end_turn",
            "stop_sequence": None,
            "usage": {**self._usage_start(), "output_tokens": self.owner.output_tokens},
        }
        self._send_json(200, message)

    def _send_stream(self, reply: Text | ToolUse, model: str) -> None:
        start: dict[str, Any] = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage_start(),
        }
        frames = [_sse("message_start", {"message": start}), _sse("ping", {})]
        for index, block in enumerate(_content_blocks(reply)):
            deltas: list[dict[str, Any]]
            if block["type"] == "text":
                opening: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": t} for t in _split(block["text"])]
            else:
                opening = {**block, "input": {}}
                deltas = [
                    {"type": "input_json_delta", "partial_json": part}
                    for part in _split(json.dumps(block["input"]))
                ]
            frames.append(_sse("content_block_start", {"index": index, "content_block": opening}))
            frames.extend(_sse("content_block_delta", {"index": index, "delta": d}) for d in deltas)
            frames.append(_sse("content_block_stop", {"index": index}))
        stop_reason = "tool_use" if isinstance(reply, ToolUse) else "end_turn"
        frames.append(
            _sse(
                "message_delta",
                {
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": self.owner.output_tokens},
                },
            )
        )
        frames.append(_sse("message_stop", {}))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(sum(len(f) for f in frames)))
        self.send_header("request-id", _new_id("req_"))
        self.end_headers()
        for frame in frames:
            self.wfile.write(frame)
            self.wfile.flush()

    # --- plumbing -------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _discard_body(self) -> None:
        self._read_body()

    def _send_not_found(self) -> None:
        self._send_error_json(404, "not_found_error", f"Not found (fake): {self.path}")

    def _send_error_json(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        payload = {"type": "error", "error": {"type": error_type, "message": message}}
        self._send_json(status, payload, headers)

    def _send_json(
        self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", _new_id("req_"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeAnthropic(ScriptedFake[Reply]):
    """A scripted fake Anthropic Messages API server on 127.0.0.1 (see the module docstring).

    Use it as a context manager, or call `start` and `stop`. ``requests`` lists every
    agent-loop request in arrival order (``side_requests`` the others); both are safe to read
    from the test thread while the server runs. ``errors`` holds tracebacks of crashes inside
    the fake itself, so a test can assert it stayed empty.
    """

    handler_class = _Handler

    def __init__(
        self,
        script: Sequence[Reply] = (),
        *,
        repeat_last: bool = False,
        input_tokens: int = 100,
        output_tokens: int = 20,
    ) -> None:
        super().__init__(script, repeat_last=repeat_last)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.requests: list[RecordedRequest] = []
        self.side_requests: list[RecordedRequest] = []
        self._routes: list[_Route] = []

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``; only once started."""
        host, port = self.address
        return f"http://{host!s}:{port}"

    def route(self, marker: str, script: Sequence[Reply], *, repeat_last: bool = False) -> None:
        """Answer requests whose conversation mentions ``marker`` from their own script.

        Concurrent agents (one task each) then get their own replies whatever the order of
        their requests; a resumed conversation still mentions its marker.
        """
        with self._lock:
            self._routes.append(_Route(marker, list(script), repeat_last))

    # --- used by the handler threads ------------------------------------------------------

    def default_reply(self) -> Reply:
        return Text(DONE_TEXT)

    def _take_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            conversation = json.dumps(request.body.get("messages", []))
            for route in self._routes:
                if route.marker in conversation:
                    return route.next()
            return self._next_reply_locked()

    def _record_side_call(self, request: RecordedRequest) -> None:
        with self._lock:
            self.side_requests.append(request)
