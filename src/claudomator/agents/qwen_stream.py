"""Parser for Qwen Code's ``--output-format stream-json`` stdout (docs/agents.md §17).

The stream has Claude's shape (``system/init``, ``assistant`` with one content block per line,
``user`` with ``tool_result``, ``result``), so :class:`QwenStream` is a
:class:`~claudomator.agents.claude_stream.ClaudeStream` that reads what differs in 0.24.4:

* there is no cost anywhere, only tokens;
* ``result.usage`` is **cumulative over a resumed session** (a resumed run that made one call of
  100 in / 20 out after a first run of 200 / 40 reports 300 / 60), while each ``assistant`` line
  carries the usage of its own model call (a text block followed by a tool call in one reply is
  two lines, the text one with zero usage). This invocation's tokens are therefore the sum over
  its ``assistant`` lines; the sum is also the live figure the budget guard reads;
* an API failure is ``result`` ``subtype: "error_during_execution"``, ``is_error: true`` and
  ``error.message`` ``"[API Error: 500 <the server's message>]"``, with no status field: the
  status is read from that text (:func:`status_from_message`);
* there are no ``system/api_retry`` lines (retries show nowhere on stdout).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final

from claudomator.agents.claude_stream import ClaudeStream

logger = logging.getLogger(__name__)

_API_ERROR: Final = re.compile(r"\[API Error: (?P<status>\d{3})\b")


def status_from_message(message: str) -> int | None:
    """The HTTP status of an ``[API Error: 429 …]`` message, if it names one (400..599)."""
    match = _API_ERROR.search(message)
    if match is None:
        return None
    status = int(match["status"])
    return status if 400 <= status <= 599 else None


@dataclass
class QwenStream(ClaudeStream):
    """What Qwen Code's stream has said so far (see the module docstring)."""

    live_in: int = 0  # tokens of this invocation's model calls so far, from the assistant lines
    live_out: int = 0
    _seen_messages: set[str] = field(default_factory=set, repr=False)

    def _assistant(self, event: dict[str, Any]) -> None:
        super()._assistant(event)
        message = event.get("message")
        if not isinstance(message, dict):
            return
        ident = str(message.get("id") or event.get("uuid") or "")
        if ident and ident in self._seen_messages:
            return  # the same call's usage, told twice
        self._seen_messages.add(ident)
        usage = message.get("usage")
        if isinstance(usage, dict):
            self.live_in += _count(usage.get("input_tokens"))
            self.live_out += _count(usage.get("output_tokens"))

    @property
    def live_tokens(self) -> tuple[int, int]:
        """(input, output) tokens of this invocation's model calls so far."""
        return self.live_in, self.live_out

    @property
    def tokens(self) -> tuple[int, int]:
        """(input, output) tokens of this invocation: the sum over its ``assistant`` lines
        (``result.usage`` is cumulative over a resumed session)."""
        return self.live_tokens

    @property
    def session_tokens(self) -> tuple[int, int]:
        """``result.usage``: the session's tokens so far, this run included."""
        usage = (self.result or {}).get("usage")
        if not isinstance(usage, dict):
            return 0, 0
        return _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))

    @property
    def cost_usd(self) -> float:
        """Qwen Code reports no cost (the pool estimates it from the price table)."""
        return 0.0

    @property
    def error_message(self) -> str:
        """``result.error.message`` ("[API Error: …]"), else empty."""
        error = (self.result or {}).get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        return ""

    @property
    def api_error_status(self) -> int | None:
        """The HTTP status named in the result's error message, if any."""
        return status_from_message(self.error_message)

    @property
    def text(self) -> str:
        """The assistant's text without the API error text the CLI repeats as a reply."""
        error = self.error_message
        kept = [t for t in self.texts if not (error and t == error)]
        joined = "\n\n".join(kept)
        final = self.result_text
        if final and final not in joined:
            joined = f"{joined}\n\n{final}" if joined else final
        return joined


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(int(value), 0)
