"""The agent's pid namespace: which processes a confined agent's stop must signal.

A confining launcher (``bwrap --unshare-pid --new-session``) starts the agent in a pid namespace
of its own, in a session of its own: a SIGTERM to our child's process group reaches only the
wrapper (bwrap; under ``model-only`` the outer proxy runs in a session of its own and ends when
bwrap does), and bwrap dies of it at once and takes the namespace down with SIGKILL. So a
stop signals the processes *inside* instead: the descendants of our child
whose pid namespace is not ours, except the namespace's pid 1 (bwrap's init, which exits when
the agent does). See docs/agents.md §15.

Everything is read from /proc by pid, never through a path or name the agent controls: the
parent pid from ``stat`` (after the last ``)``, as a command name may hold anything), the
namespace from the ``ns/pid`` link's own text (``os.readlink``, nothing is followed), the pids
in each namespace from the last ``NSpid:`` line of ``status``. Signals go through a pidfd whose
process is checked to still be in the namespace, so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcEntry:
    """One process as /proc shows it (what the namespace walk needs)."""

    pid: int
    ppid: int
    zombie: bool
    pidns: str  # the text of the ns/pid link, "pid:[4026531836]"; "" if not ours to read
    nspid: tuple[int, ...]  # its pid in each namespace, from /proc's own down; () if unknown


@dataclass(frozen=True)
class Inside:
    """What a walk found below one process: the pid namespaces other than ours, and the
    processes to signal in them (every live one but the namespaces' pid 1)."""

    namespaces: frozenset[str] = frozenset()
    targets: tuple[int, ...] = ()


def parse_stat(text: str) -> tuple[int, bool] | None:
    """``(ppid, zombie)`` from the text of /proc/<pid>/stat; None if it is not one."""
    fields = text[text.rfind(")") + 2 :].split()  # "pid (comm) state ppid ..."
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return int(fields[1]), fields[0] in ("Z", "X")


def parse_nspid(status: str) -> tuple[int, ...]:
    """The pids of the ``NSpid:`` line of /proc/<pid>/status (the last one: the ``Name:`` line
    before it is the process's own choice, though the kernel escapes its newlines)."""
    found: tuple[int, ...] = ()
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            words = line[len("NSpid:") :].split()
            found = tuple(int(w) for w in words) if all(w.isdigit() for w in words) else ()
    return found


def pid_namespace(pid: int | str, proc: Path = PROC) -> str:
    """The pid namespace of ``pid`` ("self" for ours) as its link names it; "" if unreadable."""
    try:
        return os.readlink(proc / str(pid) / "ns" / "pid")
    except OSError:
        return ""


def read_entry(pid: int, proc: Path = PROC) -> ProcEntry | None:
    """Process ``pid`` from /proc; None if it is gone."""
    base = proc / str(pid)
    try:
        stat = parse_stat((base / "stat").read_text(encoding="ascii", errors="replace"))
    except OSError:
        return None
    if stat is None:
        return None
    try:
        status = (base / "status").read_text(encoding="ascii", errors="replace")
    except OSError:
        status = ""
    return ProcEntry(pid, stat[0], stat[1], pid_namespace(pid, proc), parse_nspid(status))


def process_table(proc: Path = PROC) -> dict[int, ProcEntry]:
    """Every process /proc shows, by pid (empty where there is no /proc)."""
    table: dict[int, ProcEntry] = {}
    with contextlib.suppress(OSError):
        for item in proc.iterdir():
            if item.name.isdigit() and (entry := read_entry(int(item.name), proc)) is not None:
                table[entry.pid] = entry
    return table


def own_namespace(proc: Path = PROC) -> tuple[str, int]:
    """Our pid namespace and its depth as /proc counts it (how many pids our NSpid has)."""
    try:
        status = (proc / "self" / "status").read_text(encoding="ascii", errors="replace")
    except OSError:
        status = ""
    return pid_namespace("self", proc), max(len(parse_nspid(status)), 1)


def descendants(table: Mapping[int, ProcEntry], root: int) -> list[int]:
    """The processes below ``root`` in ``table`` (children first), ``root`` not included."""
    children: dict[int, list[int]] = {}
    for entry in table.values():
        children.setdefault(entry.ppid, []).append(entry.pid)
    found: list[int] = []
    queue = list(children.get(root, ()))
    while queue:
        pid = queue.pop(0)
        if pid in found or pid == root:
            continue
        found.append(pid)
        queue += children.get(pid, ())
    return found


def inside(table: Mapping[int, ProcEntry], root: int, own: str, depth: int) -> Inside:
    """The pid namespaces below ``root`` other than ``own`` (ours, ``depth`` deep), and the live
    processes in them that a stop signals: not a namespace's pid 1 (its pid one level below
    ours is 1), nor one whose namespace we cannot read."""
    namespaces: set[str] = set()
    targets: list[int] = []
    for pid in descendants(table, root):
        entry = table[pid]
        if not entry.pidns or entry.pidns == own or not own:
            continue
        namespaces.add(entry.pidns)
        if entry.zombie or len(entry.nspid) <= depth or entry.nspid[depth] == 1:
            continue
        targets.append(pid)
    return Inside(frozenset(namespaces), tuple(targets))


def members(table: Mapping[int, ProcEntry], namespaces: Iterable[str]) -> list[int]:
    """The live processes of ``table`` in ``namespaces``, their pid 1 included."""
    wanted = set(namespaces)
    return [e.pid for e in table.values() if e.pidns in wanted and not e.zombie]


def find_inside(root: int, proc: Path = PROC) -> Inside:
    """:func:`inside` over the live process table."""
    own, depth = own_namespace(proc)
    return inside(process_table(proc), root, own, depth)


def survivors(namespaces: Iterable[str], proc: Path = PROC) -> list[int]:
    """The live processes still in ``namespaces``."""
    return members(process_table(proc), namespaces)


def signal_in(pids: Iterable[int], sig: signal.Signals, namespaces: Iterable[str]) -> int:
    """Send ``sig`` to each of ``pids`` that is still in one of ``namespaces`` (checked through
    a pidfd, so a pid reused since the walk is left alone); how many were signalled."""
    wanted = set(namespaces)
    sent = 0
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone
            continue
        try:
            if pid_namespace(pid) in wanted:
                signal.pidfd_send_signal(fd, sig)
                sent += 1
        except OSError:  # exited meanwhile, or not ours to signal
            pass
        finally:
            os.close(fd)
    return sent
