"""Parser for Claude Code's ``--output-format stream-json`` stdout (docs/agents.md §6).

Fed one line at a time; keeps what Claudomator records: session id, the assistant's text, and
from the ``result`` line cost, usage, ``is_error``, ``api_error_status``, subtype and text.
Key order differs between CLI versions, so everything is read from parsed JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from claudomator.agents.base import trim_oldest
from claudomator.agents.jsonl import JsonLinesStream

logger = logging.getLogger(__name__)


@dataclass
class ClaudeStream(JsonLinesStream):
    """What the stream has said so far."""

    model: str = ""
    texts: list[str] = field(default_factory=list)
    tools_used: list[str] = field(default_factory=list)
    retries: int = 0
    last_retry_error: str = ""
    last_retry_delay_ms: float | None = None
    result: dict[str, Any] | None = None
    _kept_chars: int = field(default=0, repr=False)  # in ``texts``, which keep the newest only

    def on_event(self, kind: object, event: dict[str, Any]) -> None:
        if kind == "system":
            self._system(event)
        elif kind == "assistant":
            self._assistant(event)
        elif kind == "result":
            self.result = event

    def _system(self, event: dict[str, Any]) -> None:
        if event.get("subtype") == "init":
            self.model = str(event.get("model") or "")
        elif event.get("subtype") == "api_retry":
            self.retries += 1
            self.last_retry_error = str(event.get("error") or "")
            delay = event.get("retry_delay_ms")
            if isinstance(delay, int | float) and not isinstance(delay, bool):
                self.last_retry_delay_ms = float(delay)

    def _assistant(self, event: dict[str, Any]) -> None:
        message = event.get("message")
        if not isinstance(message, dict):
            return
        for block in message.get("content") or []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                self.texts.append(block["text"])
                self._kept_chars = trim_oldest(self.texts, self._kept_chars + len(block["text"]))
            elif block.get("type") == "tool_use":
                self.tools_used.append(str(block.get("name", "?")))

    # -- what the result line says -----------------------------------------------------------

    @property
    def is_error(self) -> bool:
        """The result says the run failed (API failures are subtype "success" with is_error)."""
        return self.result is None or bool(self.result.get("is_error"))

    @property
    def subtype(self) -> str:
        return str((self.result or {}).get("subtype") or "")

    @property
    def api_error_status(self) -> int | None:
        value = (self.result or {}).get("api_error_status")
        return value if isinstance(value, int) else None

    @property
    def result_text(self) -> str:
        value = (self.result or {}).get("result")
        return value if isinstance(value, str) else ""

    @property
    def errors(self) -> list[str]:
        value = (self.result or {}).get("errors")
        return [str(e) for e in value] if isinstance(value, list) else []

    @property
    def cost_usd(self) -> float:
        """This invocation's cost.

        2.1.330 reports ``total_cost_usd`` cumulative over a resumed session and this run's share
        in ``model_usage_since_last_result``; 2.1.197 reports per invocation.
        """
        result = self.result or {}
        since = result.get("model_usage_since_last_result")
        if isinstance(since, dict) and since:
            return float(sum(_num(m.get("costUSD")) for m in since.values() if isinstance(m, dict)))
        return _num(result.get("total_cost_usd"))

    @property
    def tokens(self) -> tuple[int, int]:
        """(input, output) tokens of this invocation; input includes cache reads and writes.

        2.1.330's ``model_usage_since_last_result`` sums every reply of this run; ``usage``
        covers only the last reply when a run stops early (budget), so it is the fallback.
        """
        result = self.result or {}
        since = result.get("model_usage_since_last_result")
        if isinstance(since, dict) and since:
            models = [m for m in since.values() if isinstance(m, dict)]
            keys = ("inputTokens", "cacheReadInputTokens", "cacheCreationInputTokens")
            tokens_in = sum(int(_num(m.get(k))) for m in models for k in keys)
            return tokens_in, sum(int(_num(m.get("outputTokens"))) for m in models)
        usage = result.get("usage")
        if not isinstance(usage, dict):
            return 0, 0
        tokens_in = sum(
            int(_num(usage.get(k)))
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        return tokens_in, int(_num(usage.get("output_tokens")))

    @property
    def text(self) -> str:
        """All assistant text, then the result text if it adds anything."""
        joined = "\n\n".join(self.texts)
        final = self.result_text
        if final and final not in joined:
            joined = f"{joined}\n\n{final}" if joined else final
        return joined


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)
