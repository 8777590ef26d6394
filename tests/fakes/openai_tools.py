"""A scripted fake of the OpenAI Chat Completions API with tool calls, for running agent CLIs
that speak it (Qwen Code) offline.

`FakeChatTools` is a real HTTP server on 127.0.0.1 (random free port) in a background thread. It
serves ``POST /v1/chat/completions``: Server-Sent Events (``data: {chunk}`` … ``data: [DONE]``)
when the body has ``stream: true``, one JSON ``chat.completion`` otherwise. Anything else is a
404 with an OpenAI-style JSON error.

Each chat request consumes the next script entry:

- `Reply`: a text answer (``finish_reason: "stop"``);
- `ToolCall`: an optional text, then one function call (``finish_reason: "tool_calls"``); its
  arguments are streamed as a JSON string split into pieces, as real servers do;
- `ApiError`: an HTTP error ``{"error": {"message", "type", "code"}}``, with ``retry-after``;
- `Hang`: accept the request and send nothing for a while (then the next entry answers it).

Once the script is exhausted the last entry repeats if ``repeat_last`` is set; otherwise the
reply is `DONE_TEXT`. A retry by the client is just another request. Every reply reports usage
(``prompt_tokens`` / ``completion_tokens``), in a last chunk when the request asked for it with
``stream_options.include_usage`` and on the finishing chunk otherwise.

``requests`` records each request; :meth:`RecordedRequest.texts` and
:meth:`RecordedRequest.tool_calls` read the conversation the client sent, so a test can check a
resumed session carried the earlier turns.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from fakes.serving import ScriptedFake, TrackedHandler

__all__ = [
    "DONE_TEXT",
    "ApiError",
    "FakeChatTools",
    "Hang",
    "RecordedRequest",
    "Reply",
    "Scripted",
    "ToolCall",
]

DONE_TEXT: Final = "Done.\n\n## Summary\nNothing left to do."
"""The reply once the script is exhausted (without ``repeat_last``)."""

DEFAULT_MODEL: Final = "fake-model"
_PIECES: Final = 3  # how many chunks a tool call's arguments are split into (at most)


@dataclass(frozen=True)
class Reply:
    """A text answer that ends the turn."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """One function call (after ``text``, when given); the client runs it and asks again."""

    name: str
    arguments: dict[str, Any]
    text: str = ""


@dataclass(frozen=True)
class ApiError:
    """An HTTP error; ``retry_after`` (seconds) is sent as the ``retry-after`` header."""

    status: int
    message: str = "Internal server error (fake)"
    retry_after: float | None = None
    error_type: str = "server_error"


@dataclass(frozen=True)
class Hang:
    """Send nothing for ``seconds``, then answer with the next entry; a stop closes it."""

    seconds: float


Scripted = Reply | ToolCall | ApiError | Hang


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received: method, raw path, lower-case headers, parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "")

    @property
    def messages(self) -> list[dict[str, Any]]:
        value = self.body.get("messages")
        return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools the client offered the model."""
        tools = self.body.get("tools")
        if not isinstance(tools, list):
            return []
        return [str((t.get("function") or {}).get("name")) for t in tools if isinstance(t, dict)]

    def texts(self, role: str) -> list[str]:
        """Every text the conversation holds for ``role``, in order (string contents and the
        text parts of list contents)."""
        found: list[str] = []
        for message in self.messages:
            if message.get("role") != role:
                continue
            content = message.get("content")
            if isinstance(content, str):
                found.append(content)
            elif isinstance(content, list):
                found += [
                    str(p.get("text"))
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                ]
        return found

    def tool_calls(self) -> list[dict[str, Any]]:
        """The function calls of the assistant messages the client sent back: ``{id, name,
        arguments}`` with the arguments parsed."""
        calls = []
        for message in self.messages:
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = function.get("arguments")
                calls.append(
                    {"id": call.get("id"), "name": function.get("name"), "arguments": arguments}
                )
        return calls

    def tool_results(self) -> list[dict[str, Any]]:
        """The ``role: "tool"`` messages: ``{tool_call_id, content}``."""
        return [
            {"tool_call_id": m.get("tool_call_id"), "content": m.get("content")}
            for m in self.messages
            if m.get("role") == "tool"
        ]


