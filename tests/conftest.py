"""Test isolation and factories shared by every test level.

Every test gets its own data dir, HOME and git identity (no machine state leaks in or out).
Factories make real git repositories and real settings; nothing here mocks a subprocess or
the store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from claudomator.config import Settings, load_settings
from claudomator.store import Store

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(__file__).parent / "samples"
DEFAULT_CLAUDE = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "claude"
DEFAULT_GEMINI = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "gemini"
DEFAULT_CODEX = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "codex"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Data dir, HOME and git config all under ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test User\n\temail = test@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("CLAUDOMATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLAUDOMATOR_CONFIG", raising=False)
    for name in list(os.environ):
        if name.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_")):
            monkeypatch.delenv(name)
    return home


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stdout (raises on failure)."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{done.stderr}")
    return done.stdout.strip()


def kept_branch(repo: Path, task_id: str) -> str:
    """The one branch ``claudomator/<short-id>-<slug>`` a task's work was kept on in ``repo``."""
    pattern = f"refs/heads/claudomator/{task_id[:8]}*"
    found = git(repo, "for-each-ref", "--format=%(refname:lstrip=2)", pattern).split()
    assert len(found) == 1, f"branches of task {task_id} in {repo}: {found}"
    return found[0]


MakeRepo = Callable[..., Path]


@pytest.fixture
def make_repo(tmp_path: Path) -> MakeRepo:
    """Factory: a real git repository with files committed on ``main``."""

    def make(name: str = "project", files: dict[str, str] | None = None) -> Path:
        repo = tmp_path / name
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        for rel, content in (files or {"README.md": "# project\n"}).items():
            path = repo / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        return repo

    return make


@pytest.fixture
def settings() -> Settings:
    """Settings from the isolated environment, with the test's Claude binary."""
    base = load_settings()
    return base.model_copy(
        update={"claude_binary_path": os.environ.get("CLAUDOMATOR_CLAUDE_BIN", str(DEFAULT_CLAUDE))}
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """A migrated store on a real SQLite file in the test's data dir."""
    s = Store.open(settings.db_path)
    yield s
    s.close()


@pytest.fixture
def claude_bin() -> str:
    """Path of the real Claude Code CLI installed by `make test`; skip (saying why) if absent."""
    path = os.environ.get("CLAUDOMATOR_CLAUDE_BIN", str(DEFAULT_CLAUDE))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        reason = f"real Claude Code CLI not found at {path} (run `make test`, which installs it)"
        if shutil.which("npm") is None:
            reason += "; npm is missing"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def gemini_bin() -> str:
    """Path of the real Gemini CLI installed by `make test`; skip (saying why) if absent."""
    path = os.environ.get("CLAUDOMATOR_GEMINI_BIN", str(DEFAULT_GEMINI))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        reason = f"real Gemini CLI not found at {path} (run `make test`, which installs it)"
        if shutil.which("npm") is None:
            reason += "; npm is missing"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def codex_bin() -> str:
    """Path of the real Codex CLI installed by `make test`; skip (saying why) if absent."""
    path = os.environ.get("CLAUDOMATOR_CODEX_BIN", str(DEFAULT_CODEX))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        reason = f"real Codex CLI not found at {path} (run `make test`, which installs it)"
        if shutil.which("npm") is None:
            reason += "; npm is missing"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path
