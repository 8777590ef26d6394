"""The agent registry: specs and registration (an extra agent added the way the built-ins are),
declared capabilities, the ``[agents.<name>]`` config tables with the deprecated flat keys, and
the one-shot JSON call against the real Claude and Gemini CLIs on the fake model servers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from claudomator.agents import AgentRegistry, AgentSpec, build_registry, builtin_agents
from claudomator.agents.base import Capabilities, Outcome, RunContext, unapplied_options
from claudomator.agents.claude import ClaudeRunner
from claudomator.agents.cli import CliRunner
from claudomator.agents.gemini import GeminiRunner
from claudomator.agents.local import LocalRunner
from claudomator.agents.oneshot import OneShot, OneShotFailed, ask_json
from claudomator.agents.registry import LOCAL_CAPABILITIES, default_registry
from claudomator.chooser import AgentChooser, choice_prompt
from claudomator.config import LocalModelSettings, Settings, load_settings
from claudomator.errors import ConfigError
from claudomator.isolation.plain import PlainLauncher
from claudomator.llm import LLMClient
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.process import CommandResult
from claudomator.readiness import probe
from conftest import REPO_ROOT
from fakes.anthropic import FakeAnthropic, Text, claude_env
from fakes.gemini import FakeGemini, gemini_env
from fakes.gemini import Text as GeminiText

DEFAULT_GEMINI = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "gemini"


@pytest.fixture
def gemini_bin() -> str:
    """Path of the real Gemini CLI; skip (saying why) if it is absent."""
    path = Path(os.environ.get("CLAUDOMATOR_GEMINI_BIN", str(DEFAULT_GEMINI)))
    if not (path.is_file() and os.access(path, os.X_OK)):
        reason = f"real Gemini CLI not found at {path} (run `make test`, which installs it)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return str(path)


# -- a new agent: one module (this block) plus one registration --------------------------------


class EchoRunner(CliRunner):
    """A made-up CLI agent, written as a new agent module would be."""

    name = "echo"
    label = "Echo CLI"
    install_hint = "apt install echo-cli"
    capabilities = Capabilities(text_only=True, options=frozenset({"model"}))

    async def run(self, ctx: RunContext) -> Outcome:
        self.resolve_binary()
        return Outcome(TaskState.COMPLETED)


def _echo_argv(binary: str, prompt: str, model: str) -> list[str]:
    return [binary, prompt]


def _echo_reply(result: CommandResult) -> str:
    return result.stdout


ECHO = AgentSpec(
    name="echo",
    profile="Echo CLI: says what it is told.",
    capabilities=EchoRunner.capabilities,
    make_runner=lambda s, launcher: EchoRunner(s.agent_binary("echo", "echo"), launcher),
    default_binary="echo",
    one_shot=OneShot(_echo_argv, _echo_reply, default_model=""),
    install_hint=EchoRunner.install_hint,
)


def _registry_with_echo() -> AgentRegistry:
    """What a composition root does: the built-ins, then the extra agent, the same way."""
    registry = AgentRegistry()
    for spec in [*builtin_agents(), ECHO]:
        registry.register(spec)
    return registry


def test_an_extra_agent_registers_like_the_built_ins(tmp_path: Path) -> None:
    registry = _registry_with_echo()
    assert registry.names() == ("claude", "gemini", "codex", "qwen", "opencode", "local", "echo")
    settings = Settings(data_dir=tmp_path, agents={"echo": {"binary_path": "/bin/echo"}})
    runners = build_registry(settings, registry)
    # (local: no endpoint)
    assert sorted(runners) == ["claude", "codex", "echo", "gemini", "opencode", "qwen"]
    assert isinstance(runners["echo"], EchoRunner)
    assert runners["echo"].binary == "/bin/echo"
    # the rest of the code learns about it from the registry alone
    ready = probe(settings, {"PATH": "/usr/bin:/bin"}, registry)
    assert ready["echo"].usable
    assert ready["echo"].binary == "/bin/echo"
    chooser = AgentChooser(None, registry=registry, launcher=PlainLauncher())
    assert chooser.profiles["echo"] == "Echo CLI: says what it is told."
    task = Task(name="t", agent=AgentConfig(instructions="say hi"))
    prompt = choice_prompt(task, ["echo"], {}, {}, chooser.profiles)
    assert "- echo: Echo CLI: says what it is told. (running now: 0)" in prompt


def test_a_missing_cli_of_an_extra_agent_says_how_to_install_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, agents={"echo": {"binary_path": "no-such-echo"}})
    ready = probe(settings, {"PATH": str(tmp_path)}, _registry_with_echo())["echo"]
    assert not ready.usable
    assert "`apt install echo-cli` or set [agents.echo] binary_path" in ready.reasons[0]
    assert ready.credentials is None  # an unknown CLI's credentials are not checked


def test_no_agent_registers_twice_or_under_a_bad_name() -> None:
    registry = default_registry()
    with pytest.raises(ConfigError, match="'claude' is registered twice"):
        registry.register(builtin_agents()[0])
    with pytest.raises(ConfigError, match="agent name 'my agent'"):
        registry.register(AgentSpec("my agent", "", Capabilities(), lambda s, launcher: None))


def test_default_registry_is_new_each_time() -> None:
    """No process-wide registry: registering into one leaves the next untouched."""
    first = default_registry()
    first.register(ECHO)
    assert "echo" in first
    assert "echo" not in default_registry()


def test_the_registry_module_stays_light() -> None:
    """The command line imports it (through readiness): no model SDK, no database."""
    probe_code = (
        "import sys, claudomator.agents.registry; "
        "print(sorted(m for m in ('openai', 'sqlalchemy', 'claudomator.agents.local', "
        "'claudomator.llm') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe_code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# -- capabilities ------------------------------------------------------------------------------


def test_capabilities_are_declared_on_the_runner_classes() -> None:
    assert ClaudeRunner.capabilities.reports_cost
    assert ClaudeRunner.capabilities.enforces_budget
    assert not ClaudeRunner.capabilities.resumes_in_place
    assert GeminiRunner.capabilities.resumes_in_place
    assert not GeminiRunner.capabilities.reports_cost
    assert "max_budget_usd" not in GeminiRunner.capabilities.options
    assert LocalRunner.capabilities.text_only
    assert not LocalRunner.capabilities.spawns_process
    # the registry repeats the local runner's (so as not to import its SDK): they must agree
    assert LocalRunner.capabilities == LOCAL_CAPABILITIES
    specs = {spec.name: spec for spec in builtin_agents()}
    assert specs["claude"].capabilities is ClaudeRunner.capabilities
    assert specs["gemini"].capabilities is GeminiRunner.capabilities


def test_the_local_runner_is_built_only_with_an_endpoint(tmp_path: Path) -> None:
    assert "local" not in build_registry(Settings(data_dir=tmp_path))
    configured = Settings(
        data_dir=tmp_path, local_model=LocalModelSettings(endpoint="http://127.0.0.1:9/v1")
    )
    llm = LLMClient(configured.local_model)  # the process's one (no request made: nothing to close)
    local = build_registry(configured, llm=llm)["local"]
    assert isinstance(local, LocalRunner)
    assert local.llm is llm  # given, not built by the runner


# -- config: [agents.<name>] and the deprecated flat keys -------------------------------------


def _load(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    return load_settings({"CLAUDOMATOR_CONFIG": str(config), "HOME": str(tmp_path)})


def test_agents_tables_name_the_binaries(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        '[agents.claude]\nbinary_path = "/opt/claude"\n[agents.gemini]\nbinary_path = "g"\n',
    )
    assert settings.agent_binary("claude") == "/opt/claude"
    assert settings.agent_binary("gemini") == "g"
    runners = build_registry(settings)
    assert runners["claude"].binary == "/opt/claude"  # type: ignore[attr-defined]
    assert runners["gemini"].binary == "g"  # type: ignore[attr-defined]


def test_flat_binary_keys_still_work_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = 'claude_binary_path = "/old/claude"\n'
    with caplog.at_level(logging.WARNING, logger="claudomator.config"):
        settings = _load(tmp_path, text)
        _load(tmp_path, text)  # the same file again: no second warning
    assert settings.agent_binary("claude") == "/old/claude"
    assert settings.agent_binary("gemini") == "gemini"  # the default
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warnings) == 1
    assert "claude_binary_path is deprecated" in warnings[0]
    assert "[agents.claude]" in warnings[0]


def test_a_table_wins_over_the_flat_key(tmp_path: Path) -> None:
    settings = _load(
        tmp_path, 'gemini_binary_path = "/old/gemini"\n[agents.gemini]\nbinary_path = "/new"\n'
    )
    assert settings.agent_binary("gemini") == "/new"


def test_an_unknown_key_in_an_agents_table_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agents\.claude\.binary_paht: Extra inputs"):
        _load(tmp_path, '[agents.claude]\nbinary_paht = "/opt/claude"\n')


# -- the one-shot call, against the real CLIs ---------------------------------------------------


async def test_a_missing_binary_fails_the_one_shot_call(tmp_path: Path) -> None:
    spec = default_registry()["claude"]
    assert spec.one_shot is not None
    with pytest.raises(OneShotFailed) as caught:
        await ask_json(
            spec.one_shot,
            str(tmp_path / "nope"),
            "hi",
            time_limit=5,
            setting=spec.binary_setting,
            launcher=PlainLauncher(),
        )
    assert caught.value.kind == "missing"
    assert (
        str(caught.value)
        == f"{str(tmp_path / 'nope')!r} not found (set [agents.claude] binary_path)"
    )


@pytest.mark.cli
async def test_the_claude_one_shot_call_returns_the_json(claude_bin: str, tmp_path: Path) -> None:
    spec = default_registry()["claude"]
    assert spec.one_shot is not None
    with FakeAnthropic([Text('Sure:\n```json\n{"agent": "gemini"}\n```')]) as fake:
        env = claude_env(fake.url, tmp_path / "home")
        answer = await ask_json(
            spec.one_shot, claude_bin, "pick one", env=env, time_limit=60, launcher=PlainLauncher()
        )
        [request] = fake.requests
    assert answer == {"agent": "gemini"}
    assert request.body["model"].startswith("claude-sonnet")


@pytest.mark.cli
async def test_the_gemini_one_shot_call_returns_the_json(gemini_bin: str, tmp_path: Path) -> None:
    spec = default_registry()["gemini"]
    assert spec.one_shot is not None
    with FakeGemini([GeminiText(json.dumps({"agent": "claude"}))]) as fake:
        env = gemini_env(fake.url, tmp_path / "home")
        answer = await ask_json(
            spec.one_shot,
            gemini_bin,
            "-starts with a dash",
            env=env,
            time_limit=60,
            launcher=PlainLauncher(),
        )
        [request] = fake.requests
    assert answer == {"agent": "claude"}
    assert request.model == "gemini-2.5-flash"
    assert request.texts("user")[-1] == "-starts with a dash"  # --prompt= keeps it whole


@pytest.mark.cli
async def test_a_one_shot_answer_without_json_is_an_invalid_reply(
    gemini_bin: str, tmp_path: Path
) -> None:
    spec = default_registry()["gemini"]
    assert spec.one_shot is not None
    with FakeGemini([GeminiText("Claude, I think.")]) as fake:
        env = gemini_env(fake.url, tmp_path / "home")
        with pytest.raises(OneShotFailed) as caught:
            await ask_json(
                spec.one_shot, gemini_bin, "pick", env=env, time_limit=60, launcher=PlainLauncher()
            )
    assert caught.value.kind == "invalid_reply"


def test_options_a_runner_does_not_apply_come_from_its_capabilities() -> None:
    agent = AgentConfig(instructions="i", max_budget_usd=1, temperature=0.5, permission_mode="plan")
    assert unapplied_options(agent, ClaudeRunner.capabilities) == ["temperature"]
    assert unapplied_options(agent, GeminiRunner.capabilities) == [
        "max_budget_usd",
        "permission_mode",
        "temperature",
    ]
    assert unapplied_options(agent, LocalRunner.capabilities) == [
        "max_budget_usd",
        "permission_mode",
    ]
    assert unapplied_options(AgentConfig(instructions="i"), EchoRunner.capabilities) == []


async def test_the_runtime_runs_with_the_registry_it_is_given(tmp_path: Path) -> None:
    """The composition root takes the registry: the pool gets the extra agent's runner and
    the service reports its readiness."""
    from claudomator.runtime import Runtime

    settings = Settings(
        data_dir=tmp_path / "data",
        agents={"echo": {"binary_path": "/bin/echo"}},
        claude_binary_path=str(tmp_path / "no-claude"),
        gemini_binary_path=str(tmp_path / "no-gemini"),
    )
    registry = _registry_with_echo()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    async with Runtime(settings, base_env=env, agents=registry) as runtime:
        assert runtime.agents is registry
        assert runtime.service.agents is registry
        assert isinstance(runtime.pool.runners["echo"], EchoRunner)
        ready = runtime.service.agent_readiness(env)
    assert ready["echo"].usable
    assert not ready["claude"].usable
    runtime.service.close()
