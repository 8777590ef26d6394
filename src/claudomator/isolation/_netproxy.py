"""The outer proxy of ``network = "model-only"`` (docs/agents.md §15): a process of ours, on the
host's network, that listens on a unix socket the agent's namespace can reach and lets through
only the allowed endpoints (:class:`~claudomator.isolation._network.AllowList`).

It is the process the launcher's argv starts (``python -I -S``, the standard library only, see
:func:`command`): it makes its socket directory (``<log_dir>/.net-<random>``, mode 0700, never
one that exists; the socket is bound by a relative name, so a long log path does not matter)
and binds ``proxy.sock``; then it forks. The parent execs the command after ``--``
(bwrap), so the process the orchestrator started is bwrap itself, with bwrap's pid, status and
signals, exactly as under ``network = "open"`` (bwrap ignores a child it did not start). The
child, in a session of its own (a kill of the agent's process group does not reach it),
relays until a pidfd of that process says it ended (however it ended: SIGKILL included), then
removes the socket directory and exits.

What the child serves is :mod:`claudomator.isolation._netserve`, imported after the fork: the
parent, on the agent's start-up path, imports only ``os``, ``sys`` and the C halves of
``socket`` and ``signal`` (``_socket``, ``_signal``: the full modules import ``enum`` and more,
which was most of the proxy's start-up).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stub: signal's own C half)
import _socket
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing (and re) would slow the start-up
if TYPE_CHECKING:  # not imported at run time: pathlib, argparse, logging or dataclasses
    # would take longer to import than the rest of the proxy
    from collections.abc import Sequence
    from pathlib import Path

SOCKET_NAME = "proxy.sock"
BOOT = (
    "import sys\n"
    "root = sys.argv.pop(1)\n"
    "for name in ('claudomator', 'claudomator.isolation'):\n"
    "    package = type(sys)(name)\n"
    "    package.__path__ = [root + '/' + name.replace('.', '/')]\n"
    "    sys.modules[name] = package\n"
    "from claudomator.isolation._netproxy import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
"""The ``python -c`` of :func:`command`: this module (then ``_netserve`` and ``_network``)
from the given directory, without running the packages' ``__init__`` (their imports would
triple the proxy's start-up), and nothing else."""


def command(python: str, package_root: str, socket_dir: Path, allowed: Sequence[str]) -> list[str]:
    """The argv that runs the proxy for ``allowed`` (origins), in ``socket_dir``, before the
    command the caller appends after ``--``."""
    argv = [python, "-I", "-S", "-c", BOOT, package_root, "--dir", str(socket_dir)]
    for url in allowed:
        argv += ["--allow", url]
    return [*argv, "--"]


def _listen(socket_dir: str) -> _socket.socket:
    os.mkdir(socket_dir, 0o700)  # fails if it is there: never someone else's
    here = os.getcwd()
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        os.chdir(socket_dir)
        listener.bind(SOCKET_NAME)  # relative: a long log path is no limit
        listener.listen(64)
    finally:
        os.chdir(here)
    return listener


def parse_args(argv: Sequence[str]) -> tuple[str, list[str], list[str]]:
    """``--dir DIR [--allow URL]... -- COMMAND...``: (dir, allowed URLs, command);
    ``ValueError`` for anything else."""
    socket_dir, allow, rest = "", [], list(argv)
    while rest and rest[0] != "--":
        flag = rest.pop(0)
        if flag not in ("--dir", "--allow") or not rest:
            raise ValueError(f"usage: --dir DIR [--allow URL]... -- COMMAND (not {flag!r})")
        value = rest.pop(0)
        if flag == "--dir":
            socket_dir = value
        else:
            allow.append(value)
    command = rest[1:]
    if not socket_dir or not command:
        raise ValueError("usage: --dir DIR [--allow URL]... -- COMMAND")
    return socket_dir, allow, command


def main(argv: Sequence[str]) -> int:
    """Listen, fork: the child is the proxy (``_netserve.serve_until``), this process becomes
    the command (``exec``), so its pid, status and signals are the command's own."""
    try:
        socket_dir, allow, command = parse_args(argv)
    except ValueError as exc:
        sys.stderr.write(f"claudomator network: {exc}\n")
        return 2
    try:
        listener = _listen(socket_dir)
        watch = os.pidfd_open(os.getpid())  # close-on-exec here, kept by the child
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"claudomator network: cannot start the proxy: {exc}\n")
        return 125
    sys.stderr.flush()
    if os.fork() == 0:
        try:
            from claudomator.isolation._netserve import serve_until

            serve_until(watch, listener, allow, socket_dir, SOCKET_NAME)
        finally:
            os._exit(1)
    listener.close()
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):  # Python ignores them; exec would keep that
        _signal.signal(sig, _signal.SIG_DFL)
    try:
        os.execvp(command[0], command)  # noqa: S606 - the launcher's own bwrap argv
    except OSError as exc:
        sys.stderr.write(f"claudomator network: cannot start {command[0]}: {exc}\n")
    return 127
