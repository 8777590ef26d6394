"""GeminiStream fed the real captured stream-json samples, and the Gemini runner's pure parts.

The samples under ``tests/samples/gemini`` were captured from the real Gemini CLI 0.61.0; the
runner's outcome mapping is checked by feeding them together with the exit code the CLI had.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from claudomator.agents.base import Outcome, RunContext
from claudomator.agents.gemini import GeminiRunner, build_argv, ignored_options
from claudomator.agents.gemini_stream import (
    GeminiStream,
    status_from_exit,
    status_from_message,
    strip_json_fence,
)
from claudomator.errors import AgentError
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.process import MARK_VARIABLE, Exit, kill_marked, marked_pids
from claudomator.summary import from_text
from conftest import SAMPLES

GEMINI = SAMPLES / "gemini"
ALL_STREAMS = sorted(p.name for p in GEMINI.glob("*.jsonl"))
SESSION = "0a1b2c3d-0000-4000-8000-000000000002"


def _lines(name: str) -> list[str]:
    return (GEMINI / name).read_text(encoding="utf-8").splitlines()


def _feed(name: str) -> GeminiStream:
    stream = GeminiStream()
    for line in _lines(name):
        stream.feed(line)
    return stream


def _raw_events(name: str) -> list[dict[str, object]]:
    events = [json.loads(line) for line in _lines(name)]
    assert all(isinstance(e, dict) for e in events)
    return events


@dataclass(frozen=True)
class Expected:
    """What each sample must parse to (and the exit code the CLI had when it was captured)."""

    session: str
    model: str
    status: str
    tokens: tuple[int, int]
    tools: tuple[str, ...]
    exit_code: int
    api_status: int | None  # from the result message alone


MAIN = "gemini-3.8-flash"  # the main model the router chose in the `auto` samples
PRO = "gemini-2.5-pro"
EXPECTED: dict[str, Expected] = {
    "gemini_basic_stream.jsonl": Expected(
        "9ddbf658-9399-4b70-8f48-8c4f4e683d6d", MAIN, "success", (300, 60),
        ("run_shell_command",), 0, None,
    ),
    "gemini_resume_run1.jsonl": Expected(
        "66666666-6666-4666-8666-666666666666", MAIN, "success", (300, 60),
        ("run_shell_command",), 0, None,
    ),
    "gemini_resume_run2.jsonl": Expected(
        "66666666-6666-4666-8666-666666666666", MAIN, "success", (300, 60),
        ("write_file",), 0, None,
    ),
    "gemini_tool_failures.jsonl": Expected(
        "139632f5-d976-4a3e-8391-82339243ed14", PRO, "success", (300, 60),
        ("run_shell_command", "no_such_tool"), 0, None,
    ),
    "gemini_429_then_success.jsonl": Expected(
        "16e53956-99ed-4800-bdbf-a081d1dc7238", MAIN, "success", (200, 40), (), 0, None,
    ),
    "gemini_err_400.jsonl": Expected(
        "5187c54a-2d48-4106-9f5b-78bc9f9581b1", MAIN, "error", (100, 20), (), 144, 400,
    ),
    "gemini_err_429always.jsonl": Expected(
        "07dd3795-ff3e-4c10-89e5-8a07a3727cbd", MAIN, "error", (100, 20), (), 173, None,
    ),
    "gemini_err_429fast.jsonl": Expected(
        "9ce2b817-1c0d-47d4-becc-e54f763bcc5e", PRO, "error", (0, 0), (), 173, None,
    ),
    "gemini_err_429daily.jsonl": Expected(
        "3304f1ae-9a69-4682-aa21-d8c986c963e7", PRO, "error", (0, 0), (), 173, None,
    ),
    "gemini_err_500.jsonl": Expected(
        "517fd472-723a-4f78-9cc8-48a3b34d42ae", MAIN, "error", (100, 20), (), 244, 500,
    ),
    "gemini_err_500fast.jsonl": Expected(
        "f4cb57eb-7a79-4b7f-bb98-2d827ecc94e6", PRO, "error", (0, 0), (), 244, 500,
    ),
}  # fmt: skip


def test_every_sample_has_an_expectation() -> None:
    assert len(ALL_STREAMS) >= 11
    assert sorted(EXPECTED) == ALL_STREAMS


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_every_sample_parses(name: str) -> None:
    want = EXPECTED[name]
    stream = _feed(name)
    assert stream.bad_lines == 0
    assert stream.session_id == want.session
    assert stream.model == want.model
    assert stream.status == want.status
    assert stream.succeeded is (want.status == "success")
    assert stream.tokens == want.tokens
    assert tuple(stream.tools_used) == want.tools
    assert stream.api_error_status == want.api_status
    assert stream.prompt  # the user message is the prompt
    # the text is exactly the assistant deltas, nothing lost or invented
    deltas = "".join(
        str(e["content"])
        for e in _raw_events(name)
        if e.get("type") == "message" and e.get("role") == "assistant"
    )
    assert "".join(stream.texts) == deltas
    if want.status == "error":
        assert stream.error_type == "unknown"
        assert stream.error_message.startswith("[API Error: ")
        assert stream.text == ""
    else:
        assert stream.error_message == ""
        assert from_text(stream.text)  # every successful sample ends with a summary


def test_init_model_auto_resolves_to_the_main_model_not_the_router() -> None:
    stream = _feed("gemini_basic_stream.jsonl")
    assert stream.init_model == "auto"
    assert stream.models == ["gemini-3.5-flash-lite", "gemini-3.8-flash"]
    assert stream.model == "gemini-3.8-flash"


def test_replies_are_separated_and_deltas_of_one_reply_joined() -> None:
    basic = _feed("gemini_basic_stream.jsonl")
    assert basic.texts == ["I'll create the file.", "## Summary\nCreated hello.txt"]
    assert basic.text == "I'll create the file.\n\n## Summary\nCreated hello.txt"
    assert from_text(basic.text) == "Created hello.txt"

    run1 = _feed("gemini_resume_run1.jsonl")
    assert len(run1.texts) == 1  # five SSE deltas, one reply
    assert run1.texts[0].startswith("## Summary\nCreated hello.txt. This is a longer")
    assert run1.texts[0].endswith("several message events in stream-json output.")


def test_tool_results_are_matched_to_their_calls() -> None:
    stream = _feed("gemini_tool_failures.jsonl")
    shell, unknown = stream.tools
    assert shell.status == "success"
    assert shell.parameters["command"] == "ls /nonexistent_dir_xyz"
    assert unknown.status == "error"
    assert unknown.error_type == "tool_not_registered"
    assert "no_such_tool" in unknown.error_message
    write = _feed("gemini_resume_run2.jsonl").tools[0]
    assert (write.name, write.status) == ("write_file", "success")


def test_daily_quota_sample_says_so() -> None:
    stream = _feed("gemini_err_429daily.jsonl")
    assert "You have exhausted your daily quota on this model." in stream.error_message


def test_bad_lines_are_counted_and_do_not_break_parsing() -> None:
    stream = GeminiStream()
    for line in ["not json", "[1, 2]", '"text"', *_lines("gemini_basic_stream.jsonl"), "{"]:
        stream.feed(line)
    assert stream.bad_lines == 4
    assert stream.succeeded
    assert stream.session_id == "9ddbf658-9399-4b70-8f48-8c4f4e683d6d"


def test_without_a_result_nothing_is_claimed() -> None:
    stream = GeminiStream()
    for line in _lines("gemini_basic_stream.jsonl")[:-1]:
        stream.feed(line)
    assert stream.result is None
    assert stream.status == ""
    assert not stream.succeeded
    assert stream.tokens == (0, 0)
    assert stream.model == "auto"  # nothing better known yet


def test_the_json_output_format_is_not_a_stream() -> None:
    raw = json.loads((GEMINI / "gemini_output_format_json.json").read_text(encoding="utf-8"))
    stream = GeminiStream()
    stream.feed(json.dumps(raw))
    assert stream.result is None
    assert stream.session_id == raw["session_id"]
    assert stream.text == ""


# -- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('  ```json\n{"a": 1}\n```\n', '{"a": 1}'),
        ("```JSON\r\n[1,\n 2]\r\n```", "[1,\n 2]"),
        ('```json\n{"a": 1}```', '{"a": 1}'),
        ('Here:\n```json\n{"a": 1}\n```', 'Here:\n```json\n{"a": 1}\n```'),
        ('```json\n{"a": 1}\n```\nmore', '```json\n{"a": 1}\n```\nmore'),
        ("```json\n{}\n```\n\n```json\n[]\n```", "```json\n{}\n```\n\n```json\n[]\n```"),
        ("```python\nx = 1\n```", "```python\nx = 1\n```"),
        ("plain text", "plain text"),
        ("", ""),
    ],
)
def test_strip_json_fence_only_when_the_whole_text_is_fenced(text: str, expected: str) -> None:
    assert strip_json_fence(text) == expected


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (144, 400),
        (145, 401),
        (147, 403),
        (148, 404),
        (173, 429),
        (244, 500),
        (247, 503),
        (248, 504),
        (0, None),
        (1, None),
        (41, None),
        (42, None),
        (130, None),
        (143, None),
        (255, None),
        (-15, None),
        (None, None),
    ],
)
def test_status_from_exit(code: int | None, status: int | None) -> None:
    assert status_from_exit(code) == status


def test_status_from_message() -> None:
    sample = _feed("gemini_err_500.jsonl").error_message
    assert status_from_message(sample) == 500
    assert status_from_message("[API Error: Resource has been exhausted]") is None
    assert status_from_message('{"code": 200}') is None


# -- argv ------------------------------------------------------------------------------------


def _ctx(tmp_path: Path, *, resume: bool = False, **agent: object) -> RunContext:
    config = AgentConfig.model_validate({"type": "gemini", "instructions": "Do it.", **agent})
    return RunContext(
        task=Task(name="t", agent=config),
        execution_id="exec-1",
        workdir=tmp_path / "sandbox",
        log_dir=tmp_path / "logs",
        env={},
        session_id=SESSION,
        timeout=60.0,
        kill_grace=1.0,
        stop=asyncio.Event(),
        resume=resume,
    )


def test_default_argv_exactly(tmp_path: Path) -> None:
    assert build_argv("gemini", _ctx(tmp_path)) == [
        "gemini",
        "--prompt=Do it.",
        "--output-format",
        "stream-json",
        "--yolo",
        "--session-id",
        SESSION,
    ]


def test_argv_with_model_resume_and_additional_args(tmp_path: Path) -> None:
    argv = build_argv(
        "/bin/gemini",
        _ctx(tmp_path, resume=True, model="gemini-2.5-pro", additional_args=["--debug"]),
    )
    assert argv == [
        "/bin/gemini",
        "--prompt=Do it.",
        "--output-format",
        "stream-json",
        "--yolo",
        "-m",
        "gemini-2.5-pro",
        "--resume",
        SESSION,
        "--debug",
    ]


def test_a_prompt_starting_with_a_dash_stays_one_argument(tmp_path: Path) -> None:
    argv = build_argv("gemini", _ctx(tmp_path, instructions="--version -p x\n-y"))
    assert argv[1] == "--prompt=--version -p x\n-y"
    assert "--version" not in argv
    assert argv.count("--yolo") == 1


def test_context_files_outside_the_sandbox_are_included_directories(tmp_path: Path) -> None:
    outside = tmp_path / "docs"
    outside.mkdir()
    argv = build_argv("gemini", _ctx(tmp_path, context_files=[str(outside / "spec.md"), "in.md"]))
    assert argv[argv.index("--include-directories") + 1] == str(outside)
    assert argv.count("--include-directories") == 1
    assert argv[1].startswith("--prompt=Do it.\n\nRead these context files")


def test_options_gemini_cannot_apply_are_named() -> None:
    assert ignored_options(AgentConfig(instructions="i")) == []
    agent = AgentConfig(
        instructions="i",
        max_budget_usd=1,
        system_prompt_append="s",
        allowed_tools=("a",),
        disallowed_tools=("b",),
        permission_mode="plan",
    )
    assert ignored_options(agent) == [
        "max_budget_usd",
        "system_prompt_append",
        "allowed_tools",
        "disallowed_tools",
        "permission_mode",
    ]


async def test_missing_binary_is_an_agent_error(tmp_path: Path) -> None:
    runner = GeminiRunner(str(tmp_path / "no-such-gemini"), PlainLauncher())
    with pytest.raises(AgentError, match="Gemini CLI not found"):
        await runner.run(_ctx(tmp_path))
    assert not (tmp_path / "logs").exists()


# -- outcome mapping (the samples with the exit codes the CLI really had) --------------------


def _mapped(tmp_path: Path, name: str | None, exit: Exit | int | None, stderr: str = "") -> Outcome:
    """The runner's outcome for sample ``name`` (none: empty stdout), ``exit`` and ``stderr``."""
    ctx = _ctx(tmp_path)
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    ctx.stderr_path.write_text(stderr, encoding="utf-8")
    stream = _feed(name) if name else GeminiStream()
    ended = exit if isinstance(exit, Exit) else Exit(exit)
    return GeminiRunner("gemini", PlainLauncher())._outcome(stream, ended, ctx)


