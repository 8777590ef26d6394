"""Parser for the Codex CLI's ``codex exec --json`` stdout (docs/agents.md §3b).

Fed one line at a time, like the other stream parsers. The events of Codex 0.169.0:

* ``thread.started {thread_id}``: the session id (what ``codex exec resume`` takes);
* ``turn.started``, then ``item.started`` / ``item.completed {item}`` with ``item.type``
  ``agent_message {text}``, ``command_execution {command, aggregated_output, exit_code,
  status}``, ``file_change``, ``reasoning``, ``error {message}`` (a warning: the run goes on) ...;
* a top-level ``error {message}``: ``Reconnecting... N/M (why)`` before each of Codex's own
  retries, and once more with the final reason;
* ``turn.completed {usage}`` or ``turn.failed {error: {message}}``.

``turn.completed.usage`` (``input_tokens``, which include ``cached_input_tokens``, and
``output_tokens``, which include ``reasoning_output_tokens``) is **cumulative over the session**:
a resumed run reports the earlier runs' tokens too, so the runner subtracts what the session had
used before (:func:`claudomator.agents.codex.session_usage`). There is no cost in the stream.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final

from claudomator.agents.base import RunContext, trim_oldest
from claudomator.agents.jsonl import JsonLinesStream

logger = logging.getLogger(__name__)

_RETRY: Final = re.compile(r"\AReconnecting\.\.\. (\d+)/(\d+)")
_STATUS: Final = re.compile(r"(?:last status|unexpected status):? (\d{3})\b")
# Codex's own words for an HTTP 500 (the server's message is not shown)
HIGH_DEMAND: Final = "experiencing high demand"
_QUOTA: Final = re.compile(r"Quota exceeded\.|hit your usage limit|usage limit reached", re.I)


def status_in(message: str) -> int | None:
    """The HTTP status a Codex error message stands for, when it says."""
    match = _STATUS.search(message)
    if match is not None:
        return int(match.group(1))
    return 500 if HIGH_DEMAND in message else None


def names_quota(message: str) -> bool:
    """Whether a Codex error message says the account's quota is used up (an OpenAI
    ``insufficient_quota`` 429 becomes "Quota exceeded. Check your plan and billing details.")."""
    return bool(_QUOTA.search(message))


@dataclass
class CodexCommand:
    """One shell command the agent ran (a ``command_execution`` item)."""

    command: str
    exit_code: int | None = None
    status: str = ""  # in_progress, completed, failed, declined


@dataclass
class CodexStream(JsonLinesStream):
    """What the stream has said so far."""

    texts: list[str] = field(default_factory=list)  # the agent's messages (newest kept)
    commands: dict[str, CodexCommand] = field(default_factory=dict)  # by item id
    tools: list[str] = field(default_factory=list)  # item types of the agent's actions
    warnings: list[str] = field(default_factory=list)  # ``error`` items (the run went on)
    retries: int = 0  # ``Reconnecting...`` lines: Codex's own retries
    errors: list[str] = field(default_factory=list)  # other top-level ``error`` messages
    turns: int = 0
    usage: dict[str, Any] | None = None  # the last ``turn.completed.usage``
    failure: str = ""  # the ``turn.failed`` message
    failed: bool = False
    _kept_chars: int = field(default=0, repr=False)
    # a rough live estimate (usage comes only at the end), as for Gemini: characters the
    # model wrote, and what it was sent (everything seen so far, at each of its turns)
    context_chars: int = 0
    estimated_in_chars: int = 0
    estimated_out_chars: int = 0
    _turn_open: bool = field(default=False, repr=False)

    def on_event(self, kind: object, event: dict[str, Any]) -> None:
        if kind == "thread.started" and isinstance(event.get("thread_id"), str):
            self.session_id = event["thread_id"]
        elif kind == "turn.started":
            self.turns += 1
        elif kind in ("item.started", "item.updated", "item.completed"):
            item = event.get("item")
            if isinstance(item, dict):
                self._item(item, done=kind == "item.completed")
        elif kind == "error":
            self._error(str(event.get("message") or ""))
        elif kind == "turn.completed":
            usage = event.get("usage")
            self.usage = usage if isinstance(usage, dict) else {}
        elif kind == "turn.failed":
            self.failed = True
            error = event.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self.failure = str(message or "")
        else:
            logger.debug("ignored stream event %r", kind, extra={"action": "codex_stream"})

    def _item(self, item: dict[str, Any], *, done: bool) -> None:
        kind = str(item.get("type") or "")
        ident = str(item.get("id") or "")
        if kind == "agent_message" and done:
            text = str(item.get("text") or "")
            self.texts.append(text)
            self._kept_chars = trim_oldest(self.texts, self._kept_chars + len(text))
            self._spoke(len(text))
        elif kind == "error" and done:
            self.warnings.append(str(item.get("message") or ""))
        elif kind == "command_execution":
            command = self.commands.get(ident)
            if command is None:
                command = self.commands[ident] = CodexCommand(str(item.get("command") or ""))
                self.tools.append(kind)
                self._spoke(len(command.command))
            code = item.get("exit_code")
            command.exit_code = code if isinstance(code, int) else None
            command.status = str(item.get("status") or "")
            if done:  # its output goes back to the model: a new model turn follows
                self.context_chars += len(str(item.get("aggregated_output") or ""))
                self._turn_open = False
        elif kind not in ("reasoning", "") and done:
            self.tools.append(kind)

    def _spoke(self, size: int) -> None:
        """The model wrote ``size`` characters; at the start of a model turn it was sent the
        whole conversation so far."""
        if not self._turn_open:
            self.estimated_in_chars += self.context_chars
            self._turn_open = True
        self.context_chars += size
        self.estimated_out_chars += size

    def _error(self, message: str) -> None:
        if _RETRY.match(message):
            self.retries += 1
        else:
            self.errors.append(message)

    # -- what the stream says overall --------------------------------------------------------

    @property
    def completed(self) -> bool:
        """The turn completed (``turn.completed``) and did not fail."""
        return self.usage is not None and not self.failed

    @property
    def error_message(self) -> str:
        """Why the run failed, in Codex's words: the ``turn.failed`` message, else the last
        ``error`` line."""
        return self.failure or (self.errors[-1] if self.errors else "")

    @property
    def api_error_status(self) -> int | None:
        return status_in(self.error_message) if self.error_message else None

    @property
    def tokens(self) -> tuple[int, int]:
        """(input, output) tokens ``turn.completed`` reports: the session's, cumulative."""
        usage = self.usage or {}
        return _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))

    @property
    def live_tokens(self) -> tuple[int, int]:
        """Estimated (input, output) tokens so far, at about four characters a token."""
        return self.estimated_in_chars // 4, self.estimated_out_chars // 4

    @property
    def text(self) -> str:
        """The agent's messages, separated by a blank line."""
        return "\n\n".join(t for t in self.texts if t)

    @property
    def commands_run(self) -> int:
        return len(self.commands)


