"""The real Claude Code CLI against the fake Anthropic server (`fakes.anthropic`).

These tests pin down that the fake serves what the CLI needs, and record CLI behaviour the
rest of the project relies on (exit codes, the ``result`` line, retries, ``--`` before the
prompt). The CLI comes from ``$CLAUDOMATOR_CLAUDE_BIN``; the tests skip when it is missing.
A few fast tests at the end talk to the fake directly over HTTP, without the CLI.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fakes.anthropic import (
    DONE_TEXT,
    SIDE_CALL_TEXT,
    ApiError,
    FakeAnthropic,
    Hang,
    Reply,
    Text,
    ToolUse,
    claude_env,
)

RUN_TIMEOUT = 120.0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True, timeout=30)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "agent-home"
    path.mkdir()
    return path


def claude_args(claude: str, session_id: str, prompt: str) -> list[str]:
    return [
        claude,
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "bypassPermissions",
        "--session-id",
        session_id,
        "--",
        prompt,
    ]


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert all(isinstance(event, dict) for event in events)
    return events


def run_claude(
    claude: str, fake: FakeAnthropic, repo: Path, home: Path, session_id: str, prompt: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    proc = subprocess.run(
        claude_args(claude, session_id, prompt),
        cwd=repo,
        env=claude_env(fake.url, home),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return proc, parse_lines(proc.stdout)


def last_result(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    assert events, "no stdout lines"
    result = events[-1]
    assert result["type"] == "result", result
    return result


def user_texts(body: dict[str, Any]) -> list[str]:
    """Every text block of the user messages in a request body."""
    texts: list[str] = []
    for message in body["messages"]:
        content = message["content"]
        if message["role"] != "user" or isinstance(content, str):
            continue
        texts.extend(block["text"] for block in content if block.get("type") == "text")
    return texts


@pytest.mark.cli
def test_bash_tool_call_then_summary(claude_bin: str, repo: Path, home: Path) -> None:
    session_id = str(uuid.uuid4())
    script: list[Reply] = [
        ToolUse("Bash", {"command": "echo hi > hello.txt"}),
        Text("## Summary\nmade hello"),
    ]
    with FakeAnthropic(script) as fake:
        proc, events = run_claude(claude_bin, fake, repo, home, session_id, "Create hello.txt")

    assert proc.returncode == 0, proc.stderr
    assert (repo / "hello.txt").read_text() == "hi\n"
    assert events[0]["type"] == "system"
    assert events[0]["subtype"] == "init"
    assert events[0]["session_id"] == session_id
    result = last_result(events)
    assert result["is_error"] is False
    assert result["subtype"] == "success"
    assert result["result"] == "## Summary\nmade hello"
    assert result["session_id"] == session_id
    assert result["total_cost_usd"] > 0
    assert result["usage"]["input_tokens"] == 200
    assert result["usage"]["output_tokens"] == 40
    tool_results = [
        block
        for event in events
        if event["type"] == "user"
        for block in event["message"]["content"]
        if block.get("type") == "tool_result"
    ]
    assert [block["is_error"] for block in tool_results] == [False]
    assert len(fake.requests) >= 2
    assert all(request.session_id == session_id for request in fake.requests)
    assert all(request.path == "/v1/messages?beta=true" for request in fake.requests)
    assert all(request.headers["x-api-key"] == "fake-key" for request in fake.requests)
    assert fake.requests[0].stream
    assert "Create hello.txt" in user_texts(fake.requests[0].body)
    assert fake.errors == []


@pytest.mark.cli
def test_prompt_after_double_dash_is_not_parsed_as_option(
    claude_bin: str, repo: Path, home: Path
) -> None:
    # Without `--`, this CLI reads "-v ..." as `--version`, prints it and exits 0.
    prompt = "-v --help: reply with anything"
    with FakeAnthropic() as fake:
        proc, events = run_claude(claude_bin, fake, repo, home, str(uuid.uuid4()), prompt)

    assert proc.returncode == 0, proc.stderr
    assert last_result(events)["result"] == DONE_TEXT
    assert len(fake.requests) == 1
    assert prompt in user_texts(fake.requests[0].body)


@pytest.mark.cli
def test_persistent_500_is_an_error_result(claude_bin: str, repo: Path, home: Path) -> None:
    session_id = str(uuid.uuid4())
    with FakeAnthropic([ApiError(500)], repeat_last=True) as fake:
        proc, events = run_claude(claude_bin, fake, repo, home, session_id, "Do something")

    assert proc.returncode == 1
    result = last_result(events)
    assert result["is_error"] is True
    assert result["api_error_status"] == 500
    assert "API Error: 500" in result["result"]
    retries = [e for e in events if e["type"] == "system" and e.get("subtype") == "api_retry"]
    assert [e["error_status"] for e in retries] == [500, 500]  # CLAUDE_CODE_MAX_RETRIES=2
    assert len(fake.requests) == 3
    assert fake.errors == []


@pytest.mark.cli
def test_write_tool_creates_file(claude_bin: str, repo: Path, home: Path) -> None:
    target = repo / "notes" / "todo.md"
    script: list[Reply] = [
        ToolUse(
            "Write",
            {"file_path": str(target), "content": "# TODO\n- nothing\n"},
            text="I'll write the file.",
        ),
        Text("## Summary\nwrote notes/todo.md"),
    ]
    with FakeAnthropic(script) as fake:
        proc, events = run_claude(claude_bin, fake, repo, home, str(uuid.uuid4()), "Write notes")

    assert proc.returncode == 0, proc.stderr
    assert target.read_text() == "# TODO\n- nothing\n"
    assistant_blocks = [
        event["message"]["content"][0]["type"] for event in events if event["type"] == "assistant"
    ]
    assert assistant_blocks == ["text", "tool_use", "text"]
    (write_result,) = [event["tool_use_result"] for event in events if event["type"] == "user"]
    assert write_result["type"] == "create"
    assert write_result["filePath"] == str(target)
    assert last_result(events)["is_error"] is False
    assert len(fake.requests) == 2


@pytest.mark.cli
def test_hang_blocks_cli_and_stop_is_prompt(claude_bin: str, repo: Path, home: Path) -> None:
    fake = FakeAnthropic([Hang(60)]).start()
    try:
        with subprocess.Popen(
            claude_args(claude_bin, str(uuid.uuid4()), "Say something"),
            cwd=repo,
            env=claude_env(fake.url, home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            try:
                deadline = time.monotonic() + 60
                while not fake.requests and time.monotonic() < deadline:
                    assert proc.poll() is None, proc.communicate()
                    time.sleep(0.05)
                assert fake.requests, "the CLI never reached the fake server"
                time.sleep(1.5)
                assert proc.poll() is None, "the CLI did not wait for the hanging server"

                started = time.monotonic()
                fake.stop()
                assert time.monotonic() - started < 2.0

                # The dropped connection and then the closed port exhaust the retries.
                stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
    finally:
        fake.stop()

    assert proc.returncode == 1, stderr
    result = last_result(parse_lines(stdout))
    assert result["is_error"] is True
    assert fake.errors == []


@pytest.mark.cli
def test_hang_then_reply_is_a_slow_reply(claude_bin: str, repo: Path, home: Path) -> None:
    with FakeAnthropic([Hang(1.5), Text("late answer")]) as fake:
        started = time.monotonic()
        proc, events = run_claude(claude_bin, fake, repo, home, str(uuid.uuid4()), "Be slow")
        elapsed = time.monotonic() - started

    assert proc.returncode == 0, proc.stderr
    assert last_result(events)["result"] == "late answer"
    assert elapsed >= 1.5
    assert len(fake.requests) == 1


# --- the fake on its own (no CLI) ---------------------------------------------------------


def http_request(
    fake: FakeAnthropic, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = fake.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        payload = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=payload)
        response = connection.getresponse()
        data = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, data
    finally:
        connection.close()


def test_non_streaming_reply_and_routing() -> None:
    with FakeAnthropic(
        [ToolUse("Read", {"file_path": "/x"}, text="look")], output_tokens=7
    ) as fake:
        assert http_request(fake, "HEAD", "/")[0] == 200
        status, _, data = http_request(fake, "GET", "/v1/models")
        assert status == 404
        assert json.loads(data)["type"] == "error"

        # A call without tools is a side call: plain text, script untouched.
        status, _, data = http_request(fake, "POST", "/v1/messages", {"messages": []})
        assert status == 200
        assert json.loads(data)["content"] == [{"type": "text", "text": SIDE_CALL_TEXT}]
        assert fake.requests == []
        assert len(fake.side_requests) == 1

        body = {"model": "m1", "tools": [{"name": "Read"}], "stream": False, "messages": []}
        status, _, data = http_request(fake, "POST", "/v1/messages?beta=true", body)
        assert status == 200
        message = json.loads(data)
        assert message["id"].startswith("msg_")
        assert message["model"] == "m1"
        assert message["stop_reason"] == "tool_use"
        assert message["usage"]["output_tokens"] == 7
        text, tool = message["content"]
        assert text == {"type": "text", "text": "look"}
        assert tool["id"].startswith("toolu_")
        assert tool["input"] == {"file_path": "/x"}

        status, _, data = http_request(fake, "POST", "/v1/messages", body)
        assert json.loads(data)["content"][0]["text"] == DONE_TEXT
        assert [r.body["model"] for r in fake.requests] == ["m1", "m1"]
    assert fake.errors == []


def test_api_error_and_sse_frames() -> None:
    script: list[Reply] = [
        ApiError(429, "rate_limit_error", "slow down", retry_after=2),
        Text("hello world"),
    ]
    with FakeAnthropic(script) as fake:
        body = {"tools": [{"name": "Bash"}], "stream": True, "messages": []}
        status, headers, data = http_request(fake, "POST", "/v1/messages?beta=true", body)
        assert status == 429
        assert headers["retry-after"] == "2"
        assert json.loads(data) == {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "slow down"},
        }

        status, headers, data = http_request(fake, "POST", "/v1/messages?beta=true", body)
        assert status == 200
        assert headers["content-type"].startswith("text/event-stream")
        frames = [frame.split("\n") for frame in data.decode().split("\n\n") if frame]
        names = [lines[0].removeprefix("event: ") for lines in frames]
        assert names[:2] == ["message_start", "ping"]
        assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
        payloads = [json.loads(lines[1].removeprefix("data: ")) for lines in frames]
        text = "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")
        assert text == "hello world"
        assert payloads[-2]["delta"]["stop_reason"] == "end_turn"
