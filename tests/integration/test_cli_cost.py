"""What a task cost, as the console script says it, after a real Gemini CLI run on a model the
price table does not know (issue 11 item 9): "unknown", never "$0.00", and the budget said to be
unchecked. Real processes, a real git repository; only the model server is fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import MakeRepo
from fakes.gemini import FakeGemini, FunctionCall, Text, gemini_env

pytestmark = pytest.mark.cli

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")
UNPRICED = "gemini-unpriced-test"  # no built-in price, no prefix of one


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def env(fake: FakeGemini, tmp_path: Path, gemini_bin: str) -> dict[str, str]:
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
    return env


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [CLAUDOMATOR, *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_an_unpriced_model_costs_unknown_and_its_budget_is_said_unchecked(
    tmp_path: Path, make_repo: MakeRepo, fake: FakeGemini, env: dict[str, str]
) -> None:
    project = make_repo()
    fake.set_script(
        [
            FunctionCall("run_shell_command", {"command": "echo hi > hi.txt"}),
            Text("Done.\n\n## Summary\nWrote hi.txt."),
        ]
    )
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        "name: unpriced\ntimeout: 2m\nagent:\n  type: gemini\n"
        f"  model: {UNPRICED}\n  max_budget_usd: 0.5\n  instructions: Write hi.txt\n"
        f"  project_dir: {project}\n",
        encoding="utf-8",
    )
    done = cli("run", str(tasks), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r.model for r in fake.requests} == {UNPRICED}

    listing = cli("list", env=env).stdout
    [row] = [line for line in listing.splitlines() if "unpriced" in line]
    assert "COMPLETED" in row
    assert row.rstrip(" │").endswith("unknown"), listing  # the COST column
    assert "$0.0000" not in row

    payload = json.loads(cli("show", "--json", "unpriced", env=env).stdout)
    task_id = payload["task"]["id"]
    assert payload["task"]["cost_known"] is False
    assert payload["task"]["cost_usd_total"] == 0
    [execution] = payload["executions"]
    assert execution["cost_known"] is False
    assert execution["tokens_in"] > 0  # it did use the model
    [completed] = [e for e in payload["events"] if e["to_state"] == "COMPLETED"]
    assert completed["reason"] == (
        f"completed; cost unknown (no price for model {UNPRICED}); "
        "the budget of $0.5 was not checked"
    )

    shown = " ".join(cli("show", task_id, env=env).stdout.split())
    assert "budget $0.5" in shown
    assert "cost unknown (no price for the model: the budget of $0.5 was not checked)" in shown
    assert "$0.0000" not in shown
