"""Where an execution's work went, for people: one line, and the command to look at it.

``run``, ``show``, notifications and the task page (``web/static/js/task.js`` mirrors
:func:`where`) say the same thing, e.g.::

    pushed to origin/main (/srv/web.git) — see: git -C /srv/web.git log main
    kept as branch claudomator/1a2b3c4d-fix-login in /srv/web — see: git -C /srv/web log
    HEAD..claudomator/1a2b3c4d-fix-login      (one line)
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from claudomator.models import DeliveryRecord, Execution


@dataclass(frozen=True)
class Where:
    """Where the work is (``text``) and the shell command that shows it ("" if none)."""

    text: str
    command: str = ""

    @property
    def line(self) -> str:
        return f"{self.text} — see: {self.command}" if self.command else self.text


def _local_path(url: str) -> str:
    """The path of a local remote URL ("" for a network URL)."""
    if url.startswith("file://"):
        return url.removeprefix("file://")
    if "://" in url or ":" in url.split("/", 1)[0]:
        return ""
    return url


def where(record: DeliveryRecord) -> Where:
    """The words and the command for ``record``."""
    project = shlex.quote(record.project_dir) if record.project_dir else ""
    branch = shlex.quote(record.branch)
    if record.how == "pushed":
        rebased = " (rebased onto new upstream work)" if record.rebased else ""
        url = f" ({record.url})" if record.url else ""
        text = f"pushed to {record.remote}/{record.branch}{url}{rebased}"
        path = _local_path(record.url)
        if path:
            return Where(text, f"git -C {shlex.quote(path)} log {branch}")
        if project and record.remote:
            remote = shlex.quote(record.remote)
            look = f"git -C {project} fetch {remote} && git -C {project} log {remote}/{branch}"
            return Where(text, look)
        return Where(text)
    if record.how == "branch":
        place = f" in {record.project_dir}" if record.project_dir else ""
        text = f"kept as branch {record.branch}{place}"
        look = f"git -C {project} log HEAD..{branch}" if project else f"git log HEAD..{branch}"
        return Where(text, look)
    return Where("no new commits; nothing delivered")


def latest(executions: Iterable[Execution]) -> DeliveryRecord | None:
    """The delivery of the newest execution that delivered something (else the newest one)."""
    records = [e.delivery for e in executions if e.delivery is not None]
    real = [r for r in records if r.how != "nothing"]
    if real:
        return real[-1]
    return records[-1] if records else None
