"""What the OpenCode integration tests share: the real CLI (``$CLAUDOMATOR_OPENCODE_BIN``,
skipped with the reason when unset), the fake Chat Completions server, the orchestrator's
environment (the key in :data:`KEY_VARIABLE`), the ``[agents.opencode]`` table pointing at the
fake and a pool with OpenCode registered as any plugin agent is (``register(opencode_spec())``).

OpenCode retries a failed request 5 times and waits what the server's ``retry-after`` says
(else 2 s doubling to 30 s, about 90 s in all): the failing scripts send a short
``retry-after`` so the tests stay fast."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from agent_harness import PoolHarness, make_task

from claudomator.config import AgentSettings, ModelPrice, Settings
from claudomator.models import Task
from claudomator.store import Store
from conftest import REPO_ROOT
from fakes.openai_tools import FakeChatTools, ToolCall

DEFAULT_OPENCODE = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "opencode"
MODEL = "fake-model"
KEY_VARIABLE = "FAKE_OPENCODE_KEY"
KEY = "fake-opencode-key"
PRICE = ModelPrice(input_per_million=1.0, output_per_million=2.0)
CALL_COST = (100 * 1.0 + 20 * 2.0) / 1e6  # one call of the fake (100 in / 20 out)


@pytest.fixture
def opencode_bin() -> str:
    """Path of the real OpenCode CLI installed by `make test` (``$CLAUDOMATOR_OPENCODE_BIN``,
    else ``.tools``); skip, saying why, if it is not there."""
    path = os.environ.get("CLAUDOMATOR_OPENCODE_BIN", str(DEFAULT_OPENCODE))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        reason = f"real OpenCode CLI not found at {path} (run `make test`, which installs it)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def fake() -> Iterator[FakeChatTools]:
    with FakeChatTools() as server:
        yield server
        assert server.errors == []
        # --title: no title side call; every request is the agent loop's (it offers tools)
        assert all(r.tool_names for r in server.chat_requests)


def opencode_env(home: Path) -> dict[str, str]:
    """The orchestrator's environment: PATH, a user HOME, the key, loopback unproxied."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), KEY_VARIABLE: KEY}
    env["LANG"] = os.environ.get("LANG", "C.UTF-8")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def opencode_table(binary: str, fake: FakeChatTools) -> AgentSettings:
    return AgentSettings(
        binary_path=binary, model=MODEL, base_url=fake.url, api_key_env=KEY_VARIABLE
    )


@pytest.fixture
def cfg(settings: Settings, opencode_bin: str, fake: FakeChatTools) -> Settings:
    return settings.model_copy(
        update={
            "agents": {"opencode": opencode_table(opencode_bin, fake)},
            "kill_grace_seconds": 2,
            "rate_limit_backoff_seconds": 1,
            "prices": {**settings.prices, MODEL: PRICE},
        }
    )


class OpenCodePool(PoolHarness):
    """The pool harness with OpenCode's environment (the key in its variable, HOME)."""

    def __init__(self, settings: Settings, store: Store, home: Path) -> None:
        super().__init__(settings, store, opencode_env(home))

    async def settle(self, tasks: Sequence[Task], timeout: float = 120.0) -> list[Task]:
        return await super().settle(tasks, timeout)


def opencode_task(project: Path, instructions: str = "Create hello.txt", **kwargs: object) -> Task:
    return make_task(project, instructions, agent_type="opencode", **kwargs)


def bash(command: str, text: str = "") -> ToolCall:
    """OpenCode's shell tool: ``bash {command, description}`` (``workdir`` defaults to the
    CLI's cwd, the sandbox)."""
    return ToolCall("bash", {"command": command, "description": "edit"}, text=text)


def ask(question: str, options: Sequence[str] = ()) -> ToolCall:
    """The model asks through the protocol's question file (OpenCode's own question tool is
    denied in ``run`` mode)."""
    payload = json.dumps({"text": question, "options": list(options)})
    return bash(f"echo '{payload}' > \"$CLAUDOMATOR_QUESTION_FILE\"")
