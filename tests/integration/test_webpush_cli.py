"""Web Push end to end: a real Claude CLI asks a question and the pool pushes it to a browser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_harness import PoolHarness, make_task, wait_for

from claudomator.config import Settings
from claudomator.models import TaskState
from claudomator.service import Service
from claudomator.store import Store
from claudomator.webpush import KEY_FILE
from conftest import MakeRepo
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env
from fakes.push import Browser
from fakes.receiver import WebhookReceiver

pytestmark = pytest.mark.cli


async def test_a_question_from_the_real_cli_is_pushed_to_the_browser(
    settings: Settings, store: Store, tmp_path: Path, claude_bin: str, make_repo: MakeRepo
) -> None:
    """The whole path: a real Claude CLI asks a question, the pool pushes it to a browser."""
    question = json.dumps({"text": "Which database?", "options": ["sqlite", "postgres"]})
    ask = ToolUse("Bash", {"command": f"echo '{question}' > \"$CLAUDOMATOR_QUESTION_FILE\""})
    with WebhookReceiver(status=201) as push, FakeAnthropic([ask, Text("I asked.")]) as fake:
        browser = Browser(f"{push.base_url}/push/phone")
        sub = browser.subscription()
        Service(settings, store).subscribe_push(
            browser.endpoint, sub["keys"]["p256dh"], sub["keys"]["auth"]
        )
        cfg = settings.model_copy(update={"claude_binary_path": claude_bin})
        env = claude_env(fake.url, tmp_path / "agent-home")
        async with PoolHarness(cfg, store, env) as harness:
            [task] = harness.submit(make_task(make_repo(), name="asks"))
            [blocked] = await harness.settle([task])
            await wait_for(lambda: bool(push.deliveries), 10)
    assert blocked.state == TaskState.BLOCKED
    shown = browser.read(push.deliveries[0])
    assert (shown["event"], shown["title"]) == ("task.blocked", "Needs you: asks")
    assert shown["body"] == "Which database?"
    assert (settings.data_dir / KEY_FILE).exists()
