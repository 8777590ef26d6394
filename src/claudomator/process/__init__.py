"""The only place that spawns processes (one module per noun; every name is importable from
here).

* :mod:`~claudomator.process.command`: :func:`run` runs a short command (git, a build check) to
  completion and captures its output (:class:`CommandResult`).
* :mod:`~claudomator.process.agent`: :class:`AgentProcess` runs a long-lived agent CLI in its own
  process group, writes its raw stdout and stderr to files while handing each stdout line to a
  callback, and kills the whole process tree on timeout, cancel or shutdown (SIGTERM, then
  SIGKILL after a grace period). The command it spawns is the one its
  :class:`~claudomator.isolation.base.Launcher` makes of the agent's.
* :mod:`~claudomator.process.marks`: :data:`MARK_VARIABLE` and finding and killing the processes
  an agent left behind outside its group.
* :mod:`~claudomator.process.group`: process groups and signals.
* :mod:`~claudomator.process.namespace`: the processes inside a confined agent's pid namespace,
  which a stop SIGTERMs instead of the group (whose leader is the launcher's wrapper).
* :mod:`~claudomator.process.files`: an agent's log files (tail, append).

Commands are always argument lists; nothing here builds a shell string.
"""

from __future__ import annotations

from claudomator.process.agent import AgentProcess, Exit
from claudomator.process.command import CommandResult, run
from claudomator.process.files import open_append, tail_file
from claudomator.process.group import group_alive, kill_group_sync
from claudomator.process.marks import MARK_VARIABLE, kill_marked, kill_marked_sync, marked_pids

__all__ = [
    "MARK_VARIABLE",
    "AgentProcess",
    "CommandResult",
    "Exit",
    "group_alive",
    "kill_group_sync",
    "kill_marked",
    "kill_marked_sync",
    "marked_pids",
    "open_append",
    "run",
    "tail_file",
]
