"""Issue 11 item 14, in real Chromium against a real ``claudomator serve``: the agents page shows
the facts ``claudomator agents`` and GET /api/agents give (one source: readiness.py), and the
task page says where an acceptance check without a verdict stands."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from ui_harness import (
    CLAUDOMATOR,
    Browser,
    chromium_browser,
    serving,
    shot,
)

from claudomator.config import load_settings
from claudomator.models import AgentConfig, AgentStatus, Task, TaskState, utcnow
from claudomator.store import Store

pytestmark = pytest.mark.cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    gemini = tmp_path / "fake-gemini"  # found, never run: it is out of quota below
    gemini.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    gemini.chmod(0o755)
    config = tmp_path / "config.toml"
    config.write_text(
        f'claude_binary_path = "{tmp_path / "no-claude"}"\ngemini_binary_path = "{gemini}"\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["CLAUDOMATOR_CONFIG"] = str(config)
    env["GEMINI_API_KEY"] = "test-key"
    env["COLUMNS"] = "250"
    return env


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store.open(load_settings().db_path)
    yield opened
    opened.close()


@pytest.fixture
def server(env: dict[str, str], store: Store) -> Iterator[str]:
    with serving(env) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium_browser(tmp_path / "chromium") as wrapped:
        yield wrapped


def test_agents_page_cli_and_api_show_the_same_facts(
    server: str, browser: Browser, store: Store, env: dict[str, str]
) -> None:
    now = utcnow()
    store.save_agent_status(
        AgentStatus(
            agent="gemini",
            unavailable_until=now + timedelta(hours=1),
            consecutive_failures=1,
            last_error="TerminalQuotaError: exhausted your daily quota\n  at stack line",
        )
    )
    api = {a["agent"]: a for a in httpx.get(f"{server}/api/agents").json()}
    assert api["gemini"]["state"] == "out of quota"
    assert api["gemini"]["last_error"] == "TerminalQuotaError: exhausted your daily quota"
    assert api["claude"]["state"] == "cannot run"
    assert api["local"]["state"] == "cannot run"
    assert any(d.startswith("out of quota until") for d in api["gemini"]["details"])

    listed = subprocess.run(
        [CLAUDOMATOR, "agents"], capture_output=True, text=True, env=env, timeout=60, check=True
    ).stdout
    cli = {
        cells[0]: cells
        for line in listed.splitlines()
        if "│" in line and (cells := [c.strip() for c in line.split("│")[1:-1]])[0]
    }

    page = browser.page()
    page.goto(server + "/agents")
    page.locator("tbody tr").first.wait_for()
    for agent, facts in api.items():
        row = page.locator(f'tr[data-agent="{agent}"]')
        cells = [c.strip() for c in row.locator("th, td").all_inner_texts()]
        assert cells[1].endswith(facts["state"]), cells
        assert cli[agent][1] == facts["state"], listed
        assert cells[3] == cli[agent][3] == str(facts["status"]["consecutive_failures"])
        assert cells[4] == (facts["last_error"] or "—")
        assert cli[agent][4] == facts["last_error"]
        assert facts["details"][0][:30] in cells[2]
        assert facts["details"][0][:30] in listed
    shot(page, "agents-same-facts")


def _finished(store: Store, task: Task) -> Task:
    [stored] = store.add_tasks([task])
    store.transition(stored.id, TaskState.RUNNING, "claimed")
    return store.transition(stored.id, TaskState.COMPLETED, "done")


def test_task_page_says_the_check_is_pending_then_has_no_verdict(
    server: str, browser: Browser, store: Store
) -> None:
    # no agent is usable here (claude missing, gemini out of quota): the checker stays QUEUED
    store.save_agent_status(AgentStatus(agent="gemini", unavailable_until=utcnow() + timedelta(1)))
    checked = _finished(
        store,
        Task(name="export", agent=AgentConfig(instructions="x"), acceptance_criteria="tested"),
    )
    [checker] = store.add_tasks(
        [Task(name="check", agent=AgentConfig(instructions="c"), checker_for_task_id=checked.id)]
    )
    page = browser.page()
    page.goto(f"{server}/tasks/{checked.id}")
    note = page.locator("[data-check]")
    note.wait_for()
    assert note.get_attribute("data-check") == "pending"
    assert f"pending (checker task {checker.id} QUEUED)" in note.inner_text()

    store.transition(checker.id, TaskState.CANCELLED, "cancelled by user")
    store.update_task(checked.id, check_report="the checker ended CANCELLED: ")
    page.reload()
    page.locator('[data-check="no verdict"]').wait_for()
    text = page.locator("[data-check]").inner_text()
    assert f"no verdict — checker task {checker.id} CANCELLED" in text
    assert page.locator("[data-check] a").get_attribute("href") == f"/tasks/{checker.id}"
    shot(page, "task-check-no-verdict")