def _pieces(text: str, count: int = _PIECES) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class _Handler(TrackedHandler):
    server_version = "FakeChatTools/1.0"

    @property
    def owner(self) -> FakeChatTools:
        owner = self.fake
        assert isinstance(owner, FakeChatTools)
        return owner

    def handle_one_request(self) -> None:
        """A client that drops an idle keep-alive connection is no fault of the fake."""
        try:
            super().handle_one_request()
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._record({})
        self._send_error(ApiError(404, f"Not found (fake): {self.path}", error_type="not_found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send_error(ApiError(400, "Body is not a JSON object (fake)", error_type="bad"))
            return
        request = self._record(body)
        if not urlsplit(self.path).path.endswith("/chat/completions"):
            self._send_error(ApiError(404, f"Not found (fake): {self.path}", error_type="nf"))
            return
        try:
            self._answer(request)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _record(self, body: dict[str, Any]) -> RecordedRequest:
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        self.owner._record(request)
        return request

    def _answer(self, request: RecordedRequest) -> None:
        owner = self.owner
        reply = owner._next_reply()
        while isinstance(reply, Hang):
            if owner._stopping.wait(reply.seconds):
                self.close_connection = True
                return
            reply = owner._next_reply()
        if isinstance(reply, ApiError):
            self._send_error(reply)
            return
        model = request.model or DEFAULT_MODEL
        if request.body.get("stream"):
            options = request.body.get("stream_options")
            separate = isinstance(options, dict) and bool(options.get("include_usage"))
            self._send_stream(reply, model, separate_usage=separate)
        else:
            self._send_completion(reply, model)

    def _usage(self) -> dict[str, Any]:
        prompt, completion = self.owner.prompt_tokens, self.owner.completion_tokens
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if self.owner.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.owner.cached_tokens}
        return usage

    @staticmethod
    def _call_id() -> str:
        return f"call_{uuid.uuid4().hex[:24]}"

    def _send_completion(self, reply: Reply | ToolCall, model: str) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        finish = "stop"
        if isinstance(reply, ToolCall):
            finish = "tool_calls"
            message["tool_calls"] = [
                {
                    "id": self._call_id(),
                    "type": "function",
                    "function": {"name": reply.name, "arguments": json.dumps(reply.arguments)},
                }
            ]
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self._usage(),
        }
        self._send_json(200, payload)

    def _send_stream(self, reply: Reply | ToolCall, model: str, *, separate_usage: bool) -> None:
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._send_event(chunk({"role": "assistant", "content": ""}, None))
        for piece in _pieces(reply.text) if reply.text else []:
            self._send_event(chunk({"content": piece}, None))
        finish = "stop"
        if isinstance(reply, ToolCall):
            finish = "tool_calls"
            head = {
                "index": 0,
                "id": self._call_id(),
                "type": "function",
                "function": {"name": reply.name, "arguments": ""},
            }
            self._send_event(chunk({"tool_calls": [head]}, None))
            for piece in _pieces(json.dumps(reply.arguments)):
                more = {"index": 0, "function": {"arguments": piece}}
                self._send_event(chunk({"tool_calls": [more]}, None))
        last = chunk({}, finish)
        if not separate_usage:
            last["usage"] = self._usage()
        self._send_event(last)
        if separate_usage:
            self._send_event(chunk({}, None) | {"choices": [], "usage": self._usage()})
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _send_event(self, payload: Mapping[str, Any]) -> None:
        self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send_error(self, error: ApiError) -> None:
        payload = {"error": {"message": error.message, "type": error.error_type, "code": None}}
        headers: dict[str, str] = {}
        if error.retry_after is not None:
            seconds = float(error.retry_after)
            headers["retry-after"] = str(int(seconds)) if seconds.is_integer() else str(seconds)
        self._send_json(error.status, payload, headers)

    def _send_json(
        self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeChatTools(ScriptedFake[Scripted]):
    """The scripted fake (see the module docstring); ``requests`` lists every request in
    arrival order, ``errors`` the tracebacks of crashes inside the fake itself."""

    handler_class = _Handler

    def __init__(
        self,
        script: Sequence[Scripted] = (),
        *,
        repeat_last: bool = False,
        prompt_tokens: int = 100,
        completion_tokens: int = 20,
        cached_tokens: int = 0,
    ) -> None:
        super().__init__(script, repeat_last=repeat_last)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens  # of the prompt tokens (prompt_tokens_details)
        self.requests: list[RecordedRequest] = []

    @property
    def url(self) -> str:
        """The base URL clients are given, ``http://127.0.0.1:PORT/v1``; only once started."""
        host, port = self.address
        return f"http://{host}:{port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def default_reply(self) -> Scripted:
        return Reply(DONE_TEXT)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
