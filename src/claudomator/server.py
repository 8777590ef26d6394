"""The long-running orchestrator: the pool and the HTTP API in one event loop.

``claudomator serve`` calls :func:`serve`; it owns SIGINT/SIGTERM so that on either the API stops
accepting, the pool stops its agents (SIGTERM, then SIGKILL) and re-queues their tasks, and only
then does the process exit. Slow or excess clients are bounded by :mod:`claudomator.connections`
(a read deadline per request, a connection cap, file descriptors kept for agents and git).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from claudomator import webpush
from claudomator.api import create_app
from claudomator.config import Settings
from claudomator.connections import (
    KEEP_ALIVE_TIMEOUT,
    MAX_INCOMPLETE_EVENT,
    ConnectionLimits,
    fd_reserve_for,
    guarded_h11,
    raise_nofile_limit,
)
from claudomator.orchestrators import Registration
from claudomator.runtime import Runtime
from claudomator.service import Service

logger = logging.getLogger(__name__)

API_THREADS = 32
"""Threads of the loop's default executor beyond one per task slot. The API's blocking calls
(webhooks, event and log streams) use that executor; sandbox work has executors of its own
(:class:`~claudomator.blocking.Blocking`), and the extra slot-per-task keeps any blocking
step of a running task that still uses the default one from ever filling it."""


class _Server(uvicorn.Server):
    # uvicorn would re-raise a captured signal after serving, killing the process before the
    # pool has stopped its agents and re-queued their tasks: the signals are ours instead.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    # called once the socket is bound and listening, with the port it is bound to (the one
    # asked for, or the free one the system chose for port 0)
    on_ready: Callable[[int], None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_ready is not None:
            self.on_ready(self.bound_port())

    def bound_port(self) -> int:
        """The port of the first listening socket (the configured one if none is known)."""
        for listening in getattr(self, "servers", []):
            for sock in listening.sockets or ():
                return int(sock.getsockname()[1])
        return int(self.config.port)


def _bound(config: uvicorn.Config, limits: ConnectionLimits) -> None:
    """Slow-client guards on a config not yet loaded (uvicorn reads these at start)."""
    config.http = guarded_h11(limits)
    config.timeout_keep_alive = int(KEEP_ALIVE_TIMEOUT)
    config.limit_concurrency = limits.max_connections + 1  # + 1: a request never counts itself
    config.h11_max_incomplete_event_size = MAX_INCOMPLETE_EVENT
    if limits.fd_reserve:  # asyncio accepts up to `backlog` sockets at once, before any check
        config.backlog = max(16, min(config.backlog, limits.fd_reserve // 2))


async def serve(
    settings: Settings,
    service: Service,
    host: str,
    port: int,
    *,
    on_ready: Callable[[int], None] | None = None,
    limits: ConnectionLimits | None = None,
) -> None:
    """Run the pool and the API until SIGINT or SIGTERM.

    ``limits``: the connection cap and the read deadline (the file-descriptor limit and
    reserve are filled in here, after the soft limit is raised to the hard one).
    """
    webpush.load_keys(settings)  # a bad configured VAPID key stops us here, not at first push
    fd_limit = raise_nofile_limit()
    limits = limits or ConnectionLimits()
    limits = dataclasses.replace(limits, fd_limit=fd_limit, fd_reserve=fd_reserve_for(fd_limit))
    runtime = Runtime(settings, service=service)
    closing = threading.Event()  # ends the SSE streams: open browsers must not hold us up
    app = create_app(  # the API uses the runtime's model client and launcher (it closes them)
        service,
        settings,
        listen_host=host,
        exit_when_data_dir_changes=True,
        closing=closing,
        llm=runtime.llm,
        launcher=runtime.launcher,
    )
    server = _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
        )
    )
    _bound(server.config, limits)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(  # shut down by asyncio.run on the way out
        ThreadPoolExecutor(settings.max_concurrent + API_THREADS, "claudomator-default")
    )

    def stop(sig: signal.Signals) -> None:
        logger.info("received %s; shutting down", sig.name, extra={"action": "serve_stop"})
        closing.set()
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        # `run` in another terminal sees this serve and leaves its tasks to it
        with Registration(settings.data_dir, f"{host}:{port}", runtime.pool.max_concurrent):
            async with runtime:
                server.on_ready = on_ready
                await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
