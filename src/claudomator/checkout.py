"""The note kept when an agent started while the user's checkout had uncommitted changes.

A sandbox is a clone of the project's HEAD: changes the user has not committed (tracked or
untracked) are not in it. That is by design, but it must not be silent: when the checkout was
dirty at sandbox creation, the attempt logs a warning and writes this note to the execution's
log folder, and ``run`` and ``show`` print its :attr:`CheckoutNote.line`. The log folder is one
the agent can write to, so the note is read like any agent file (regular file, no link, small)
and checked field by field; a malformed note is ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from claudomator.protocol import read_agent_file

logger = logging.getLogger(__name__)

NOTE_NAME = "checkout.json"
MAX_NOTE = 8 * 1024


class CheckoutNote(BaseModel):
    """The project's checkout had ``changes`` uncommitted paths when the agent started."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_dir: str = Field(min_length=1, max_length=4096)
    branch: str = Field(min_length=1, max_length=256)  # "HEAD" if detached
    head: str = Field(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$")
    changes: int = Field(ge=1)

    @property
    def line(self) -> str:
        paths = "1 path" if self.changes == 1 else f"{self.changes} paths"
        return (
            f"the agent started from {self.branch}@{self.head[:8]}; your uncommitted changes "
            f"in {self.project_dir} ({paths}) were not included"
        )


def note_file(log_dir: Path) -> Path:
    return log_dir / NOTE_NAME


def write_note(log_dir: Path, note: CheckoutNote) -> None:
    """Write ``note`` into ``log_dir``, replacing (never following) whatever is there."""
    path = note_file(log_dir)
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(note.model_dump_json() + "\n")


def read_note(log_dir: Path) -> CheckoutNote | None:
    """The note in ``log_dir``, or None if there is none (or it is not a valid note)."""
    return parse_note(read_agent_file(note_file(log_dir), MAX_NOTE), str(log_dir))


def parse_note(text: str | bytes | None, where: str) -> CheckoutNote | None:
    """The note in ``text`` (read from ``where``), or None if there is none or it is not a
    valid note."""
    if text is None:
        return None
    try:
        return CheckoutNote.model_validate_json(text)
    except ValidationError:
        logger.warning("ignoring a malformed %s in %s", NOTE_NAME, where, extra={"action": "note"})
        return None
