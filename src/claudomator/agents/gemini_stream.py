"""Parser for the Gemini CLI's ``--output-format stream-json`` stdout (docs/agents.md §7).

Fed one line at a time, like :class:`~claudomator.agents.claude_stream.ClaudeStream`. The events:

* ``init {session_id, model}``: ``model`` is ``"auto"`` unless ``-m`` was given;
* ``message {role, content, delta}``: the user prompt, then one assistant ``delta`` per SSE
  chunk of the model's reply (concatenated here, since ``result`` carries no text);
* ``tool_use {tool_name, tool_id, parameters}`` and ``tool_result {tool_id, status, output?,
  error?}``;
* ``result {status: "success"|"error", error?{type, message}, stats{input_tokens,
  output_tokens, models{<model>: {...}}}}``.

Also here: :func:`strip_json_fence` (a reply wrapped whole in a ```json fence is unwrapped) and
:func:`status_from_exit` (the CLI exits with the HTTP status of an API failure, modulo 256).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final

from claudomator.agents.base import trim_oldest
from claudomator.agents.jsonl import JsonLinesStream

logger = logging.getLogger(__name__)

AUTO_MODEL: Final = "auto"
"""What ``init.model`` says when the CLI routes each prompt itself (no ``-m``)."""

_JSON_FENCE: Final = re.compile(r"\A```json[ \t]*\r?\n(?P<body>.*?)\r?\n?```\Z", re.I | re.S)
_EMBEDDED_CODE: Final = re.compile(r'"code"\s*:\s*(?P<code>\d{3})\b')

# The Gemini CLI's own fatal exit codes (FatalError subclasses in 0.61.0); all below 144, so
# they never collide with an HTTP status folded into a byte.
FATAL_EXITS: Final[dict[int, str]] = {
    41: "authentication failed (FatalAuthenticationError)",
    42: "invalid input or session (FatalInputError)",
    44: "sandbox error (FatalSandboxError)",
    52: "configuration error (FatalConfigError)",
    53: "turn limit reached (FatalTurnLimitedError)",
    54: "tool execution failed (FatalToolExecutionError)",
    55: "untrusted workspace (FatalUntrustedWorkspaceError)",
    130: "cancelled (FatalCancellationError)",
}


def status_from_exit(code: int | None) -> int | None:
    """The HTTP status an exit code stands for, or None.

    On an API failure the CLI exits with ``status & 0xFF``: 400 → 144, 429 → 173, 500 → 244,
    503 → 247. Codes 144..254 map back to 400..510; everything else (success, the CLI's own
    fatal codes, signals, 255 from ``exit(-1)``) is not an HTTP status.
    """
    if code is None or not 144 <= code <= 254:
        return None
    return code + 256


def status_from_message(message: str) -> int | None:
    """The HTTP status in an ``[API Error: {"error":{"code":500,...}}]`` message, if any."""
    match = _EMBEDDED_CODE.search(message)
    if match is None:
        return None
    code = int(match["code"])
    return code if 400 <= code <= 599 else None


def strip_json_fence(text: str) -> str:
    """The body of ``text`` if all of it is one ```json fenced block, else ``text`` unchanged."""
    match = _JSON_FENCE.match(text.strip())
    if match is None or "```" in match["body"]:
        return text
    return match["body"]


@dataclass
class GeminiToolUse:
    """One tool call the CLI ran, and how it went (once its ``tool_result`` arrived)."""

    name: str
    tool_id: str
    parameters: dict[str, Any]
    status: str = ""  # "success" or "error"; empty until the result arrives
    error_type: str = ""
    error_message: str = ""


