"""A scripted fake of an OpenAI-compatible chat server (Ollama, LM Studio, vLLM) for tests.

`FakeOpenAI` is a real HTTP server on 127.0.0.1 (random free port) that runs in a background
thread. It serves:

- ``POST /v1/chat/completions``: Server-Sent Events (``data: {chunk}`` … ``data: [DONE]``,
  with a last usage chunk when ``stream_options.include_usage`` is set) when the body has
  ``stream: true``, one JSON ``chat.completion`` otherwise;
- ``POST /v1/responses``: the Responses API (what the Codex CLI speaks; :mod:`fakes.responses`),
  always streamed: ``response.created``, ``response.output_item.added``/``done``,
  ``response.output_text.delta``, ``response.completed`` with usage; a `ToolCall` entry
  answers with a ``function_call`` item, a `StreamFailure` with ``response.failed``;
- ``GET /v1/models``: the model list;
- anything else: 404 with an OpenAI-style JSON error.

Each chat or responses request consumes the next script entry: `Reply`, `JsonReply`, `ApiError`,
`Hang`, and for the Responses API also `ToolCall` and `StreamFailure`.
Once the script is exhausted the last entry repeats if ``repeat_last`` is set; otherwise the
reply is `DONE_TEXT` ("ok"). A retry by the client is just another request, so it consumes the
next entry. Streamed text is split with `deltas` (one word and its trailing space per chunk).

Example::

    with FakeOpenAI([ApiError(429, "slow down", retry_after=1), Reply("hi there")]) as fake:
        LocalModelSettings(endpoint=fake.url, model="m")  # fake.url ends with /v1
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from fakes.responses import (
    RESPONSES_PATH,
    ResponsesRequest,
    StreamFailure,
    ToolCall,
    failed_events,
    reply_events,
)
from fakes.serving import ScriptedFake, TrackedHandler

__all__ = [
    "DONE_TEXT",
    "ApiError",
    "FakeOpenAI",
    "Hang",
    "JsonReply",
    "RecordedRequest",
    "Reply",
    "Scripted",
    "StreamFailure",
    "ToolCall",
    "deltas",
]

DONE_TEXT: Final = "ok"
"""The reply once the script is exhausted (without ``repeat_last``)."""

DEFAULT_MODEL: Final = "fake-model"


@dataclass(frozen=True)
class Reply:
    """A text reply; streamed as `deltas`, with ``delay`` seconds before each text chunk."""

    text: str
    delay: float = 0.0


@dataclass(frozen=True)
class JsonReply:
    """A reply whose text is ``json.dumps(obj)``."""

    obj: Any


@dataclass(frozen=True)
class ApiError:
    """An HTTP error ``{"error": {"message": ..., "type": ..., "code": ...}}``.

    ``retry_after`` (seconds) is sent as the ``retry-after`` header when given.
    """

    status: int
    message: str = "Internal server error (fake)"
    retry_after: float | None = None
    error_type: str = "server_error"


@dataclass(frozen=True)
class Hang:
    """Accept the request, then send nothing for ``seconds``.

    After the wait the same request is answered with the *next* script entry (consumed then).
    When the server stops during the wait, the connection is closed without a reply.
    """

    seconds: float


Scripted = Reply | JsonReply | ApiError | Hang | ToolCall | StreamFailure
"""One scripted answer of the fake server (`ToolCall` and `StreamFailure`: Responses API only)."""


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received: method, raw path, lower-case headers, parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        value = self.body.get("messages")
        return list(value) if isinstance(value, list) else []

    @property
    def responses(self) -> ResponsesRequest:
        """The body as a Responses API request (its ``input`` items)."""
        return ResponsesRequest(self.body)


def deltas(text: str) -> list[str]:
    """How the fake splits a streamed text: each word with the whitespace after it."""
    return re.findall(r"\s*\S+\s*|\s+", text) or [""]


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


class _Handler(TrackedHandler):
    server_version = "FakeOpenAI/1.0"

    @property
    def owner(self) -> FakeOpenAI:
        owner = self.fake
        assert isinstance(owner, FakeOpenAI)
        return owner

    def do_GET(self) -> None:
        self._read_body()
        self._record({})
        if urlsplit(self.path).path.rstrip("/") == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                for m in self.owner.models
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error(
                ApiError(404, f"Not found (fake): {self.path}", error_type="not_found")
            )

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send_error(ApiError(400, "Body is not a JSON object (fake)", error_type="bad"))
            return
        recorded = self._record(body)
        path = urlsplit(self.path).path
        if path not in ("/v1/chat/completions", RESPONSES_PATH):
            self._send_error(
                ApiError(404, f"Not found (fake): {self.path}", error_type="not_found")
            )
            return
        try:
            self._answer(recorded, responses=path == RESPONSES_PATH)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _record(self, body: dict[str, Any]) -> RecordedRequest:
        recorded = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        self.owner._record(recorded)
        return recorded

    def _answer(self, request: RecordedRequest, *, responses: bool = False) -> None:
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
        if responses:
            self._send_responses(reply, str(request.body.get("model") or DEFAULT_MODEL))
            return
        if isinstance(reply, ToolCall | StreamFailure):
            self._send_error(
                ApiError(400, "tool calls are Responses API only (fake)", error_type="bad")
            )
            return
        text = reply.text if isinstance(reply, Reply) else json.dumps(reply.obj)
        delay = reply.delay if isinstance(reply, Reply) else 0.0
        model = str(request.body.get("model") or DEFAULT_MODEL)
        if request.stream:
            options = request.body.get("stream_options")
            with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            self._send_stream(text, model, delay, with_usage and owner.send_usage)
        else:
            self._send_completion(text, model)

    def _usage(self) -> dict[str, int]:
        prompt, completion = self.owner.prompt_tokens, self.owner.completion_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _send_completion(self, text: str, model: str) -> None:
        payload: dict[str, Any] = {
            "id": _new_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
        }
        if self.owner.send_usage:
            payload["usage"] = self._usage()
        self._send_json(200, payload)

    def _send_stream(self, text: str, model: str, delay: float, with_usage: bool) -> None:
        ident, created = _new_id(), int(time.time())

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
        for piece in deltas(text):
            if delay and self.owner._stopping.wait(delay):
                self.close_connection = True
                return
            self._send_event(chunk({"content": piece}, None))
        self._send_event(chunk({}, "stop"))
        if with_usage:
            final = chunk({}, None) | {"choices": [], "usage": self._usage()}
            self._send_event(final)
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _send_responses(
        self, reply: Reply | JsonReply | ToolCall | StreamFailure, model: str
    ) -> None:
        """One streamed Responses API reply (:mod:`fakes.responses`)."""
        owner = self.owner
        if isinstance(reply, StreamFailure):
            events = failed_events(reply, model)
        else:
            answer = (
                reply
                if isinstance(reply, ToolCall)
                else (reply.text if isinstance(reply, Reply) else json.dumps(reply.obj))
            )
            tokens = (owner.prompt_tokens, owner.completion_tokens) if owner.send_usage else None
            events = reply_events(answer, model, tokens, deltas)
        delay = reply.delay if isinstance(reply, Reply) else 0.0
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in events:
            if delay and name == "response.output_text.delta" and owner._stopping.wait(delay):
                self.close_connection = True
                return
            self._write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self._write_chunk(b"")

    def _send_event(self, payload: Mapping[str, Any]) -> None:
        self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

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


class FakeOpenAI(ScriptedFake[Scripted]):
    """A scripted fake OpenAI-compatible server on 127.0.0.1 (see the module docstring).

    Use it as a context manager, or call `start` and `stop`. ``requests`` lists every request
    in arrival order; ``errors`` holds tracebacks of crashes inside the fake itself. With
    ``send_usage=False`` it behaves like a server that never reports token usage.
    """

    handler_class = _Handler

    def __init__(
        self,
        script: Sequence[Scripted] = (),
        *,
        repeat_last: bool = False,
        models: Sequence[str] = (DEFAULT_MODEL,),
        prompt_tokens: int = 100,
        completion_tokens: int = 20,
        send_usage: bool = True,
    ) -> None:
        super().__init__(script, repeat_last=repeat_last)
        self.models = tuple(models)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.send_usage = send_usage
        self.requests: list[RecordedRequest] = []

    @property
    def url(self) -> str:
        """The base URL for the SDK, ``http://127.0.0.1:PORT/v1``; only once started."""
        host, port = self.address
        return f"http://{host!s}:{port}/v1"

    @property
    def responses_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/responses`` requests, in arrival order."""
        with self._lock:
            return [r for r in self.requests if urlsplit(r.path).path == RESPONSES_PATH]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/chat/completions`` requests, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # --- used by the handler threads ------------------------------------------------------

    def default_reply(self) -> Scripted:
        return Reply(DONE_TEXT)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
