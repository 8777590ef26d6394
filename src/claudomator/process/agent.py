"""A long-lived agent CLI process: :class:`AgentProcess` runs it in its own process group through
its :class:`~claudomator.isolation.base.Launcher`, writes its raw stdout and stderr to files while
handing each stdout line to a callback, and kills the whole tree on timeout, cancel or shutdown
(SIGTERM, then SIGKILL after a grace period); :class:`Exit` is how it ended.

A confined agent runs in a pid namespace (and session) of its own below its launcher's wrappers:
the SIGTERM goes to the processes inside it (:mod:`claudomator.process.namespace`), since one to
the group would kill bwrap, and bwrap everything inside, before the agent got its grace."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claudomator.isolation.base import Access, Launcher
from claudomator.isolation.plain import PlainLauncher
from claudomator.process.group import group_alive, killpg, signal_all
from claudomator.process.marks import MARK_VARIABLE, kill_marked, marked_pids
from claudomator.process.namespace import find_inside, signal_in, survivors

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_MAX_LINE = 8 * 1024 * 1024
"""The longest stdout line handed to the parser; a longer one is logged to disk but not kept in
memory (an agent may write any amount without a newline)."""
_CLEAR_WAIT = 2.0
"""How long, after the launcher died, a stop waits for its pid namespace to empty."""


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The protocol of ``asyncio.create_subprocess_exec`` that also sets ``exited`` as soon as
    the process exits (not only once its pipes are closed too)."""

    def __init__(
        self, exited: asyncio.Event, *, limit: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(limit=limit, loop=loop)
        self._exited_event = exited

    def process_exited(self) -> None:
        self._exited_event.set()
        super().process_exited()


@dataclass(frozen=True)
class Exit:
    """How an agent process ended."""

    returncode: int | None
    timed_out: bool = False  # we killed it at its timeout
    stopped: bool = False  # we killed it because ``stop`` was set (cancel or shutdown)
    leftovers: int = 0  # processes outside the group the agent left behind (then killed)


class AgentProcess:
    """An agent CLI running in its own process group, its output streamed to files.

    ``launcher`` turns ``argv`` and ``env`` (with the mark) into what is really spawned, given
    ``access`` (the paths the agent may use); ``argv`` and ``env`` stay the agent's own.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout_path: Path,
        stderr_path: Path,
        on_line: Callable[[str], None],
        launcher: Launcher,
        access: Access,
        kill_grace: float = 10.0,
        mark: str | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.cwd = cwd
        # PWD names the working directory, never the orchestrator's own: a CLI that reads it
        # (OpenCode's shell tool does) would otherwise work wherever the orchestrator started
        self.env = {**env, "PWD": str(Path(cwd).absolute())}
        self.mark = mark
        if mark is not None:
            self.env[MARK_VARIABLE] = mark
        self.launcher = launcher
        self.access = access
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.on_line = on_line
        self.kill_grace = kill_grace
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._exit_event = asyncio.Event()  # set when the process itself has exited
        self._namespaces: frozenset[str] = frozenset()  # the pid namespaces a stop found

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> None:
        """Spawn the process. Raises ``OSError`` if the executable cannot be started."""
        self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        # before anything is opened: a launcher may refuse (ConfinementError), leaking nothing
        argv, env = self.launcher.wrap(self.argv, self.cwd, self.env, self.access)
        stderr_file = self.stderr_path.open("ab")
        loop = asyncio.get_running_loop()
        exited = self._exit_event = asyncio.Event()
        try:
            # create_subprocess_exec, with a protocol that says when the process itself exits
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitAwareProtocol(exited, limit=_CHUNK, loop=loop),
                *argv,
                cwd=self.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr_file,
                start_new_session=True,
            )
            self._proc = asyncio.subprocess.Process(transport, protocol, loop)
        finally:
            stderr_file.close()
        logger.info(
            "started %s (pid %d) in %s (launcher %s)",
            self.argv[0],
            self._proc.pid,
            self.cwd,
            self.access.launcher or self.launcher.name,
            extra={"action": "agent_start"},
        )
        self._reader = asyncio.create_task(self._pump_stdout())

    async def _pump_stdout(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        stream = self._proc.stdout
        pending = bytearray()  # the current line so far
        skipping = False  # inside a line over _MAX_LINE: it goes to the log only
        with self.stdout_path.open("ab") as out:
            while chunk := await stream.read(_CHUNK):
                out.write(chunk)
                out.flush()
                start = 0
                while (end := chunk.find(b"\n", start)) != -1:
                    if not skipping:
                        pending += chunk[start:end]
                        self._deliver(bytes(pending))
                    pending.clear()
                    skipping = False
                    start = end + 1
                if not skipping:
                    pending += chunk[start:]
                    if len(pending) > _MAX_LINE:
                        logger.warning(
                            "stdout line over %d bytes: logged to disk, not parsed",
                            _MAX_LINE,
                            extra={"action": "parse_line"},
                        )
                        pending.clear()
                        skipping = True
            if pending and not skipping:
                self._deliver(bytes(pending))

    def _deliver(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            return
        try:
            self.on_line(line)
        except Exception:  # a parser bug must not kill the agent's output pump
            logger.exception("stdout line handler failed", extra={"action": "parse_line"})

    async def _exited(self) -> None:
        """Until the process itself has exited.

        ``Process.wait()`` only returns once stdout is closed as well, which a background child
        that inherited it can delay forever; the protocol's ``process_exited`` comes at exit.
        """
        assert self._proc is not None
        if self._proc.returncode is None:
            await self._exit_event.wait()

    async def wait(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the agent's deadline, not ours
        stop: asyncio.Event | None = None,
    ) -> Exit:
        """Wait for the process to end, killing its tree at ``timeout`` or when ``stop`` is set.

        Whatever the outcome, the rest of the process group is killed afterwards so no
        background child of the agent outlives it, and stdout is drained to the log.
        """
        proc = self._proc
        assert proc is not None
        exited = asyncio.ensure_future(self._exited())
        stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
        timed_out = stopped = False
        try:
            pending = {exited} if stopper is None else {exited, stopper}
            done, _ = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if exited not in done:
                stopped = stopper is not None and stopper in done
                timed_out = not stopped
                await self.kill()
        except asyncio.CancelledError:
            await asyncio.shield(self.kill())
            if self.mark is not None:
                signal_all(marked_pids(self.mark), signal.SIGKILL)
            raise
        finally:
            exited.cancel()
            if stopper is not None:
                stopper.cancel()
        await self._reap_group()
        leftovers = await kill_marked(self.mark, self.kill_grace) if self.mark else 0
        await self._drain()
        return Exit(proc.returncode, timed_out=timed_out, stopped=stopped, leftovers=leftovers)

    async def _drain(self) -> None:
        """Read the rest of stdout; give up if something outside the group still holds it."""
        assert self._proc is not None
        try:
            await asyncio.wait_for(self._proc.wait(), 5)
            if self._reader is not None:
                await asyncio.wait_for(self._reader, 5)
        except TimeoutError:
            logger.warning(
                "agent stdout still open after exit; stopped reading",
                extra={"action": "agent_drain"},
            )
            if self._reader is not None:
                self._reader.cancel()

    async def kill(self) -> None:
        """Stop the whole process tree: SIGTERM, then SIGKILL after the grace period.

        The SIGTERM goes to the processes in the agent's pid namespace when it has one (a
        confining launcher's), else to the group; the SIGKILL goes to the group (the launcher
        dies, and its namespace with it), then to whatever is still in the namespace.
        """
        proc = self._proc
        if proc is None:
            return
        found = await asyncio.to_thread(find_inside, proc.pid) if self._confined else None
        if found is not None and found.targets:
            self._namespaces |= found.namespaces
            logger.info(
                "stopping pid %d: SIGTERM to the %d process(es) of its pid namespace",
                proc.pid,
                len(found.targets),
                extra={"action": "agent_kill"},
            )
            signal_in(found.targets, signal.SIGTERM, found.namespaces)
        else:
            logger.info("stopping pid %d (group)", proc.pid, extra={"action": "agent_kill"})
            killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self._exited(), self.kill_grace)
        except TimeoutError:
            killpg(proc.pid, signal.SIGKILL)
            await self._exited()
        await self._clear_namespaces()

    @property
    def _confined(self) -> bool:
        """Whether the agent may have a pid namespace of the launcher's: not under ``plain``,
        where a namespace below the agent is one it made itself, and the group is signalled.
        The process's own launcher counts (``Access.launcher``: a project's or task's), else
        the orchestrator's."""
        return (self.access.launcher or self.launcher.name) != PlainLauncher.name

    async def _clear_namespaces(self) -> None:
        """SIGKILL whatever is still in the pid namespaces the stop found (the launcher is gone:
        normally the kernel is already taking them down) and wait until they are empty."""
        if not self._namespaces:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CLEAR_WAIT
        while left := await asyncio.to_thread(survivors, self._namespaces):
            if loop.time() >= deadline:
                logger.warning(
                    "%d process(es) still in the agent's pid namespace: %s",
                    len(left),
                    left,
                    extra={"action": "agent_kill"},
                )
                return
            signal_in(left, signal.SIGKILL, self._namespaces)
            await asyncio.sleep(0.02)

    async def _reap_group(self) -> None:
        assert self._proc is not None
        pgid = self._proc.pid
        if not group_alive(pgid):
            return
        killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + min(self.kill_grace, 2.0)
        while time.monotonic() < deadline and group_alive(pgid):  # noqa: ASYNC110 - polling a pgid
            await asyncio.sleep(0.05)
        killpg(pgid, signal.SIGKILL)