def test_success_sample_completes(tmp_path: Path) -> None:
    outcome = _mapped(tmp_path, "gemini_basic_stream.jsonl", 0)
    assert outcome.status == TaskState.COMPLETED
    assert outcome.session_id == "9ddbf658-9399-4b70-8f48-8c4f4e683d6d"
    assert outcome.model == "gemini-3.8-flash"
    assert (outcome.tokens_in, outcome.tokens_out) == (300, 60)
    assert outcome.cost_usd == 0
    assert outcome.cost_reported is False
    assert outcome.error_msg == ""
    assert outcome.api_error_status is None
    assert from_text(outcome.text) == "Created hello.txt"
    assert outcome.details["tools"] == ["run_shell_command"]


def test_success_result_with_a_non_zero_exit_fails(tmp_path: Path) -> None:
    outcome = _mapped(tmp_path, "gemini_basic_stream.jsonl", 1, "boom at exit\n")
    assert outcome.status == TaskState.FAILED
    assert outcome.error_msg == "boom at exit"


@pytest.mark.parametrize(
    ("name", "status", "quota"),
    [
        ("gemini_err_400.jsonl", 400, False),
        ("gemini_err_500.jsonl", 500, False),
        ("gemini_err_500fast.jsonl", 500, False),
        ("gemini_err_429always.jsonl", 429, False),
        ("gemini_err_429fast.jsonl", 429, False),
        ("gemini_err_429daily.jsonl", 429, True),
    ],
)
def test_api_failures_fail_with_status_and_message(
    tmp_path: Path, name: str, status: int, quota: bool
) -> None:
    want = EXPECTED[name]
    outcome = _mapped(tmp_path, name, want.exit_code, "Attempt 1 failed. Retrying\n")
    assert outcome.status == TaskState.FAILED
    assert outcome.exit_code == want.exit_code
    assert outcome.api_error_status == status
    assert str(status) in outcome.error_msg
    assert _feed(name).error_message.strip() in outcome.error_msg
    assert "Attempt 1" not in outcome.error_msg  # the result's message wins over stderr
    assert outcome.details.get("quota", False) is quota


