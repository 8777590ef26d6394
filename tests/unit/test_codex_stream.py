"""The Codex CLI's stream parser, session-file reader, argv and config.toml, on the recorded
samples of Codex 0.169.0 (tests/samples/codex-0.169.0)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tomllib
from dataclasses import dataclass
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
from claudomator.agents.codex_session import (
    find_rollout,
    sandbox_failures,
    session_model,
    session_usage,
    size_of,
)
from claudomator.agents.codex_stream import CodexStream, names_quota, status_in
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
from conftest import SAMPLES

CODEX = SAMPLES / "codex-0.169.0"
ALL_STREAMS = sorted(
    p.name for p in CODEX.glob("*.jsonl") if not p.name.endswith("_rollout_excerpt.jsonl")
)
HIGH_DEMAND = "We\u2019re currently experiencing high demand, which may cause temporary errors."


def _feed(name: str) -> CodexStream:
    stream = CodexStream()
    for line in (CODEX / name).read_text(encoding="utf-8").splitlines():
        stream.feed(line)
    return stream


@dataclass(frozen=True)
class Expected:
    """What each sample must parse to."""

    completed: bool
    tokens: tuple[int, int]  # as turn.completed says (cumulative over the session)
    commands: int
    retries: int
    api_status: int | None
    message: str = ""  # the start of the failure message


EXPECTED: dict[str, Expected] = {
    "codex_0.169.0_text_only.jsonl": Expected(True, (10, 5), 0, 0, None),
    "codex_0.169.0_basic_tool.jsonl": Expected(True, (200, 40), 1, 0, None),
    "codex_0.169.0_429_once.jsonl": Expected(True, (200, 40), 1, 1, None),
    "codex_0.169.0_err500.jsonl": Expected(False, (0, 0), 0, 5, 500, HIGH_DEMAND),
    "codex_0.169.0_err_500_retries0.jsonl": Expected(False, (0, 0), 0, 0, 500, HIGH_DEMAND),
    "codex_0.169.0_err_502_retries1.jsonl": Expected(
        False, (0, 0), 0, 1, 502, "unexpected status 502 Bad Gateway: bad gateway upstream (fake)"
    ),
    "codex_0.169.0_err_429_persistent_retries0.jsonl": Expected(
        False, (0, 0), 0, 0, 429, "exceeded retry limit, last status: 429 Too Many Requests"
    ),
    "codex_0.169.0_err_429_insufficient_quota.jsonl": Expected(
        False, (0, 0), 0, 0, None, "Quota exceeded. Check your plan and billing details."
    ),
    "codex_0.169.0_err_400.jsonl": Expected(False, (0, 0), 0, 0, None, '{"error": '),
    "codex_0.169.0_err_401_retries0.jsonl": Expected(
        False, (0, 0), 0, 0, 401, "unexpected status 401 Unauthorized: Incorrect API key"
    ),
    "codex_0.169.0_err_stream_failed_retries1.jsonl": Expected(
        False, (0, 0), 0, 1, None, "stream disconnected before completion: The model failed"
    ),
    "codex_0.169.0_resume_run1.jsonl": Expected(True, (200, 40), 1, 0, None),
    "codex_0.169.0_resume_run2.jsonl": Expected(True, (400, 80), 1, 0, None),
    "codex_0.169.0_bubblewrap_workspace_write.jsonl": Expected(True, (200, 40), 0, 0, None),
}


def test_every_sample_has_an_expectation() -> None:
    assert len(ALL_STREAMS) >= 14
    assert sorted(EXPECTED) == ALL_STREAMS


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_every_sample_parses(name: str) -> None:
    want = EXPECTED[name]
    stream = _feed(name)
    events = [json.loads(line) for line in (CODEX / name).read_text().splitlines()]
    assert stream.bad_lines == 0
    assert stream.session_id == events[0]["thread_id"]
    assert stream.completed is want.completed
    assert stream.failed is not want.completed
    assert stream.tokens == want.tokens
    assert stream.commands_run == want.commands
    assert stream.retries == want.retries
    assert stream.api_error_status == want.api_status
    assert stream.turns == 1
    if want.completed:
        assert stream.error_message == ""
        assert "## Summary" in stream.text
    else:
        assert stream.error_message.startswith(want.message)
        assert stream.text == ""
    # the model-metadata warning is an item, not a failure
    if "bubblewrap" not in name:
        assert any("Model metadata" in w for w in stream.warnings)


def test_messages_are_kept_in_order_and_joined() -> None:
    stream = _feed("codex_0.169.0_basic_tool.jsonl")
    assert stream.texts == ["I'll create the file.", "## Summary\nCreated hello.txt"]
    assert stream.text == "I'll create the file.\n\n## Summary\nCreated hello.txt"
    [command] = stream.commands.values()
    assert command.command.startswith("/bin/bash -lc ")
    assert (command.exit_code, command.status) == (0, "completed")
    assert stream.tools == ["command_execution"]


def test_the_live_estimate_grows_with_what_the_model_sees_and_writes() -> None:
    stream = CodexStream(context_chars=4000)  # the prompt
    stream.feed(json.dumps({"type": "thread.started", "thread_id": "t"}))
    stream.feed(
        json.dumps({"type": "item.completed", "item": {"type": "agent_message", "text": "x" * 400}})
    )
    assert stream.live_tokens == (1000, 100)
    output = {
        "id": "c",
        "type": "command_execution",
        "command": "ls",
        "aggregated_output": "y" * 8000,
    }
    stream.feed(json.dumps({"type": "item.started", "item": output | {"aggregated_output": ""}}))
    stream.feed(json.dumps({"type": "item.completed", "item": output | {"exit_code": 0}}))
    stream.feed(
        json.dumps({"type": "item.completed", "item": {"type": "agent_message", "text": "done"}})
    )
    # the second model turn was sent the prompt, the first message, the command and its output
    assert stream.live_tokens[0] == (4000 + (4000 + 400 + 2 + 8000)) // 4


def test_garbage_lines_are_counted_not_fatal() -> None:
    stream = CodexStream()
    for line in ("Reading additional input from stdin...", "[1, 2]", '{"type": "turn.completed"}'):
        stream.feed(line)
    assert stream.bad_lines == 2
    assert stream.completed  # usage missing: still completed, zero tokens
    assert stream.tokens == (0, 0)


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("exceeded retry limit, last status: 429 Too Many Requests", 429),
        ("unexpected status 502 Bad Gateway: nope, url: http://x/v1/responses", 502),
        (HIGH_DEMAND, 500),
        ("stream disconnected before completion: boom", None),
        ("Quota exceeded. Check your plan and billing details.", None),
    ],
)
def test_status_in_a_codex_message(message: str, status: int | None) -> None:
    assert status_in(message) == status


def test_quota_messages_are_recognised() -> None:
    assert names_quota("Quota exceeded. Check your plan and billing details.")
    assert names_quota("You've hit your usage limit. Try again later.")
    assert not names_quota("exceeded retry limit, last status: 429 Too Many Requests")


# -- the session file ---------------------------------------------------------------------


def _codex_home(tmp_path: Path, thread: str, *names: str) -> Path:
    home = tmp_path / ".codex"
    folder = home / "sessions" / "2026" / "12" / "02"
    folder.mkdir(parents=True)
    text = "".join((CODEX / n).read_text(encoding="utf-8") for n in names)
    (folder / f"rollout-2026-12-02T17-27-51-{thread}.jsonl").write_text(text, encoding="utf-8")
    return home


def test_the_session_file_gives_usage_model_and_sandbox_failures(tmp_path: Path) -> None:
    thread = "01a237cc-64d9-7ae1-8ee8-3a6fb4dd0bd7"
    home = _codex_home(
        tmp_path, thread, "codex_0.169.0_bubblewrap_workspace_write_rollout_excerpt.jsonl"
    )
    rollout = find_rollout(home, thread)
    assert rollout is not None
    assert session_usage(rollout) == (200, 40)
    assert session_model(rollout) == "fake-model"
    check = sandbox_failures(rollout)
    assert check.failed == 1
    assert check.first == "bwrap: setting up uid map: Operation not permitted"
    assert "bwrap: setting up uid map" in check.message()
    # from the end of the file on (a resumed run's own lines): nothing
    assert sandbox_failures(rollout, size_of(rollout)).failed == 0
    assert find_rollout(home, "other-thread") is None
    assert find_rollout(tmp_path / "nowhere", thread) is None
    assert session_usage(None) == (0, 0)


def test_a_broken_session_file_reads_as_empty(tmp_path: Path) -> None:
    home = tmp_path / ".codex"
    folder = home / "sessions" / "2026" / "01" / "01"
    folder.mkdir(parents=True)
    (folder / "rollout-x-t1.jsonl").write_bytes(b'\xff\xfe not json\n[1]\n{"payload": 3}\n')
    rollout = find_rollout(home, "t1")
    assert session_usage(rollout) == (0, 0)
    assert session_model(rollout) == ""
    assert sandbox_failures(rollout).failed == 0


# -- argv and config.toml ------------------------------------------------------------------


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
    model = 'we"ird\\model'
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
