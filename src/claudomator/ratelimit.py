"""Recognising rate limits and quota exhaustion in what an agent reported, and the backoff.

* A **rate limit** is temporary: the agent is marked limited until the Retry-After the provider
  gave (or an exponential backoff, capped) and the task goes back to the queue.
* **Quota exhaustion** lasts until the quota resets: the agent is unavailable until then and
  tasks that did not pin an agent fail over to another one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from claudomator.agents.base import Outcome
from claudomator.models import AgentStatus, TaskState


class Limit(StrEnum):
    """What kind of limit a failure was."""

    RATE = "rate_limit"  # try again after a short window
    QUOTA = "quota"  # the agent is unusable until its quota resets


_QUOTA = re.compile(
    r"usage limit reached|exhausted your daily quota|TerminalQuotaError|free[- ]tier quota"
    r"|quota exceeded for .*per ?day|PerDay"
    # an OpenAI-compatible provider's (what Qwen Code and OpenCode pass on)
    r"|insufficient_quota|exceeded your current quota",
    re.IGNORECASE,
)
_RATE = re.compile(
    r"rate[ _-]?limit|too many requests|overloaded|\b429\b|\b529\b|RESOURCE_EXHAUSTED",
    re.IGNORECASE,
)
_RATE_STATUSES = frozenset({429, 529})
_RETRY_AFTER = re.compile(
    r"(?:retry[- ]after|retry in|retryDelay\"?\s*[:=]\s*\"?|try again in)\s*:?\s*"
    r"(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)?(?![a-z])",
    re.IGNORECASE,
)
_RESET_HOURS = re.compile(r"resets? (?:in|after) (\d+(?:\.\d+)?)\s*h", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """A failure recognised as a limit, and how long the provider asked us to wait."""

    limit: Limit
    retry_after: float | None  # seconds, if the provider said


def _seconds(number: str, unit: str | None) -> float:
    value = float(number)
    unit = (unit or "s").lower()
    if unit == "ms" or unit.startswith("milli"):
        return value / 1000
    if unit.startswith("h"):
        return value * 3600
    if unit.startswith("m"):
        return value * 60
    return value


def retry_after_in(text: str) -> float | None:
    """A Retry-After / retryDelay / "retry in Ns" hint in ``text``, in seconds."""
    match = _RETRY_AFTER.search(text)
    return _seconds(match.group(1), match.group(2)) if match else None


def classify(outcome: Outcome, stderr_tail: str = "") -> Verdict | None:
    """Whether a failed run hit a quota or a rate limit (None: an ordinary failure)."""
    if outcome.status != TaskState.FAILED:
        return None
    text = f"{outcome.error_msg}\n{stderr_tail}"
    if _QUOTA.search(text) or outcome.details.get("quota"):
        reset = _RESET_HOURS.search(text)
        return Verdict(Limit.QUOTA, float(reset.group(1)) * 3600 if reset else None)
    if outcome.api_error_status in _RATE_STATUSES or _RATE.search(text):
        hint = outcome.details.get("retry_after")
        told = retry_after_in(text)
        if told is None and isinstance(hint, int | float):
            told = float(hint)
        return Verdict(Limit.RATE, told)
    return None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff for rate limits without a Retry-After, and the quota default."""

    base: float = 30.0  # seconds, after the first rate limit
    cap: float = 900.0  # never wait longer than this for a rate limit
    quota_wait: float = 3600.0  # how long an exhausted quota is assumed to last if unsaid

    def rate_wait(self, strikes: int, retry_after: float | None) -> float:
        """Seconds to wait after the ``strikes``-th consecutive rate limit (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        return float(min(self.base * 2.0 ** max(strikes - 1, 0), self.cap))


def after_failure(
    status: AgentStatus, verdict: Verdict | None, error: str, now: datetime, backoff: Backoff
) -> AgentStatus:
    """The agent's status after a failed run."""
    update: dict[str, object] = {
        "consecutive_failures": status.consecutive_failures + 1,
        "last_error": error[:500],
        "updated_at": now,
    }
    if verdict is not None and verdict.limit == Limit.RATE:
        strikes = status.rate_limit_strikes + 1
        wait = backoff.rate_wait(strikes, verdict.retry_after)
        update |= {"rate_limit_strikes": strikes, "limited_until": now + timedelta(seconds=wait)}
    elif verdict is not None and verdict.limit == Limit.QUOTA:
        wait = verdict.retry_after if verdict.retry_after is not None else backoff.quota_wait
        update["unavailable_until"] = now + timedelta(seconds=wait)
    return status.model_copy(update=update)


def after_success(status: AgentStatus, now: datetime) -> AgentStatus:
    """The agent's status after a run that reached the model fine.

    The failure count, the rate-limit strikes and the last error are cleared (a view must not
    show an error the agent has since got past), and so is an out-of-quota window: the agent
    just ran, so its quota is back. A rate-limit window is kept: another run may have been
    limited while this one worked, and it is short.
    """
    return status.model_copy(
        update={
            "consecutive_failures": 0,
            "rate_limit_strikes": 0,
            "last_error": "",
            "unavailable_until": None,
            "updated_at": now,
        }
    )
