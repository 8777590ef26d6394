"""OpenCode's stream parser and budget guard, on the recorded samples of OpenCode 1.18.33
(tests/samples/opencode-1.18.33; docs/agents.md §18)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from claudomator.agents.base import RunContext
from claudomator.agents.opencode_stream import BudgetGuard, OpenCodeStream
from claudomator.models import AgentConfig, Task

SAMPLES = Path(__file__).parent.parent / "samples" / "opencode-1.18.33"


def parse(name: str) -> OpenCodeStream:
    stream = OpenCodeStream()
    for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines():
        stream.feed(line)
    return stream


def test_a_tool_call_then_text_completes_with_the_summed_tokens() -> None:
    stream = parse("opencode_1.18.33_basic_tool.jsonl")
    assert stream.completed
    assert stream.session_id == "ses_dccbcde41ffeJsGtQS2z2Hstbu"
    assert stream.tools == ["bash"]
    assert stream.failed_tools == 0
    assert (stream.steps, stream.last_reason) == (2, "stop")
    assert stream.tokens == (200, 40)
    assert stream.cost_usd == 0.0  # no price in that config
    assert stream.text == "I'll create the file.\n\n## Summary\nCreated hello.txt"
    assert stream.error_message == ""
    assert stream.api_error_status is None
    assert stream.bad_lines == 0


def test_opencode_cost_is_summed_over_the_steps() -> None:
    stream = parse("opencode_1.18.33_priced_run1.jsonl")
    assert stream.completed
    assert stream.cost_usd == pytest.approx(0.0012)  # 2 x (100 x $3 + 20 x $15) / 1e6
    assert stream.tokens == (200, 40)


def test_a_resumed_run_reports_its_own_tokens_and_the_same_session() -> None:
    first = parse("opencode_1.18.33_priced_run1.jsonl")
    second = parse("opencode_1.18.33_resume_run2.jsonl")
    assert second.session_id == first.session_id
    assert second.tokens == (100, 20)
    assert second.cost_usd == pytest.approx(0.0006)


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("opencode_1.18.33_err500.jsonl", 500, "Internal server error (fake)"),
        ("opencode_1.18.33_err429_retry_after_1.jsonl", 429, "Too many (fake)"),
        ("opencode_1.18.33_err400.jsonl", 400, "bad request (fake)"),
    ],
)
def test_an_api_error_is_the_servers_message_and_status(
    name: str, status: int, message: str
) -> None:
    stream = parse(name)
    assert not stream.completed
    assert stream.api_error_status == status
    assert stream.error_message == message
    assert stream.steps == 0
    assert stream.session_id.startswith("ses_")


def test_a_run_cut_after_its_tool_calls_is_not_complete() -> None:
    lines = (SAMPLES / "opencode_1.18.33_basic_tool.jsonl").read_text("utf-8").splitlines()
    stream = OpenCodeStream()
    for line in lines[:4]:  # up to the first step_finish (reason tool-calls)
        stream.feed(line)
    assert stream.last_reason == "tool-calls"
    assert not stream.completed


def test_odd_lines_are_counted_and_odd_fields_ignored() -> None:
    stream = OpenCodeStream()
    for line in (
        "not json",
        "[1]",
        json.dumps({"type": "step_finish", "part": {"tokens": {"input": True, "output": -3}}}),
        json.dumps({"type": "tool_use", "part": {"tool": "edit", "state": {"status": "error"}}}),
        json.dumps({"type": "error", "error": "boom"}),
        json.dumps({"type": "something_new", "sessionID": "ses_x"}),
    ):
        stream.feed(line)
    assert stream.bad_lines == 2
    assert stream.tokens == (0, 0)
    assert (stream.tools, stream.failed_tools) == (["edit"], 1)
    assert stream.error_message == "boom"
    assert stream.api_error_status is None
    assert stream.session_id == "ses_x"


def _ctx(budget: float | None, estimate: bool = True) -> RunContext:
    agent = AgentConfig(type="opencode", instructions="x", max_budget_usd=budget)
    return RunContext(
        task=Task(name="t", agent=agent),
        execution_id="e",
        workdir=Path("/nowhere"),
        log_dir=Path("/nowhere"),
        env={},
        session_id="s",
        timeout=1.0,
        kill_grace=1.0,
        stop=asyncio.Event(),
        estimate_cost=(lambda model, tin, tout: tin * 1e-3) if estimate else None,
    )


def feed_all(guard: BudgetGuard, name: str) -> None:
    for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines():
        guard.feed(line)


def test_the_guard_halts_on_the_reported_cost_after_a_step() -> None:
    guard = BudgetGuard(OpenCodeStream(), _ctx(0.001), "m")
    lines = (SAMPLES / "opencode_1.18.33_priced_run1.jsonl").read_text("utf-8").splitlines()
    for line in lines[:3]:  # the first step: $0.0006
        guard.feed(line)
    assert not guard.halt.is_set()
    for line in lines[3:]:  # the second: $0.0012 in all
        guard.feed(line)
    assert guard.halt.is_set()
    assert guard.over_budget == pytest.approx(0.0012)
    assert guard.message() == "cost $0.0012 passed the budget of $0.001; stopped the agent"


def test_the_guard_estimates_from_the_tokens_when_opencode_reports_no_cost() -> None:
    guard = BudgetGuard(OpenCodeStream(), _ctx(0.15), "m")
    feed_all(guard, "opencode_1.18.33_basic_tool.jsonl")  # 200 input tokens: $0.2 estimated
    assert guard.halt.is_set()
    assert guard.over_budget == pytest.approx(0.2)


@pytest.mark.parametrize(("budget", "estimate"), [(None, True), (0.15, False), (10.0, True)])
def test_the_guard_only_feeds_without_a_budget_a_price_or_when_under(
    budget: float | None, estimate: bool
) -> None:
    guard = BudgetGuard(OpenCodeStream(), _ctx(budget, estimate), "m")
    feed_all(guard, "opencode_1.18.33_basic_tool.jsonl")
    assert not guard.halt.is_set()
    assert guard.stream.steps == 2
