"""The OpenCode runner's argv, the opencode.json it writes into the task's private home, the
environment it prepares under each launcher, and how it maps an ending to an outcome
(docs/agents.md §18)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from claudomator.agents.base import RunContext
from claudomator.agents.opencode import (
    PROVIDER,
    XDG,
    OpenCodeRunner,
    OpenCodeSettings,
    build_argv,
    failure_message,
    model_ref,
    opencode_config,
)
from claudomator.agents.opencode_stream import BudgetGuard, OpenCodeStream
from claudomator.config import AgentSettings, ModelPrice, Settings
from claudomator.errors import AgentError
from claudomator.isolation.bubblewrap import BubblewrapLauncher
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.process import Exit

URL = "http://127.0.0.1:9/v1"
PRICE = ModelPrice(input_per_million=3.0, output_per_million=15.0)


def _ctx(
    tmp_path: Path, *, resume: bool = False, env: dict[str, str] | None = None, **agent: object
) -> RunContext:
    config = AgentConfig.model_validate({"type": "opencode", "instructions": "Do it now.", **agent})
    return RunContext(
        task=Task(name="the task", agent=config),
        execution_id="exec-1",
        workdir=tmp_path / "sandbox",
        log_dir=tmp_path / "logs",
        env=env if env is not None else {"HOME": str(tmp_path / "user"), "KEY": "secret"},
        session_id="ses_abc",
        timeout=60.0,
        kill_grace=1.0,
        stop=asyncio.Event(),
        resume=resume,
    )


def _config(tmp_path: Path, **kwargs: object) -> OpenCodeSettings:
    values: dict[str, object] = {
        "homes_dir": tmp_path / "homes", "model": "m1", "base_url": URL, "api_key_env": "KEY",
        "prices": {"m1": PRICE}, **kwargs,
    }  # fmt: skip
    return OpenCodeSettings(**values)  # type: ignore[arg-type]


def test_run_argv_exactly(tmp_path: Path) -> None:
    config = _config(tmp_path, args=("--agent", "build"))
    ctx = _ctx(tmp_path, additional_args=["--thinking"])
    assert build_argv("opencode", ctx, config, "m1") == [
        "opencode", "run", "--format", "json", "--title=the task", "-m", "claudomator/m1",
        "--agent", "build", "--thinking", "--", "Do it now.",
    ]  # fmt: skip


def test_resume_continues_opencodes_session(tmp_path: Path) -> None:
    argv = build_argv("opencode", _ctx(tmp_path, resume=True), _config(tmp_path), "m1")
    assert argv[argv.index("-s") + 1] == "ses_abc"
    assert argv[-2:] == ["--", "Do it now."]


def test_model_refs() -> None:
    endpoint = OpenCodeSettings(homes_dir=Path("/h"), base_url=URL)
    builtin = OpenCodeSettings(homes_dir=Path("/h"))
    assert model_ref(endpoint, "Qwen/Qwen3-Coder") == f"{PROVIDER}/Qwen/Qwen3-Coder"
    assert model_ref(builtin, "anthropic/claude-x") == "anthropic/claude-x"
    assert model_ref(builtin, "") == ""


def test_the_config_names_the_endpoint_the_key_variable_and_the_price(tmp_path: Path) -> None:
    document = opencode_config(_config(tmp_path), "m1", "task-1")
    assert document["autoupdate"] is False
    assert document["share"] == "disabled"
    assert document["snapshot"] is False
    provider = document["provider"][PROVIDER]  # type: ignore[index]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"] == {"baseURL": URL, "apiKey": "{env:KEY}"}
    assert provider["models"] == {"m1": {"name": "m1", "cost": {"input": 3.0, "output": 15.0}}}
    assert "secret" not in json.dumps(document)


def test_an_unpriced_model_and_a_builtin_provider(tmp_path: Path) -> None:
    unpriced = opencode_config(_config(tmp_path, prices={}, api_key_env=""), "m2", "t")
    provider = unpriced["provider"][PROVIDER]  # type: ignore[index]
    assert provider["models"] == {"m2": {"name": "m2"}}
    assert provider["options"] == {"baseURL": URL}
    builtin = opencode_config(_config(tmp_path, base_url=""), "anthropic/claude-x", "t")
    assert builtin["provider"] == {"anthropic": {"options": {"apiKey": "{env:KEY}"}}}
    assert "provider" not in opencode_config(
        _config(tmp_path, base_url="", api_key_env=""), "x", "t"
    )


def test_the_price_matches_the_longest_prefix(tmp_path: Path) -> None:
    other = ModelPrice(input_per_million=1.0, output_per_million=1.0)
    config = _config(tmp_path, prices={"m": other, "m1": PRICE})
    assert config.price("m1-2026") == PRICE
    assert config.price("x") is None


def test_prepare_writes_the_private_home_only(tmp_path: Path) -> None:
    runner = OpenCodeRunner("opencode", PlainLauncher(), _config(tmp_path))
    ctx = _ctx(tmp_path, env={"HOME": str(tmp_path / "user"), "KEY": "k", "OPENCODE_CONFIG": "/x"})
    prepared, model = runner.prepare(ctx)
    home = tmp_path / "homes" / ctx.task.id
    assert model == "m1"
    folder = home / ".config" / "opencode"
    written = json.loads((folder / "opencode.json").read_text(encoding="utf-8"))
    assert written == opencode_config(runner.config, "m1", ctx.task.id)
    assert (folder / "node_modules").is_dir()
    lock = json.loads((folder / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["dependencies"] == {"@opencode-ai/plugin": "*"}
    assert {k: prepared.env[k] for k in XDG} == {k: str(home / v) for k, v in XDG.items()}
    assert prepared.env["OPENCODE_DISABLE_MODELS_FETCH"] == "1"
    assert "OPENCODE_CONFIG" not in prepared.env
    assert prepared.env["HOME"] == str(tmp_path / "user")
    assert not (tmp_path / "sandbox").exists()
    assert runner.agent_paths(prepared.env)[0] == folder


def test_prepare_under_bubblewrap_names_the_confined_home(tmp_path: Path) -> None:
    launcher = BubblewrapLauncher("bwrap", tmp_path / "homes", tmp_path / "sandboxes")
    runner = OpenCodeRunner("opencode", launcher, _config(tmp_path))
    prepared, _ = runner.prepare(_ctx(tmp_path))
    assert prepared.env["XDG_DATA_HOME"] == "/home/agent/.local/share"
    assert prepared.env["XDG_CONFIG_HOME"] == "/home/agent/.config"
    access = runner.access(prepared)
    assert "KEY" in access.env_patterns
    assert "XDG_DATA_HOME" in access.env_patterns
    assert access.home_files == ()
    assert access.endpoints == ("http://127.0.0.1:9",)


def test_the_users_login_is_copied_once(tmp_path: Path) -> None:
    auth = tmp_path / "user" / ".local" / "share" / "opencode" / "auth.json"
    auth.parent.mkdir(parents=True)
    auth.write_text('{"anthropic": {}}', encoding="utf-8")
    runner = OpenCodeRunner("opencode", PlainLauncher(), _config(tmp_path, base_url=""))
    ctx = _ctx(tmp_path)
    runner.prepare(ctx)
    copied = tmp_path / "homes" / ctx.task.id / ".local" / "share" / "opencode" / "auth.json"
    assert copied.read_text(encoding="utf-8") == '{"anthropic": {}}'
    auth.write_text("{}", encoding="utf-8")
    runner.prepare(ctx)
    assert copied.read_text(encoding="utf-8") == '{"anthropic": {}}'  # the task's own now


def test_prepare_refuses_a_missing_model_or_key(tmp_path: Path) -> None:
    runner = OpenCodeRunner("opencode", PlainLauncher(), _config(tmp_path, model=""))
    with pytest.raises(AgentError, match="no model for OpenCode"):
        runner.prepare(_ctx(tmp_path))
    runner = OpenCodeRunner("opencode", PlainLauncher(), _config(tmp_path))
    with pytest.raises(AgentError, match="api_key_env names KEY, which is not set"):
        runner.prepare(_ctx(tmp_path, env={}))


def test_settings_of_reads_the_agents_table(tmp_path: Path) -> None:
    table = AgentSettings(model="m", base_url=URL, api_key_env="K", args=("-x",))
    settings = Settings(data_dir=tmp_path, agents={"opencode": table})
    config = OpenCodeSettings.of(settings)
    assert (config.model, config.base_url, config.api_key_env, config.args) == (
        "m",
        URL,
        "K",
        ("-x",),
    )
    assert config.homes_dir == settings.homes_dir
    assert config.prices == settings.prices


def _outcome(tmp_path: Path, lines: list[dict[str, object]], code: int, **ctx_kwargs: object):  # type: ignore[no-untyped-def]
    runner = OpenCodeRunner("opencode", PlainLauncher(), _config(tmp_path))
    ctx = _ctx(tmp_path, **ctx_kwargs)  # type: ignore[arg-type]
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    ctx.stderr_path.write_text("\x1b[91m\x1b[1mError: \x1b[0mSession not found\n", encoding="utf-8")
    stream = OpenCodeStream()
    guard = BudgetGuard(stream, ctx, "m1")
    for line in lines:
        guard.feed(json.dumps(line))
    return runner.outcome(stream, Exit(returncode=code), ctx, model="m1", guard=guard)


TOKENS = {"input": 10, "output": 2, "reasoning": 1, "cache": {"read": 5, "write": 0}}
STOP: dict[str, object] = {
    "type": "step_finish",
    "sessionID": "ses_abc",
    "part": {"reason": "stop", "cost": 0.5, "tokens": TOKENS},
}


def test_a_clean_run_completes_with_the_reported_cost(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, [STOP], 0)
    assert outcome.status == TaskState.COMPLETED
    assert (outcome.tokens_in, outcome.tokens_out) == (15, 3)
    assert (outcome.cost_usd, outcome.cost_reported) == (0.5, True)
    assert outcome.session_id == "ses_abc"


def test_an_unknown_session_fails_with_the_stderr_reason(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, [], 1, resume=True)
    assert outcome.status == TaskState.FAILED
    assert outcome.error_msg == "Error: Session not found"


def test_an_api_error_names_its_status(tmp_path: Path) -> None:
    error: dict[str, object] = {
        "type": "error",
        "error": {"name": "APIError", "data": {"message": "boom", "statusCode": 503}},
    }
    outcome = _outcome(tmp_path, [error], 1)
    assert outcome.status == TaskState.FAILED
    assert outcome.error_msg == "API error 503: boom"
    assert outcome.api_error_status == 503


def test_a_completed_run_over_the_budget_is_budget_exceeded(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, [STOP], 0, max_budget_usd=0.1)
    assert outcome.status == TaskState.BUDGET_EXCEEDED
    assert outcome.error_msg == "cost $0.5000 passed the budget of $0.1; stopped the agent"


def test_a_new_session_on_resume_is_a_failure(tmp_path: Path) -> None:
    other: dict[str, object] = {**STOP, "sessionID": "ses_new"}
    outcome = _outcome(tmp_path, [other], 0, resume=True)
    assert outcome.status == TaskState.FAILED
    assert "instead of continuing 'ses_abc'" in outcome.error_msg


def test_failure_message_without_anything(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    assert failure_message(OpenCodeStream(), ctx, 2) == (
        "the agent exited without finishing its turn (exit code 2)"
    )


def test_an_unpriced_model_leaves_the_cost_to_the_pool(tmp_path: Path) -> None:
    runner = OpenCodeRunner("opencode", PlainLauncher(), _config(tmp_path, prices={}))
    ctx = _ctx(tmp_path)
    stream = OpenCodeStream()
    stream.feed(json.dumps({**STOP, "part": {"reason": "stop", "cost": 0, "tokens": TOKENS}}))
    outcome = runner.outcome(
        stream, Exit(returncode=0), ctx, model="m1", guard=BudgetGuard(stream, ctx, "m1")
    )
    assert outcome.status == TaskState.COMPLETED
    assert (outcome.cost_usd, outcome.cost_reported) == (0.0, False)
    assert (outcome.tokens_in, outcome.tokens_out) == (15, 3)


@pytest.mark.parametrize(
    ("instructions", "argument"),
    [("42", "42 "), ("-1.5e3", "-1.5e3 "), ("0x1F", "0x1F "), ("v42", "v42"), ("4 2", "4 2")],
)
def test_a_prompt_that_is_one_number_gets_a_space(
    tmp_path: Path, instructions: str, argument: str
) -> None:
    ctx = _ctx(tmp_path, instructions=instructions)
    assert build_argv("opencode", ctx, _config(tmp_path), "m1")[-1] == argument
