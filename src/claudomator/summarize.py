"""A short summary synthesised by the local model when the agent wrote none (docs/design.md §3).

Best effort by design: a slow, missing or failing model leaves the summary empty and never
fails the task. :class:`ModelSummarizer` is one :data:`claudomator.attempt.Summarizer` (what
the pool takes: any ``async (agent_text) -> summary``); reading the summary the agent wrote
itself is :mod:`claudomator.summary`'s.
"""

from __future__ import annotations

import logging

from claudomator.llm import LLMClient, LLMError

logger = logging.getLogger(__name__)

TAIL_BYTES = 16 * 1024
TIMEOUT_SECONDS = 6.0

_SYSTEM = (
    "You summarise the work of an AI coding agent for the developer who assigned it. "
    "Reply with 2 to 4 plain sentences: what was done, what changed, anything left open. "
    "No preamble, no markdown headings."
)


def tail(text: str, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of ``text`` (cut at a character boundary)."""
    data = text.encode("utf-8")
    return data[-limit:].decode("utf-8", errors="ignore") if len(data) > limit else text


class ModelSummarizer:
    """``await ModelSummarizer(llm)(agent_text)`` -> a 2-4 sentence summary, or "" on any
    failure."""

    def __init__(self, llm: LLMClient, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.llm = llm
        self.timeout = timeout

    async def __call__(self, agent_text: str) -> str:
        if not self.llm.available or not agent_text.strip():
            return ""
        try:
            summary = await self.llm.complete(
                _SYSTEM, tail(agent_text), max_tokens=300, timeout=self.timeout
            )
        except LLMError as exc:
            logger.info("no synthesised summary: %s", exc, extra={"action": "summarize"})
            return ""
        return summary.strip()
