"""Which orchestrators (``claudomator serve``, and ``run`` with a pool of its own) run on a data
dir now.

Every serve holds an exclusive lock on ``<data dir>/orchestrators/serve-<pid>.json`` while it
runs; the file says its pid, its address and how many agents it runs at once. A ``run`` that
runs its tasks itself holds ``run-<pid>.json`` the same way, naming the tasks it runs. The
kernel drops the lock when the process ends, even by kill -9, so a file nobody holds locked is
a leftover (the next registration removes it). ``claudomator run`` reads the serves' files to
leave its tasks to a running serve instead of starting a second pool beside it; a serve's pool
reads the runs' files to leave a run's tasks (and their subtasks and checkers) to that run, so
its ``-j`` holds (see :mod:`claudomator.cli.orchestration` and :mod:`claudomator.dispatch.local`).
A run registers just before its pool starts, after it looked for serves: a serve that starts in
between (a few milliseconds) may claim one of its tasks first; each claim is still made once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

FOLDER = "orchestrators"
_MAX_BYTES = 4096  # a serve's file
_MAX_RUN_BYTES = 4 * 1024 * 1024  # a run's file names its tasks (40 bytes each)


@dataclass(frozen=True)
class Serving:
    """A serve that runs now: its pid, its address and its ``max_concurrent`` (0: unknown)."""

    pid: int
    addr: str = ""
    max_concurrent: int = 0


def _folder(data_dir: Path) -> Path:
    return data_dir / FOLDER


def _open(path: Path, flags: int) -> int | None:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


def _held(fd: int) -> bool:
    """Whether another open file holds a lock on ``fd``'s file (a live serve)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _parse(raw: bytes, pid: int) -> Serving:
    """What a live serve wrote of itself; only the pid (from its file name) if unreadable."""
    try:
        data = json.loads(raw)
    except ValueError:
        return Serving(pid)
    if not isinstance(data, dict):
        return Serving(pid)
    addr, limit = data.get("addr"), data.get("max_concurrent")
    return Serving(
        pid,
        addr if isinstance(addr, str) else "",
        limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 0,
    )


@dataclass(frozen=True)
class RunHolding:
    """A ``run`` that runs tasks with its own pool now: its pid and the ids of those tasks."""

    pid: int
    tasks: frozenset[str]


def _live(data_dir: Path, kind: str, limit: int) -> list[tuple[int, bytes]]:
    """(pid, contents) of each ``<kind>-<pid>.json`` whose process holds its lock now."""
    found: list[tuple[int, bytes]] = []
    with contextlib.suppress(OSError):
        for path in _folder(data_dir).glob(f"{kind}-*.json"):
            pid_text = path.name.removeprefix(f"{kind}-").removesuffix(".json")
            if not pid_text.isdigit():
                continue
            fd = _open(path, os.O_RDONLY)
            if fd is None:
                continue
            try:
                if _held(fd):
                    found.append((int(pid_text), _read(fd, limit)))
            except OSError:
                continue
            finally:
                os.close(fd)
    return sorted(found)


def _read(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def running_serves(data_dir: Path) -> list[Serving]:
    """The serves that run on ``data_dir`` now (ordered by pid)."""
    return [_parse(raw, pid) for pid, raw in _live(data_dir, "serve", _MAX_BYTES)]


def running_runs(data_dir: Path) -> list[RunHolding]:
    """The runs that run tasks with their own pool on ``data_dir`` now (ordered by pid); a file
    that cannot be read names no task."""
    found: list[RunHolding] = []
    for pid, raw in _live(data_dir, "run", _MAX_RUN_BYTES):
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        tasks = data.get("tasks") if isinstance(data, dict) else None
        ids = [t for t in tasks if isinstance(t, str)] if isinstance(tasks, list) else []
        found.append(RunHolding(pid, frozenset(ids)))
    return found


def held_by_runs(data_dir: Path) -> frozenset[str]:
    """The ids of the tasks the runs on ``data_dir`` run themselves now."""
    return frozenset().union(*(run.tasks for run in running_runs(data_dir)))


def _remove_leftovers(folder: Path) -> None:
    """Delete the files of orchestrators that ended without removing theirs (kill -9)."""
    for path in [*folder.glob("serve-*.json"), *folder.glob("run-*.json")]:
        fd = _open(path, os.O_RDONLY)
        if fd is None:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, path):  # not replaced meanwhile by a new serve with that pid
                path.unlink()  # locked by us: its serve is gone
        except OSError:
            pass  # held: that serve runs
        finally:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    mine, now = os.fstat(fd), os.stat(path, follow_symlinks=False)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


class Registration:
    """``with Registration(data_dir, addr, max_concurrent):`` this process is a running serve
    on ``data_dir`` for :func:`running_serves` (in any process) until the block ends. With
    ``tasks``, it is a run holding those tasks, for :func:`running_runs`."""

    def __init__(
        self,
        data_dir: Path,
        addr: str,
        max_concurrent: int,
        *,
        tasks: Collection[str] | None = None,
    ) -> None:
        self.serving = Serving(os.getpid(), addr, max_concurrent)
        self.kind = "serve" if tasks is None else "run"
        self._record: dict[str, object] = asdict(self.serving)
        if tasks is not None:
            self._record["tasks"] = sorted(tasks)
        self.path = _folder(data_dir) / f"{self.kind}-{self.serving.pid}.json"
        self._fd: int | None = None

    def __enter__(self) -> Registration:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_leftovers(folder)
        # locked before it has its name: a reader never sees the file unlocked
        draft = folder / f".{self.kind}-{self.serving.pid}.draft"
        fd = os.open(
            draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            data = json.dumps(self._record).encode()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.replace(draft, self.path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                draft.unlink()
            raise
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(fd, self.path):
                self.path.unlink()
        except OSError as exc:  # already gone, or the data dir was moved: nothing to clean
            logger.debug("%s not removed: %s", self.path, exc, extra={"action": "serve_register"})
        finally:
            os.close(fd)
