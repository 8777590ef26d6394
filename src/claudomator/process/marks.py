"""Marked processes: an agent's environment carries :data:`MARK_VARIABLE`, so whatever it
started, even outside its process group, can be found in /proc and killed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from claudomator.process.group import signal_all

logger = logging.getLogger(__name__)

MARK_VARIABLE = "CLAUDOMATOR_EXECUTION_ID"
"""Set in an agent's environment; every process the agent starts inherits it, even those that
leave its process group (detached shells), so they can be found and killed afterwards."""


def marked_pids(mark: str) -> list[int]:
    """Live processes (other than ours) whose environment holds ``MARK_VARIABLE=mark``."""
    needle = f"{MARK_VARIABLE}={mark}".encode()
    found: list[int] = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone, or not ours to read
                continue
            if needle in environ.split(b"\0"):
                found.append(int(entry.name))
    return found


async def kill_marked(mark: str, grace: float) -> int:
    """SIGTERM every process marked with ``mark``, SIGKILL what is left after ``grace`` seconds.

    Catches what the agent left behind outside its process group (the CLI's detached shell
    commands). Returns how many processes were found.
    """
    found = await asyncio.to_thread(marked_pids, mark)
    if not found:
        return 0
    logger.info(
        "killing %d process(es) the agent left behind: %s",
        len(found),
        found,
        extra={"action": "agent_leftovers"},
    )
    signal_all(found, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while left := await asyncio.to_thread(marked_pids, mark):
        if loop.time() >= deadline:
            signal_all(left, signal.SIGKILL)
            break
        await asyncio.sleep(0.1)
    return len(found)


def kill_marked_sync(mark: str, grace: float) -> int:
    """Blocking :func:`kill_marked`, for reconciliation at start-up."""
    found = marked_pids(mark)
    signal_all(found, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while marked_pids(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    signal_all(marked_pids(mark), signal.SIGKILL)
    return len(found)
