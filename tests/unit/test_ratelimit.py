"""Rate limits and quota exhaustion: recognised in real CLI error texts, and the backoff."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from claudomator.agents.base import Outcome
from claudomator.agents.claude_stream import ClaudeStream
from claudomator.agents.gemini_stream import GeminiStream, status_from_exit
from claudomator.models import AgentStatus, TaskState
from claudomator.ratelimit import (
    Backoff,
    Limit,
    Verdict,
    after_failure,
    after_success,
    classify,
    retry_after_in,
)
from conftest import SAMPLES

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _claude_failure(name: str) -> Outcome:
    """The outcome ClaudeRunner makes of a failed sample: the result text and API status."""
    stream = ClaudeStream()
    for line in (SAMPLES / "claude" / name).read_text(encoding="utf-8").splitlines():
        stream.feed(line)
    assert stream.is_error, name
    return Outcome(
        TaskState.FAILED,
        error_msg=stream.result_text,
        api_error_status=stream.api_error_status,
    )


def _gemini_failure(name: str, exit_code: int) -> Outcome:
    """The outcome GeminiRunner makes of a failed sample (the status falls back to the exit)."""
    stream = GeminiStream()
    for line in (SAMPLES / "gemini" / name).read_text(encoding="utf-8").splitlines():
        stream.feed(line)
    assert not stream.succeeded, name
    return Outcome(
        TaskState.FAILED,
        exit_code=exit_code,
        error_msg=stream.error_message,
        api_error_status=stream.api_error_status or status_from_exit(exit_code),
    )


# -- classify ------------------------------------------------------------------------------


def test_claude_persistent_429_is_a_rate_limit() -> None:
    outcome = _claude_failure("claude_429_persistent.jsonl")
    assert "per-minute rate limit" in outcome.error_msg
    assert classify(outcome) == Verdict(Limit.RATE, None)


def test_claude_persistent_429_text_alone_is_a_rate_limit() -> None:
    outcome = _claude_failure("claude_429_persistent.jsonl")
    outcome = dataclasses.replace(outcome, api_error_status=None)
    verdict = classify(outcome)
    assert verdict is not None
    assert verdict.limit == Limit.RATE


@pytest.mark.parametrize(
    "name", ["claude_err_c529.jsonl", "claude_err_sse_midstream_persistent.jsonl"]
)
def test_claude_529_overloaded_is_a_rate_limit(name: str) -> None:
    outcome = _claude_failure(name)
    assert outcome.api_error_status == 529
    assert classify(outcome) == Verdict(Limit.RATE, None)


@pytest.mark.parametrize(
    "name",
    [
        "claude_err_c500.jsonl",
        "claude_2.1.330_err_500.jsonl",
        "claude_err_c400.jsonl",
        "claude_err_c401.jsonl",
        "claude_err_connection_refused.jsonl",
    ],
)
def test_other_claude_failures_are_not_limits(name: str) -> None:
    outcome = _claude_failure(name)
    # "try again in a moment" names no duration, and is no rate limit
    assert classify(outcome) is None


def test_gemini_daily_quota_is_quota() -> None:
    outcome = _gemini_failure("gemini_err_429daily.jsonl", 173)
    assert "exhausted your daily quota" in outcome.error_msg
    verdict = classify(outcome)
    assert verdict is not None
    assert verdict.limit == Limit.QUOTA
    assert verdict.retry_after is None  # no reset time given: the backoff's quota_wait applies


@pytest.mark.parametrize("name", ["gemini_err_429always.jsonl", "gemini_err_429fast.jsonl"])
def test_gemini_429_is_a_rate_limit_through_the_api_status(name: str) -> None:
    outcome = _gemini_failure(name, 173)
    assert outcome.api_error_status == 429
    assert classify(outcome) == Verdict(Limit.RATE, 1.0)  # "Suggested retry after 1s."


def test_gemini_429_text_without_the_status_is_no_limit() -> None:
    """The message ("Resource has been exhausted") says nothing the patterns know."""
    outcome = _gemini_failure("gemini_err_429always.jsonl", 173)
    outcome = dataclasses.replace(outcome, api_error_status=None)
    assert classify(outcome) is None


def test_gemini_500_is_no_limit() -> None:
    outcome = _gemini_failure("gemini_err_500.jsonl", 244)
    assert outcome.api_error_status == 500
    assert classify(outcome) is None


@pytest.mark.parametrize(
    "text",
    [
        "Claude AI usage limit reached|1767225600",
        "You have exhausted your daily quota on this model.",
        "TerminalQuotaError: quota for today is gone",
        "You exceeded your free-tier quota",
        "free tier quota exhausted",
        "Quota exceeded for quota metric 'Requests' per day",
        "quotaId: GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        # an OpenAI-compatible provider's 429, as Qwen Code passes it on
        "429 You exceeded your current quota, please check your plan and billing details.",
        '{"error": {"code": "insufficient_quota", "type": "insufficient_quota"}}',
    ],
)
def test_quota_patterns(text: str) -> None:
    verdict = classify(Outcome(TaskState.FAILED, error_msg=text))
    assert verdict is not None
    assert verdict.limit == Limit.QUOTA


def test_quota_beats_rate_limit_when_both_appear() -> None:
    outcome = Outcome(
        TaskState.FAILED,
        error_msg="429 Too Many Requests: rate limit; usage limit reached",
        api_error_status=429,
    )
    verdict = classify(outcome)
    assert verdict is not None
    assert verdict.limit == Limit.QUOTA


def test_quota_in_stderr_tail_counts() -> None:
    outcome = Outcome(TaskState.FAILED, error_msg="API error 429", api_error_status=429)
    verdict = classify(outcome, "TerminalQuotaError: You have exhausted your daily quota")
    assert verdict is not None
    assert verdict.limit == Limit.QUOTA


def test_quota_flag_in_details_is_quota() -> None:
    outcome = Outcome(TaskState.FAILED, error_msg="something odd", details={"quota": True})
    verdict = classify(outcome)
    assert verdict is not None
    assert verdict.limit == Limit.QUOTA


def test_quota_with_a_stated_reset_waits_until_then() -> None:
    outcome = Outcome(TaskState.FAILED, error_msg="usage limit reached; resets in 5h")
    assert classify(outcome) == Verdict(Limit.QUOTA, 5 * 3600.0)


def test_rate_limit_carries_the_retry_after() -> None:
    outcome = Outcome(TaskState.FAILED, error_msg="Too many requests, retry after 30s")
    assert classify(outcome) == Verdict(Limit.RATE, 30.0)


def test_rate_status_without_words_is_a_rate_limit() -> None:
    outcome = Outcome(TaskState.FAILED, error_msg="boom", api_error_status=429)
    assert classify(outcome) == Verdict(Limit.RATE, None)


def test_ordinary_failure_is_none() -> None:
    outcome = Outcome(TaskState.FAILED, error_msg="SyntaxError in foo.py", api_error_status=500)
    assert classify(outcome) is None


@pytest.mark.parametrize(
    "state",
    [
        TaskState.COMPLETED,
        TaskState.TIMED_OUT,
        TaskState.CANCELLED,
        TaskState.BUDGET_EXCEEDED,
    ],
)
def test_only_failed_runs_are_classified(state: TaskState) -> None:
    outcome = Outcome(
        state,
        error_msg="429 rate limit; usage limit reached",
        api_error_status=429,
        details={"quota": True},
    )
    assert classify(outcome) is None


# -- retry_after_in ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("retry after 30s", 30.0),
        ("Please retry after 30 seconds", 30.0),
        ("Retry-After: 12", 12.0),
        ('"retryDelay": "5s"', 5.0),
        ("{'retryDelay': '7s'}".replace("'", '"'), 7.0),
        ("Please retry in 1.5s", 1.5),
        ("try again in 2 minutes", 120.0),
        ("try again in 3 min", 180.0),
        ("retry after 250ms", 0.25),
        ("Please retry in 800 ms.", 0.8),
        ("Suggested retry after 1s.", 1.0),
    ],
)
def test_retry_after_in(text: str, seconds: float) -> None:
    assert retry_after_in(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("try again in 2 hours", 7200.0), ("Please try again in 1h", 3600.0)],
)
def test_retry_after_in_hours(text: str, seconds: float) -> None:
    assert retry_after_in(text) == pytest.approx(seconds)


def test_retry_after_in_unit_must_be_a_whole_word() -> None:
    assert retry_after_in("please try again in 5 more seconds") == pytest.approx(5.0)


@pytest.mark.parametrize(
    "text",
    ["", "rate limited", "try again in a moment", "wait 30s and retry", "retry later"],
)
def test_retry_after_in_none(text: str) -> None:
    assert retry_after_in(text) is None


# -- Backoff -------------------------------------------------------------------------------


def test_rate_wait_doubles_from_the_base_and_is_capped() -> None:
    backoff = Backoff(base=10, cap=100, quota_wait=500)
    waits = [backoff.rate_wait(strikes, None) for strikes in range(1, 7)]
    assert waits == [10, 20, 40, 80, 100, 100]
    assert backoff.rate_wait(0, None) == 10  # never below the base


def test_rate_wait_honours_retry_after_but_caps_it() -> None:
    backoff = Backoff(base=10, cap=100)
    assert backoff.rate_wait(5, 3) == 3  # the provider's word beats the exponential
    assert backoff.rate_wait(1, 250) == 100
    assert backoff.rate_wait(1, -5) == 0
    assert backoff.rate_wait(1, 0) == 0


def test_backoff_defaults() -> None:
    backoff = Backoff()
    assert (backoff.base, backoff.cap, backoff.quota_wait) == (30.0, 900.0, 3600.0)


# -- after_failure / after_success ---------------------------------------------------------


def test_rate_limit_sets_limited_until_and_counts_strikes() -> None:
    backoff = Backoff(base=10, cap=1000)
    status = AgentStatus(agent="claude")
    first = after_failure(status, Verdict(Limit.RATE, None), "429", NOW, backoff)
    assert first.rate_limit_strikes == 1
    assert first.consecutive_failures == 1
    assert first.limited_until == NOW + timedelta(seconds=10)
    assert first.unavailable_until is None
    assert first.updated_at == NOW
    assert first.last_error == "429"

    later = NOW + timedelta(seconds=11)
    second = after_failure(first, Verdict(Limit.RATE, None), "429 again", later, backoff)
    assert second.rate_limit_strikes == 2
    assert second.consecutive_failures == 2
    assert second.limited_until == later + timedelta(seconds=20)
    assert second.last_error == "429 again"
    assert status.rate_limit_strikes == 0  # frozen: the input is unchanged


def test_rate_limit_with_retry_after_uses_it() -> None:
    status = AgentStatus(agent="gemini", rate_limit_strikes=4)
    after = after_failure(status, Verdict(Limit.RATE, 1.0), "x", NOW, Backoff(base=10))
    assert after.rate_limit_strikes == 5
    assert after.limited_until == NOW + timedelta(seconds=1)


def test_quota_sets_unavailable_until() -> None:
    backoff = Backoff(quota_wait=3600)
    status = AgentStatus(agent="gemini")
    unsaid = after_failure(status, Verdict(Limit.QUOTA, None), "daily quota", NOW, backoff)
    assert unsaid.unavailable_until == NOW + timedelta(seconds=3600)
    assert unsaid.limited_until is None
    assert unsaid.rate_limit_strikes == 0
    assert unsaid.consecutive_failures == 1
    said = after_failure(status, Verdict(Limit.QUOTA, 7200.0), "resets in 2h", NOW, backoff)
    assert said.unavailable_until == NOW + timedelta(seconds=7200)


def test_ordinary_failure_counts_but_blocks_nothing() -> None:
    status = AgentStatus(agent="claude", consecutive_failures=2, rate_limit_strikes=1)
    after = after_failure(status, None, "boom", NOW, Backoff())
    assert after.consecutive_failures == 3
    assert after.rate_limit_strikes == 1
    assert after.limited_until is None
    assert after.unavailable_until is None
    assert after.blocked_until(NOW) is None


def test_last_error_is_truncated() -> None:
    after = after_failure(AgentStatus(agent="claude"), None, "e" * 2000, NOW, Backoff())
    assert after.last_error == "e" * 500


def test_success_resets_failures_and_strikes() -> None:
    limited = NOW - timedelta(seconds=5)
    status = AgentStatus(
        agent="claude",
        consecutive_failures=3,
        rate_limit_strikes=2,
        limited_until=limited,
        last_error="429",
    )
    after = after_success(status, NOW)
    assert after.consecutive_failures == 0
    assert after.rate_limit_strikes == 0
    assert after.updated_at == NOW
    assert after.limited_until == limited  # past windows are harmless; kept for history
    assert after.last_error == ""  # a view must not keep showing an error the agent got past
    # the next rate limit starts the backoff from the base again
    again = after_failure(after, Verdict(Limit.RATE, None), "429", NOW, Backoff(base=10))
    assert again.limited_until == NOW + timedelta(seconds=10)


def test_success_ends_an_out_of_quota_window_and_clears_the_last_error() -> None:
    status = AgentStatus(
        agent="gemini",
        consecutive_failures=1,
        unavailable_until=NOW + timedelta(hours=1),
        last_error="TerminalQuotaError: exhausted your daily quota",
    )
    after = after_success(status, NOW)
    assert after.unavailable_until is None
    assert after.blocked_until(NOW) is None
    assert after.last_error == ""
    assert after.consecutive_failures == 0


# -- AgentStatus.blocked_until -------------------------------------------------------------


def test_blocked_until() -> None:
    soon, later, past = (
        NOW + timedelta(minutes=1),
        NOW + timedelta(hours=1),
        NOW - timedelta(minutes=1),
    )
    assert AgentStatus(agent="a").blocked_until(NOW) is None
    assert AgentStatus(agent="a", limited_until=soon).blocked_until(NOW) == soon
    assert AgentStatus(agent="a", unavailable_until=later).blocked_until(NOW) == later
    both = AgentStatus(agent="a", limited_until=soon, unavailable_until=later)
    assert both.blocked_until(NOW) == later
    assert both.blocked_until(soon + timedelta(seconds=1)) == later
    assert both.blocked_until(later) is None  # "until" is exclusive: usable at that instant
    expired = AgentStatus(agent="a", limited_until=past, unavailable_until=past)
    assert expired.blocked_until(NOW) is None
    mixed = AgentStatus(agent="a", limited_until=soon, unavailable_until=past)
    assert mixed.blocked_until(NOW) == soon


def test_claude_retry_delay_is_the_backoff_hint_when_no_retry_after_is_quoted() -> None:
    from claudomator.agents.claude_stream import ClaudeStream

    stream = ClaudeStream()
    for line in (SAMPLES / "claude" / "claude_429_persistent.jsonl").read_text().splitlines():
        stream.feed(line)
    assert stream.last_retry_delay_ms is not None
    hint = stream.last_retry_delay_ms / 1000
    outcome = Outcome(
        TaskState.FAILED,
        error_msg=stream.result_text,
        api_error_status=stream.api_error_status,
        details={"retry_after": hint},
    )
    verdict = classify(outcome)
    assert verdict == Verdict(Limit.RATE, hint)
