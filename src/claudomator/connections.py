"""Slow and excess HTTP clients: read deadlines, a connection cap, file descriptors in reserve.

uvicorn times out idle keep-alive connections but never a request that is only partly sent:
half-sent headers never reach the ASGI app, so each one holds a file descriptor for ever, and
a thousand of them leave none for agents and git ("Too many open files"). :func:`guarded_h11`
makes uvicorn's h11 protocol class with two guards:

* a read deadline: a request must be received whole (headers and body) within
  ``read_timeout`` seconds of its first byte (or of the connection), else the connection is
  closed (with a 408 if no request line and headers were complete);
* admission: a new connection is closed at once when ``max_connections`` are open, or when
  fewer than ``fd_reserve`` file descriptors are left under the soft RLIMIT_NOFILE.

:func:`raise_nofile_limit` raises the soft limit to the hard one when ``serve`` starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 200
DEFAULT_READ_TIMEOUT = 30.0  # seconds to receive a whole request once it has begun
KEEP_ALIVE_TIMEOUT = 5.0  # seconds an idle keep-alive connection stays open
MAX_INCOMPLETE_EVENT = 16 * 1024  # bytes of a request line and headers before 431
REFUSAL_LOG_EVERY = 10.0  # seconds between warnings about refused connections


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        logger.warning(
            "cannot raise the open-file limit from %d to %d: %s",
            soft,
            hard,
            exc,
            extra={"action": "nofile"},
        )
        return soft
    logger.info("open-file limit raised from %d to %d", soft, hard, extra={"action": "nofile"})
    return hard


def fd_reserve_for(soft_limit: int) -> int:
    """File descriptors kept free for agents, git and the database: a quarter of the limit,
    at least 64 and at most 512."""
    return max(64, min(512, soft_limit // 4))


def open_fds() -> int | None:
    """File descriptors this process has open (None where /proc/self/fd is missing)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


@dataclass(frozen=True)
class ConnectionLimits:
    """The guards' settings (see the module docstring)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    read_timeout: float = DEFAULT_READ_TIMEOUT
    fd_limit: int = 0  # the soft RLIMIT_NOFILE; 0: no file-descriptor check
    fd_reserve: int = 0


class _Refusals:
    """Counts refused connections; warns at most every REFUSAL_LOG_EVERY seconds."""

    def __init__(self) -> None:
        self.count = 0
        self._warned = -REFUSAL_LOG_EVERY

    def note(self, why: str) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._warned >= REFUSAL_LOG_EVERY:
            self._warned = now
            logger.warning(
                "refusing new connections: %s (%d refused so far)",
                why,
                self.count,
                extra={"action": "connection_refused"},
            )


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a read deadline and admission control."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    refusals: ClassVar[_Refusals]
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        why = self._refusal()
        if why:
            self.refusals.note(why)
            transport.abort()  # no lingering: the descriptor is what we are short of
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._arm()  # the first bytes of a new request: it has read_timeout to arrive
        super().data_received(data)
        if self._request_read():
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # uvicorn's keep-alive timeout takes over until the next request
        super().on_response_complete()

    # -- the guards ------------------------------------------------------------------------

    def _refusal(self) -> str:
        """Why this new connection must be closed now ("" to keep it)."""
        limits = self.limits
        if len(self.connections) > limits.max_connections:
            return f"{limits.max_connections} connections are open (the maximum)"
        if limits.fd_limit:
            used = open_fds()
            if used is not None and used > limits.fd_limit - limits.fd_reserve:
                return (
                    f"{used} of {limits.fd_limit} file descriptors in use; "
                    f"{limits.fd_reserve} are kept for agents and git"
                )
        return ""

    def _request_read(self) -> bool:
        """Whether the current request has been received whole (or answered already)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return False
        return not cycle.more_body or cycle.response_started

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._request_read():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        logger.info(
            "closing a connection from %s: no whole request within %gs",
            client,
            self.limits.read_timeout,
            extra={"action": "slow_client"},
        )
        if self.cycle is None or self.cycle.response_complete:  # the headers never came
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
        self.transport.close()


def guarded_h11(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` enforcing ``limits``."""

    class Guarded(GuardedH11Protocol):
        pass

    Guarded.limits = limits
    Guarded.refusals = _Refusals()
    return Guarded
