"""Fixtures and helpers for the tests that run the real Codex CLI against the Responses API of
the OpenAI fake (:mod:`fakes.openai_server`, :mod:`fakes.responses`): the fake ``responses``,
the user's home ``codex_user_home``, the agent environment ``codex_env`` (the key in
``FAKE_KEY``), and ``codex_settings``: the real CLI through ``[agents.codex]`` (provider
``base_url`` = the fake, ``api_key_env = "FAKE_KEY"``, model :data:`MODEL`, and Codex's own
retries bounded with ``-c model_providers.claudomator.*_max_retries``), a 2 s kill grace."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import pid_alive

from claudomator.agents.codex import PROVIDER
from claudomator.config import AgentSettings, Settings
from claudomator.config.sections import IsolationSettings
from fakes.openai_server import FakeOpenAI
from fakes.responses import ToolCall, exec_command

MODEL = "gpt-5-mini"  # in the price table: the pool estimates the cost
KEY = "fake-codex-key"


def retries(count: int) -> tuple[str, ...]:
    """``-c`` overrides bounding Codex's own request and stream retries (default 5 and 5:
    ~25 s on a persistent 500)."""
    return (
        "-c",
        f"model_providers.{PROVIDER}.request_max_retries={count}",
        "-c",
        f"model_providers.{PROVIDER}.stream_max_retries={count}",
    )


def codex_table(binary: str, url: str, *, retry: int = 0) -> AgentSettings:
    return AgentSettings(
        binary_path=binary, model=MODEL, base_url=url, api_key_env="FAKE_KEY", args=retries(retry)
    )


@pytest.fixture
def responses() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def codex_user_home(tmp_path: Path) -> Path:
    home = tmp_path / "codex-user-home"
    home.mkdir()
    return home


@pytest.fixture
def codex_env(codex_user_home: Path) -> dict[str, str]:
    """What the orchestrator's own environment would hold: PATH, HOME, the key."""
    env = {"PATH": os.environ["PATH"], "HOME": str(codex_user_home), "FAKE_KEY": KEY}
    env["LANG"] = os.environ.get("LANG", "C.UTF-8")
    return env


@pytest.fixture
def codex_settings(settings: Settings, codex_bin: str, responses: FakeOpenAI) -> Settings:
    """Codex unconfined, in its own workspace-write sandbox (the tests that run it under
    bubblewrap, with danger-full-access, set that launcher themselves)."""
    table = codex_table(codex_bin, responses.url)
    agents = {**settings.agents, "codex": table}
    plain = IsolationSettings(launcher="plain")
    return settings.model_copy(
        update={"agents": agents, "kill_grace_seconds": 2, "isolation": plain}
    )


def ask(question: str, options: tuple[str, ...] = ()) -> ToolCall:
    """The agent asks through the protocol's question file, from Codex's shell tool."""
    payload = json.dumps({"text": question, "options": list(options)})
    return exec_command(f"echo '{payload}' > \"$CLAUDOMATOR_QUESTION_FILE\"")


HANG = """
import os, sys, time
with open(sys.argv[1], "w") as fh:
    fh.write(str(os.getpid()))
time.sleep(300)
"""


def host_pids(marker: str, program: str = "python3") -> list[int]:
    """The host pids of the ``program`` processes with ``marker`` among their arguments. (A
    command Codex runs under ``workspace-write`` is in a pid namespace of its sandbox: the pid
    it sees of itself is not the host's.)"""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, UnicodeDecodeError):
            continue
        if Path(argv[0]).name == program and marker in argv and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def hang_command(folder: Path) -> tuple[str, Path]:
    """A shell command whose process writes its pid (in its own pid namespace) to a file and
    then hangs; :func:`host_pids` of the file's path finds it on the host."""
    script = folder / "hang.py"
    script.write_text(HANG, encoding="utf-8")
    pidfile = folder / "child.pid"
    return f"python3 {script} {pidfile}", pidfile
