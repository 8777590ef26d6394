"""A third-party package adds an agent through a ``claudomator.agents`` entry point, as the
built-ins do: a tiny plugin wheel (``scribe_agent.py`` as its module) is really installed with
pip, and ``claudomator agents`` lists its agent and ``claudomator run`` runs a task with it to a
delivered commit. A broken plugin is named in a warning and stops nothing."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT, MakeRepo, git, kept_branch

pytestmark = pytest.mark.cli

CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")
SCRIBE_MODULE = REPO_ROOT / "tests" / "integration" / "scribe_agent.py"
SCRIBE_CLI = """#!{python}
import sys
prompt = sys.argv[sys.argv.index("--prompt") + 1]
with open("NOTES.md", "w", encoding="utf-8") as fh:
    fh.write(prompt.strip().splitlines()[-1] + "\\n")
print("Wrote NOTES.md.")
print("## Summary")
print("Wrote the notes to NOTES.md.")
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(folder: Path, dist: str, files: dict[str, str], entry_points: str) -> Path:
    """A pure-Python wheel of ``files`` whose ``entry_points.txt`` is ``entry_points``."""
    info = f"{dist}-1.0.dist-info"
    contents = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{info}/entry_points.txt": entry_points,
    }
    wheel = folder / f"{dist}-1.0-py3-none-any.whl"
    record = [_record_line(n, t.encode()) for n, t in contents.items()]
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in contents.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return wheel


def pip_install(wheel: Path, target: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    done = subprocess.run(
        [*pip, "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a Claudomator with the scribe plugin (and a broken one) installed,
    its CLI configured."""
    site = tmp_path / "site"
    module = SCRIBE_MODULE.read_text(encoding="utf-8")
    good = build_wheel(
        tmp_path,
        "claudomator_scribe",
        {"claudomator_scribe/__init__.py": module},
        "[claudomator.agents]\nscribe = claudomator_scribe:SCRIBE\n",
    )
    broken = build_wheel(
        tmp_path,
        "claudomator_broken",
        {"claudomator_broken/__init__.py": "raise RuntimeError('half-installed')\n"},
        "[claudomator.agents]\nbroken = claudomator_broken:SPEC\n",
    )
    pip_install(good, site)
    pip_install(broken, site)
    cli = tmp_path / "bin" / "scribe"
    cli.parent.mkdir()
    cli.write_text(SCRIBE_CLI.format(python=sys.executable), encoding="utf-8")
    cli.chmod(0o755)
    config = tmp_path / "config.toml"
    config.write_text(f'[agents.scribe]\nbinary_path = "{cli}"\n', encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["CLAUDOMATOR_CONFIG"] = str(config)
    env["COLUMNS"] = "200"
    return env


def test_an_installed_plugin_agent_is_listed_and_a_broken_one_is_named(
    plugin_env: dict[str, str],
) -> None:
    done = subprocess.run(
        [CLAUDOMATOR, "agents"], env=plugin_env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert "scribe" in rows, done.stdout
    assert {"claude", "gemini", "codex", "qwen", "opencode", "local"} <= set(rows)
    assert list(rows)[-1] == "scribe"  # the built-ins first
    warning = " ".join(done.stderr.split())
    assert "agent plugin broken = claudomator_broken:SPEC (package claudomator_broken)" in warning
    assert "RuntimeError: half-installed" in warning


def test_a_task_runs_with_the_plugin_agent_to_a_delivered_commit(
    plugin_env: dict[str, str], make_repo: MakeRepo, tmp_path: Path
) -> None:
    project = make_repo()
    user_head = git(project, "rev-parse", "HEAD")
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        f"name: notes\nagent: {{type: scribe, instructions: Note the plan., "
        f"project_dir: {project}}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [CLAUDOMATOR, "run", str(tasks)],
        env=plugin_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run(
        [CLAUDOMATOR, "list"], env=plugin_env, capture_output=True, text=True, check=False
    )
    assert "COMPLETED" in shown.stdout, shown.stdout
    [task_id] = [
        line.split("│")[1].strip() for line in shown.stdout.splitlines() if "notes" in line
    ]
    branch = kept_branch(project, task_id)
    assert git(project, "show", f"{branch}:NOTES.md") == "Note the plan."
    assert git(project, "rev-parse", "HEAD") == user_head
