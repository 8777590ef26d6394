"""A full disk and a read-only data dir: a clear error naming the problem, no corrupt database.

The data dir lives on a small tmpfs mounted for the test (root with CAP_SYS_ADMIN; the tests
skip, saying so, elsewhere); it is filled with a file or remounted read-only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from robust import CLAUDOMATOR, Served, cli_env, mounted_tmpfs, remount

from claudomator.config import load_settings
from claudomator.store import Store
from conftest import MakeRepo

DISK_KB = 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk", DISK_KB) as where:
        yield where


def fill(disk: Path, leave_kb: int) -> Path:
    """Fill ``disk`` up to ``leave_kb`` free kilobytes."""
    free = subprocess.run(["df", "-k", "--output=avail", str(disk)], capture_output=True, text=True)
    avail = int(free.stdout.split()[-1])
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        fh.write(b"\0" * max(0, (avail - leave_kb) * 1024))
    return filler


def claudomator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDOMATOR, *args], env=env, capture_output=True, text=True, timeout=60)


def healthy_and_empty(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        assert conn.execute("select count(*) from tasks").fetchall() == [(0,)]


def clear_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    for word in words:
        assert word in " ".join(done.stderr.split()), done.stderr


@pytest.fixture
def setup(tmp_path: Path, disk: Path, make_repo: MakeRepo) -> tuple[dict[str, str], Path, Path]:
    env = cli_env(tmp_path)
    env["CLAUDOMATOR_DATA_DIR"] = str(disk / "data")
    project = make_repo()
    taskfile = tmp_path / "big.yaml"
    taskfile.write_text(
        f"name: big\ndescription: {'d' * 400_000}\n"
        f"agent: {{instructions: hi, project_dir: {project}}}\n"
    )
    return env, taskfile, disk / "data" / "claudomator.db"


def test_full_disk_while_submitting(setup: tuple[dict[str, str], Path, Path], disk: Path) -> None:
    env, taskfile, db = setup
    Store.open(db).close()  # creates the database
    filler = fill(disk, 150)
    done = claudomator(env, "run", str(taskfile))
    clear_error(done, "cannot write database", str(db), "no space left on device")
    filler.unlink()
    healthy_and_empty(db)


def test_full_disk_before_the_database_exists(
    setup: tuple[dict[str, str], Path, Path], disk: Path
) -> None:
    env, taskfile, db = setup
    (disk / "data").mkdir()
    filler = fill(disk, 0)
    done = claudomator(env, "run", str(taskfile))
    clear_error(done, str(db), "no space left on device")
    filler.unlink()
    Store.open(db).close()  # the next start creates it
    healthy_and_empty(db)


@pytest.mark.parametrize("command", ["run", "serve", "answer"])
def test_read_only_data_dir(
    setup: tuple[dict[str, str], Path, Path], disk: Path, command: str
) -> None:
    env, taskfile, db = setup
    Store.open(db).close()
    remount(disk, read_only=True)
    try:
        args = {
            "run": ["run", str(taskfile)],
            "serve": ["serve", "--addr", "127.0.0.1:1"],
            "answer": ["answer", "abcd1234", "yes"],
        }[command]
        done = claudomator(env, *args)
        clear_error(done, "Read-only file system", str(disk / "data"))
    finally:
        remount(disk, read_only=False)
    healthy_and_empty(db)


def test_api_answers_503_naming_the_full_disk(
    setup: tuple[dict[str, str], Path, Path], disk: Path, make_repo: MakeRepo
) -> None:
    env, _, db = setup
    settings = load_settings(env)
    store = Store.open(settings.db_path)
    try:
        with Served(settings, store) as served, httpx.Client(base_url=served.url) as http:
            filler = fill(disk, 150)
            body = {
                "name": "big",
                "description": "d" * 400_000,
                "agent": {"instructions": "hi", "project_dir": str(make_repo("other"))},
            }
            response = http.post("/api/tasks", json=body)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert str(db) in error
            assert "no space left on device" in error
            assert http.get("/api/health").status_code == 200  # reading still works
            filler.unlink()
    finally:
        store.close()
    healthy_and_empty(db)
