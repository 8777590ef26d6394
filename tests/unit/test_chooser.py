"""Choosing an agent for an unpinned task: the prompt, the answer parser and the AgentChooser
against a real OpenAI-compatible fake server and the real Gemini CLI."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from claudomator.chooser import (
    AGENT_PROFILES,
    AgentChooser,
    Choice,
    choice_prompt,
    parse_choice,
)
from claudomator.config import LocalModelSettings
from claudomator.isolation.plain import PlainLauncher
from claudomator.llm import LLMClient
from claudomator.models import AgentConfig, Task
from fakes.gemini import ApiError as GeminiApiError
from fakes.gemini import FakeGemini, gemini_env
from fakes.gemini import Text as GeminiText
from fakes.openai_server import ApiError, FakeOpenAI, JsonReply, Reply

LEAST_LOADED = "least-loaded available agent (no classifier answered)"

TASK = Task(
    name="refactor auth",
    description="split the auth module",
    agent=AgentConfig(instructions="Move the token code out of auth.py into tokens.py"),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.errors == []


def _llm(fake: FakeOpenAI) -> LLMClient:
    return LLMClient(LocalModelSettings(endpoint=fake.url, model="router-model"))


# -- the prompt ----------------------------------------------------------------------------


def test_choice_prompt_lists_available_and_blocked_agents() -> None:
    prompt = choice_prompt(
        TASK,
        ["claude", "local", "custom"],
        {"claude": 2, "gemini": 1},
        {"gemini": "out of quota until 2026-01-01T10:00:00+00:00"},
    )
    available, _, rest = prompt.partition("Unavailable agents (do not choose):\n")
    assert available.startswith("Available agents:\n")
    assert f"- claude: {AGENT_PROFILES['claude']} (running now: 2)" in available
    assert f"- local: {AGENT_PROFILES['local']} (running now: 0)" in available
    assert "- custom: an agent (running now: 0)" in available
    assert "gemini" not in available
    assert rest.startswith("- gemini: out of quota until 2026-01-01T10:00:00+00:00\n")
    assert "Task name: refactor auth" in rest
    assert "Description: split the auth module" in rest
    assert rest.endswith("Instructions:\nMove the token code out of auth.py into tokens.py")


def test_choice_prompt_without_blocked_agents_or_description() -> None:
    task = Task(name="t", agent=AgentConfig(instructions="x" * 5000))
    prompt = choice_prompt(task, ["claude"], {}, {})
    assert "Unavailable agents (do not choose):\n- none\n" in prompt
    assert "Description: -\n" in prompt
    assert prompt.endswith("\n" + "x" * 4000)  # long instructions are cut


# -- parse_choice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"agent": "gemini", "model": "gemini-2.5-pro", "reason": "big codebase"},
            Choice("gemini", "gemini-2.5-pro", "src: big codebase"),
        ),
        ({"agent": " Claude ", "reason": " tricky "}, Choice("claude", "", "src: tricky")),
        ({"agent": "claude", "model": 7}, Choice("claude", "", "src: no reason given")),
        (
            {"agent": "claude", "model": None, "reason": ""},
            Choice("claude", "", "src: no reason given"),
        ),
    ],
)
def test_parse_choice(data: object, expected: Choice) -> None:
    assert parse_choice(data, ["claude", "gemini"], "src") == expected


@pytest.mark.parametrize(
    "data",
    [
        {"agent": "local", "reason": "not available"},
        {"agent": "", "reason": "x"},
        {"model": "gemini-2.5-pro"},
        ["claude"],
        "claude",
        None,
    ],
)
def test_parse_choice_rejects(data: object) -> None:
    assert parse_choice(data, ["claude", "gemini"], "src") is None


# -- the local model -----------------------------------------------------------------------


async def test_local_model_picks_the_agent(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_script(
        [JsonReply({"agent": "gemini", "model": "gemini-2.5-pro", "reason": "reads a lot"})]
    )
    llm = _llm(fake_openai)
    try:
        choice = await AgentChooser(llm, launcher=PlainLauncher())(
            TASK,
            ["claude", "gemini"],
            {"claude": 0, "gemini": 3},
            {"local": "rate-limited until 2026-01-01T10:00:00+00:00"},
        )
    finally:
        await llm.aclose()
    assert choice == Choice("gemini", "gemini-2.5-pro", "local model: reads a lot")
    [request] = fake_openai.chat_requests
    assert request.body["model"] == "router-model"
    assert request.body["response_format"] == {"type": "json_object"}
    system, user = request.messages
    assert system["role"] == "system"
    assert '"agent"' in system["content"]
    assert user["role"] == "user"
    assert "- local: rate-limited until 2026-01-01T10:00:00+00:00" in user["content"]
    assert "(running now: 3)" in user["content"]
    assert "Move the token code" in user["content"]


async def test_local_model_naming_an_unavailable_agent_falls_back(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.set_script([JsonReply({"agent": "local", "reason": "cheap"})])
    llm = _llm(fake_openai)
    try:
        choice = await AgentChooser(llm, launcher=PlainLauncher())(
            TASK, ["claude", "gemini"], {"claude": 2, "gemini": 1}, {}
        )
    finally:
        await llm.aclose()
    assert choice == Choice("gemini", "", LEAST_LOADED)
    assert len(fake_openai.chat_requests) == 1


async def test_local_model_answering_nonsense_falls_back(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_script([Reply("I would pick Claude, probably.")])
    llm = _llm(fake_openai)
    try:
        choice = await AgentChooser(llm, launcher=PlainLauncher())(
            TASK, ["claude", "gemini"], {"claude": 0, "gemini": 1}, {}
        )
    finally:
        await llm.aclose()
    assert choice == Choice("claude", "", LEAST_LOADED)


async def test_local_model_error_falls_back(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_script([ApiError(400, "bad request (fake)")])
    llm = _llm(fake_openai)
    try:
        choice = await AgentChooser(llm, launcher=PlainLauncher())(
            TASK, ["claude", "gemini"], {"claude": 1, "gemini": 0}, {}
        )
    finally:
        await llm.aclose()
    assert choice == Choice("gemini", "", LEAST_LOADED)


async def test_local_model_down_falls_back_quickly() -> None:
    settings = LocalModelSettings(endpoint=f"http://127.0.0.1:{_free_port()}/v1", model="m")
    llm = LLMClient(settings)
    started = time.monotonic()
    try:
        choice = await AgentChooser(llm, launcher=PlainLauncher())(
            TASK, ["claude", "gemini"], {"claude": 1, "gemini": 0}, {}
        )
    finally:
        await llm.aclose()
    assert choice == Choice("gemini", "", LEAST_LOADED)
    assert time.monotonic() - started < 10


async def test_no_local_model_and_no_gemini_is_least_loaded() -> None:
    choice = await AgentChooser(None, launcher=PlainLauncher())(
        TASK, ["claude", "gemini", "local"], {"claude": 1}, {}
    )
    assert choice == Choice("gemini", "", LEAST_LOADED)  # first of the least loaded


async def test_unconfigured_local_model_is_not_asked() -> None:
    llm = LLMClient(LocalModelSettings())
    try:
        choice = await AgentChooser(llm, launcher=PlainLauncher())(TASK, ["claude"], {}, {})
    finally:
        await llm.aclose()
    assert choice == Choice("claude", "", LEAST_LOADED)


async def test_missing_gemini_binary_is_skipped(tmp_path: Path) -> None:
    classifier = AgentChooser(
        None, gemini_binary=str(tmp_path / "no-such-gemini"), launcher=PlainLauncher()
    )
    choice = await classifier(TASK, ["claude", "gemini"], {"claude": 0, "gemini": 0}, {})
    assert choice == Choice("claude", "", LEAST_LOADED)


# -- the Gemini CLI fallback ---------------------------------------------------------------


@pytest.mark.cli
async def test_gemini_cli_picks_the_agent(
    gemini_bin: str, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.set_script(
        [GeminiText('{"agent": "claude", "model": "", "reason": "multi-file change"}')]
    )
    classifier = AgentChooser(
        None,
        gemini_binary=gemini_bin,
        env=gemini_env(fake_gemini.url, tmp_path / "home"),
        launcher=PlainLauncher(),
    )
    choice = await classifier(
        TASK, ["claude", "gemini"], {"claude": 3, "gemini": 0}, {"local": "out of quota"}
    )
    assert choice == Choice("claude", "", "Gemini CLI: multi-file change")
    [request] = fake_gemini.requests
    assert request.model == "gemini-2.5-flash"
    prompt = request.texts("user")[-1]
    assert prompt.startswith("You route software tasks to coding agents.")
    assert "- local: out of quota" in prompt
    assert "Move the token code" in prompt


@pytest.mark.cli
async def test_gemini_cli_is_asked_when_the_local_model_gives_no_usable_answer(
    gemini_bin: str, fake_gemini: FakeGemini, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.set_script([JsonReply({"agent": "nobody"})])
    fake_gemini.set_script(
        [GeminiText('```json\n{"agent": "gemini", "reason": "routine change"}\n```')]
    )
    llm = _llm(fake_openai)
    classifier = AgentChooser(
        llm,
        gemini_binary=gemini_bin,
        gemini_model="gemini-2.5-flash-lite",
        env=gemini_env(fake_gemini.url, tmp_path / "home"),
        launcher=PlainLauncher(),
    )
    try:
        choice = await classifier(TASK, ["claude", "gemini"], {"claude": 0, "gemini": 5}, {})
    finally:
        await llm.aclose()
    assert choice == Choice("gemini", "", "Gemini CLI: routine change")
    assert len(fake_openai.chat_requests) == 1
    [request] = fake_gemini.requests
    assert request.model == "gemini-2.5-flash-lite"


@pytest.mark.cli
async def test_failing_gemini_cli_falls_back_and_cools_down(
    gemini_bin: str, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.set_script([GeminiApiError(500)], repeat_last=True)
    classifier = AgentChooser(
        None,
        gemini_binary=gemini_bin,
        env=gemini_env(fake_gemini.url, tmp_path / "home", max_attempts=1),
        launcher=PlainLauncher(),
    )
    first = await classifier(TASK, ["claude", "gemini"], {"claude": 1, "gemini": 0}, {})
    assert first == Choice("gemini", "", LEAST_LOADED)
    asked = len(fake_gemini.requests)
    assert asked >= 1
    second = await classifier(TASK, ["claude", "gemini"], {"claude": 0, "gemini": 1}, {})
    assert second == Choice("claude", "", LEAST_LOADED)
    assert len(fake_gemini.requests) == asked  # the CLI was not started again


@pytest.mark.cli
async def test_gemini_cli_answer_without_json_falls_back(
    gemini_bin: str, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.set_script([GeminiText("Claude, I think.")])
    classifier = AgentChooser(
        None,
        gemini_binary=gemini_bin,
        env=gemini_env(fake_gemini.url, tmp_path / "home"),
        launcher=PlainLauncher(),
    )
    choice = await classifier(TASK, ["claude", "gemini"], {"claude": 1, "gemini": 0}, {})
    assert choice == Choice("gemini", "", LEAST_LOADED)
    assert len(fake_gemini.requests) == 1
    # an answer that was not usable is no failure of the CLI: it is asked again next time
    fake_gemini.set_script([GeminiText(json.dumps({"agent": "claude", "reason": "again"}))])
    again = await classifier(TASK, ["claude", "gemini"], {"claude": 1, "gemini": 0}, {})
    assert again == Choice("claude", "", "Gemini CLI: again")
