"""ClaudeStream fed the real captured stream-json samples, line by line."""

from __future__ import annotations

import json

import pytest

from claudomator.agents.claude_stream import ClaudeStream
from claudomator.summary import from_text
from conftest import SAMPLES

CLAUDE = SAMPLES / "claude"


def _lines(name: str) -> list[str]:
    return (CLAUDE / name).read_text(encoding="utf-8").splitlines()


def _feed(name: str) -> ClaudeStream:
    stream = ClaudeStream()
    for line in _lines(name):
        stream.feed(line)
    return stream


def _raw_result(name: str) -> dict[str, object]:
    events = [json.loads(line) for line in _lines(name)]
    [result] = [e for e in events if e.get("type") == "result"]
    assert isinstance(result, dict)
    return result


ALL_STREAMS = sorted(p.name for p in CLAUDE.glob("*.jsonl"))


def test_the_samples_are_there() -> None:
    assert len(ALL_STREAMS) >= 20
    assert "claude_basic_stream.jsonl" in ALL_STREAMS


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_every_sample_parses_cleanly(name: str) -> None:
    stream = _feed(name)
    assert stream.bad_lines == 0
    assert stream.session_id  # every sample names its session somewhere


@pytest.mark.parametrize(
    ("name", "session", "model", "cost"),
    [
        (
            "claude_basic_stream.jsonl",
            "11111111-1111-4111-8111-111111111111",
            "claude-opus-4-8[1m]",
            0.002,
        ),
        (
            "claude_2.1.330_basic_stream.jsonl",
            "77777777-7777-4777-8777-777777777777",
            "claude-opus-5-5",
            0.0016,
        ),
    ],
    ids=["2.1.197", "2.1.330"],
)
def test_basic_stream(name: str, session: str, model: str, cost: float) -> None:
    stream = _feed(name)
    assert stream.session_id == session
    assert stream.model == model
    assert stream.texts == ["I'll create the file.", "## Summary\nCreated hello.txt"]
    assert any("## Summary" in t for t in stream.texts)
    assert stream.tools_used == ["Bash"]
    assert stream.result is not None
    assert stream.is_error is False
    assert stream.subtype == "success"
    assert stream.api_error_status is None
    assert stream.errors == []
    assert stream.result_text == "## Summary\nCreated hello.txt"
    assert stream.cost_usd == pytest.approx(cost)
    assert stream.tokens == (200, 40)
    assert stream.retries == 0
    # the result text repeats the last message: it is not appended twice
    assert stream.text == "I'll create the file.\n\n## Summary\nCreated hello.txt"
    assert from_text(stream.text) == "Created hello.txt"


def test_resumed_run_costs_only_this_run_on_2_1_330() -> None:
    name = "claude_2.1.330_resume_run2.jsonl"
    assert _raw_result(name)["total_cost_usd"] == 0.0032  # cumulative over the session
    stream = _feed(name)
    assert stream.cost_usd == pytest.approx(0.0016)
    assert stream.session_id == "88888888-8888-4888-8888-888888888888"
    assert stream.tools_used == ["Write"]
    assert stream.tokens == (200, 40)
    assert from_text(stream.text) == "Resumed and wrote second.txt"


def test_resumed_run_on_2_1_197_uses_total_cost() -> None:
    stream = _feed("claude_resume_run2.jsonl")
    assert stream.cost_usd == pytest.approx(0.002)
    assert stream.session_id == "33333333-3333-4333-8333-333333333333"


@pytest.mark.parametrize("name", ["claude_2.1.330_err_500.jsonl", "claude_err_c500.jsonl"])
def test_api_500_is_an_error_although_subtype_success(name: str) -> None:
    stream = _feed(name)
    assert stream.subtype == "success"
    assert stream.is_error is True
    assert stream.api_error_status == 500
    assert stream.result_text.startswith("API Error: 500")
    assert stream.retries == 2
    assert stream.last_retry_error == "server_error"
    assert stream.cost_usd == 0.0
    assert stream.tokens == (0, 0)
    assert stream.tools_used == []


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("claude_err_c400.jsonl", 400),
        ("claude_err_c401.jsonl", 401),
        ("claude_err_c529.jsonl", 529),
    ],
)
def test_other_api_errors(name: str, status: int) -> None:
    stream = _feed(name)
    assert stream.is_error
    assert stream.api_error_status == status


def test_connection_refused_has_no_status() -> None:
    stream = _feed("claude_err_connection_refused.jsonl")
    assert stream.is_error
    assert stream.api_error_status is None
    assert "ConnectionRefused" in stream.result_text


def test_persistent_429() -> None:
    stream = _feed("claude_429_persistent.jsonl")
    assert stream.is_error
    assert stream.api_error_status == 429
    assert stream.retries == 10
    assert stream.last_retry_error == "rate_limit"
    assert "429" in stream.result_text


