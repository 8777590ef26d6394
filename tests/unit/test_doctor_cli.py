"""`claudomator doctor`, and the confinement line of `serve` and `run`, through a real
subprocess of the command line: with bwrap on PATH, and with a PATH that lacks it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BWRAP = shutil.which("bwrap")
HAS_LAUNCHER = importlib.util.find_spec("claudomator.isolation.bubblewrap") is not None
CLI = "import sys; from claudomator.cli import main; sys.argv[0] = 'claudomator'; main()"


def _cli(tmp_path: Path, launcher: str, *args: str, path: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[isolation]\nlauncher = "{launcher}"\n', encoding="utf-8")
    env = {
        **os.environ,
        "CLAUDOMATOR_CONFIG": str(config),
        "PATH": path,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture
def no_bwrap(tmp_path: Path) -> str:
    """A PATH with no bwrap on it."""
    empty = tmp_path / "bin"
    empty.mkdir()
    return str(empty)


def test_without_bwrap_auto_says_it_runs_unconfined(tmp_path: Path, no_bwrap: str) -> None:
    done = _cli(tmp_path, "auto", "doctor", "--json", path=no_bwrap)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["can_run"] is True
    assert report["bwrap"]["found"] is False
    assert report["isolation"]["launcher"] == "plain"
    assert report["isolation"]["summary"].startswith("agents run unconfined (plain launcher)")
    assert set(report["agents"]) >= {"claude", "gemini"}  # the readiness `agents` shows
    table = _cli(tmp_path, "auto", "doctor", path=no_bwrap)
    assert table.returncode == 0, table.stderr
    assert "not found on PATH" in table.stdout
    assert "agents run unconfined" in table.stdout


def test_without_bwrap_explicit_bubblewrap_cannot_run(tmp_path: Path, no_bwrap: str) -> None:
    done = _cli(tmp_path, "bubblewrap", "doctor", path=no_bwrap)
    assert done.returncode == 1
    assert '[isolation] launcher = "bubblewrap"' in done.stderr
    assert "apt-get install bubblewrap" in done.stderr
    report = json.loads(_cli(tmp_path, "bubblewrap", "doctor", "--json", path=no_bwrap).stdout)
    assert report["can_run"] is False
    assert report["isolation"]["launcher"] is None


@pytest.mark.skipif(BWRAP is None, reason="bwrap is not installed here")
def test_with_bwrap_doctor_reports_it(tmp_path: Path) -> None:
    assert BWRAP is not None
    path = f"{Path(BWRAP).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = _cli(tmp_path, "plain", "doctor", "--json", path=path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["bwrap"]["found"] is True
    assert report["bwrap"]["path"] == BWRAP
    assert report["bwrap"]["version"].startswith("bubblewrap")
    assert set(report["bwrap"]["namespaces"]) == {"user", "pid", "net"}
    assert report["isolation"] == {
        "configured": "plain",
        "launcher": "plain",
        "confined": False,
        "summary": "agents run unconfined (plain launcher)",
        "warning": "",
        "refusal": "",
    }
    auto = json.loads(_cli(tmp_path, "auto", "doctor", "--json", path=path).stdout)
    if HAS_LAUNCHER and report["bwrap"]["usable"]:
        assert auto["isolation"]["launcher"] == "bubblewrap"
    else:  # the launcher module is not in this tree yet: auto runs plain, and says why
        assert auto["isolation"]["launcher"] == "plain"
        assert auto["isolation"]["warning"]


def test_run_refuses_an_unusable_bubblewrap_and_stores_nothing(
    tmp_path: Path, no_bwrap: str
) -> None:
    task = tmp_path / "task.yaml"
    task.write_text("name: hello\nagent: {instructions: say hello}\n", encoding="utf-8")
    done = _cli(tmp_path, "bubblewrap", "run", str(task), path=no_bwrap)
    assert done.returncode == 2
    assert "apt-get install bubblewrap" in done.stderr
    listed = _cli(tmp_path, "plain", "list", path=no_bwrap)
    assert "hello" not in listed.stdout


def test_serve_refuses_an_unusable_bubblewrap(tmp_path: Path, no_bwrap: str) -> None:
    done = _cli(tmp_path, "bubblewrap", "serve", "--addr", "127.0.0.1:0", path=no_bwrap)
    assert done.returncode == 2
    assert '[isolation] launcher = "bubblewrap"' in done.stderr
    assert "serving on" not in done.stderr


def test_serve_says_once_that_auto_runs_unconfined(tmp_path: Path, no_bwrap: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[isolation]\nlauncher = "auto"\n', encoding="utf-8")
    env = {**os.environ, "CLAUDOMATOR_CONFIG": str(config), "PATH": no_bwrap, "COLUMNS": "400"}
    serve = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--addr", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert serve.stderr is not None
    seen: list[str] = []
    try:
        for line in serve.stderr:
            seen.append(line)
            if "serving on" in line:
                break
    finally:
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=60)
    said = "".join(seen)
    assert "serving on" in said, said
    assert said.count("agents run unconfined (plain launcher)") == 1
    assert "apt-get install bubblewrap" in said
