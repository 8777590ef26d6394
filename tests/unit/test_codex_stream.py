"""The Codex CLI's stream parser and session-file reader, on the recorded samples of Codex
0.169.0 (tests/samples/codex-0.169.0)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from claudomator.agents.codex_session import (
    find_rollout,
    sandbox_failures,
    session_model,
    session_usage,
    size_of,
)
from claudomator.agents.codex_stream import CodexStream, names_quota, status_in
from conftest import SAMPLES

CODEX = SAMPLES / "codex-0.169.0"
ALL_STREAMS = sorted(
    p.name for p in CODEX.glob("*.jsonl") if not p.name.endswith("_rollout_excerpt.jsonl")
)
HIGH_DEMAND = "We\u2019re currently experiencing high demand, which may cause temporary errors."


def _feed(name: str) -> CodexStream:
    stream = CodexStream()
    for line in (CODEX / name).read_text(encoding="utf-8").splitlines():
        stream.feed(line)
    return stream


@dataclass(frozen=True)
class Expected:
    """What each sample must parse to."""

    completed: bool
    tokens: tuple[int, int]  # as turn.completed says (cumulative over the session)
    commands: int
    retries: int
    api_status: int | None
    message: str = ""  # the start of the failure message


EXPECTED: dict[str, Expected] = {
    "codex_0.169.0_text_only.jsonl": Expected(True, (10, 5), 0, 0, None),
    "codex_0.169.0_basic_tool.jsonl": Expected(True, (200, 40), 1, 0, None),
    "codex_0.169.0_429_once.jsonl": Expected(True, (200, 40), 1, 1, None),
    "codex_0.169.0_err500.jsonl": Expected(False, (0, 0), 0, 5, 500, HIGH_DEMAND),
    "codex_0.169.0_err_500_retries0.jsonl": Expected(False, (0, 0), 0, 0, 500, HIGH_DEMAND),
    "codex_0.169.0_err_502_retries1.jsonl": Expected(
        False, (0, 0), 0, 1, 502, "unexpected status 502 Bad Gateway: bad gateway upstream (fake)"
    ),
    "codex_0.169.0_err_429_persistent_retries0.jsonl": Expected(
        False, (0, 0), 0, 0, 429, "exceeded retry limit, last status: 429 Too Many Requests"
    ),
    "codex_0.169.0_err_429_insufficient_quota.jsonl": Expected(
        False, (0, 0), 0, 0, None, "Quota exceeded. Check your plan and billing details."
    ),
    "codex_0.169.0_err_400.jsonl": Expected(False, (0, 0), 0, 0, None, '{"error": '),
    "codex_0.169.0_err_401_retries0.jsonl": Expected(
        False, (0, 0), 0, 0, 401, "unexpected status 401 Unauthorized: Incorrect API key"
    ),
    "codex_0.169.0_err_stream_failed_retries1.jsonl": Expected(
        False, (0, 0), 0, 1, None, "stream disconnected before completion: The model failed"
    ),
    "codex_0.169.0_resume_run1.jsonl": Expected(True, (200, 40), 1, 0, None),
    "codex_0.169.0_resume_run2.jsonl": Expected(True, (400, 80), 1, 0, None),
    "codex_0.169.0_bubblewrap_workspace_write.jsonl": Expected(True, (200, 40), 0, 0, None),
}


def test_every_sample_has_an_expectation() -> None:
    assert len(ALL_STREAMS) >= 14
    assert sorted(EXPECTED) == ALL_STREAMS


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_every_sample_parses(name: str) -> None:
    want = EXPECTED[name]
    stream = _feed(name)
    events = [json.loads(line) for line in (CODEX / name).read_text().splitlines()]
    assert stream.bad_lines == 0
    assert stream.session_id == events[0]["thread_id"]
    assert stream.completed is want.completed
    assert stream.failed is not want.completed
    assert stream.tokens == want.tokens
    assert stream.commands_run == want.commands
    assert stream.retries == want.retries
    assert stream.api_error_status == want.api_status
    assert stream.turns == 1
    if want.completed:
        assert stream.error_message == ""
        assert "## Summary" in stream.text
    else:
        assert stream.error_message.startswith(want.message)
        assert stream.text == ""
    # the model-metadata warning is an item, not a failure
    if "bubblewrap" not in name:
        assert any("Model metadata" in w for w in stream.warnings)


def test_messages_are_kept_in_order_and_joined() -> None:
    stream = _feed("codex_0.169.0_basic_tool.jsonl")
    assert stream.texts == ["I'll create the file.", "## Summary\nCreated hello.txt"]
    assert stream.text == "I'll create the file.\n\n## Summary\nCreated hello.txt"
    [command] = stream.commands.values()
    assert command.command.startswith("/bin/bash -lc ")
    assert (command.exit_code, command.status) == (0, "completed")
    assert stream.tools == ["command_execution"]


def test_the_live_estimate_grows_with_what_the_model_sees_and_writes() -> None:
    stream = CodexStream(context_chars=4000)  # the prompt
    stream.feed(json.dumps({"type": "thread.started", "thread_id": "t"}))
    stream.feed(
        json.dumps({"type": "item.completed", "item": {"type": "agent_message", "text": "x" * 400}})
    )
    assert stream.live_tokens == (1000, 100)
    output = {
        "id": "c",
        "type": "command_execution",
        "command": "ls",
        "aggregated_output": "y" * 8000,
    }
    stream.feed(json.dumps({"type": "item.started", "item": output | {"aggregated_output": ""}}))
    stream.feed(json.dumps({"type": "item.completed", "item": output | {"exit_code": 0}}))
    stream.feed(
        json.dumps({"type": "item.completed", "item": {"type": "agent_message", "text": "done"}})
    )
    # the second model turn was sent the prompt, the first message, the command and its output
    assert stream.live_tokens[0] == (4000 + (4000 + 400 + 2 + 8000)) // 4


def test_garbage_lines_are_counted_not_fatal() -> None:
    stream = CodexStream()
    for line in ("Reading additional input from stdin...", "[1, 2]", '{"type": "turn.completed"}'):
        stream.feed(line)
    assert stream.bad_lines == 2
    assert stream.completed  # usage missing: still completed, zero tokens
    assert stream.tokens == (0, 0)


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("exceeded retry limit, last status: 429 Too Many Requests", 429),
        ("unexpected status 502 Bad Gateway: nope, url: http://x/v1/responses", 502),
        (HIGH_DEMAND, 500),
        ("stream disconnected before completion: boom", None),
        ("Quota exceeded. Check your plan and billing details.", None),
    ],
)
def test_status_in_a_codex_message(message: str, status: int | None) -> None:
    assert status_in(message) == status


def test_quota_messages_are_recognised() -> None:
    assert names_quota("Quota exceeded. Check your plan and billing details.")
    assert names_quota("You've hit your usage limit. Try again later.")
    assert not names_quota("exceeded retry limit, last status: 429 Too Many Requests")


# -- the session file ---------------------------------------------------------------------


def _codex_home(tmp_path: Path, thread: str, *names: str) -> Path:
    home = tmp_path / ".codex"
    folder = home / "sessions" / "2026" / "12" / "02"
    folder.mkdir(parents=True)
    text = "".join((CODEX / n).read_text(encoding="utf-8") for n in names)
    (folder / f"rollout-2026-12-02T17-27-51-{thread}.jsonl").write_text(text, encoding="utf-8")
    return home


def test_the_session_file_gives_usage_model_and_sandbox_failures(tmp_path: Path) -> None:
    thread = "01a237cc-64d9-7ae1-8ee8-3a6fb4dd0bd7"
    home = _codex_home(
        tmp_path, thread, "codex_0.169.0_bubblewrap_workspace_write_rollout_excerpt.jsonl"
    )
    rollout = find_rollout(home, thread)
    assert rollout is not None
    assert session_usage(rollout) == (200, 40)
    assert session_model(rollout) == "fake-model"
    check = sandbox_failures(rollout)
    assert check.failed == 1
    assert check.first == "bwrap: setting up uid map: Operation not permitted"
    assert "bwrap: setting up uid map" in check.message()
    # from the end of the file on (a resumed run's own lines): nothing
    assert sandbox_failures(rollout, size_of(rollout)).failed == 0
    assert find_rollout(home, "other-thread") is None
    assert find_rollout(tmp_path / "nowhere", thread) is None
    assert session_usage(None) == (0, 0)


def test_a_broken_session_file_reads_as_empty(tmp_path: Path) -> None:
    home = tmp_path / ".codex"
    folder = home / "sessions" / "2026" / "01" / "01"
    folder.mkdir(parents=True)
    (folder / "rollout-x-t1.jsonl").write_bytes(b'\xff\xfe not json\n[1]\n{"payload": 3}\n')
    rollout = find_rollout(home, "t1")
    assert session_usage(rollout) == (0, 0)
    assert session_model(rollout) == ""
    assert sandbox_failures(rollout).failed == 0
