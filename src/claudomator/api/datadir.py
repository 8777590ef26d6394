"""Noticing that the data dir was moved, replaced or deleted under a running server.

``serve`` keeps its database open: after ``mv ~/.local/share/claudomator elsewhere`` it would go
on writing the moved database while new log folders, sandboxes and a second agent-token key
appear at the old path, splitting its state in two. :class:`DataDirMonitor` records the device
and inode of the data dir, the database file and the agent-token key when the app is made, looks
again at every request and every ``interval`` seconds, and once anything differs answers every
request 503 naming what changed and calls ``on_lost`` (``serve`` stops there).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Identity:
    """Which file a path names: its device and inode."""

    device: int
    inode: int


def identity(path: Path) -> Identity | None:
    """The identity of ``path`` (not following a final symlink), or None if it is missing."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return Identity(info.st_dev, info.st_ino)


@dataclass(frozen=True)
class DataDirChanged:
    """A path of the data dir that no longer names the file it named at start."""

    path: Path
    before: Identity
    after: Identity | None  # None: missing

    def __str__(self) -> str:
        now = "is missing" if self.after is None else "is another file now"
        return (
            f"{self.path} {now} (the data dir was moved, replaced or deleted while serve runs); "
            "stopping: restart serve with the data dir where it belongs"
        )


class DataDirMonitor:
    """Compares the data dir's files with what they were at start."""

    def __init__(
        self, paths: tuple[Path, ...], on_lost: Callable[[DataDirChanged], None] | None = None
    ) -> None:
        self.paths = paths
        # what is missing at start (a database another process has yet to create) is not watched
        found = {path: identity(path) for path in paths}
        self.start = {path: ident for path, ident in found.items() if ident is not None}
        self.on_lost = on_lost
        self.lost: DataDirChanged | None = None

    def check(self) -> DataDirChanged | None:
        """The first change seen (once seen, it stays: the state is split for good)."""
        if self.lost is not None:
            return self.lost
        for path, before in self.start.items():
            after = identity(path)
            if after != before:
                self.lost = DataDirChanged(path, before, after)
                logger.critical("%s", self.lost, extra={"action": "data_dir_lost"})
                if self.on_lost is not None:
                    self.on_lost(self.lost)
                return self.lost
        return None

    async def watch(self, interval: float = CHECK_SECONDS) -> None:
        """Check every ``interval`` seconds until a change is seen (or the task is cancelled)."""
        while True:
            await asyncio.sleep(interval)
            if self.check() is not None:
                return


class DataDirGuard:
    """ASGI middleware: every request is answered 503 once the data dir has changed."""

    def __init__(self, app: ASGIApp, monitor: DataDirMonitor) -> None:
        self.app = app
        self.monitor = monitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            lost = self.monitor.check()
            if lost is not None:
                await JSONResponse({"error": str(lost)}, status_code=503)(scope, receive, send)
                return
        await self.app(scope, receive, send)
