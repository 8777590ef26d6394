"""Writes this process keeps retrying because the database refused them (e.g. locked).

:func:`claudomator.persist.until_stored` registers every write it retries here; ``/api/health``
and ``/metrics`` read the counts, so a write that keeps failing is seen, not only logged.
Thread-safe: the API reads it from its worker threads while the pool's loop updates it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class BacklogState:
    """A snapshot: writes retrying now, refusals so far, the last refusal's message."""

    pending: int
    failures_total: int
    last_error: str


class WriteBacklog:
    """Counts of writes waiting to be stored again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = 0
        self._failures = 0
        self._last_error = ""

    def refused(self, error: str, *, first: bool) -> None:
        """A write was refused; ``first`` when this write was not pending before."""
        with self._lock:
            self._failures += 1
            self._last_error = error
            if first:
                self._pending += 1

    def settled(self) -> None:
        """A pending write was stored (or abandoned with the process)."""
        with self._lock:
            self._pending = max(0, self._pending - 1)

    def state(self) -> BacklogState:
        with self._lock:
            return BacklogState(self._pending, self._failures, self._last_error)