@dataclass
class GeminiStream(JsonLinesStream):
    """What the stream has said so far."""

    init_model: str = ""
    prompt: str = ""
    texts: list[str] = field(default_factory=list)
    """The assistant's text, one entry per reply (deltas joined; a tool call ends a reply)."""
    tools: list[GeminiToolUse] = field(default_factory=list)
    result: dict[str, Any] | None = None
    _in_reply: bool = field(default=False, repr=False)
    _kept_chars: int = field(default=0, repr=False)  # in ``texts``, which keep the newest only
    # a rough live estimate (the CLI reports usage only at the end): every model turn is sent
    # the whole conversation so far, and we see most of it (not the CLI's own system prompt)
    context_chars: int = 0
    estimated_in_chars: int = 0
    estimated_out_chars: int = 0
    _turn_open: bool = field(default=False, repr=False)

    def on_event(self, kind: object, event: dict[str, Any]) -> None:
        self._estimate(kind, event)
        if kind == "message" and event.get("role") == "assistant":
            self._assistant(event)
            return
        self._in_reply = False
        if kind == "init":
            self.init_model = str(event.get("model") or "")
        elif kind == "message" and event.get("role") == "user":
            self.prompt = str(event.get("content") or "")
        elif kind == "tool_use":
            self._tool_use(event)
        elif kind == "tool_result":
            self._tool_result(event)
        elif kind == "result":
            self.result = event
        else:
            logger.debug("ignored stream event %r", kind, extra={"action": "gemini_stream"})

    def _estimate(self, kind: object, event: dict[str, Any]) -> None:
        if kind == "message" and event.get("role") == "user":
            self.context_chars += len(str(event.get("content") or ""))
        elif kind in ("message", "tool_use"):  # the model speaks: a turn if one is not open
            if not self._turn_open:
                self.estimated_in_chars += self.context_chars
                self._turn_open = True
            said = event.get("content") if kind == "message" else event.get("parameters")
            size = len(said) if isinstance(said, str) else len(json.dumps(said or {}))
            self.context_chars += size
            self.estimated_out_chars += size
        elif kind == "tool_result":
            self.context_chars += len(str(event.get("output") or ""))
            self._turn_open = False

    @property
    def live_tokens(self) -> tuple[int, int]:
        """Estimated (input, output) tokens so far, at about four characters a token."""
        return self.estimated_in_chars // 4, self.estimated_out_chars // 4

    def _assistant(self, event: dict[str, Any]) -> None:
        content = event.get("content")
        if not isinstance(content, str):
            return
        if self._in_reply and self.texts:
            self.texts[-1] += content
        else:
            self.texts.append(content)
            self._in_reply = True
        self._kept_chars = trim_oldest(self.texts, self._kept_chars + len(content))

    def _tool_use(self, event: dict[str, Any]) -> None:
        params = event.get("parameters")
        self.tools.append(
            GeminiToolUse(
                name=str(event.get("tool_name") or "?"),
                tool_id=str(event.get("tool_id") or ""),
                parameters=params if isinstance(params, dict) else {},
            )
        )

    def _tool_result(self, event: dict[str, Any]) -> None:
        tool_id = str(event.get("tool_id") or "")
        tool = next((t for t in reversed(self.tools) if t.tool_id == tool_id), None)
        if tool is None:
            return
        tool.status = str(event.get("status") or "")
        error = event.get("error")
        if isinstance(error, dict):
            tool.error_type = str(error.get("type") or "")
            tool.error_message = str(error.get("message") or "")

    # -- what the stream says overall --------------------------------------------------------

    @property
    def text(self) -> str:
        """All assistant text: each reply's deltas joined, replies separated by a blank line."""
        return "\n\n".join(t for t in self.texts if t)

    @property
    def tools_used(self) -> list[str]:
        return [t.name for t in self.tools]

    @property
    def status(self) -> str:
        """The result's ``status`` (``success`` or ``error``); empty without a result."""
        return str((self.result or {}).get("status") or "")

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def error_type(self) -> str:
        return str(self._error().get("type") or "")

    @property
    def error_message(self) -> str:
        return str(self._error().get("message") or "")

    def _error(self) -> dict[str, Any]:
        error = (self.result or {}).get("error")
        return error if isinstance(error, dict) else {}

    @property
    def api_error_status(self) -> int | None:
        """The HTTP status embedded in the result's error message, when it has one."""
        return status_from_message(self.error_message)

    def _stats(self) -> dict[str, Any]:
        stats = (self.result or {}).get("stats")
        return stats if isinstance(stats, dict) else {}

    @property
    def tokens(self) -> tuple[int, int]:
        """(input, output) tokens of this invocation; includes the router's under ``auto``."""
        stats = self._stats()
        return int(_num(stats.get("input_tokens"))), int(_num(stats.get("output_tokens")))

    @property
    def models(self) -> list[str]:
        """The models in ``stats.models``, in the order the CLI first used them."""
        models = self._stats().get("models")
        return [str(name) for name in models] if isinstance(models, dict) else []

    @property
    def model(self) -> str:
        """The main model: ``init.model``, or under ``auto`` the last model the stats list.

        With ``auto`` the router's model comes first in ``stats.models`` (its call precedes the
        agent loop), so the last entry is the model that did the work.
        """
        if self.init_model and self.init_model != AUTO_MODEL:
            return self.init_model
        models = [m for m in self.models if m != AUTO_MODEL]
        return models[-1] if models else self.init_model


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)
