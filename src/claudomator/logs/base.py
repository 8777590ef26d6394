"""The log store port: an execution's log folder (agent logs, diff, notes) as named files.

Everything below an execution's log folder is written by (or reachable by) the agent, so it is
untrusted: an implementation never follows a link planted there, never reads past a bound, and
only reads the files :class:`LogFile` names (no path comes from a caller). What it refuses to
serve it reports as :class:`UnsafeLogFile`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from claudomator.errors import ClaudomatorError

if TYPE_CHECKING:
    from claudomator.models import Execution

# the most one read returns: a longer log is read on from an offset; a diff is cut at 4 MiB
# (claudomator.sandbox) and fits with its note
MAX_READ = 8 * 1024 * 1024


class LogFile(StrEnum):
    """The files an execution's log folder may hold."""

    STDOUT = "stdout.log"  # the agent's stream (stream-json for the CLIs)
    STDERR = "stderr.log"
    DIFF = "changes.diff"  # the delivered work, written by us (claudomator.sandbox)
    CHECKOUT = "checkout.json"  # the dirty-checkout note (claudomator.checkout)
    QUESTION = "question.json"  # what the agent asks (claudomator.protocol)
    SUMMARY = "summary.txt"  # what the agent says it did


class UnsafeLogFile(ClaudomatorError):
    """An execution's file is not a plain file inside the log folder (a planted symlink, a
    FIFO, a hard link); it is not served."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"{path}: {why}; it is not served")


class LogStore(Protocol):
    """Where executions' log files are kept, read and appended to."""

    def append(self, execution: Execution, name: LogFile, data: bytes) -> None:
        """Add ``data`` at the end of the execution's file ``name`` (created if missing)."""

    def read(
        self, execution: Execution, name: LogFile, offset: int = 0, limit: int = MAX_READ
    ) -> bytes | None:
        """Up to ``limit`` (at most :data:`MAX_READ`) bytes of file ``name`` from ``offset``;
        None if the execution has no such file. Raises :class:`UnsafeLogFile` for a file that
        is not served."""
        ...

    def tail(self, execution: Execution, name: LogFile, limit: int) -> bytes:
        """The last ``limit`` (at most :data:`MAX_READ`) bytes of file ``name`` (b"" if it is
        missing or not served)."""
        ...

    def names(self, execution: Execution) -> list[LogFile]:
        """The files the execution's folder holds that :meth:`read` serves (links, FIFOs and
        hard links left out)."""
