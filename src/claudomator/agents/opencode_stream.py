"""Parser for OpenCode's ``opencode run --format json`` stdout (docs/agents.md §18).

Fed one line at a time, like the other stream parsers. The events of OpenCode 1.18.33, each
``{type, timestamp, sessionID, ...}``:

* ``step_start {part}``: a model call begins (``part.messageID`` names the assistant message);
* ``text {part: {text}}``: the model's text of that step, whole (not deltas);
* ``tool_use {part: {tool, callID, state: {status, input, output, metadata: {exit}}}}``: one
  tool call, once it has ended (``status`` ``completed`` or ``error``);
* ``step_finish {part: {reason, tokens: {input, output, reasoning, cache: {read, write}},
  cost}}``: the model call ended, ``reason`` ``tool-calls`` (another step follows) or ``stop``;
  ``cost`` is OpenCode's own, in USD, from the model's price in its config (0 without one);
* ``error {error: {name, data: {message, statusCode, isRetryable, responseBody}}}``: the run
  failed (an ``APIError`` once OpenCode's own retries are spent); nothing follows it.

There is no final ``result`` line: a run completed when it exited 0 after a last
``step_finish`` that was not ``tool-calls``, with no ``error``. Tokens and cost on the lines
are this invocation's only (a resumed session's earlier runs are not repeated).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from claudomator.agents.base import RunContext, trim_oldest
from claudomator.agents.jsonl import JsonLinesStream

logger = logging.getLogger(__name__)

TOOL_CALLS = "tool-calls"  # the step_finish reason of a step whose tool calls ran


@dataclass
class OpenCodeStream(JsonLinesStream):
    """What the stream has said so far."""

    texts: list[str] = field(default_factory=list)  # the model's texts (newest kept)
    tools: list[str] = field(default_factory=list)  # the tools called, in order
    failed_tools: int = 0  # tool calls that ended in ``error``
    steps: int = 0  # step_finish lines: model calls that ended
    last_reason: str = ""  # the last step_finish reason
    tokens_in: int = 0  # input tokens of this invocation (cache reads and writes included)
    tokens_out: int = 0  # output tokens (reasoning included)
    cost_usd: float = 0.0  # the sum of the step_finish costs
    error: dict[str, Any] | None = None  # the ``error`` event's ``error``
    _kept_chars: int = field(default=0, repr=False)

    def on_event(self, kind: object, event: dict[str, Any]) -> None:
        session = event.get("sessionID")
        if isinstance(session, str) and session:
            self.session_id = session
        part = event.get("part")
        part = part if isinstance(part, dict) else {}
        if kind == "text":
            text = str(part.get("text") or "")
            if text:
                self.texts.append(text)
                self._kept_chars = trim_oldest(self.texts, self._kept_chars + len(text))
        elif kind == "tool_use":
            self.tools.append(str(part.get("tool") or ""))
            state = part.get("state")
            if isinstance(state, dict) and state.get("status") == "error":
                self.failed_tools += 1
        elif kind == "step_finish":
            self._step(part)
        elif kind == "error":
            error = event.get("error")
            self.error = error if isinstance(error, dict) else {"data": {"message": str(error)}}
        elif kind != "step_start":
            logger.debug("ignored stream event %r", kind, extra={"action": "opencode_stream"})

    def _step(self, part: dict[str, Any]) -> None:
        self.steps += 1
        self.last_reason = str(part.get("reason") or "")
        tokens = part.get("tokens")
        if isinstance(tokens, dict):
            cache = tokens.get("cache")
            cache = cache if isinstance(cache, dict) else {}
            self.tokens_in += _count(tokens.get("input"))
            self.tokens_in += _count(cache.get("read")) + _count(cache.get("write"))
            self.tokens_out += _count(tokens.get("output")) + _count(tokens.get("reasoning"))
        cost = part.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool) and cost > 0:
            self.cost_usd += float(cost)

    # -- what the stream says overall --------------------------------------------------------

    @property
    def completed(self) -> bool:
        """A last model call that ended the turn, and no error."""
        return self.error is None and self.steps > 0 and self.last_reason != TOOL_CALLS

    @property
    def tokens(self) -> tuple[int, int]:
        return self.tokens_in, self.tokens_out

    @property
    def error_data(self) -> dict[str, Any]:
        data = (self.error or {}).get("data")
        return data if isinstance(data, dict) else {}

    @property
    def error_message(self) -> str:
        """The error's message in OpenCode's words (for an API error, the server's own), else
        its name."""
        if self.error is None:
            return ""
        message = self.error_data.get("message")
        if isinstance(message, str) and message.strip():
            return message.strip()
        return str(self.error.get("name") or "unknown error")

    @property
    def api_error_status(self) -> int | None:
        status = self.error_data.get("statusCode")
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
            return status
        return None

    @property
    def text(self) -> str:
        """The model's texts, separated by a blank line."""
        return "\n\n".join(t for t in self.texts if t)


class BudgetGuard:
    """Feeds the stream and halts the run once its cost passes the budget: OpenCode's own
    cost when it reports one, else the estimate from the tokens (OpenCode takes no budget).
    Checked after each model call (``step_finish``)."""

    def __init__(self, stream: OpenCodeStream, ctx: RunContext, model: str) -> None:
        self.stream = stream
        self.ctx = ctx
        self.model = model
        self.halt = asyncio.Event()
        self.over_budget: float | None = None

    def cost(self) -> float | None:
        """The run's cost so far: reported, else estimated (None: no price for the model)."""
        if self.stream.cost_usd > 0:
            return self.stream.cost_usd
        if self.ctx.estimate_cost is None:
            return None
        return self.ctx.estimate_cost(self.model, *self.stream.tokens)

    def feed(self, line: str) -> None:
        steps = self.stream.steps
        self.stream.feed(line)
        budget = self.ctx.task.agent.max_budget_usd
        if budget is None or self.halt.is_set() or self.stream.steps == steps:
            return
        cost = self.cost()
        if cost is not None and cost > budget:
            self.over_budget = cost
            logger.warning(
                "task %s: cost $%.4f passed its budget of $%g; stopping OpenCode",
                self.ctx.task.id,
                cost,
                budget,
                extra={"action": "budget"},
            )
            self.halt.set()

    def message(self) -> str:
        return (
            f"cost ${self.over_budget or 0:.4f} passed the budget of "
            f"${self.ctx.task.agent.max_budget_usd:g}; stopped the agent"
        )


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(int(value), 0)
