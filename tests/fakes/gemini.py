"""A scripted fake of the Gemini API, for running the real Gemini CLI offline.

`FakeGemini` is a real HTTP server on 127.0.0.1 (random free port) that runs in a background
thread. It serves what the Gemini CLI needs (see docs/agents.md §13):

- ``POST /v1beta/models/<model>:streamGenerateContent?alt=sse`` is the agent loop. Each request
  consumes the next entry of the script: `Text`, `FunctionCall`, `ApiError` or `Hang`. Replies
  are Server-Sent Events framed ``data: JSON\\r\\n\\r\\n``; text goes out in chunks of
  `CHUNK_CHARS` characters, one event each, and the last event carries ``finishReason: "STOP"``
  and ``usageMetadata``.
- ``POST /v1beta/models/<model>:generateContent`` (not streaming) is the model router's side
  call, made only when the model is ``auto``. It gets the JSON the router asks for
  (``{complexity_reasoning, complexity_score}``) and leaves the script alone.
- Anything else answers 404 with a google.rpc-style JSON error.

Once the script is exhausted the last entry repeats if ``repeat_last`` is set; otherwise the
reply is `DONE_TEXT`. A retry by the CLI is just another request, so it consumes the next entry.
Errors use the google.rpc shape ``{"error": {code, message, status, details}}`` with optional
``RetryInfo`` and ``QuotaFailure`` details.

Example::

    script = [FunctionCall("run_shell_command", {"command": "ls"}), Text("## Summary\\nok")]
    with FakeGemini(script) as fake:
        subprocess.run([gemini, "-p", "list files", "-o", "stream-json", "--yolo"],
                       env=gemini_env(fake.url, home))
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from fakes.serving import ScriptedFake, TrackedHandler

__all__ = [
    "CHUNK_CHARS",
    "DONE_TEXT",
    "ApiError",
    "FakeGemini",
    "FunctionCall",
    "Hang",
    "RecordedRequest",
    "Reply",
    "Text",
    "gemini_env",
    "gemini_settings",
]

DONE_TEXT: Final = "Done.\n\n## Summary\nNothing left to do."
"""The reply to agent-loop requests once the script is exhausted (without ``repeat_last``)."""

CHUNK_CHARS: Final = 40
"""How many characters of text go into one SSE event (the CLI prints one delta per event)."""

DEFAULT_MODEL: Final = "gemini-fake"
"""The model version echoed back when the path does not name one."""

_MODEL_PATH: Final = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


@dataclass(frozen=True)
class Text:
    """A reply made of text only; ends the turn."""

    text: str


@dataclass(frozen=True)
class FunctionCall:
    """A reply asking for one tool call (``functionCall`` part), e.g. ``run_shell_command``.

    A non-empty ``text`` is streamed before the ``functionCall`` part.
    """

    name: str
    args: dict[str, Any]
    text: str = ""


@dataclass(frozen=True)
class ApiError:
    """An HTTP error reply: ``status`` with ``{"error": {code, message, status, details}}``.

    ``retry_delay`` (seconds) adds a ``google.rpc.RetryInfo`` detail; ``quota_id`` adds a
    ``google.rpc.QuotaFailure`` detail with one violation (a ``...PerDay...`` id makes the CLI
    treat the error as an exhausted daily quota).
    """

    status: int
    message: str = "Internal error encountered. (fake)"
    status_name: str = "INTERNAL"
    retry_delay: float | None = None
    quota_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON body of this error."""
        details: list[dict[str, Any]] = []
        if self.quota_id is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/fake_requests",
                            "quotaId": self.quota_id,
                        }
                    ],
                }
            )
        if self.retry_delay is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{self.retry_delay:g}s",
                }
            )
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "status": self.status_name,
        }
        if details:
            error["details"] = details
        return {"error": error}


@dataclass(frozen=True)
class Hang:
    """Accept the request, then send nothing for ``seconds``.

    After the wait the same request is answered with the *next* script entry (consumed then;
    `DONE_TEXT` when the script is exhausted), so ``[Hang(2), Text("late")]`` is a slow reply.
    When the server stops during the wait, the connection is closed without a reply.
    """

    seconds: float


