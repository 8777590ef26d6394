"""Readable log lines for the Codex and OpenCode streams (claudomator.logview), from lines of
the CLIs' real output (Codex 0.169.0 ``exec --json``, OpenCode 1.18.33 ``run --format json``)."""

from __future__ import annotations

import json

from claudomator.logview import Transcript, describe, last_activity

CODEX = [
    {"type": "thread.started", "thread_id": "01a23343-0749-7a01-bb55-2925dc499d8a"},
    {
        "type": "item.completed",
        "item": {"id": "item_0", "type": "error", "message": "Model metadata not found."},
    },
    {"type": "turn.started"},
    {
        "type": "item.completed",
        "item": {"id": "item_1", "type": "agent_message", "text": "I'll create the file."},
    },
    {
        "type": "item.started",
        "item": {
            "id": "item_2",
            "type": "command_execution",
            "command": "/bin/bash -lc \"echo 'hello' > hello.txt\"",
            "aggregated_output": "",
            "exit_code": None,
            "status": "in_progress",
        },
    },
    {
        "type": "item.completed",
        "item": {
            "id": "item_2",
            "type": "command_execution",
            "command": "/bin/bash -lc \"echo 'hello' > hello.txt\"",
            "aggregated_output": "-rw-r--r-- 1 root root 22 hello.txt\n",
            "exit_code": 0,
            "status": "completed",
        },
    },
    {
        "type": "item.completed",
        "item": {
            "id": "item_3",
            "type": "file_change",
            "changes": [{"path": "src/a.py", "kind": "update"}],
            "status": "completed",
        },
    },
    {"type": "turn.completed", "usage": {"input_tokens": 200, "output_tokens": 40}},
]


def _codex_lines() -> list[str]:
    return [json.dumps(event) for event in CODEX]


def test_a_codex_run_reads_as_a_session_its_messages_commands_and_tokens() -> None:
    shown = [describe(line) for line in _codex_lines()]
    assert shown == [
        "session 01a23343-0749-7a01-bb55-2925dc499d8a",
        "[warning] Model metadata not found.",
        None,  # the turn's start
        "I'll create the file.",
        "→ shell: /bin/bash -lc \"echo 'hello' > hello.txt\"",
        "  ← -rw-r--r-- 1 root root 22 hello.txt",
        "→ files: update src/a.py",
        "[done 200 in / 40 out]",
    ]


def test_a_failed_codex_command_and_turn_are_marked() -> None:
    command = {
        "type": "item.completed",
        "item": {"type": "command_execution", "aggregated_output": "no", "exit_code": 1},
    }
    failed = {"type": "turn.failed", "error": {"message": "We're experiencing high demand"}}
    reconnect = {"type": "error", "message": "Reconnecting... 1/5 (last status: 429)"}
    assert describe(json.dumps(command)) == "  ✗ no"
    assert describe(json.dumps(failed)) == "[error] We're experiencing high demand"
    assert describe(json.dumps(reconnect)) == "[error] Reconnecting... 1/5 (last status: 429)"


OPENCODE_TOOL = {
    "type": "tool_use",
    "sessionID": "ses_dccbcde41ffeJsGtQS2z2Hstbu",
    "part": {
        "type": "tool",
        "tool": "bash",
        "state": {
            "status": "completed",
            "input": {"command": "echo hi > hello.txt", "description": "Create hello.txt"},
            "output": "done\n",
        },
    },
}


def test_an_opencode_run_reads_as_text_tool_calls_and_steps() -> None:
    start = {"type": "step_start", "part": {"type": "step-start"}}
    text = {"type": "text", "part": {"type": "text", "text": "I'll create the file."}}
    finish = {
        "type": "step_finish",
        "part": {"reason": "tool-calls", "tokens": {"input": 100, "output": 20}, "cost": 0.0012},
    }
    assert describe(json.dumps(start)) is None
    assert describe(json.dumps(text)) == "I'll create the file."
    assert describe(json.dumps(OPENCODE_TOOL)) == "→ bash: echo hi > hello.txt\n  ← done"
    assert describe(json.dumps(finish)) == "[step tool-calls $0.0012 100 in / 20 out]"


def test_an_opencode_api_error_shows_the_apis_message_and_status() -> None:
    error = {
        "type": "error",
        "error": {
            "name": "APIError",
            "data": {"message": "Internal server error (fake)", "statusCode": 500},
        },
    }
    assert describe(json.dumps(error)) == "[error] Internal server error (fake) (HTTP 500)"


def test_a_gemini_error_is_still_read_as_gemini() -> None:
    assert describe(json.dumps({"type": "error", "message": "quota"})) == "[error] quota"


def test_the_transcript_and_live_activity_read_codex_logs() -> None:
    transcript = Transcript()
    lines = [out for line in _codex_lines() for out in transcript.feed(line)]
    assert "I'll create the file." in lines
    tail = ("\n".join(_codex_lines()) + "\n").encode()
    assert last_activity(tail) == "[done 200 in / 40 out]"