def test_quota_hint_from_stderr_alone(tmp_path: Path) -> None:
    stderr = "Error when talking to Gemini API TerminalQuotaError: something\n"
    outcome = _mapped(tmp_path, None, 173, stderr)
    assert outcome.details["quota"] is True
    assert outcome.api_error_status == 429
    assert "TerminalQuotaError" in outcome.error_msg


def test_stderr_only_failure_keeps_the_reason_without_the_chatter(tmp_path: Path) -> None:
    stderr = (
        "Warning: 256-color support not detected. Using a terminal with ...\n"
        "YOLO mode is enabled. All tool calls will be automatically approved.\n"
        'Error resuming session: Invalid session identifier "abc".\n'
    )
    outcome = _mapped(tmp_path, None, 42, stderr)
    assert outcome.status == TaskState.FAILED
    assert outcome.api_error_status is None
    assert outcome.error_msg.startswith('Error resuming session: Invalid session identifier "abc".')
    assert "FatalInputError" in outcome.error_msg
    assert "YOLO" not in outcome.error_msg
    assert "quota" not in outcome.details


def test_nothing_at_all_names_the_exit_code(tmp_path: Path) -> None:
    assert _mapped(tmp_path, None, 3).error_msg == "exited with code 3"
    outcome = _mapped(tmp_path, None, 247)
    assert outcome.error_msg == "API error 503: exited with code 247"
    assert outcome.api_error_status == 503


