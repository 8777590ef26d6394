"""The ``bubblewrap`` launcher's command line, private home and environment (no bwrap needed:
these look at what it would run; tests/robustness/test_confined_hostile.py runs it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claudomator.agents.claude import ClaudeRunner
from claudomator.agents.gemini import GeminiRunner
from claudomator.config import Settings
from claudomator.isolation import build_launcher
from claudomator.isolation.base import Access
from claudomator.isolation.bubblewrap import BubblewrapLauncher, copy_file, install_dirs


def _launcher(tmp_path: Path) -> BubblewrapLauncher:
    launcher = build_launcher("bubblewrap", Settings(data_dir=tmp_path / "data"))
    assert isinstance(launcher, BubblewrapLauncher)
    return launcher


def _binds(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_the_sandbox_tree_logs_and_home_are_bound_and_nothing_of_the_home(
    tmp_path: Path,
) -> None:
    launcher = _launcher(tmp_path)
    tree = launcher.sandboxes_dir / "exec-1"
    workdir = tree / "packages" / "web"  # a monorepo package: the whole tree is bound
    workdir.mkdir(parents=True)
    logs = tmp_path / "data" / "logs" / "t" / "exec-1"
    access = Access(workdir=workdir, log_dir=logs, home_key="task-1")
    argv, _ = launcher.wrap(["/usr/bin/true"], workdir, {"HOME": str(tmp_path)}, access)

    assert argv[0].endswith("bwrap")
    assert argv[-2:] == ["--", "/usr/bin/true"]
    assert {"--unshare-pid", "--die-with-parent", "--new-session"} <= set(argv)
    assert _binds(argv, "--bind") == [str(tree), str(logs), str(tmp_path / "data/homes/task-1")]
    assert argv[argv.index("--chdir") + 1] == str(workdir)
    assert "/etc" in _binds(argv, "--ro-bind")
    assert str(tmp_path) not in _binds(argv, "--ro-bind")


def test_a_read_only_workdir_is_bound_read_only(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    access = Access(workdir=project, log_dir=tmp_path / "scratch", workdir_writable=False)
    argv, _ = launcher.wrap(["/usr/bin/true"], project, {}, access)
    assert str(project) in _binds(argv, "--ro-bind")
    assert str(project) not in _binds(argv, "--bind")
    assert str(tmp_path / "scratch" / ".home") in _binds(argv, "--bind")  # a one-shot's home


def test_the_environment_is_the_allow_list_with_a_private_home(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin",
        "LC_ALL": "C",
        "https_proxy": "http://proxy",
        "ANTHROPIC_API_KEY": "mine",
        "CLAUDE_CONFIG_DIR": "/root/cfg",
        "GEMINI_API_KEY": "theirs",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "CLAUDOMATOR_API_TOKEN": "own-token",
        "CLAUDOMATOR_CONFIG": "/root/config.toml",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    access = Access(
        workdir=tmp_path, log_dir=tmp_path / "logs", env_patterns=ClaudeRunner.env_patterns
    )
    _, clean = _launcher(tmp_path).wrap(["/usr/bin/true"], tmp_path, env, access)
    assert clean == {
        "PATH": "/usr/bin",
        "LC_ALL": "C",
        "https_proxy": "http://proxy",
        "ANTHROPIC_API_KEY": "mine",
        "CLAUDOMATOR_API_TOKEN": "own-token",
        "HOME": "/home/agent",
        "TMPDIR": "/tmp",
        "USER": "agent",
    }
    gemini = Access(workdir=tmp_path, log_dir=tmp_path, env_patterns=GeminiRunner.env_patterns)
    _, clean = _launcher(tmp_path).wrap(["/usr/bin/true"], tmp_path, env, gemini)
    assert "GEMINI_API_KEY" in clean
    assert "ANTHROPIC_API_KEY" not in clean


def test_the_private_home_gets_the_cli_files_once_never_through_a_link(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / ".claude").mkdir(parents=True)
    (user / ".claude.json").write_text("{}", encoding="utf-8")
    (user / "secret").write_text("key", encoding="utf-8")
    (user / ".claude" / "settings.json").symlink_to(user / "secret")
    runner = ClaudeRunner("claude", _launcher(tmp_path))
    access = Access(
        workdir=tmp_path,
        log_dir=tmp_path / "logs",
        home_key="task-1",
        home_files=runner.home_copies({"HOME": str(user)}),
    )
    launcher = _launcher(tmp_path)
    home = launcher.prepare_home(access)

    assert (home / ".claude.json").read_text(encoding="utf-8") == "{}"
    assert not (home / ".claude" / "settings.json").exists()  # a link is not copied
    assert not (home / ".claude" / ".credentials.json").exists()  # absent: nothing
    (home / ".claude.json").write_text('{"kept": 1}', encoding="utf-8")
    launcher.prepare_home(access)  # the next run keeps what the CLI wrote
    assert (home / ".claude.json").read_text(encoding="utf-8") == '{"kept": 1}'
    assert not copy_file(user / ".claude" / "settings.json", tmp_path / "x")


def test_a_home_key_is_a_plain_name(tmp_path: Path) -> None:
    access = Access(workdir=tmp_path, log_dir=tmp_path, home_key="../escape")
    with pytest.raises(ValueError, match="plain name"):
        _launcher(tmp_path).home_for(access)


def test_the_cli_install_is_its_outermost_node_modules(tmp_path: Path) -> None:
    package = tmp_path / "tools" / "node_modules" / "@x" / "cli" / "bin"
    package.mkdir(parents=True)
    script = package / "cli.js"
    script.write_text("#!/usr/bin/env node\n", encoding="utf-8")
    script.chmod(0o755)
    link = tmp_path / "tools" / "node_modules" / ".bin"
    link.mkdir()
    (link / "cli").symlink_to(script)
    dirs = install_dirs(str(link / "cli"), {"PATH": os.environ["PATH"]})
    assert dirs[0] == tmp_path / "tools" / "node_modules"
    assert all(not d.is_relative_to("/usr") for d in dirs)
