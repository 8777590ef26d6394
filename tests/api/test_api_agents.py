"""GET /api/agents and a task's ``waiting_reason`` from a real ``claudomator serve`` whose only
CLI is a small fake Claude (issue 11 item 2): Gemini is configured at a path that is missing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")

FAKE_CLAUDE = """#!{python}
import json, sys
argv = sys.argv[1:]
session = argv[argv.index("--session-id") + 1] if "--session-id" in argv else ""
for event in (
    {{"type": "system", "subtype": "init", "model": "fake"}},
    {{"type": "assistant",
      "message": {{"content": [{{"type": "text", "text": "## Summary\\nok"}}]}}}},
    {{"type": "result", "subtype": "success", "is_error": False, "result": "## Summary\\nok",
      "total_cost_usd": 0.0, "usage": {{"input_tokens": 1, "output_tokens": 1}}}},
):
    event["session_id"] = session
    print(json.dumps(event), flush=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[httpx.Client]:
    claude = tmp_path / "fake-claude"
    claude.write_text(FAKE_CLAUDE.format(python=sys.executable), encoding="utf-8")
    claude.chmod(0o755)
    config = tmp_path / "config.toml"
    config.write_text(
        f'claude_binary_path = "{claude}"\ngemini_binary_path = "{tmp_path / "no-gemini"}"\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["CLAUDOMATOR_CONFIG"] = str(config)
    env["ANTHROPIC_API_KEY"] = "test-key"
    port = free_port()
    server = subprocess.Popen(
        [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/api/health")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield client
    finally:
        server.terminate()
        server.wait(20)


def test_agents_lists_every_agent_with_why_it_cannot_run(served: httpx.Client) -> None:
    agents = {a["agent"]: a for a in served.get("/api/agents").json()}
    assert set(agents) == {"claude", "gemini", "codex", "qwen", "opencode", "local"}
    assert agents["claude"]["usable"] is True
    assert agents["claude"]["binary"].endswith("fake-claude")
    assert agents["claude"]["credentials"] is True
    assert agents["claude"]["credentials_from"] == "ANTHROPIC_API_KEY"
    assert agents["gemini"]["usable"] is False
    assert agents["gemini"]["binary"] is None
    assert "gemini CLI not found" in agents["gemini"]["reasons"][0]
    assert agents["gemini"]["short"] == "CLI not found"
    assert agents["local"]["usable"] is False
    assert agents["claude"]["status"]["consecutive_failures"] == 0


def test_a_task_pinned_to_an_unusable_agent_waits_saying_why(served: httpx.Client) -> None:
    pinned = served.post(
        "/api/tasks", json={"name": "pinned", "agent": {"type": "gemini", "instructions": "hi"}}
    ).json()["tasks"][0]
    free = served.post("/api/tasks", json={"name": "free", "agent": {"instructions": "hi"}})
    free_id = free.json()["tasks"][0]["id"]
    assert free.json()["tasks"][0]["waiting_reason"] is None  # claude can take it
    deadline = time.monotonic() + 60
    while served.get(f"/api/tasks/{free_id}").json()["task"]["state"] in ("QUEUED", "RUNNING"):
        assert time.monotonic() < deadline, "the unpinned task was never run by claude"
        time.sleep(0.2)
    task = served.get(f"/api/tasks/{pinned['id']}").json()["task"]
    assert task["state"] == "QUEUED"  # not FAILED: it waits for gemini
    assert task["waiting_reason"] == "gemini cannot run here: CLI not found"
    listed = {t["id"]: t for t in served.get("/api/tasks").json()["tasks"]}
    assert listed[pinned["id"]]["waiting_reason"] == task["waiting_reason"]
    assert listed[free_id]["waiting_reason"] is None
