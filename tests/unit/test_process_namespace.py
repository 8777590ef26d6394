"""The pid-namespace walk of a confined agent's stop: parsing /proc's ``stat`` and ``NSpid``, and
choosing what to signal from a process table built here (issue 13)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from claudomator.process.namespace import (
    Inside,
    ProcEntry,
    descendants,
    find_inside,
    inside,
    members,
    parse_nspid,
    parse_stat,
    read_entry,
    signal_in,
)

OURS = "pid:[4026531836]"
AGENT = "pid:[4026532179]"
NESTED = "pid:[4026532300]"


def entry(pid: int, ppid: int, ns: str, *nspid: int, zombie: bool = False) -> ProcEntry:
    return ProcEntry(pid, ppid, zombie, ns, (pid, *nspid))


def confined_table() -> dict[int, ProcEntry]:
    """us (10) → outer proxy (20) → bwrap (30) → [namespace: init 31 → gate 32 → agent 33 →
    tool 34, and a detached daemon 35 reparented to init]; an unrelated process 99 in another
    namespace; a zombie 36 in the agent's."""
    rows = [
        entry(10, 1, OURS),
        entry(20, 10, OURS),
        entry(30, 20, OURS),
        entry(31, 30, AGENT, 1),
        entry(32, 31, AGENT, 2),
        entry(33, 32, AGENT, 3),
        entry(34, 33, AGENT, 4),
        entry(35, 31, AGENT, 7),
        entry(36, 33, AGENT, 9, zombie=True),
        entry(99, 1, "pid:[4026599999]", 1),
    ]
    return {row.pid: row for row in rows}


def test_parse_stat_reads_the_parent_after_the_last_parenthesis() -> None:
    assert parse_stat("42 (we ird) S 7 ) Z 1 2 3) R 17 42 42 0") == (17, False)
    assert parse_stat("42 (sh) Z 17 42 42 0") == (17, True)
    assert parse_stat("42 (sh)") is None
    assert parse_stat("") is None


def test_parse_nspid_takes_the_last_nspid_line() -> None:
    status = "Name:\tNSpid:\t1\nUmask:\t0022\nNSpid:\t3512\t2\nNSsid:\t3511\t1\n"
    assert parse_nspid(status) == (3512, 2)
    assert parse_nspid("Name:\tsh\nNSpid:\t77\n") == (77,)
    assert parse_nspid("Name:\tsh\n") == ()
    assert parse_nspid("NSpid:\t12\tx\n") == ()


def test_descendants_follow_parent_pids_only_below_the_root() -> None:
    table = confined_table()
    assert descendants(table, 20) == [30, 31, 32, 35, 33, 34, 36]
    assert descendants(table, 34) == []
    assert descendants(table, 12345) == []


def test_the_targets_are_the_live_processes_inside_but_not_its_pid_1_nor_the_wrappers() -> None:
    found = inside(confined_table(), 20, OURS, 1)
    assert found.namespaces == {AGENT}
    assert sorted(found.targets) == [32, 33, 34, 35]


def test_a_nested_namespace_is_inside_too_and_its_own_init_is_signalled() -> None:
    table = confined_table()
    table[40] = entry(40, 34, NESTED, 11, 1)  # the agent's own sandbox: pid 11 in the agent's
    table[41] = entry(41, 40, NESTED, 12, 2)
    found = inside(table, 20, OURS, 1)
    assert found.namespaces == {AGENT, NESTED}
    assert sorted(found.targets) == [32, 33, 34, 35, 40, 41]


def test_no_namespace_below_gives_no_target() -> None:
    table = {row.pid: row for row in [entry(10, 1, OURS), entry(20, 10, OURS), entry(21, 20, OURS)]}
    assert inside(table, 20, OURS, 1) == Inside()
    only_init = confined_table()
    for pid in (32, 33, 34, 35, 36):
        del only_init[pid]
    assert inside(only_init, 20, OURS, 1) == Inside(frozenset({AGENT}), ())


def test_unreadable_namespaces_are_left_alone() -> None:
    table = confined_table()
    table[33] = ProcEntry(33, 32, False, "", (33, 3))  # not ours to read
    table[34] = ProcEntry(34, 33, False, AGENT, ())  # no NSpid: cannot tell its pid 1
    found = inside(table, 20, OURS, 1)
    assert sorted(found.targets) == [32, 35]
    assert inside(confined_table(), 20, "", 1) == Inside()


def test_the_depth_of_our_namespace_picks_the_nspid_column() -> None:
    """Running in a container ourselves: /proc shows two levels above the agent's pids."""
    table = {
        20: ProcEntry(20, 10, False, OURS, (520, 20)),
        31: ProcEntry(31, 20, False, AGENT, (531, 31, 1)),
        33: ProcEntry(33, 31, False, AGENT, (533, 33, 2)),
    }
    assert inside(table, 20, OURS, 2).targets == (33,)


def test_members_are_every_live_process_of_the_namespaces() -> None:
    assert sorted(members(confined_table(), {AGENT})) == [31, 32, 33, 34, 35]
    assert members(confined_table(), set()) == []


def test_the_live_walk_reads_this_process_and_finds_nothing_below_a_plain_child() -> None:
    me = read_entry(os.getpid())
    assert me is not None
    assert me.ppid == os.getppid()
    assert me.pidns == os.readlink("/proc/self/ns/pid")
    assert me.nspid[0] == os.getpid()
    assert read_entry(0, Path("/proc")) is None
    assert find_inside(os.getpid()).targets == ()


def test_signal_in_signals_only_a_process_still_in_the_namespaces() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        ours = os.readlink("/proc/self/ns/pid")
        assert signal_in([child.pid], signal.SIGTERM, {"pid:[1]"}) == 0
        assert child.poll() is None
        assert signal_in([child.pid], signal.SIGTERM, {ours}) == 1
        assert child.wait(timeout=10) == -signal.SIGTERM
        assert signal_in([child.pid], signal.SIGTERM, {ours}) == 0  # reaped: gone
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
