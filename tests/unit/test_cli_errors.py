"""An unexpected error in a command reaches the user as one line naming where the details are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import claudomator.cli.root as cli


def test_an_unexpected_error_prints_one_line_and_keeps_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("CLAUDOMATOR_DATA_DIR", str(tmp_path / "data"))

    def broken() -> None:
        raise RuntimeError("the bug")

    monkeypatch.setattr(cli, "app", broken)
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "RuntimeError: the bug" in err
    report = tmp_path / "data" / "logs" / cli.CRASH_LOG
    assert str(report) in err.replace("\n", "")
    kept = report.read_text(encoding="utf-8")
    assert "Traceback" in kept
    assert "in broken" in kept


def test_the_crash_log_falls_back_to_the_temp_dir(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("CLAUDOMATOR_DATA_DIR", str(blocker))  # logs/ cannot be made under a file
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr("tempfile.tempdir", None)

    def broken() -> None:
        raise KeyError("k")

    monkeypatch.setattr(cli, "app", broken)
    with pytest.raises(SystemExit):
        cli.main([])
    fallback = tmp_path / "tmp" / f"claudomator-{os.getuid()}-{cli.CRASH_LOG}"
    assert "KeyError" in fallback.read_text(encoding="utf-8")
    assert str(fallback) in capsys.readouterr().err.replace("\n", "")


def test_the_command_line_starts_without_its_heavy_libraries() -> None:
    """`claudomator --version` and friends must start fast: the database, web and model
    libraries are loaded by the commands that use them (see bench/bench_startup.py)."""
    import subprocess
    import sys

    probe = (
        "import sys, claudomator.cli; "
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'openai', 'fastapi', 'uvicorn', "
        "'pywebpush') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_list_loads_the_store_but_not_yaml_git_or_web_push(tmp_path: Path) -> None:
    """`list`, `show` and `answer` need the store; task files (YAML and their models), the
    sandbox's git plumbing, Web Push's cryptography and urllib are loaded by the commands that
    use them."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys; sys.argv = ['claudomator', 'list']\n"
        "from claudomator.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('yaml', 'claudomator.taskfile', 'claudomator.sandbox', 'cryptography',"
        " 'urllib.request', 'claudomator.webpush')\n"
        "print(sorted(m for m in heavy if m in sys.modules), 'sqlalchemy' in sys.modules)"
    )
    env = {**os.environ, "CLAUDOMATOR_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert done.stdout.strip().splitlines()[-1] == "[] True"
