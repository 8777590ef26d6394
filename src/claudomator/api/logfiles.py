"""Reading an execution's files (logs, diff) for the API without trusting the agent's folder.

The agent can write its log folder: it may replace ``stdout.log`` with a symlink to any file of
the user, or with a FIFO that blocks the reader. :func:`open_log_file` opens a file only if it
lies inside the data dir's ``logs`` folder, reached without following any symlink below that
folder (every component is opened with ``O_NOFOLLOW`` relative to its parent), and is a
regular file with no other hard link.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

from claudomator.errors import ClaudomatorError

logger = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnsafeLogFile(ClaudomatorError):
    """An execution's file is not a plain file inside the log folder (a planted symlink, a
    FIFO, a hard link); it is not served."""

    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"{path}: {why}; it is not served")


def open_log_file(logs_dir: Path, path: Path) -> BinaryIO | None:
    """``path`` opened for reading, or None if it does not exist.

    Raises :class:`UnsafeLogFile` if ``path`` is outside ``logs_dir``, is reached through a
    symlink below it, or is not a regular file with a single link.
    """
    root = Path(os.path.abspath(logs_dir))
    target = Path(os.path.abspath(path))
    if not target.is_relative_to(root) or target == root:
        raise UnsafeLogFile(path, f"outside the log folder {root}")
    *folders, name = target.relative_to(root).parts
    try:
        fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the data dir's own folder: ours
    except FileNotFoundError:
        return None
    try:
        for folder in folders:
            inner = os.open(folder, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        file_fd = os.open(name, _FILE_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            logger.warning("refusing %s: a symlink", path, extra={"action": "log_file"})
            raise UnsafeLogFile(path, "a symlink (the agent's folder is not trusted)") from exc
        raise
    finally:
        os.close(fd)
    info = os.fstat(file_fd)
    why = ""
    if not stat.S_ISREG(info.st_mode):
        why = "not a regular file"
    elif info.st_nlink != 1:
        why = f"a file with {info.st_nlink} hard links (a link to another file)"
    if why:
        os.close(file_fd)
        logger.warning("refusing %s: %s", path, why, extra={"action": "log_file"})
        raise UnsafeLogFile(path, why)
    return os.fdopen(file_fd, "rb")


def read_log_file(logs_dir: Path, path: Path, offset: int = 0, limit: int = -1) -> bytes:
    """Up to ``limit`` bytes of ``path`` from ``offset`` (b"" if it does not exist); see
    :func:`open_log_file` for what is refused."""
    handle = open_log_file(logs_dir, path)
    if handle is None:
        return b""
    with handle:
        handle.seek(offset)
        return handle.read(limit)
