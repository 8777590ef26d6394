"""The log renderer of the web UI (static/js/log.js) in a real Chromium, over every recorded
agent stream in tests/samples (Claude Code, Gemini CLI, Codex, ...): people see text, tool
calls and marked errors, never raw JSON. The page's files are served straight from the
package folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_harness import CHROMIUM_ARGS, require_chromium

from claudomator.web import STATIC_DIR
from conftest import SAMPLES

ORIGIN = "http://ui.test"
RENDER = """async (lines) => {
  const { LogRenderer } = await import("/static/js/log.js");
  const list = document.createElement("ol");
  document.body.replaceChildren(list);
  const renderer = new LogRenderer(list);
  for (const line of lines) renderer.add(line);
  const entries = [...list.querySelectorAll(".entry")];
  return {
    labels: entries.map((e) => e.querySelector(".entry-label").textContent),
    errors: entries.filter((e) => e.classList.contains("entry-error")).map((e) => e.textContent),
    text: list.textContent,
    folded: list.querySelectorAll("details:not([open])").length,
  };
}"""


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page()

        def serve(route: Any) -> None:
            path = route.request.url.removeprefix(ORIGIN)
            if path.startswith("/static/"):
                file = STATIC_DIR / path.removeprefix("/static/")
                route.fulfill(path=str(file), content_type="text/javascript")
            else:
                route.fulfill(body="<!doctype html><title>log</title>", content_type="text/html")

        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/")
        yield page
        browser.close()


def render(page: Any, path: Path) -> dict[str, Any]:
    lines = path.read_text(encoding="utf-8").splitlines()
    result: dict[str, Any] = page.evaluate(RENDER, lines)
    return result


# every agent's recorded stdout streams (not Codex's session files, its "rollout" excerpts)
SAMPLE_FILES = [p for p in sorted(SAMPLES.glob("*/*.jsonl")) if "rollout" not in p.name]


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_every_recorded_stream_renders_as_text_not_json(page: Any, sample: Path) -> None:
    rendered = render(page, sample)
    if sample.read_text(encoding="utf-8").strip():
        assert rendered["labels"], sample.name
    assert '{"type"' not in rendered["text"]
    assert '"session_id"' not in rendered["text"]


def test_claude_tool_calls_results_and_errors(page: Any) -> None:
    rendered = render(page, SAMPLES / "claude" / "claude_tool_failures.jsonl")
    assert "Tool call: Bash" in rendered["labels"]
    assert "Tool error: Bash" in rendered["labels"]
    assert "ls /nonexistent_dir_xyz" in rendered["text"]
    assert any("No such file or directory" in e for e in rendered["errors"])
    assert rendered["folded"] >= 1  # tool results are folded


def test_claude_api_failure_is_an_error(page: Any) -> None:
    rendered = render(page, SAMPLES / "claude" / "claude_err_c500.jsonl")
    assert rendered["labels"][-1] == "Finished with an error"
    assert rendered["errors"]


def test_gemini_stream_deltas_join_and_tools_show(page: Any) -> None:
    rendered = render(page, SAMPLES / "gemini" / "gemini_basic_stream.jsonl")
    assert rendered["labels"][0] == "Session"
    assert "Tool call: run_shell_command" in rendered["labels"]
    assert "Tool result: run_shell_command" in rendered["labels"]
    assert "echo 'hello from fake gemini' > hello.txt" in rendered["text"]
    assert rendered["labels"][-1] == "Finished"
    assert not rendered["errors"]


def test_gemini_api_error_is_an_error(page: Any) -> None:
    rendered = render(page, SAMPLES / "gemini" / "gemini_err_500.jsonl")
    assert rendered["errors"], rendered["labels"]


CODEX_RUN = [
    '{"type":"thread.started","thread_id":"01a23343-0749-7a01-bb55-2925dc499d8a"}',
    '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata'
    ' for `fake-model` not found."}}',
    '{"type":"turn.started"}',
    '{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"I\'ll'
    ' create the file."}}',
    '{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":'
    '"/bin/bash -lc \\"echo hi > hello.txt\\"","aggregated_output":"","exit_code":null,'
    '"status":"in_progress"}}',
    '{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":'
    '"/bin/bash -lc \\"false\\"","aggregated_output":"boom\\n","exit_code":1,'
    '"status":"failed"}}',
    '{"type":"turn.completed","usage":{"input_tokens":200,"output_tokens":40}}',
]

OPENCODE_RUN = [
    '{"type":"step_start","sessionID":"ses_1","part":{"type":"step-start"}}',
    '{"type":"text","sessionID":"ses_1","part":{"type":"text","text":"I\'ll create the file."}}',
    '{"type":"tool_use","sessionID":"ses_1","part":{"type":"tool","tool":"bash","state":'
    '{"status":"completed","input":{"command":"echo hi > hello.txt","description":"Create"},'
    '"output":"done\\n"}}}',
    '{"type":"step_finish","sessionID":"ses_1","part":{"reason":"stop","tokens":'
    '{"input":100,"output":20},"cost":0.0012}}',
    '{"type":"error","sessionID":"ses_1","error":{"name":"APIError","data":'
    '{"message":"Internal server error (fake)","statusCode":500}}}',
]


def test_a_codex_run_renders_its_thread_messages_commands_and_failures(page: Any) -> None:
    rendered: dict[str, Any] = page.evaluate(RENDER, CODEX_RUN)
    assert rendered["labels"] == [
        "Session",
        "Warning",
        "Assistant",
        "Tool call: shell",
        "Tool error: shell",
        "Turn finished",
    ]
    assert "200 tokens in, 40 out" in rendered["text"]
    assert any("boom" in e for e in rendered["errors"])
    assert '{"type"' not in rendered["text"]


def test_an_opencode_run_renders_text_tool_calls_steps_and_api_errors(page: Any) -> None:
    rendered: dict[str, Any] = page.evaluate(RENDER, OPENCODE_RUN)
    assert rendered["labels"] == [
        "Assistant",
        "Tool call: bash",
        "Tool result: bash",
        "Step finished (stop)",
        "Error",
    ]
    assert "echo hi > hello.txt" in rendered["text"]
    assert any("Internal server error (fake) (HTTP 500)" in e for e in rendered["errors"])
    assert '"sessionID"' not in rendered["text"]
