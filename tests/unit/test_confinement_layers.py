"""The three layers of confinement (the operator's [isolation], the project, the task), the
override rule a task is held to, and how a layered confinement settles on this machine
(isolation.policy, isolation._select)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.isolation._choice import choose
from claudomator.isolation._select import settle
from claudomator.isolation.base import MODEL_ONLY, OPEN, Confinement
from claudomator.isolation.policy import (
    confinement_for,
    governing_project,
    launcher_origin,
    origin,
    override_problems,
)
from claudomator.models import Project, TaskIsolation


def _settings(tmp_path: Path, **isolation: object) -> Settings:
    return Settings(data_dir=tmp_path, isolation=IsolationSettings.model_validate(isolation))


def test_without_project_or_task_the_operator_decides(tmp_path: Path) -> None:
    settings = _settings(tmp_path, launcher="bubblewrap", read_only_paths=["/opt/cache"])
    assert confinement_for(settings) == confinement_for(settings, None, None)
    assert confinement_for(settings) == Confinement(read_only=(Path("/opt/cache"),))


def test_a_project_sets_launcher_and_network_and_adds_paths_and_endpoints(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, read_only_paths=["/opt/cache"], allowed_endpoints=["https://pypi.org"]
    )
    project = Project(
        name="webapp",
        dir=str(tmp_path),
        launcher="bubblewrap",
        network=MODEL_ONLY,
        read_only_paths=("/srv/npm-cache", "/opt/cache"),
        allowed_endpoints=("https://registry.npmjs.org/",),
    )
    got = confinement_for(settings, project)
    assert got.launcher == "bubblewrap"
    assert got.network == MODEL_ONLY
    assert got.read_only == (Path("/opt/cache"), Path("/srv/npm-cache"))
    api = origin(settings.api_url)
    assert got.endpoints == ("https://pypi.org", "https://registry.npmjs.org", api)
    assert launcher_origin(settings, project) == 'project "webapp" launcher'


def test_a_project_that_repeats_the_operator_keeps_the_orchestrator_launcher(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, launcher="auto")
    project = Project(name="p", dir=str(tmp_path), launcher="auto")
    assert confinement_for(settings, project).launcher == ""


def test_the_task_wins_over_its_project(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    project = Project(name="p", dir=str(tmp_path), network=MODEL_ONLY)
    task = TaskIsolation(launcher="bubblewrap", network=OPEN)
    got = confinement_for(settings, project, task)
    assert (got.launcher, got.network, got.endpoints) == ("bubblewrap", OPEN, ())
    assert launcher_origin(settings, project, task) == "the task's isolation.launcher"


@pytest.mark.parametrize(
    ("operator", "project", "task", "loosened"),
    [
        ("plain", "", TaskIsolation(launcher="bubblewrap"), []),  # tighter: always
        ("plain", "", TaskIsolation(launcher="auto", network=MODEL_ONLY), []),
        ("bubblewrap", "", TaskIsolation(launcher="plain"), ["isolation.launcher"]),
        ("bubblewrap", "", TaskIsolation(launcher="auto"), ["isolation.launcher"]),
        ("plain", "bubblewrap", TaskIsolation(launcher="plain"), ["isolation.launcher"]),
        ("bubblewrap", "plain", TaskIsolation(launcher="plain"), []),  # the project's already
    ],
)
def test_a_task_may_tighten_and_may_loosen_only_when_allowed(
    tmp_path: Path, operator: str, project: str, task: TaskIsolation, loosened: list[str]
) -> None:
    settings = _settings(tmp_path, launcher=operator)
    layer = Project(name="p", dir=str(tmp_path), launcher=project)
    assert [field for field, _ in override_problems(settings, layer, task)] == loosened
    allowed = _settings(tmp_path, launcher=operator, allow_task_override=True)
    assert override_problems(allowed, layer, task) == []


def test_loosening_the_network_names_the_field_and_the_setting(tmp_path: Path) -> None:
    settings = _settings(tmp_path, network=MODEL_ONLY)
    [(field, message)] = override_problems(settings, None, TaskIsolation(network=OPEN))
    assert field == "isolation.network"
    assert '[isolation] network = "model-only"' in message
    assert "allow_task_override" in message


def test_the_governing_project_is_the_nearest_registered_folder(tmp_path: Path) -> None:
    repo = Project(name="repo", dir=str(tmp_path / "repo"))
    package = Project(name="pkg", dir=str(tmp_path / "repo" / "pkg"))
    projects = [repo, package]
    assert governing_project(projects, str(tmp_path / "repo" / "pkg" / "src")) is package
    assert governing_project(projects, str(tmp_path / "repo")) is repo
    assert governing_project(projects, str(tmp_path / "other")) is None
    assert governing_project(projects, "") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("launcher", "bwrap", "is not a launcher"),
        ("network", "closed", "is not a network policy"),
        ("read_only_paths", ["cache"], "is not an absolute path"),
        ("allowed_endpoints", ["https://host/path"], "is not an endpoint"),
    ],
)
def test_a_project_s_confinement_is_validated_naming_the_field(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        Project.model_validate({"name": "p", "dir": "/srv/p", field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_a_task_s_isolation_is_validated() -> None:
    with pytest.raises(ValidationError, match="is not a launcher"):
        TaskIsolation(launcher="docker")


# -- settling on this machine (pure: bubblewrap's availability is given) ---------------------


def _never() -> str:
    raise AssertionError("bubblewrap looked up though nothing asked for it")


def test_the_orchestrator_s_own_launcher_is_recorded_with_its_fallback() -> None:
    fell_back = choose("auto", "bwrap is not on PATH")
    got = settle(Confinement(), fell_back, lambda: "bwrap is not on PATH")
    assert got.confinement.launcher == "plain"
    assert got.record == "plain, network open (auto: bubblewrap unavailable: bwrap is not on PATH)"
    assert got.warning
    assert not got.refusal
    plain = settle(Confinement(network=MODEL_ONLY), choose("plain", ""), _never)
    assert (plain.record, plain.warning) == ("plain, network model-only", "")


def test_an_explicit_bubblewrap_that_cannot_run_is_refused() -> None:
    got = settle(
        Confinement(launcher="bubblewrap"),
        choose("plain", ""),
        lambda: "bwrap cannot create namespaces here",
        origin='project "webapp" launcher',
    )
    assert got.refusal.startswith('project "webapp" launcher = "bubblewrap", but bubblewrap')
    assert "bwrap cannot create namespaces here" in got.refusal
    assert got.record.startswith("refused: ")


def test_auto_falls_back_to_plain_with_a_warning_or_confines() -> None:
    wanted = Confinement(launcher="auto", read_only=(Path("/opt/cache"),))
    fell = settle(wanted, choose("plain", ""), lambda: "no bwrap", origin="x")
    assert fell.confinement.launcher == "plain"
    assert fell.record == (
        "plain, network open, 1 extra read-only path (auto: bubblewrap unavailable: no bwrap)"
    )
    assert 'x = "auto"' in fell.warning
    ok = settle(wanted, choose("plain", ""), lambda: "")
    assert ok.confinement.launcher == "bubblewrap"
    assert (ok.record, ok.warning) == ("bubblewrap, network open, 1 extra read-only path", "")


def test_a_pool_around_one_launcher_keeps_it_or_refuses_another(tmp_path: Path) -> None:
    from claudomator.execution import confine
    from claudomator.isolation.plain import PlainLauncher
    from claudomator.models import AgentConfig, Task

    settings = _settings(tmp_path)
    repo = Project(name="webapp", dir=str(tmp_path), launcher="bubblewrap")
    task = Task(name="t", agent=AgentConfig(instructions="x", project_dir=str(tmp_path)))
    asked = confine.wanted(settings, [repo], task)
    refused = confine.settle(asked, PlainLauncher())
    assert refused.refusal == (
        "this orchestrator starts agents through one launcher only (plain); "
        'project "webapp" launcher = "bubblewrap" cannot be honoured'
    )
    kept = confine.settle(confine.wanted(settings, [], task), PlainLauncher())
    assert (kept.refusal, kept.record) == ("", "plain, network open")