Reply = Text | FunctionCall | ApiError | Hang
"""One scripted answer of the fake server."""


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake server received: raw path (with query), headers, parsed JSON body."""

    path: str
    headers: dict[str, str]
    """Header names are lower-case."""
    body: dict[str, Any]

    @property
    def model(self) -> str:
        """The model named in the path (``/v1beta/models/<model>:...``)."""
        match = _MODEL_PATH.match(unquote(urlsplit(self.path).path))
        return match["model"] if match else ""

    @property
    def contents(self) -> list[dict[str, Any]]:
        """The conversation sent (``contents``), oldest first."""
        value = self.body.get("contents")
        return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []

    def texts(self, role: str | None = None) -> list[str]:
        """Every text part of ``contents`` (only those of ``role`` when given)."""
        found: list[str] = []
        for content in self.contents:
            if role is not None and content.get("role") != role:
                continue
            for part in content.get("parts") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    found.append(part["text"])
        return found

    def function_calls(self) -> list[dict[str, Any]]:
        """Every ``functionCall`` part of ``contents`` (the CLI replays earlier tool calls)."""
        return [
            part["functionCall"]
            for content in self.contents
            for part in content.get("parts") or []
            if isinstance(part, dict) and isinstance(part.get("functionCall"), dict)
        ]

    def function_responses(self) -> list[dict[str, Any]]:
        """Every ``functionResponse`` part of ``contents`` (the results of tool calls)."""
        return [
            part["functionResponse"]
            for content in self.contents
            for part in content.get("parts") or []
            if isinstance(part, dict) and isinstance(part.get("functionResponse"), dict)
        ]


def gemini_settings(max_attempts: int = 2) -> dict[str, Any]:
    """The user settings for a headless, offline CLI (docs/agents.md §5)."""
    return {
        "general": {
            "enableAutoUpdate": False,
            "enableAutoUpdateNotification": False,
            "maxAttempts": max_attempts,
        },
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    }


def gemini_env(base_url: str, home: Path, *, max_attempts: int = 2) -> dict[str, str]:
    """Return the full environment for running the real Gemini CLI offline.

    It is a copy of ``os.environ`` without inherited ``GEMINI_*`` / ``GOOGLE_*`` variables (a
    ``GEMINI_CLI_HOME``, Vertex or ADC settings would leak in), plus the model server at
    ``base_url``, a fake key, workspace trust, no telemetry, and ``HOME=home`` with
    ``TMPDIR=home/tmp`` (created here). It also writes ``home/.gemini/settings.json``: API-key
    auth, no updates or telemetry, folder trust off and ``general.maxAttempts = max_attempts``.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GEMINI_", "GOOGLE_"))
    }
    tmpdir = home / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    settings_dir = home / ".gemini"
    settings_dir.mkdir(parents=True, exist_ok=True)
    (settings_dir / "settings.json").write_text(
        json.dumps(gemini_settings(max_attempts), indent=2) + "\n", encoding="utf-8"
    )
    no_proxy = ",".join(p for p in (env.get("NO_PROXY", ""), "127.0.0.1,localhost") if p)
    env.update(
        {
            "GOOGLE_GEMINI_BASE_URL": base_url,
            "GEMINI_API_KEY": "fake-key",
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
            "GEMINI_TELEMETRY_ENABLED": "false",
            "HOME": str(home),
            "TMPDIR": str(tmpdir),
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
    )
    return env


def _chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """``text`` in pieces of ``size`` characters (nothing for "")."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def _parts(reply: Text | FunctionCall) -> list[dict[str, Any]]:
    """The reply's parts, one per SSE event: text chunks, then the function call."""
    parts: list[dict[str, Any]] = [{"text": chunk} for chunk in _chunks(reply.text)]
    if isinstance(reply, FunctionCall):
        parts.append({"functionCall": {"name": reply.name, "args": reply.args}})
    return parts or [{"text": ""}]


def _sse(data: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\r\n\r\n".encode()


class _Handler(TrackedHandler):
    """Serves one connection (HTTP/1.1 keep-alive) for the owning `FakeGemini`."""

    server_version = "FakeGemini/1.0"

    @property
    def owner(self) -> FakeGemini:
        owner = self.fake
        assert isinstance(owner, FakeGemini)
        return owner

    # --- routing -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._read_body()
        self._send_not_found()

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        self.do_GET()

    def do_DELETE(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        raw = self._read_body()
        match = _MODEL_PATH.match(unquote(urlsplit(self.path).path))
        method = match["method"] if match else ""
        if method not in ("streamGenerateContent", "generateContent"):
            self._send_not_found()
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            error = ApiError(400, "Invalid JSON payload received. (fake)", "INVALID_ARGUMENT")
            self._send_json(400, error.payload())
            return
        assert match is not None
        recorded = RecordedRequest(
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            if method == "streamGenerateContent":
                self._answer_stream(recorded, match["model"])
            else:
                self._answer_router(recorded, match["model"])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- the two endpoints -----------------------------------------------------------------

    def _answer_stream(self, request: RecordedRequest, model: str) -> None:
        owner = self.owner
        reply = owner._take_reply(request)
        while isinstance(reply, Hang):
            if owner._stopping.wait(reply.seconds):
                self.close_connection = True
                return
            reply = owner._next_reply()
        if isinstance(reply, ApiError):
            self._send_json(reply.status, reply.payload())
            return
        response_id = uuid.uuid4().hex[:20]
        parts = _parts(reply)
        frames: list[bytes] = []
        for index, part in enumerate(parts):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
            chunk: dict[str, Any] = {
                "candidates": [candidate],
                "modelVersion": model or DEFAULT_MODEL,
                "responseId": response_id,
            }
            if index == len(parts) - 1:
                candidate["finishReason"] = "STOP"
                chunk["usageMetadata"] = self._usage()
            frames.append(_sse(chunk))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(sum(len(f) for f in frames)))
        self.end_headers()
        for frame in frames:
            self.wfile.write(frame)
            self.wfile.flush()

    def _answer_router(self, request: RecordedRequest, model: str) -> None:
        owner = self.owner
        owner._record_side_call(request)
        answer = {
            "complexity_reasoning": "A scripted answer from the fake server.",
            "complexity_score": owner.complexity_score,
        }
        response = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": json.dumps(answer)}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": self._usage(),
            "modelVersion": model or DEFAULT_MODEL,
            "responseId": uuid.uuid4().hex[:20],
        }
        self._send_json(200, response)

    def _usage(self) -> dict[str, int]:
        tokens_in, tokens_out = self.owner.input_tokens, self.owner.output_tokens
        return {
            "promptTokenCount": tokens_in,
            "candidatesTokenCount": tokens_out,
            "totalTokenCount": tokens_in + tokens_out,
        }

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

    def _send_not_found(self) -> None:
        error = ApiError(404, f"Not found (fake): {self.path}", "NOT_FOUND")
        self._send_json(404, error.payload())

    def _send_json(self, status: int, payload: Mapping[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeGemini(ScriptedFake[Reply]):
    """A scripted fake Gemini API server on 127.0.0.1 (see the module docstring).

    Use it as a context manager, or call `start` and `stop`. ``requests`` lists every
    agent-loop (streaming) request in arrival order, ``side_requests`` the router calls; both
    are safe to read from the test thread while the server runs. ``errors`` holds tracebacks of
    crashes inside the fake itself, so a test can assert it stayed empty.
    """

    handler_class = _Handler

    def __init__(
        self,
        script: Sequence[Reply] = (),
        *,
        repeat_last: bool = False,
        input_tokens: int = 100,
        output_tokens: int = 20,
        complexity_score: int = 10,
    ) -> None:
        super().__init__(script, repeat_last=repeat_last)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.complexity_score = complexity_score
        self.requests: list[RecordedRequest] = []
        self.side_requests: list[RecordedRequest] = []

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``; only once started."""
        host, port = self.address
        return f"http://{host!s}:{port}"

    # --- used by the handler threads ------------------------------------------------------

    def default_reply(self) -> Reply:
        return Text(DONE_TEXT)

    def _take_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._next_reply_locked()

    def _record_side_call(self, request: RecordedRequest) -> None:
        with self._lock:
            self.side_requests.append(request)