@pytest.mark.parametrize(
    "name", ["claude_429_then_success.jsonl", "claude_2.1.330_err_429once.jsonl"]
)
def test_429_once_then_success(name: str) -> None:
    stream = _feed(name)
    assert stream.retries == 1
    assert stream.last_retry_error == "rate_limit"
    assert not stream.is_error
    assert stream.api_error_status is None
    assert from_text(stream.text) == "Recovered after 429"


def test_max_budget() -> None:
    stream = _feed("claude_max_budget.jsonl")
    assert stream.subtype == "error_max_budget_usd"
    assert stream.is_error
    assert stream.errors == ["Reached maximum budget ($0.5)"]
    assert stream.result_text == ""
    assert stream.cost_usd == pytest.approx(0.75)
    assert stream.tokens == (100000, 5000)
    assert stream.tools_used == ["Bash", "Bash"]
    assert stream.texts == []


def test_max_turns() -> None:
    stream = _feed("claude_max_turns.jsonl")
    assert stream.subtype == "error_max_turns"
    assert stream.errors == ["Reached maximum number of turns (2)"]


def test_resume_unknown_id_is_only_a_result_line() -> None:
    assert len(_lines("claude_resume_unknown_id_error.jsonl")) == 1
    stream = _feed("claude_resume_unknown_id_error.jsonl")
    assert stream.session_id == "99999999-9999-4999-8999-999999999999"
    assert stream.model == ""
    assert stream.texts == []
    assert stream.is_error
    assert stream.subtype == "error_during_execution"
    assert any("No conversation found" in e for e in stream.errors)
    assert stream.text == ""


def test_killed_midrun_has_no_result() -> None:
    stream = _feed("claude_killed_midrun_SIGTERM.jsonl")
    assert stream.result is None
    assert stream.is_error is True
    assert stream.subtype == ""
    assert stream.api_error_status is None
    assert stream.result_text == ""
    assert stream.errors == []
    assert stream.cost_usd == 0.0
    assert stream.tokens == (0, 0)
    assert stream.tools_used == ["Bash"]
    assert stream.session_id == "99999999-1111-4111-8111-999999999999"


def test_partial_messages_are_ignored() -> None:
    stream = _feed("claude_include_partial_messages.jsonl")
    assert stream.bad_lines == 0
    assert stream.texts == ["I'll create the file.", "## Summary\nCreated hello.txt"]
    assert stream.tools_used == ["Bash"]
    assert stream.tokens == (200, 40)


def test_tool_failures_do_not_make_the_run_an_error() -> None:
    stream = _feed("claude_tool_failures.jsonl")
    assert stream.tools_used == ["Bash", "NoSuchTool"]
    assert not stream.is_error


def test_empty_response_nudge() -> None:
    stream = _feed("claude_empty_response_nudge.jsonl")
    assert stream.is_error
    assert stream.subtype == "error_during_execution"
    assert stream.texts == []  # the nudge is a user message, not the agent's text
    assert stream.tokens == (400, 4)


def test_garbage_lines_are_counted_and_skipped() -> None:
    garbage = ["not json at all", "", "[1, 2]", '"a string"', '{"type": "assis', "42"]
    stream = ClaudeStream()
    for index, line in enumerate(_lines("claude_basic_stream.jsonl")):
        stream.feed(line)
        stream.feed(garbage[index % len(garbage)])
    assert stream.bad_lines == 6
    assert stream.session_id == "11111111-1111-4111-8111-111111111111"
    assert stream.tools_used == ["Bash"]
    assert stream.cost_usd == pytest.approx(0.002)
    assert not stream.is_error


def test_result_text_is_appended_when_new() -> None:
    stream = ClaudeStream()
    stream.feed(
        json.dumps({"type": "assistant", "message": {"content": [{"type": "text", "text": "a"}]}})
    )
    stream.feed(json.dumps({"type": "result", "subtype": "success", "result": "final words"}))
    assert stream.text == "a\n\nfinal words"
    only = ClaudeStream()
    only.feed(json.dumps({"type": "result", "result": "just this"}))
    assert only.text == "just this"


def test_odd_values_do_not_crash() -> None:
    stream = ClaudeStream()
    stream.feed(json.dumps({"type": "assistant", "message": "not a dict"}))
    stream.feed(json.dumps({"type": "assistant", "message": {"content": ["x", {"type": "text"}]}}))
    stream.feed(
        json.dumps(
            {
                "type": "result",
                "is_error": False,
                "api_error_status": "500",
                "total_cost_usd": True,
                "usage": {"input_tokens": "many", "output_tokens": 3},
                "errors": "not a list",
            }
        )
    )
    assert stream.texts == []
    assert stream.api_error_status is None
    assert stream.cost_usd == 0.0
    assert stream.tokens == (0, 3)
    assert stream.errors == []
    assert stream.bad_lines == 0


def test_session_id_follows_the_latest_event() -> None:
    stream = ClaudeStream()
    stream.feed(json.dumps({"type": "system", "subtype": "init", "session_id": "one"}))
    stream.feed(json.dumps({"type": "system", "subtype": "status", "session_id": ""}))
    assert stream.session_id == "one"
    stream.feed(json.dumps({"type": "result", "session_id": "two"}))
    assert stream.session_id == "two"
