"""The board with no agent CLI installed (issue 11 items 2 and 25), in real Chromium against a
real ``claudomator serve``: first-run guidance on the empty board, and why a queued task waits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ui_harness import (
    Browser,
    chromium_browser,
    serving,
    shot,
)

pytestmark = pytest.mark.cli


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'claude_binary_path = "{tmp_path / "no-claude"}"\n'
        f'gemini_binary_path = "{tmp_path / "no-gemini"}"\n'
        f'[agents.codex]\nbinary_path = "{tmp_path / "no-codex"}"\n'
        f'[agents.qwen]\nbinary_path = "{tmp_path / "no-qwen"}"\n'
        f'[agents.opencode]\nbinary_path = "{tmp_path / "no-opencode"}"\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["CLAUDOMATOR_CONFIG"] = str(config)
    with serving(env) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium_browser(tmp_path / "chromium") as wrapped:
        yield wrapped


def test_empty_board_guides_then_a_queued_card_says_why_it_waits(
    server: str, browser: Browser
) -> None:
    page = browser.page()
    page.goto(server + "/")
    welcome = page.locator("section.welcome")
    welcome.wait_for()
    text = welcome.inner_text()
    assert "No tasks yet" in text
    assert "No agent can run here yet" in text
    assert "claude: cannot run" in text
    assert "claude CLI not found" in text
    assert "gemini: cannot run" in text
    assert "local: cannot run" in text
    assert "claudomator run hello.yaml" in text
    assert welcome.locator('a[href="/new"]').count() == 1
    page.locator("[data-column=queued]").wait_for()  # the columns stay, empty, below
    shot(page, "board-first-run")

    created = httpx.post(
        f"{server}/api/tasks", json={"name": "first-task", "agent": {"instructions": "hi"}}
    )
    assert created.status_code == 201, created.text
    card = page.locator('li.card[data-state="QUEUED"]')
    card.wait_for(timeout=20_000)  # the board follows the events stream
    reason = card.locator(".waiting-reason").inner_text()
    assert reason.startswith("Waiting: no agent can run here (claude: CLI not found; gemini: CLI")
    assert page.locator("section.welcome").count() == 0
    banner = page.locator(".needs-banner").inner_text()
    assert "No agent can run here" in banner
    shot(page, "board-waiting-reason")

    page.goto(server + "/agents")
    rows = page.locator("tbody tr")
    rows.first.wait_for()
    shown = [rows.nth(i).get_attribute("data-agent") for i in range(rows.count())]
    assert shown == ["claude", "gemini", "codex", "qwen", "opencode", "local"]
    assert (
        page.locator('tr[data-agent="claude"][data-usable="false"]').inner_text().count("not found")
    )
    shot(page, "agents-none-usable")
