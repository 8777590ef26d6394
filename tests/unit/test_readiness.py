"""readiness: what each agent needs to run here, and why a queued task waits (issue 11 item 2)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from claudomator.config import AgentSettings, Settings
from claudomator.models import AgentConfig, AgentStatus, Task, TaskState, utcnow
from claudomator.readiness import (
    assess,
    claude_credentials,
    gemini_credentials,
    probe,
    summary_line,
    waiting_reason,
)


def executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def queued(agent: str = "") -> Task:
    pin = {"type": agent} if agent else {}
    return Task(name="t", agent=AgentConfig(instructions="x", **pin), state=TaskState.QUEUED)


def test_credentials_are_found_where_the_clis_read_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home)}
    assert claude_credentials(env) == (False, "")
    assert gemini_credentials(env) == (False, "")
    assert claude_credentials({**env, "ANTHROPIC_API_KEY": "k"}) == (True, "ANTHROPIC_API_KEY")
    assert gemini_credentials({**env, "GOOGLE_API_KEY": "k"}) == (True, "GOOGLE_API_KEY")
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps({"apiKeyHelper": "pass x"}))
    assert claude_credentials(env) == (True, str(home / ".claude" / "settings.json"))
    (home / ".claude" / ".credentials.json").write_text("{}")
    assert claude_credentials(env) == (True, str(home / ".claude" / ".credentials.json"))
    (home / ".gemini").mkdir()
    (home / ".gemini" / ".env").write_text("GEMINI_API_KEY=abc\n")
    assert gemini_credentials(env) == (True, str(home / ".gemini" / ".env"))


def test_probe_reports_binary_credentials_and_configuration(tmp_path: Path) -> None:
    claude = executable(tmp_path / "claude")
    settings = Settings(
        data_dir=tmp_path / "data",
        claude_binary_path=str(claude),
        gemini_binary_path=str(tmp_path / "missing"),
    )
    ready = probe(settings, {"HOME": str(tmp_path), "PATH": "/nonexistent"})
    assert ready["claude"].usable
    assert ready["claude"].binary == str(claude)
    assert ready["claude"].credentials is False
    assert "no claude credentials found" in ready["claude"].warnings[0]
    assert summary_line(ready["claude"]).startswith(f"claude: ready ({claude}); warning: ")
    assert not ready["gemini"].usable
    assert ready["gemini"].short == "CLI not found"
    assert not ready["local"].usable
    assert ready["local"].short == "not configured"


def test_a_pinned_task_waits_for_its_agent_an_unpinned_one_only_for_all(tmp_path: Path) -> None:
    claude = executable(tmp_path / "claude")
    settings = Settings(
        data_dir=tmp_path / "data",
        claude_binary_path=str(claude),
        gemini_binary_path=str(tmp_path / "missing"),
    )
    now = utcnow()
    probed = probe(settings, {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": "k"})
    ready = assess(probed, {}, now)
    assert waiting_reason(queued(), ready) is None
    assert waiting_reason(queued("claude"), ready) is None
    assert waiting_reason(queued("gemini"), ready) == "gemini cannot run here: CLI not found"
    assert waiting_reason(queued(), ready, resuming="gemini") is not None  # its session's agent
    limited = AgentStatus(agent="claude", limited_until=now + timedelta(minutes=5))
    ready = assess(probed, {"claude": limited}, now)
    assert not ready["claude"].usable
    assert ready["claude"].short.startswith("rate-limited until ")
    reason = waiting_reason(queued(), ready)
    assert reason is not None
    assert reason.startswith("no agent can run here (claude: rate-limited until ")
    assert (
        waiting_reason(queued("claude"), ready)
        == f"claude cannot run here: {ready['claude'].short}"
    )
    running = queued("gemini").model_copy(update={"state": TaskState.RUNNING})
    assert waiting_reason(running, ready) is None


def test_every_view_gets_one_state_details_and_last_error(tmp_path: Path) -> None:
    claude, gemini = executable(tmp_path / "claude"), executable(tmp_path / "gemini")
    settings = Settings(
        data_dir=tmp_path / "data", claude_binary_path=str(claude), gemini_binary_path=str(gemini)
    )
    now = utcnow()
    env = {"HOME": str(tmp_path), "PATH": "/nonexistent", "ANTHROPIC_API_KEY": "k"}
    statuses = {
        "claude": AgentStatus(
            agent="claude", limited_until=now + timedelta(minutes=1), last_error="429\nmore"
        ),
        "gemini": AgentStatus(agent="gemini", unavailable_until=now + timedelta(hours=1)),
        "local": AgentStatus(agent="local", limited_until=now + timedelta(minutes=1)),
    }
    fine = probe(settings, env)
    assert fine["claude"].state == "ready"
    assert fine["claude"].details == (f"CLI {claude}", "credentials from ANTHROPIC_API_KEY")
    ready = assess(fine, statuses, now)
    assert ready["claude"].state == "rate-limited"
    assert ready["claude"].details[0].startswith("rate-limited until ")
    assert ready["claude"].last_error == "429"  # the first line
    assert ready["gemini"].state == "out of quota"
    # not configured and limited: it cannot run whatever the limit says
    assert ready["local"].state == "cannot run"
    assert ready["local"].details[0].startswith("[local_model] endpoint and model not set")


def test_a_key_named_by_api_key_env_is_where_readiness_looks(tmp_path: Path) -> None:
    codex = executable(tmp_path / "codex")
    table = AgentSettings(binary_path=str(codex), api_key_env="MY_OPENAI_KEY")
    settings = Settings(data_dir=tmp_path / "data", agents={"codex": table})
    env = {"HOME": str(tmp_path), "PATH": "/nonexistent", "OPENAI_API_KEY": "not-this-one"}
    missing = probe(settings, env)["codex"]
    assert missing.usable  # it still runs; its own error ends the task
    assert missing.credentials is False
    assert "set MY_OPENAI_KEY, which [agents.codex] api_key_env names" in missing.warnings[0]
    found = probe(settings, {**env, "MY_OPENAI_KEY": "sk-x"})["codex"]
    assert (found.credentials, found.credentials_from) == (True, "MY_OPENAI_KEY")
    assert "sk-x" not in found.model_dump_json()  # the key itself is never shown
