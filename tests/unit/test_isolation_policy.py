"""The confinement the operator's [isolation] table gives every agent (isolation.policy)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from claudomator.agents.base import RunContext
from claudomator.agents.codex import CodexRunner, CodexSettings
from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.isolation.base import MODEL_ONLY, OPEN, Confinement
from claudomator.isolation.bubblewrap import BubblewrapLauncher
from claudomator.isolation.plain import PlainLauncher
from claudomator.isolation.policy import confinement_for, origin
from claudomator.models import AgentConfig, Task


def test_origin_keeps_scheme_host_and_port_only() -> None:
    assert origin("https://api.anthropic.com/v1/messages?x=1") == "https://api.anthropic.com"
    assert origin("http://user:pw@127.0.0.1:8484/api") == "http://127.0.0.1:8484"
    assert origin("not a url") == ""


def test_open_network_has_no_endpoints_but_keeps_read_only_paths(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, isolation=IsolationSettings(read_only_paths=("/opt/cache",))
    )
    confinement = confinement_for(settings)
    assert confinement.network == OPEN
    assert confinement.endpoints == ()
    assert confinement.read_only == (Path("/opt/cache"),)


def test_model_only_lets_through_the_extra_endpoints_and_the_api(tmp_path: Path) -> None:
    isolation = IsolationSettings(
        network=MODEL_ONLY, allowed_endpoints=("https://registry.npmjs.org/",)
    )
    settings = Settings(data_dir=tmp_path, isolation=isolation)
    confinement = confinement_for(settings)
    assert confinement.network == MODEL_ONLY
    assert confinement.endpoints == ("https://registry.npmjs.org", origin(settings.api_url))


@pytest.mark.parametrize("bad", ["registry.npmjs.org", "https://host/path", "ftp:/x"])
def test_an_endpoint_must_be_an_origin(bad: str) -> None:
    with pytest.raises(ValidationError, match="is not an endpoint"):
        IsolationSettings(allowed_endpoints=(bad,))


def test_read_only_paths_must_be_absolute() -> None:
    with pytest.raises(ValidationError, match="is not an absolute path"):
        IsolationSettings(read_only_paths=("cache",))


def test_pass_env_reaches_the_confinement(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, isolation=IsolationSettings(pass_env=("NPM_TOKEN", "GO*"))
    )
    assert confinement_for(settings).env_patterns == ("NPM_TOKEN", "GO*")


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("*", "would pass the orchestrator's own variables"),
        ("CLAUDOMATOR_*", "would pass the orchestrator's own variables"),
        ("SSH_*", "would pass the orchestrator's own variables"),
        ("NPM TOKEN", "is not a variable name"),
        ("", "is not a variable name"),
    ],
)
def test_pass_env_refuses_what_would_let_the_orchestrator_s_secrets_through(
    bad: str, said: str
) -> None:
    with pytest.raises(ValidationError, match=said):
        IsolationSettings(pass_env=(bad,))


def test_a_run_is_confined_by_its_own_launcher_else_the_orchestrators(tmp_path: Path) -> None:
    """A CLI whose files move inside a confinement (Codex's CODEX_HOME, OpenCode's XDG
    folders) asks the run, not only the orchestrator: a project's bubblewrap under a plain
    orchestrator is confined; a project's plain under a bubblewrap one is not."""
    task = Task(name="t", agent=AgentConfig(instructions="x"))

    def ctx(launcher: str) -> RunContext:
        return RunContext(
            task=task,
            execution_id="e",
            workdir=tmp_path,
            log_dir=tmp_path,
            env={},
            session_id="s",
            timeout=1,
            kill_grace=1,
            stop=asyncio.Event(),
            confinement=Confinement(launcher=launcher),
        )

    plain = CodexRunner("codex", PlainLauncher(), CodexSettings.of(Settings(data_dir=tmp_path)))
    assert not plain.confined(ctx(""))
    assert plain.confined(ctx("bubblewrap"))
    confined = BubblewrapLauncher("bwrap", tmp_path / "homes", tmp_path / "sandboxes")
    runner = CodexRunner("codex", confined, CodexSettings.of(Settings(data_dir=tmp_path)))
    assert runner.confined(ctx(""))
    assert not runner.confined(ctx("plain"))
