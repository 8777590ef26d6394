"""The launcher seam: every agent CLI spawn goes through the launcher the registry hands the
runners, with the paths the runner declares; ``[isolation] launcher`` picks it, from the modules
of ``claudomator/isolation/``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from claudomator import isolation
from claudomator.agents.base import RunContext
from claudomator.agents.claude import ClaudeRunner
from claudomator.agents.gemini import GeminiRunner
from claudomator.agents.registry import default_registry
from claudomator.config import Settings, load_settings
from claudomator.config.sections import IsolationSettings
from claudomator.errors import ConfigError
from claudomator.isolation._select import SelectingLauncher
from claudomator.isolation.base import Access
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from fakes.anthropic import FakeAnthropic, Text, claude_env

SESSION = "0a1b2c3d-0000-4000-8000-0000000000aa"


@dataclass
class RecordingLauncher:
    """Notes every wrap() and spawns the command unchanged (so the real CLI still runs)."""

    name: str = "recording"
    calls: list[tuple[list[str], Path, dict[str, str], Access]] = field(default_factory=list)

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        self.calls.append((list(argv), cwd, dict(env), paths))
        return list(argv), dict(env)


@pytest.fixture
def fake_claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


async def test_the_real_claude_cli_is_spawned_through_the_launcher(
    tmp_path: Path, claude_bin: str, fake_claude: FakeAnthropic
) -> None:
    fake_claude.set_script([Text("Done.\n\n## Summary\nNothing to do.")])
    home = tmp_path / "home"
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "spec.md").write_text("the spec\n", encoding="utf-8")
    recorder = RecordingLauncher()
    settings = Settings(data_dir=tmp_path / "data", agents={"claude": {"binary_path": claude_bin}})
    runner = default_registry().runners(settings, recorder)["claude"]
    agent = AgentConfig(instructions="Say done.", context_files=(str(notes / "spec.md"),))
    ctx = RunContext(
        task=Task(name="t", agent=agent),
        execution_id="exec-isolation",
        workdir=sandbox,
        log_dir=tmp_path / "logs",
        env=claude_env(fake_claude.url, home),
        session_id=SESSION,
        timeout=120.0,
        kill_grace=2.0,
        stop=asyncio.Event(),
    )

    outcome = await runner.run(ctx)

    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    [(argv, cwd, env, paths)] = recorder.calls
    assert argv[0] == claude_bin
    assert argv[-2] == "--"
    assert argv[-1].startswith("Say done.")
    assert argv[argv.index("--add-dir") + 1] == str(notes.resolve())
    assert cwd == sandbox
    assert env["CLAUDOMATOR_EXECUTION_ID"] == "exec-isolation"  # the mark is in what it wraps
    assert env["HOME"] == str(home)
    assert paths == Access(
        workdir=sandbox,
        log_dir=tmp_path / "logs",
        agent_paths=(home / ".claude", home / ".claude.json"),
        read_only=(notes.resolve(),),
        home_key=ctx.task.id,
        home_files=tuple((home / f, f) for f in ClaudeRunner.home_files),
        env_patterns=ClaudeRunner.env_patterns,
        endpoints=(fake_claude.url,),  # its model endpoint (what model-only would allow)
    )
    assert paths.writable == (sandbox, tmp_path / "logs", home / ".claude", home / ".claude.json")


def test_claude_config_dir_replaces_its_home_paths(tmp_path: Path) -> None:
    runner = ClaudeRunner("claude", PlainLauncher())
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}
    assert runner.agent_paths(env) == (tmp_path / "cfg",)


def test_gemini_declares_its_folder(tmp_path: Path) -> None:
    runner = GeminiRunner("gemini", PlainLauncher())
    assert runner.agent_paths({"HOME": str(tmp_path)}) == (tmp_path / ".gemini",)


def test_the_registry_builds_the_configured_launcher_once_for_every_runner(tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path, isolation=IsolationSettings(launcher="plain"))
    runners = default_registry().runners(plain)
    claude, gemini = runners["claude"], runners["gemini"]
    assert isinstance(claude, ClaudeRunner)
    assert isinstance(gemini, GeminiRunner)
    # the configured one, inside the launcher that picks a project's or task's own
    assert isinstance(claude.launcher, SelectingLauncher)
    assert isinstance(claude.launcher.own, PlainLauncher)
    assert claude.launcher is gemini.launcher


def test_plain_returns_the_command_unchanged(tmp_path: Path) -> None:
    env = {"A": "1"}
    access = Access(workdir=tmp_path, log_dir=tmp_path / "logs")
    argv, wrapped = PlainLauncher().wrap(["x", "--y"], tmp_path, env, access)
    assert (argv, wrapped) == (["x", "--y"], env)
    assert wrapped is not env  # a copy: the launcher never changes the caller's mapping


# -- the config -------------------------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    return load_settings({"CLAUDOMATOR_CONFIG": str(config), "CLAUDOMATOR_DATA_DIR": str(tmp_path)})


def test_the_launcher_is_auto_unless_configured(tmp_path: Path) -> None:
    assert _load(tmp_path, "").isolation.launcher == "auto"
    assert _load(tmp_path, '[isolation]\nlauncher = "plain"\n').isolation.launcher == "plain"
    assert isolation.launcher_names() == ("bubblewrap", "plain")


def test_an_unknown_launcher_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, '[isolation]\nlauncher = "bwrap"\n')
    message = str(caught.value)
    assert "isolation.launcher" in message
    assert "'bwrap' is not a launcher; use one of: bubblewrap, plain" in message
    with pytest.raises(ConfigError, match=r"isolation\.colour"):
        _load(tmp_path, '[isolation]\ncolour = "red"\n')


def test_a_new_launcher_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropping a module with ``make_launcher`` into the package is all it takes."""
    (tmp_path / "echoing.py").write_text(
        "from claudomator.isolation.plain import PlainLauncher\n"
        "class Echoing(PlainLauncher):\n"
        "    name = 'echoing'\n"
        "    def wrap(self, argv, cwd, env, paths):\n"
        "        return ['echo', *argv], dict(env)\n"
        "def make_launcher(settings):\n"
        "    return Echoing()\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(isolation, "__path__", [*isolation.__path__, str(tmp_path)])
    try:
        assert isolation.launcher_names() == ("bubblewrap", "echoing", "plain")
        settings = _load(tmp_path, '[isolation]\nlauncher = "echoing"\n')
        launcher = isolation.build_launcher(settings.isolation.launcher, settings)
        access = Access(workdir=tmp_path, log_dir=tmp_path)
        assert launcher.wrap(["claude"], tmp_path, {}, access)[0] == ["echo", "claude"]
        (tmp_path / "broken.py").write_text("NAME = 'broken'\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"isolation\.broken has no make_launcher"):
            isolation.build_launcher("broken", settings)
    finally:
        sys.modules.pop("claudomator.isolation.echoing", None)
        sys.modules.pop("claudomator.isolation.broken", None)
