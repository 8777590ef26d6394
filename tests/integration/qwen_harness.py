"""What the Qwen Code integration tests share: the real CLI (``$CLAUDOMATOR_QWEN_BIN``, skipped
when missing), the fake server fixture, the orchestrator's environment and the ``[agents.qwen]``
table pointing at the fake."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from claudomator.config import AgentSettings
from conftest import REPO_ROOT
from fakes.openai_tools import FakeChatTools, ToolCall

MODEL = "fake-model"
KEY_VARIABLE = "FAKE_QWEN_KEY"
DEFAULT_QWEN = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "qwen"


@pytest.fixture
def qwen_bin() -> str:
    """Path of the real Qwen Code CLI (``$CLAUDOMATOR_QWEN_BIN``); skip, saying why, if absent."""
    path = os.environ.get("CLAUDOMATOR_QWEN_BIN", str(DEFAULT_QWEN))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        reason = f"real Qwen Code CLI not found at {path} (set CLAUDOMATOR_QWEN_BIN)"
        if shutil.which("npm") is None:
            reason += "; npm is missing"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path


def qwen_env(home: Path) -> dict[str, str]:
    """The orchestrator's environment for Qwen tests: ``os.environ`` without inherited
    ``OPENAI_*`` / ``QWEN_*`` variables, the key in :data:`KEY_VARIABLE`, ``HOME=home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QWEN_"))}
    home.mkdir(parents=True, exist_ok=True)
    no_proxy = ",".join(p for p in (env.get("NO_PROXY", ""), "127.0.0.1,localhost") if p)
    env.update({KEY_VARIABLE: "fake-key", "HOME": str(home), "NO_PROXY": no_proxy})
    env["no_proxy"] = no_proxy
    return env


def qwen_table(binary: str, fake: FakeChatTools) -> AgentSettings:
    """``[agents.qwen]`` for the fake: the provider comes from here, not from the environment."""
    return AgentSettings(
        binary_path=binary, model=MODEL, base_url=fake.url, api_key_env=KEY_VARIABLE
    )


@pytest.fixture
def fake() -> Iterator[FakeChatTools]:
    with FakeChatTools() as server:
        yield server
        assert server.errors == []


def create_file(directory: Path | None = None, text: str = "hello from qwen") -> ToolCall:
    """The model asks for ``run_shell_command {command, directory, description}`` (without a
    ``directory`` the command runs in the CLI's cwd: the sandbox)."""
    arguments = {"command": f"echo '{text}' > hello.txt", "description": "Create hello.txt"}
    if directory is not None:
        arguments["directory"] = str(directory)
    return ToolCall("run_shell_command", arguments, text="I'll create the file.")
