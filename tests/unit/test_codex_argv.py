"""The Codex runner's argv, the config.toml it writes into the task's CODEX_HOME, its
preparation of that home under each launcher, the [agents.codex] table and the OpenAI prices
(docs/agents.md §3b)."""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib
from pathlib import Path

import pytest

from claudomator.agents.base import RunContext
from claudomator.agents.codex import (
    FULL_ACCESS,
    PROVIDER,
    WORKSPACE_WRITE,
    CodexRunner,
    CodexSettings,
    build_argv,
    config_toml,
    credentials,
)
from claudomator.config import (
    DEFAULT_PRICES,
    AgentSettings,
    Settings,
    estimate_cost,
    load_settings,
)
from claudomator.errors import ConfigError
from claudomator.isolation.bubblewrap import BubblewrapLauncher
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task


def _ctx(tmp_path: Path, *, resume: bool = False, **agent: object) -> RunContext:
    config = AgentConfig.model_validate({"type": "codex", "instructions": "Do it.", **agent})
    return RunContext(
        task=Task(name="t", agent=config),
        execution_id="exec-1",
        workdir=tmp_path / "sandbox",
        log_dir=tmp_path / "logs",
        env={},
        session_id="thread-1",
        timeout=60.0,
        kill_grace=1.0,
        stop=asyncio.Event(),
        resume=resume,
    )


def test_exec_argv_exactly(tmp_path: Path) -> None:
    config = CodexSettings(homes_dir=tmp_path, args=("-c", "x=1"))
    ctx = _ctx(tmp_path, model="gpt-5-mini", additional_args=["--ephemeral"])
    assert build_argv("codex", ctx, config) == [
        "codex", "exec", "--json", "--skip-git-repo-check", "-C", str(tmp_path / "sandbox"),
        "-m", "gpt-5-mini", "-c", "x=1", "--ephemeral", "--", "Do it.",
    ]  # fmt: skip


def test_resume_argv_names_the_thread_and_takes_no_cd(tmp_path: Path) -> None:
    config = CodexSettings(homes_dir=tmp_path)
    argv = build_argv("codex", _ctx(tmp_path, resume=True, instructions="-p answer"), config)
    assert argv == [
        "codex", "exec", "resume", "--json", "--skip-git-repo-check", "--", "thread-1", "-p answer",
    ]  # fmt: skip


def test_context_directories_are_added(tmp_path: Path) -> None:
    notes = tmp_path / "docs" / "notes.md"
    notes.parent.mkdir()
    notes.write_text("n", encoding="utf-8")
    argv = build_argv("codex", _ctx(tmp_path, context_files=[str(notes)]), CodexSettings(tmp_path))
    assert argv[argv.index("--add-dir") + 1] == str(notes.parent)
    assert argv[-1].endswith(f"- {notes}")


def test_config_toml_names_the_provider_and_the_key_variable() -> None:
    config = CodexSettings(
        homes_dir=Path("/x"),
        model="gpt-5-mini",
        base_url="http://127.0.0.1:9/v1",
        api_key_env="MY_KEY",
    )
    toml = config_toml(config, sandbox_mode=WORKSPACE_WRITE, task_id="t1", writable=(Path("/l"),))
    parsed = tomllib.loads(toml)
    assert parsed["approval_policy"] == "never"
    assert parsed["sandbox_mode"] == WORKSPACE_WRITE
    assert parsed["model"] == "gpt-5-mini"
    assert parsed["model_provider"] == PROVIDER
    assert parsed["model_providers"][PROVIDER] == {
        "name": "Claudomator: http://127.0.0.1:9",
        "base_url": "http://127.0.0.1:9/v1",
        "wire_api": "responses",
        "env_key": "MY_KEY",
    }
    assert parsed["analytics"] == {"enabled": False}
    assert parsed["sandbox_workspace_write"] == {"writable_roots": ["/l"], "network_access": True}


def test_config_toml_without_a_provider_leaves_codex_its_own() -> None:
    parsed = tomllib.loads(
        config_toml(CodexSettings(Path("/x")), sandbox_mode=FULL_ACCESS, task_id="t")
    )
    assert parsed["sandbox_mode"] == FULL_ACCESS
    assert "model_provider" not in parsed
    assert "model_providers" not in parsed
    assert "model" not in parsed
    assert "sandbox_workspace_write" not in parsed  # bubblewrap confines; Codex does not


def test_config_toml_escapes_what_it_is_given() -> None:
    model = 'we"ird\\model\x7f\x00\n\U0001f600é'
    parsed = tomllib.loads(
        config_toml(CodexSettings(Path("/x"), model=model), sandbox_mode=FULL_ACCESS, task_id="t")
    )
    assert parsed["model"] == model


