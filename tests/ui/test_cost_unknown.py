"""A task run on a model with no price (issue 11 item 9), in real Chromium against a real
``claudomator serve`` whose Gemini CLI talks to the fake Gemini server: the task page says the
cost is unknown and the budget unchecked, never "$0.00"; the board's cost text says so too."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_harness import (
    Browser,
    chromium_browser,
    serving,
    shot,
)

from conftest import MakeRepo
from fakes.gemini import FakeGemini, FunctionCall, Text, gemini_env

pytestmark = pytest.mark.cli

UNPRICED = "gemini-unpriced-test"


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def server(tmp_path: Path, fake: FakeGemini, gemini_bin: str) -> Iterator[httpx.Client]:
    env = gemini_env(fake.url, tmp_path / "agent-home", max_attempts=1)
    for name in ("CLAUDOMATOR_DATA_DIR", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"):
        env[name] = os.environ[name]
    config = tmp_path / "config.toml"
    config.write_text(
        f'gemini_binary_path = "{gemini_bin}"\n'
        f'claude_binary_path = "{tmp_path / "no-claude"}"\nkill_grace_seconds = 2\n',
        encoding="utf-8",
    )
    env["CLAUDOMATOR_CONFIG"] = str(config)
    with serving(env) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium_browser(tmp_path / "chromium") as wrapped:
        yield wrapped


def finished(api: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        detail: dict[str, Any] = api.get(f"/api/tasks/{task_id}").json()
        if detail["task"]["state"] not in ("QUEUED", "RUNNING"):
            return detail
        time.sleep(0.3)
    raise AssertionError("the task did not finish")


def test_the_task_page_says_cost_unknown_and_the_budget_unchecked(
    server: httpx.Client, browser: Browser, fake: FakeGemini, make_repo: MakeRepo
) -> None:
    fake.set_script(
        [
            FunctionCall("run_shell_command", {"command": "echo hi > hi.txt"}),
            Text("Done.\n\n## Summary\nWrote hi.txt."),
        ]
    )
    agent = {
        "type": "gemini",
        "model": UNPRICED,
        "max_budget_usd": 0.5,
        "instructions": "Write hi.txt",
        "project_dir": str(make_repo()),
    }
    [task] = server.post("/api/tasks", json={"name": "unpriced", "agent": agent}).json()["tasks"]
    detail = finished(server, task["id"])
    assert detail["task"]["state"] == "COMPLETED", detail["executions"]
    assert detail["task"]["cost_known"] is False
    [listed] = server.get("/api/tasks").json()["tasks"]

    page = browser.page()
    page.goto(str(server.base_url) + f"/tasks/{task['id']}")
    cost = page.locator(".facts dd", has_text="cost unknown")
    cost.wait_for()
    assert cost.inner_text() == (
        "cost unknown over 1 execution — no price for the model: the budget was not checked"
    )
    row = page.locator("tr[data-execution-id]")
    row.wait_for()
    assert "unknown" in row.inner_text()
    assert "$0.00" not in page.locator("main").inner_text()
    assert "1 file, +1 \N{MINUS SIGN}0" in row.inner_text()  # one file, not "1 files"
    stats = page.get_by_text("1 file changed, 1 insertion (+), 0 deletions (\N{MINUS SIGN}).")
    stats.wait_for()
    shot(page, "cost-unknown-task")

    # what a board card says of the listed task (format.js, the cards' cost text)
    texts = page.evaluate(
        """async (task) => {
            const f = await import("/static/js/format.js");
            const partly = { ...task, cost_usd_total: 0.12 };
            const estimated = { ...partly, cost_known: true, cost_estimated: true };
            return [f.taskCost(task), f.taskCost(partly), f.taskCost(estimated)];
        }""",
        listed,
    )
    assert texts == ["cost unknown", "at least $0.12", "~$0.12"]