class BudgetGuard:
    """Feeds the stream and halts the run once the live cost estimate passes the budget.

    Codex takes no budget and reports usage only when the turn ends, so, as for Gemini, the
    cost is estimated as the stream goes (:attr:`CodexStream.live_tokens`); without a budget,
    a price or a model name it only feeds."""

    def __init__(self, stream: CodexStream, ctx: RunContext, model: str) -> None:
        self.stream = stream
        self.ctx = ctx
        self.model = model
        self.halt = asyncio.Event()
        self.over_budget: float | None = None

    def feed(self, line: str) -> None:
        self.stream.feed(line)
        budget = self.ctx.task.agent.max_budget_usd
        if budget is None or self.ctx.estimate_cost is None or self.halt.is_set():
            return
        cost = self.ctx.estimate_cost(self.model, *self.stream.live_tokens)
        if cost is not None and cost > budget:
            self.over_budget = cost
            logger.warning(
                "task %s: estimated $%.4f passed its budget of $%g; stopping Codex",
                self.ctx.task.id,
                cost,
                budget,
                extra={"action": "budget"},
            )
            self.halt.set()

    def message(self) -> str:
        return (
            f"estimated cost ~${self.over_budget or 0:.4f} passed the budget of "
            f"${self.ctx.task.agent.max_budget_usd:g}; stopped the agent"
        )


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)
