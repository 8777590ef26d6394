"""Summaries (file, else last ``## Summary``) and human-readable log lines from real samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claudomator.logview import Transcript, describe, last_activity
from claudomator.summary import from_text, read_summary
from conftest import SAMPLES

CLAUDE = SAMPLES / "claude"
GEMINI = SAMPLES / "gemini"


def _lines(name: str) -> list[str]:
    return (CLAUDE / name).read_text(encoding="utf-8").splitlines()


# -- summary ----------------------------------------------------------------------------------


def test_text_after_the_last_summary_heading() -> None:
    text = "## Summary\nfirst try\n\nmore work\n\n## Summary\nsecond, final\n- item\n"
    assert from_text(text) == "second, final\n- item"


@pytest.mark.parametrize(
    "heading",
    ["## Summary", "# Summary", "### summary", "## Summary:", "##Summary", "## SUMMARY  "],
)
def test_heading_variants(heading: str) -> None:
    assert from_text(f"intro\n{heading}\nthe gist\n") == "the gist"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no heading here",
        "## Summary of changes\nnot a bare heading",
        "see the ## Summary below\nthe text",
        "####### Summary\ntoo many hashes",
        "Summary\nno hashes",
    ],
)
def test_no_summary(text: str) -> None:
    assert from_text(text) == ""


def test_summary_is_capped() -> None:
    assert len(from_text("## Summary\n" + "x" * 20000)) == 8000


def test_summary_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "summary.txt"
    path.write_text("  from the file\n", encoding="utf-8")
    assert read_summary(path, "## Summary\nfrom the text") == "from the file"


@pytest.mark.parametrize("content", [None, "", "  \n\t\n"])
def test_text_when_no_usable_file(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "summary.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert read_summary(path, "work\n## Summary\nfrom the text") == "from the text"
    assert read_summary(path, "no heading") == ""


def test_summary_file_that_is_a_directory(tmp_path: Path) -> None:
    assert read_summary(tmp_path, "## Summary\nfallback") == "fallback"


def test_summary_file_with_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "summary.txt"
    path.write_bytes(b"ok \xff done")
    assert read_summary(path, "") == "ok \ufffd done"


# -- logview ----------------------------------------------------------------------------------


def test_describe_basic_stream() -> None:
    described = [describe(line) for line in _lines("claude_basic_stream.jsonl")]
    assert described == [
        "session 11111111-1111-4111-8111-111111111111 model claude-opus-4-8[1m]",
        "I'll create the file.",
        "→ Bash: echo 'hello from fake model' > hello.txt && ls -la hello.txt",
        "  ← -rw-r--r-- 1 root root 22 Nov 24 02:02 hello.txt",
        "## Summary Created hello.txt",
        "[done $0.0020] ## Summary Created hello.txt",
    ]


def test_describe_retries_and_error_result() -> None:
    described = [describe(line) for line in _lines("claude_2.1.330_err_500.jsonl")]
    assert described[1] == "retry 1/2 after 600 ms (server_error, status 500)"
    assert described[2] == "retry 2/2 after 1209 ms (server_error, status 500)"
    last = described[-1]
    assert last is not None
    assert last.startswith("[error $0.0000] API Error: 500")


def test_describe_tool_failures_and_non_text_input() -> None:
    described = [describe(line) for line in _lines("claude_tool_failures.jsonl")]
    assert described[1] == "→ Bash: ls /nonexistent_dir_xyz"
    assert described[2] is not None
    assert described[2].startswith("  ✗ Exit code 2")
    assert described[3] == '→ NoSuchTool: {"x": 1}'
    assert described[4] is not None
    assert described[4].startswith("  ✗ <tool_use_error>")


def test_describe_result_errors_when_no_result_text() -> None:
    last = _lines("claude_max_budget.jsonl")[-1]
    assert describe(last) == "[error $0.7500] Reached maximum budget ($0.5)"


def test_describe_write_tool_shows_the_path() -> None:
    line = _lines("claude_2.1.330_resume_run2.jsonl")[1]
    assert describe(line) == "→ Write: /home/dev/repos/r330/second.txt"


def test_partial_message_events_are_not_shown() -> None:
    lines = _lines("claude_include_partial_messages.jsonl")
    kinds = [json.loads(line)["type"] for line in lines]
    shown = [
        describe(line) for line, kind in zip(lines, kinds, strict=True) if kind == "stream_event"
    ]
    assert shown
    assert all(s is None for s in shown)


@pytest.mark.parametrize(
    ("line", "expected"), [("plain text", "plain text"), ("  ", None), ("[1]", None)]
)
def test_describe_non_events(line: str, expected: str | None) -> None:
    assert describe(line) == expected


def test_describe_shortens_long_text() -> None:
    event = {"type": "assistant", "message": {"content": [{"type": "text", "text": "word " * 100}]}}
    text = describe(json.dumps(event))
    assert text is not None
    assert len(text) == 200
    assert text.endswith("…")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude_basic_stream.jsonl", "[done $0.0020] ## Summary Created hello.txt"),
        ("claude_killed_midrun_SIGTERM.jsonl", "← (Bash completed with no output)"),
        ("claude_max_budget.jsonl", "[error $0.7500] Reached maximum budget ($0.5)"),
        ("claude_include_partial_messages.jsonl", "[done $0.0020] ## Summary Created hello.txt"),
    ],
)
def test_last_activity(name: str, expected: str) -> None:
    assert last_activity((CLAUDE / name).read_bytes()) == expected


def test_last_activity_is_short() -> None:
    text = last_activity((CLAUDE / "claude_2.1.330_err_500.jsonl").read_bytes())
    assert len(text) == 70
    assert text.startswith("[error $0.0000] API Error: 500")
    assert text.endswith("…")


def test_last_activity_skips_trailing_noise(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    lines = _lines("claude_basic_stream.jsonl")[:3]
    log.write_text("\n".join([*lines, "stray output", '{"type": "stream_event"}', ""]), "utf-8")
    assert last_activity(log.read_bytes()).startswith("→ Bash: echo 'hello from fake model'")


def test_last_activity_missing_or_empty() -> None:
    # a missing log's tail is b"" (the log store's tail, see tests/unit/test_log_store.py)
    assert last_activity(b"") == ""
    assert last_activity(b"\n\n") == ""


def _transcript(path: Path) -> list[str]:
    reader = Transcript()
    out: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        out += reader.feed(line)
    return out + reader.close()


def test_gemini_transcript_shows_text_tool_calls_and_results() -> None:
    lines = _transcript(GEMINI / "gemini_tool_failures.jsonl")
    assert lines[0].startswith("session 139632f5")
    assert "→ run_shell_command: ls /nonexistent_dir_xyz" in lines
    assert any(line.startswith("  ← ls: cannot access") for line in lines)
    assert any(line.startswith('  ✗ Tool "no_such_tool" not found') for line in lines)
    assert "## Summary handled failures" in lines
    assert lines[-1] == "[done 300 in / 60 out]"
    assert not any("run stuff" in line for line in lines)  # the prompt echo is not shown


def test_gemini_streamed_text_is_joined_into_one_line() -> None:
    pieces = [
        {"type": "message", "role": "assistant", "content": "Hello ", "delta": True},
        {"type": "message", "role": "assistant", "content": "world", "delta": True},
        {"type": "tool_use", "tool_name": "read_file", "parameters": {"file_path": "a.py"}},
        {"type": "message", "role": "assistant", "content": "done", "delta": True},
    ]
    reader = Transcript()
    out: list[str] = []
    for event in pieces:
        out += reader.feed(json.dumps(event))
    assert out == ["Hello world", "→ read_file: a.py"]
    assert reader.close() == ["done"]
    assert reader.close() == []


def test_gemini_error_results_name_the_error() -> None:
    lines = _transcript(GEMINI / "gemini_err_429daily.jsonl")
    assert lines[-1].startswith("[error] [API Error: You have exhausted your daily quota")


@pytest.mark.parametrize("sample", sorted(GEMINI.glob("*.jsonl")), ids=lambda p: p.name)
def test_every_gemini_sample_reads_as_text(sample: Path) -> None:
    lines = _transcript(sample)
    assert lines, sample.name
    assert lines[-1].startswith(("[done", "[error")), lines[-1]
    assert not any(line.lstrip().startswith("{") for line in lines)


@pytest.mark.parametrize("sample", sorted(CLAUDE.glob("*.jsonl")), ids=lambda p: p.name)
def test_every_claude_sample_reads_as_text(sample: Path) -> None:
    lines = _transcript(sample)
    assert not any(line.lstrip().startswith('{"') for line in lines), sample.name
