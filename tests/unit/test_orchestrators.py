"""Which serves run on a data dir: a lock each holds while it lives (issue 11 item 10)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from claudomator.orchestrators import (
    Registration,
    RunHolding,
    Serving,
    held_by_runs,
    running_runs,
    running_serves,
)

REGISTER = """
import sys, time
from pathlib import Path
from claudomator.orchestrators import Registration
with Registration(Path(sys.argv[1]), "127.0.0.1:9", 3):
    print("registered", flush=True)
    time.sleep(120)
"""


def test_a_registered_serve_is_seen_until_it_leaves(tmp_path: Path) -> None:
    assert running_serves(tmp_path) == []
    with Registration(tmp_path, "127.0.0.1:8080", 4) as registration:
        assert running_serves(tmp_path) == [Serving(os.getpid(), "127.0.0.1:8080", 4)]
        assert registration.path.stat().st_mode & 0o777 == 0o600
    assert running_serves(tmp_path) == []
    assert list((tmp_path / "orchestrators").iterdir()) == []


def test_a_serve_killed_with_sigkill_is_not_running_and_its_file_is_cleared(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", REGISTER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "registered"
        assert running_serves(tmp_path) == [Serving(child.pid, "127.0.0.1:9", 3)]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    leftover = tmp_path / "orchestrators" / f"serve-{child.pid}.json"
    assert leftover.exists()  # kill -9: nobody removed it, but nobody holds its lock
    assert running_serves(tmp_path) == []
    with Registration(tmp_path, "127.0.0.1:1", 1):
        assert not leftover.exists()  # the next serve clears it
        assert [s.pid for s in running_serves(tmp_path)] == [os.getpid()]


def test_a_file_nobody_locks_is_not_a_serve_whatever_it_says(tmp_path: Path) -> None:
    folder = tmp_path / "orchestrators"
    folder.mkdir()
    (folder / "serve-1.json").write_text(json.dumps({"pid": 1, "max_concurrent": 9}))
    (folder / "serve-x.json").write_text("{}")
    assert running_serves(tmp_path) == []


def test_a_run_holding_tasks_is_seen_with_them_and_is_not_a_serve(tmp_path: Path) -> None:
    assert held_by_runs(tmp_path) == frozenset()
    ids = [f"task-{i:04d}-{'x' * 30}" for i in range(500)]  # a file far above a serve's size
    with Registration(tmp_path, "", 2, tasks=ids) as registration:
        assert registration.path.name == f"run-{os.getpid()}.json"
        assert running_runs(tmp_path) == [RunHolding(os.getpid(), frozenset(ids))]
        assert held_by_runs(tmp_path) == frozenset(ids)
        assert running_serves(tmp_path) == []
        with Registration(tmp_path, "127.0.0.1:1", 1):
            assert [s.pid for s in running_serves(tmp_path)] == [os.getpid()]
            assert held_by_runs(tmp_path) == frozenset(ids)  # a serve beside it holds nothing
    assert held_by_runs(tmp_path) == frozenset()
    assert list((tmp_path / "orchestrators").iterdir()) == []


def test_a_run_file_nobody_locks_or_that_is_garbled_holds_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "orchestrators"
    folder.mkdir()
    (folder / "run-1.json").write_text(json.dumps({"pid": 1, "tasks": ["a", "b"]}))
    assert held_by_runs(tmp_path) == frozenset()
    with Registration(tmp_path, "", 1, tasks=["a"]) as mine:
        assert not (folder / "run-1.json").exists()  # a leftover: cleared by the next one
        mine.path.write_text('{"tasks": [1, "b", null]}')  # still held; only strings count
        assert held_by_runs(tmp_path) == frozenset({"b"})
        mine.path.write_text("not json")
        assert running_runs(tmp_path) == [RunHolding(os.getpid(), frozenset())]
