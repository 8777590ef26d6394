"""Which ``claudomator serve`` processes run on a data dir now.

Every serve holds an exclusive lock on ``<data dir>/orchestrators/serve-<pid>.json`` while it
runs; the file says its pid, its address and how many agents it runs at once. The kernel drops
the lock when the process ends, even by kill -9, so a file nobody holds locked is a leftover
(the next serve removes it). ``claudomator run`` reads these to leave its tasks to a running
serve instead of starting a second pool beside it (see ``cli/run.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

FOLDER = "orchestrators"
_MAX_BYTES = 4096


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


def running_serves(data_dir: Path) -> list[Serving]:
    """The serves that run on ``data_dir`` now (ordered by pid)."""
    found: list[Serving] = []
    with contextlib.suppress(OSError):
        for path in _folder(data_dir).glob("serve-*.json"):
            pid_text = path.name.removeprefix("serve-").removesuffix(".json")
            if not pid_text.isdigit():
                continue
            fd = _open(path, os.O_RDONLY)
            if fd is None:
                continue
            try:
                if _held(fd):
                    found.append(_parse(os.read(fd, _MAX_BYTES), int(pid_text)))
            except OSError:
                continue
            finally:
                os.close(fd)
    return sorted(found, key=lambda s: s.pid)


def _remove_leftovers(folder: Path) -> None:
    """Delete the files of serves that ended without removing theirs (kill -9, a crash)."""
    for path in folder.glob("serve-*.json"):
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
    on ``data_dir`` for :func:`running_serves` (in any process) until the block ends."""

    def __init__(self, data_dir: Path, addr: str, max_concurrent: int) -> None:
        self.serving = Serving(os.getpid(), addr, max_concurrent)
        self.path = _folder(data_dir) / f"serve-{self.serving.pid}.json"
        self._fd: int | None = None

    def __enter__(self) -> Registration:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_leftovers(folder)
        # locked before it has its name: a reader never sees the file unlocked
        draft = folder / f".serve-{self.serving.pid}.draft"
        fd = os.open(
            draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, json.dumps(asdict(self.serving)).encode())
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