def test_timeout_and_stop_win_over_everything(tmp_path: Path) -> None:
    timed_out = _mapped(tmp_path, "gemini_err_500.jsonl", Exit(0, timed_out=True))
    assert timed_out.status == TaskState.TIMED_OUT
    assert "timed out after 60s" in timed_out.error_msg
    stopped = _mapped(tmp_path, "gemini_basic_stream.jsonl", Exit(-15, stopped=True))
    assert stopped.status == TaskState.CANCELLED
    assert stopped.error_msg == "stopped before it finished"
    assert stopped.api_error_status is None


def test_a_fenced_json_reply_is_unwrapped(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.log_dir.mkdir(parents=True)
    stream = GeminiStream()
    stream.feed('{"type":"init","session_id":"s","model":"m"}')
    stream.feed('{"type":"message","role":"assistant","content":"```json\\n{\\"a\\"","delta":true}')
    stream.feed('{"type":"message","role":"assistant","content":": 1}\\n```","delta":true}')
    stream.feed('{"type":"result","status":"success","stats":{"input_tokens":1,"output_tokens":2}}')
    outcome = GeminiRunner("gemini", PlainLauncher())._outcome(stream, Exit(0), ctx)
    assert outcome.status == TaskState.COMPLETED
    assert outcome.text == '{"a": 1}'
    assert (outcome.tokens_in, outcome.tokens_out) == (1, 2)


# -- leftover processes ----------------------------------------------------------------------


_IGNORE_TERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def detached_processes() -> Iterator[tuple[str, subprocess.Popen[str], subprocess.Popen[str]]]:
    """A marked process in its own session that ignores SIGTERM, and an unmarked one."""
    mark = uuid.uuid4().hex
    env = {**os.environ, MARK_VARIABLE: mark}
    marked = subprocess.Popen(
        [sys.executable, "-c", _IGNORE_TERM],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    unmarked = subprocess.Popen(["sleep", "60"], start_new_session=True, text=True)
    try:
        assert marked.stdout is not None
        assert marked.stdout.readline() == "ready\n"
        yield mark, marked, unmarked
    finally:
        for proc in (marked, unmarked):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if marked.stdout is not None:
            marked.stdout.close()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
async def test_kill_marked_kills_detached_processes_carrying_the_mark(
    detached_processes: tuple[str, subprocess.Popen[str], subprocess.Popen[str]],
) -> None:
    mark, marked, unmarked = detached_processes
    assert marked_pids(mark) == [marked.pid]
    started = time.monotonic()
    assert await kill_marked(mark, 0.5) == 1
    assert time.monotonic() - started < 5
    assert marked.wait(timeout=5) == -signal.SIGKILL  # SIGTERM was ignored, so it was killed
    assert unmarked.poll() is None
    assert marked_pids(mark) == []
    assert await kill_marked(mark, 0.5) == 0
