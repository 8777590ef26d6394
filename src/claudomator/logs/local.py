"""The log store on local disk: ``<data dir>/logs/<execution id>/`` as the pool lays it out.

The agent can write its log folder: it may replace ``stdout.log`` with a symlink to any file of
the user, or with a FIFO that blocks the reader. A file is opened only if it lies inside the
store's root, reached without following any symlink below it (every component is opened with
``O_NOFOLLOW`` relative to its parent), and is a regular file with no other hard link; every
read is bounded by :data:`~claudomator.logs.base.MAX_READ`.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from claudomator.logs.base import MAX_READ, LogFile, UnsafeLogFile

if TYPE_CHECKING:
    from claudomator.models import Execution

logger = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_APPEND_FLAGS = (
    os.O_WRONLY
    | os.O_APPEND
    | os.O_CREAT
    | os.O_NOFOLLOW
    | os.O_NONBLOCK
    | os.O_NOCTTY
    | os.O_CLOEXEC
)
_LINK = "a symlink (the agent's folder is not trusted)"


def _refused(path: Path, why: str) -> UnsafeLogFile:
    logger.warning("refusing %s: %s", path, why, extra={"action": "log_file"})
    return UnsafeLogFile(str(path), why)


class LocalLogStore:
    """Executions' log files under ``root`` (the data dir's ``logs`` folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, execution: Execution, name: LogFile) -> Path | None:
        """Where file ``name`` of ``execution`` is (recorded with the execution for its two
        streams, beside its stdout for the rest); None if the execution records no folder."""
        if name is LogFile.STDERR:
            return Path(execution.stderr_path) if execution.stderr_path else None
        if not execution.stdout_path:
            return None
        stdout = Path(execution.stdout_path)
        return stdout if name is LogFile.STDOUT else stdout.parent / name.value

    # -- the port --------------------------------------------------------------------------

    def append(self, execution: Execution, name: LogFile, data: bytes) -> None:
        path = self.path_of(execution, name)
        if path is None:
            raise UnsafeLogFile(f"{execution.id}/{name.value}", "the execution has no log folder")
        with self._folder(path, create=True) as (fd, leaf):
            try:
                file_fd = os.open(leaf, _APPEND_FLAGS, 0o644, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise _refused(path, _LINK) from exc
                if exc.errno == errno.ENXIO:  # a FIFO nobody reads
                    raise _refused(path, "not a regular file") from exc
                raise
        with os.fdopen(file_fd, "ab") as out:
            why = self._why_not(path, os.fstat(out.fileno()))
            if why:
                raise UnsafeLogFile(str(path), why)
            out.write(data)

    def read(
        self, execution: Execution, name: LogFile, offset: int = 0, limit: int = MAX_READ
    ) -> bytes | None:
        path = self.path_of(execution, name)
        handle = None if path is None else self._open_file(path)
        if handle is None:
            return None
        with handle:
            handle.seek(max(0, offset))
            return handle.read(max(0, min(limit, MAX_READ)))

    def tail(self, execution: Execution, name: LogFile, limit: int) -> bytes:
        path = self.path_of(execution, name)
        try:
            handle = None if path is None else self._open_file(path)
        except (UnsafeLogFile, OSError):
            return b""
        if handle is None:
            return b""
        with handle:
            bound = max(0, min(limit, MAX_READ))
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - bound))
            return handle.read(bound)

    def names(self, execution: Execution) -> list[LogFile]:
        found = []
        for name in LogFile:
            path = self.path_of(execution, name)
            if path is None:
                continue
            try:
                with self._folder(path) as (fd, leaf):
                    info = os.stat(leaf, dir_fd=fd, follow_symlinks=False)
            except (UnsafeLogFile, OSError):
                continue
            if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:  # what read serves
                found.append(name)
        return found

    # -- opening without trusting the folder -------------------------------------------------

    def _open_file(self, path: Path) -> BinaryIO | None:
        """``path`` opened for reading, or None if it does not exist.

        Raises :class:`UnsafeLogFile` if ``path`` is outside the root, is reached through a
        symlink below it, or is not a regular file with a single link.
        """
        try:
            with self._folder(path) as (fd, leaf):
                file_fd = os.open(leaf, _READ_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refused(path, _LINK) from exc
            raise
        why = self._why_not(path, os.fstat(file_fd))
        if why:
            os.close(file_fd)
            raise UnsafeLogFile(str(path), why)
        return os.fdopen(file_fd, "rb")

    @contextmanager
    def _folder(self, path: Path, *, create: bool = False) -> Iterator[tuple[int, str]]:
        """(a descriptor of ``path``'s folder, its last component), the folder reached from the
        root without following a link (FileNotFoundError if it is missing and not ``create``)."""
        root = Path(os.path.abspath(self.root))
        target = Path(os.path.abspath(path))
        if not target.is_relative_to(root) or target == root:
            raise UnsafeLogFile(str(path), f"outside the log folder {root}")
        *folders, leaf = target.relative_to(root).parts
        if create:
            root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the data dir's own folder: ours
        try:
            for folder in folders:
                if create:  # a folder already there (or a planted link) is left as it is
                    with suppress(FileExistsError):
                        os.mkdir(folder, 0o755, dir_fd=fd)
                try:
                    inner = os.open(folder, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise _refused(path, _LINK) from exc
                    raise
                os.close(fd)
                fd = inner
            yield fd, leaf
        finally:
            os.close(fd)

    @staticmethod
    def _why_not(path: Path, info: os.stat_result) -> str:
        """Why an opened file is not served ("" if it is)."""
        why = ""
        if not stat.S_ISREG(info.st_mode):
            why = "not a regular file"
        elif info.st_nlink != 1:
            why = f"a file with {info.st_nlink} hard links (a link to another file)"
        if why:
            logger.warning("refusing %s: %s", path, why, extra={"action": "log_file"})
        return why
