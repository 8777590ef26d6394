"""What an attempt's outcome says about its agent: a rate limit to wait out, or its health.

Each function is one read-modify-write of the agent's status, run by the attempt in the
store executor (through :func:`~claudomator.persist.until_stored`); the arithmetic is
:mod:`claudomator.ratelimit`'s.
"""

from __future__ import annotations

import logging

from claudomator import ratelimit
from claudomator.config import Settings
from claudomator.models import TaskState, utcnow
from claudomator.store.base import Store

logger = logging.getLogger(__name__)


def backoff(settings: Settings) -> ratelimit.Backoff:
    """The backoff ``settings`` configure."""
    return ratelimit.Backoff(
        settings.rate_limit_backoff_seconds,
        settings.rate_limit_backoff_max_seconds,
        settings.quota_wait_seconds,
    )


def record_limit(
    store: Store, agent: str, verdict: ratelimit.Verdict, error: str, wait: ratelimit.Backoff
) -> str:
    """Make ``agent`` unavailable for the limit it hit; returns until when (``HH:MM:SS UTC``)."""
    now = utcnow()
    status = ratelimit.after_failure(store.agent_status(agent), verdict, error, now, wait)
    store.save_agent_status(status)
    until = status.blocked_until(now) or now
    logger.warning(
        "%s hit a %s; unavailable until %s",
        agent,
        verdict.limit.value,
        until.isoformat(timespec="seconds"),
        extra={"action": "rate_limit"},
    )
    return until.strftime("%H:%M:%S UTC")


def record_health(
    store: Store, agent: str, ended: TaskState, error: str, wait: ratelimit.Backoff
) -> None:
    """A run that ended ``ended``: a failure (FAILED, TIMED_OUT) counts against ``agent``, any
    other ending reached the model fine (the caller skips runs we stopped ourselves)."""
    now = utcnow()
    status = store.agent_status(agent)
    if ended in (TaskState.FAILED, TaskState.TIMED_OUT):
        status = ratelimit.after_failure(status, None, error, now, wait)
    else:
        status = ratelimit.after_success(status, now)
    store.save_agent_status(status)
