"""``[isolation] launcher`` resolved on this machine: plain as it is, bubblewrap refused when
it cannot run, auto falling back to plain with a warning (claudomator.isolation._choice), and
the Runtime building the launcher the choice names."""

from __future__ import annotations

import sys
import types

import pytest

from claudomator.agents.registry import AgentRegistry
from claudomator.config import Settings, load_settings
from claudomator.config.sections import IsolationSettings
from claudomator.errors import ConfigError
from claudomator.isolation import _choice
from claudomator.isolation._choice import Choice, choose, resolve
from claudomator.runtime import Runtime

WHY = "bwrap is not on PATH"


@pytest.mark.parametrize(
    ("configured", "reason", "launcher", "confined", "warns", "refuses"),
    [
        ("plain", "", "plain", False, False, False),
        ("plain", WHY, "plain", False, False, False),
        ("bubblewrap", "", "bubblewrap", True, False, False),
        ("bubblewrap", WHY, "", False, False, True),
        ("auto", "", "bubblewrap", True, False, False),
        ("auto", WHY, "plain", False, True, False),
    ],
)
def test_choose(
    configured: str, reason: str, launcher: str, confined: bool, warns: bool, refuses: bool
) -> None:
    choice = choose(configured, reason)
    assert choice.configured == configured
    assert choice.launcher == launcher
    assert choice.confined is confined
    assert bool(choice.warning) is warns
    assert choice.refused is refuses
    if refuses:
        with pytest.raises(ConfigError, match=r"\[isolation\] launcher"):
            choice.required()
    else:
        assert choice.required() == launcher


def test_the_refusal_says_why_and_how_to_install_bubblewrap() -> None:
    refusal = choose("bubblewrap", WHY).refusal
    assert '[isolation] launcher = "bubblewrap"' in refusal
    assert WHY in refusal
    assert "apt-get install bubblewrap" in refusal
    assert choose("bubblewrap", WHY).summary() == refusal


def test_the_start_up_lines() -> None:
    assert choose("plain", "").summary() == "agents run unconfined (plain launcher)"
    assert choose("bubblewrap", "").summary() == "agents run confined (bubblewrap)"
    auto = choose("auto", WHY).summary()
    assert auto.startswith("agents run unconfined (plain launcher)")
    assert WHY in auto
    assert "apt-get install bubblewrap" in auto


def _settings(launcher: str) -> Settings:
    base = load_settings()
    return base.model_copy(
        update={"isolation": base.isolation.model_copy(update={"launcher": launcher})}
    )


def test_the_config_accepts_auto_and_bubblewrap_and_nothing_else() -> None:
    for name in ("plain", "auto", "bubblewrap"):
        assert IsolationSettings(launcher=name).launcher == name
    assert IsolationSettings().launcher == "auto"  # confined wherever bubblewrap can run
    with pytest.raises(ValueError, match="auto"):
        IsolationSettings(launcher="chroot")


def test_without_the_bubblewrap_module_it_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "claudomator.isolation.bubblewrap", None)
    assert _choice.bubblewrap_unavailable(_settings("auto")) == _choice.NOT_INSTALLED
    assert resolve(_settings("auto")).launcher == "plain"
    assert resolve(_settings("bubblewrap")).refused
    assert resolve(_settings("plain")) == Choice("plain", "plain")


def _bubblewrap_module(monkeypatch: pytest.MonkeyPatch, reason: str) -> list[object]:
    """A stand-in ``claudomator.isolation.bubblewrap`` whose ``unavailable`` says ``reason``."""
    asked: list[object] = []
    module = types.ModuleType("claudomator.isolation.bubblewrap")

    def unavailable(settings: object) -> str:
        asked.append(settings)
        return reason

    module.unavailable = unavailable  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "claudomator.isolation.bubblewrap", module)
    return asked


def test_resolve_asks_the_bubblewrap_module_only_when_it_matters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _bubblewrap_module(monkeypatch, WHY)
    assert resolve(_settings("plain")).launcher == "plain"
    assert asked == []  # plain never looks for bwrap
    auto = _settings("auto")
    assert resolve(auto).warning
    assert asked == [auto]
    _bubblewrap_module(monkeypatch, "")
    assert resolve(auto).launcher == "bubblewrap"


def test_the_runtime_refuses_an_unusable_bubblewrap_before_opening_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _bubblewrap_module(monkeypatch, WHY)
    settings = _settings("bubblewrap")
    with pytest.raises(ConfigError, match="apt-get install bubblewrap"):
        Runtime(settings)
    assert not settings.db_path.exists()


def test_the_runtime_runs_auto_unconfined_with_the_plain_launcher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _bubblewrap_module(monkeypatch, WHY)
    runtime = Runtime(_settings("auto"))
    try:
        assert runtime.launcher.name == "plain"
        assert runtime.confinement.warning
    finally:
        runtime.blocking.shutdown()
        runtime.service.close()


def test_chosen_settings_name_a_launcher_the_registry_can_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _bubblewrap_module(monkeypatch, WHY)
    auto = _settings("auto")
    assert _choice.chosen_settings(auto).isolation.launcher == "plain"
    assert AgentRegistry.launcher(_choice.chosen_settings(auto)).name == "plain"
    assert AgentRegistry.launcher(auto).name == "plain"  # the registry resolves "auto" itself
    plain = _settings("plain")
    assert _choice.chosen_settings(plain) is plain
    with pytest.raises(ConfigError, match="bubblewrap cannot run here"):
        _choice.chosen_settings(_settings("bubblewrap"))
