"""``[isolation] network = "model-only"`` at start-up, through a real subprocess of the command
line: ``doctor`` says whether it can be enforced (and exits 1 when not), ``serve`` and ``run``
refuse to start (exit 2) when the agents would run under the plain launcher, which cannot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = "import sys; from claudomator.cli import main; sys.argv[0] = 'claudomator'; main()"
BWRAP = shutil.which("bwrap")


def _cli(tmp_path: Path, launcher: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[isolation]\nlauncher = "{launcher}"\nnetwork = "model-only"\n', encoding="utf-8"
    )
    env = {**os.environ, "CLAUDOMATOR_CONFIG": str(config), "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_doctor_says_plain_cannot_enforce_model_only(tmp_path: Path) -> None:
    done = _cli(tmp_path, "plain", "doctor", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["can_run"] is False
    assert report["network"]["configured"] == "model-only"
    assert report["network"]["enforced"] is False
    assert "needs the bubblewrap launcher" in report["network"]["problem"]
    table = _cli(tmp_path, "plain", "doctor")
    assert table.returncode == 1
    assert "cannot be enforced" in table.stdout
    assert 'network = "model-only" needs the bubblewrap launcher' in table.stderr


@pytest.mark.skipif(BWRAP is None, reason="bwrap is not installed here")
def test_doctor_says_bubblewrap_enforces_model_only(tmp_path: Path) -> None:
    done = _cli(tmp_path, "bubblewrap", "doctor", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["can_run"] is True
    assert report["network"] == {"configured": "model-only", "enforced": True, "problem": ""}
    table = _cli(tmp_path, "bubblewrap", "doctor")
    assert "enforced" in table.stdout


def test_serve_and_run_refuse_model_only_under_plain(tmp_path: Path) -> None:
    serve = _cli(tmp_path, "plain", "serve", "--addr", "127.0.0.1:0")
    assert serve.returncode == 2
    assert 'network = "model-only" needs the bubblewrap launcher' in serve.stderr
    assert "serving on" not in serve.stderr
    task = tmp_path / "task.yaml"
    task.write_text("name: hello\nagent: {instructions: say hello}\n", encoding="utf-8")
    run = _cli(tmp_path, "plain", "run", str(task))
    assert run.returncode == 2
    assert "needs the bubblewrap launcher" in run.stderr
