"""The files an agent process writes: the tail of a log for error messages, a log opened for
appending."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)


def tail_file(path: Path, max_bytes: int = 4000) -> str:
    """The last ``max_bytes`` of a text file (empty if it does not exist)."""
    with contextlib.suppress(OSError), path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        return fh.read().decode("utf-8", errors="replace").strip()
    return ""


def open_append(path: Path) -> IO[bytes]:
    """Open ``path`` for appending bytes, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")
