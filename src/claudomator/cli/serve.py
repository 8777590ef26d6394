"""`claudomator serve`: the pool for every queued task plus the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Annotated

import typer

from claudomator import __version__
from claudomator.cli.common import app, fail, load, make_console, open_service
from claudomator.config import (
    Settings,
)
from claudomator.runtime import Runtime
from claudomator.service import Service

logger = logging.getLogger(__name__)


@app.command(rich_help_panel="Run")
def serve(
    addr: Annotated[
        str | None, typer.Option("--addr", help="host:port to listen on (default: server_addr).")
    ] = None,
) -> None:
    """Start the orchestrator: the pool that runs queued tasks, and the HTTP API."""
    settings = load()
    if addr:
        settings = settings.model_copy(update={"server_addr": addr})
    host, _, port = settings.server_addr.rpartition(":")
    if not port.isdigit():
        raise fail(f"server_addr {settings.server_addr!r} is not host:port", 2)
    service = open_service(settings)
    try:
        asyncio.run(_serve(settings, service, host or "127.0.0.1", int(port)))
    finally:
        service.close()


async def _serve(settings: Settings, service: Service, host: str, port: int) -> None:
    import uvicorn

    from claudomator.api import create_app

    class _Server(uvicorn.Server):
        # We own SIGINT/SIGTERM: uvicorn would re-raise them after serving, killing the
        # process before the pool has stopped its agents and re-queued their tasks.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    runtime = Runtime(settings, service=service)
    server = _Server(uvicorn.Config(create_app(service), host=host, port=port, log_level="warning"))
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        logger.info("received %s; shutting down", sig.name, extra={"action": "serve_stop"})
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        async with runtime:
            make_console(stderr=True).print(
                f"Claudomator {__version__} serving on http://{host}:{port} "
                f"(data: {settings.data_dir}); Ctrl-C to stop.",
                markup=False,
                soft_wrap=True,
            )
            await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
