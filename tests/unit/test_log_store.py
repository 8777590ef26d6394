"""The local log store reads an execution's folder without trusting it: offsets, missing files,
planted links, FIFOs and hard links, paths outside the log folder, and bounded reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claudomator.logs import MAX_READ, LocalLogStore, LogFile, UnsafeLogFile
from claudomator.models import Execution


def _execution(folder: Path) -> Execution:
    return Execution(
        task_id="t", stdout_path=str(folder / "stdout.log"), stderr_path=str(folder / "stderr.log")
    )


@pytest.fixture
def logs(tmp_path: Path) -> LocalLogStore:
    return LocalLogStore(tmp_path / "logs")


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "home" / "secret.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text("TOP SECRET")
    return path


def test_reads_from_an_offset(logs: LocalLogStore) -> None:
    run = _execution(logs.root / "run-1")
    Path(run.stdout_path).parent.mkdir(parents=True)
    Path(run.stdout_path).write_bytes(b"hello\nworld\n")
    assert logs.read(run, LogFile.STDOUT) == b"hello\nworld\n"
    assert logs.read(run, LogFile.STDOUT, 6) == b"world\n"
    assert logs.read(run, LogFile.STDOUT, 0, 5) == b"hello"
    assert logs.read(run, LogFile.STDOUT, 100) == b""
    assert logs.tail(run, LogFile.STDOUT, 6) == b"world\n"


def test_missing_files_are_none(logs: LocalLogStore) -> None:
    run = _execution(logs.root / "run-1")
    assert logs.read(run, LogFile.STDOUT) is None  # no folder yet
    Path(run.stdout_path).parent.mkdir(parents=True)
    assert logs.read(run, LogFile.STDERR) is None
    assert logs.read(run, LogFile.DIFF) is None
    assert logs.tail(run, LogFile.STDOUT, 10) == b""
    assert logs.names(run) == []
    assert logs.read(Execution(task_id="t"), LogFile.STDOUT) is None  # records no folder


def test_append_creates_and_extends_and_names_list_what_exists(logs: LocalLogStore) -> None:
    run = _execution(logs.root / "run-1")
    logs.append(run, LogFile.STDERR, b"one\n")
    logs.append(run, LogFile.STDERR, b"two\n")
    assert logs.read(run, LogFile.STDERR) == b"one\ntwo\n"
    (Path(run.stdout_path).parent / "changes.diff").write_text("diff")
    assert logs.names(run) == [LogFile.STDERR, LogFile.DIFF]
    assert logs.read(run, LogFile.DIFF) == b"diff"


@pytest.mark.parametrize("kind", ["symlink", "folder symlink", "fifo", "hard link"])
def test_a_planted_file_is_refused(
    logs: LocalLogStore, secret: Path, tmp_path: Path, kind: str
) -> None:
    folder = logs.root / "run-1"
    run = _execution(folder)
    if kind == "folder symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "stdout.log").write_text("TOP SECRET")
        logs.root.mkdir()
        folder.symlink_to(elsewhere, target_is_directory=True)
    else:
        folder.mkdir(parents=True)
        planted = folder / "stdout.log"
        if kind == "symlink":
            planted.symlink_to(secret)
        elif kind == "fifo":
            os.mkfifo(planted)
        else:
            os.link(secret, planted)
    with pytest.raises(UnsafeLogFile, match="not served"):
        logs.read(run, LogFile.STDOUT)  # a FIFO must not block either
    with pytest.raises(UnsafeLogFile):
        logs.append(run, LogFile.STDOUT, b"overwrite")
    assert secret.read_text() == "TOP SECRET"
    assert logs.tail(run, LogFile.STDOUT, 100) == b""
    assert LogFile.STDOUT not in logs.names(run)


@pytest.mark.parametrize("where", ["outside", "traversal", "root"])
def test_a_path_outside_the_log_folder_is_refused(
    logs: LocalLogStore, secret: Path, where: str
) -> None:
    stdout = {
        "outside": secret,
        "traversal": logs.root / "run-1" / ".." / ".." / "home" / "secret.txt",
        "root": logs.root,
    }[where]
    logs.root.mkdir()
    run = Execution(task_id="t", stdout_path=str(stdout))
    with pytest.raises(UnsafeLogFile, match="outside the log folder"):
        logs.read(run, LogFile.STDOUT)


def test_a_huge_file_is_read_bounded(logs: LocalLogStore) -> None:
    run = _execution(logs.root / "run-1")
    path = Path(run.stdout_path)
    path.parent.mkdir(parents=True)
    with path.open("wb") as out:
        out.truncate(MAX_READ * 3)  # sparse: no disk used
    assert len(logs.read(run, LogFile.STDOUT, 0, MAX_READ * 3) or b"") == MAX_READ
    assert len(logs.read(run, LogFile.STDOUT, MAX_READ * 3 - 10) or b"") == 10
    assert len(logs.tail(run, LogFile.STDOUT, MAX_READ * 3)) == MAX_READ
