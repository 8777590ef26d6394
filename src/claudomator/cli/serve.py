"""`claudomator serve`: the pool for every queued task plus the HTTP API."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from claudomator import __version__, server
from claudomator.cli.common import app, fail, load, make_console, open_service
from claudomator.connections import DEFAULT_MAX_CONNECTIONS, DEFAULT_READ_TIMEOUT, ConnectionLimits
from claudomator.web import ui_url

logger = logging.getLogger(__name__)


@app.command(rich_help_panel="Run")
def serve(
    addr: Annotated[
        str | None, typer.Option("--addr", help="host:port to listen on (default: server_addr).")
    ] = None,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", min=1, help="Open HTTP connections at most; more are closed."
        ),
    ] = DEFAULT_MAX_CONNECTIONS,
    request_timeout: Annotated[
        float,
        typer.Option(
            "--request-timeout",
            min=0.1,
            help="Seconds a client has to send a whole request (headers and body).",
        ),
    ] = DEFAULT_READ_TIMEOUT,
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
        host = host or "127.0.0.1"

        def ready() -> None:
            make_console(stderr=True).print(
                f"Claudomator {__version__} serving on http://{host}:{port} "
                f"(data: {settings.data_dir}); Ctrl-C to stop.",
                markup=False,
                soft_wrap=True,
            )
            make_console(stderr=True).print(
                f"Web UI: {ui_url(host, port)}", markup=False, soft_wrap=True
            )

        limits = ConnectionLimits(max_connections=max_connections, read_timeout=request_timeout)
        asyncio.run(server.serve(settings, service, host, int(port), on_ready=ready, limits=limits))
    finally:
        service.close()