def test_the_runner_takes_the_agents_table(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        agents={
            "codex": AgentSettings(
                binary_path="/opt/codex",
                model="gpt-5-mini",
                base_url="https://example.invalid/v1/",
                api_key_env="EXAMPLE_KEY",
                args=("-c", "a=1"),
            )
        },
    )
    config = CodexSettings.of(settings)
    assert config == CodexSettings(
        tmp_path / "homes", "gpt-5-mini", "https://example.invalid/v1", "EXAMPLE_KEY", ("-c", "a=1")
    )
    runner = CodexRunner("codex", PlainLauncher(), config)
    assert runner.endpoints({}) == ("https://example.invalid",)
    access = runner.access(_ctx(tmp_path))
    assert "EXAMPLE_KEY" in access.env_patterns
    assert "CODEX_*" in access.env_patterns
    assert CodexRunner("codex", PlainLauncher(), CodexSettings(tmp_path)).endpoints({})[0] == (
        "https://api.openai.com"
    )


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("base_url", "ftp://x", "is not an endpoint URL"),
        ("base_url", "127.0.0.1:8080", "is not an endpoint URL"),
        ("api_key_env", "sk-abc123", "not an environment variable name"),
        ("api_key_env", "MY KEY", "not an environment variable name"),
        ("model", "gpt 5", "is not a model name"),
    ],
)
def test_the_agents_table_is_validated(field: str, value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        AgentSettings.model_validate({field: value})


def test_a_key_put_in_api_key_env_by_mistake_is_not_repeated(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[agents.codex]\napi_key_env = "sk-secret-123"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings({"CLAUDOMATOR_CONFIG": str(config), "CLAUDOMATOR_DATA_DIR": str(tmp_path)})
    assert "agents.codex.api_key_env" in str(info.value)
    assert str(config) in str(info.value)
    assert "sk-secret-123" not in str(info.value)


def test_binary_is_another_name_of_binary_path(tmp_path: Path) -> None:
    assert AgentSettings.model_validate({"binary": "/opt/codex"}).binary_path == "/opt/codex"
    with pytest.raises(ValueError, match="not both"):
        AgentSettings.model_validate({"binary": "a", "binary_path": "b"})
    settings = Settings(data_dir=tmp_path, agents={"codex": {"binary": "/opt/codex"}})
    assert settings.agent_binary("codex", "codex") == "/opt/codex"


def test_credentials_from_a_variable_or_a_login(tmp_path: Path) -> None:
    assert credentials({"OPENAI_API_KEY": "k"}) == (True, "OPENAI_API_KEY")
    assert credentials({"HOME": str(tmp_path)}) == (None, "")
    (tmp_path / ".codex").mkdir()
    (tmp_path / ".codex" / "auth.json").write_text("{}", encoding="utf-8")
    assert credentials({"HOME": str(tmp_path)}) == (True, str(tmp_path / ".codex" / "auth.json"))


def test_openai_models_have_prices_for_the_estimate() -> None:
    assert estimate_cost(DEFAULT_PRICES, "gpt-5-mini", 1_000_000, 1_000_000) == pytest.approx(2.25)
    # a dated snapshot gets its family's price, the longest prefix
    assert estimate_cost(DEFAULT_PRICES, "gpt-5-codex-2025", 1_000_000, 0) == pytest.approx(1.25)
    assert estimate_cost(DEFAULT_PRICES, "gpt-5-pro", 0, 1_000_000) == pytest.approx(120.0)
    assert estimate_cost(DEFAULT_PRICES, "fake-model", 1, 1) is None


def test_prepare_writes_the_task_config_and_copies_the_login_once(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / ".codex").mkdir(parents=True)
    (user / ".codex" / "auth.json").write_text('{"token": 1}', encoding="utf-8")
    runner = CodexRunner("codex", PlainLauncher(), CodexSettings(tmp_path / "homes"))
    ctx = dataclasses.replace(
        _ctx(tmp_path), env={"HOME": str(user), "TMPDIR": str(tmp_path / "t")}
    )
    prepared, codex_home, mode = runner.prepare(ctx)

    assert codex_home == tmp_path / "homes" / ctx.task.id / ".codex"
    assert mode == WORKSPACE_WRITE
    assert prepared.env["CODEX_HOME"] == str(codex_home)
    assert prepared.env["TMPDIR"] == str(tmp_path / "t")  # not above the home: left alone
    assert (codex_home / "auth.json").read_text(encoding="utf-8") == '{"token": 1}'
    assert (codex_home / "auth.json").stat().st_mode & 0o777 == 0o600
    config = tomllib.loads((codex_home / "config.toml").read_text(encoding="utf-8"))
    assert config["sandbox_workspace_write"]["writable_roots"] == [str(ctx.log_dir)]
    # a later run keeps the task's own login (Codex may have refreshed it)
    (codex_home / "auth.json").write_text('{"token": 2}', encoding="utf-8")
    runner.prepare(ctx)
    assert (codex_home / "auth.json").read_text(encoding="utf-8") == '{"token": 2}'
    assert runner.access(prepared).home_files == ()


def test_prepare_gives_a_home_under_the_temp_dir_a_temp_dir_of_its_own(tmp_path: Path) -> None:
    runner = CodexRunner("codex", PlainLauncher(), CodexSettings(tmp_path / "homes"))
    ctx = dataclasses.replace(_ctx(tmp_path), env={"TMPDIR": str(tmp_path)})
    prepared, codex_home, _ = runner.prepare(ctx)
    assert prepared.env["TMPDIR"] == str(codex_home.parent / "tmp")
    assert (codex_home.parent / "tmp").is_dir()


def test_prepare_under_bubblewrap_points_codex_home_into_the_namespace(tmp_path: Path) -> None:
    launcher = BubblewrapLauncher("bwrap", tmp_path / "homes", tmp_path / "sandboxes")
    runner = CodexRunner("codex", launcher, CodexSettings(tmp_path / "homes"))
    ctx = dataclasses.replace(_ctx(tmp_path), env={"TMPDIR": str(tmp_path)})
    prepared, codex_home, mode = runner.prepare(ctx)
    assert mode == FULL_ACCESS
    assert prepared.env["CODEX_HOME"] == "/home/agent/.codex"
    assert prepared.env["TMPDIR"] == str(tmp_path)  # the launcher gives it /tmp of its own
    assert launcher.home_for(runner.access(prepared)) == codex_home.parent
