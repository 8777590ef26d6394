"""`claudomator serve`: the pool for every queued task plus the HTTP API."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from claudomator import __version__
from claudomator.cli.common import app, fail, load, make_console, open_service
from claudomator.cli.confinement import announce, confinement
from claudomator.readiness import summary_line

if TYPE_CHECKING:  # the service (SQLAlchemy) is loaded when serve opens it
    from claudomator.service import Service

logger = logging.getLogger(__name__)

CONSOLE_LOGGERS = ("claudomator.tasklog", "claudomator.dispatch", "claudomator.server")
"""Loggers whose INFO lines serve shows without -v: a line per task start and end, the
cancels, the shutdown. Everything else shows from WARNING (-v: INFO, -vv: DEBUG)."""
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def console_logging() -> None:
    """Serve's console: the task lines at INFO; when stderr is not a terminal (a service
    manager, a file), one plain line per record instead of Rich's wrapped columns."""
    for name in CONSOLE_LOGGERS:
        named = logging.getLogger(name)
        if named.getEffectiveLevel() > logging.INFO:
            named.setLevel(logging.INFO)
    if sys.stderr.isatty():
        return
    root = logging.getLogger()
    plain = logging.StreamHandler(sys.stderr)
    plain.setFormatter(logging.Formatter(PLAIN_FORMAT))
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(plain)


def first_run_guidance(service: Service, url: str) -> None:
    """On stderr: one line per agent (can it run here, and why not), and how to create the
    first task when there is none."""
    console = make_console(stderr=True)
    ready = service.agent_readiness()
    console.print("Agents:", markup=False)
    for agent in ready.values():
        console.print(f"  {summary_line(agent)}", markup=False, soft_wrap=True)
    if not any(r.usable for r in ready.values()):
        console.print(
            "No agent can run here yet: tasks are queued and wait, saying why, until one can "
            "(install a CLI or configure [local_model]; no restart needed).",
            markup=False,
            soft_wrap=True,
        )
    if not any(service.store.count_by_state().values()):
        console.print(
            "No tasks yet: write a task file (name: hello, agent: {instructions: ...}) and run "
            f"`claudomator run FILE`, or open the New task page: {url}new",
            markup=False,
            soft_wrap=True,
        )


@app.command(rich_help_panel="Run")
def serve(
    addr: Annotated[
        str | None, typer.Option("--addr", help="host:port to listen on (default: server_addr).")
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            "--max-connections",
            min=1,
            help="Open HTTP connections at most; more are closed. [default: 200]",
        ),
    ] = None,
    request_timeout: Annotated[
        float | None,
        typer.Option(
            "--request-timeout",
            min=0.1,
            help="Seconds a client has to send a whole request (headers and body). [default: 30]",
        ),
    ] = None,
) -> None:
    """Start the orchestrator: the pool that runs queued tasks, and the HTTP API."""
    from claudomator import server  # FastAPI and uvicorn: imported only when serving
    from claudomator.connections import ConnectionLimits
    from claudomator.web import ui_url

    console_logging()
    settings = load()
    if addr:
        settings = settings.model_copy(update={"server_addr": addr})
    host, _, port = settings.server_addr.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise fail(
            f"server_addr {settings.server_addr!r} is not host:port with a port from 0 to 65535 "
            "(0: any free port)",
            2,
        )
    choice = confinement(settings)  # before anything opens: an unusable bubblewrap exits 2
    service = open_service(settings)
    announce(choice)
    try:
        host = host or "127.0.0.1"

        def ready(bound: int) -> None:
            port = str(bound)  # port 0 asked for any free one: say which
            make_console(stderr=True).print(
                f"Claudomator {__version__} serving on http://{host}:{port} "
                f"(data: {settings.data_dir}); Ctrl-C to stop.",
                markup=False,
                soft_wrap=True,
            )
            make_console(stderr=True).print(
                f"Web UI: {ui_url(host, port)}", markup=False, soft_wrap=True
            )
            access = (
                "the API needs Authorization: Bearer <api_token>"
                if settings.api_token
                else "no api_token: the API is open to programs on this machine"
            )
            make_console(stderr=True).print(
                f"{access}; it answers only to Host names it listens on and allowed_hosts.",
                markup=False,
                soft_wrap=True,
            )
            first_run_guidance(service, ui_url(host, port))

        limits = ConnectionLimits()
        if max_connections is not None:
            limits = dataclasses.replace(limits, max_connections=max_connections)
        if request_timeout is not None:
            limits = dataclasses.replace(limits, read_timeout=request_timeout)
        asyncio.run(server.serve(settings, service, host, int(port), on_ready=ready, limits=limits))
    finally:
        service.close()
