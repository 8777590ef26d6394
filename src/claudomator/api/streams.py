"""Server-Sent Events: task state changes, and a running execution's log as it grows.

Both streams poll the store or the log file (they work for writers in any process) and end
when the client goes away; the log stream also ends once the execution has ended and every
byte has been sent, or with an ``error`` event if the log is replaced by something that is not
a plain file in the log folder (see :mod:`claudomator.logs.local`).

Both also end when ``closing`` is set (serve is stopping): a browser left open must not keep
serve from exiting. Each look sends what it found in one write: a client that went away is
noticed at the next look, never after a burst of writes to a closed socket (asyncio warns
after the fifth).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from claudomator.logs import LogFile, UnsafeLogFile
from claudomator.service import Service

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
CHUNK = 64 * 1024


def _frame(event: str, data: str, event_id: int | None = None) -> str:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n{lines}\n"


def stream_routes(service: Service, closing: threading.Event | None = None) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["streams"])
    closing = closing or threading.Event()

    async def gone(request: Request) -> bool:
        return closing.is_set() or await request.is_disconnected()

    @router.get("/events", response_class=StreamingResponse)
    async def events(
        request: Request,
        after: int = Query(default=0, ge=0, description="send events with an id above this"),
        last_event_id: str | None = Header(default=None),
    ) -> StreamingResponse:
        """Every task state change as an SSE ``task`` event (resumable with Last-Event-ID)."""
        cursor = int(last_event_id) if last_event_id and last_event_id.isdigit() else after

        async def produce() -> AsyncIterator[str]:
            nonlocal cursor
            quiet = 0.0
            while not await gone(request):
                batch = await asyncio.to_thread(service.events_since, cursor)
                if batch:  # one write per look (see the module docstring)
                    cursor = next((e.id for e in reversed(batch) if e.id), cursor)
                    yield "".join(_frame("task", e.model_dump_json(), e.id) for e in batch)
                    quiet = 0.0
                    continue
                quiet += POLL_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(produce(), media_type="text/event-stream")

    @router.get("/executions/{execution_id}/log/follow", response_class=StreamingResponse)
    async def follow_log(
        request: Request, execution_id: str, offset: int = Query(default=0, ge=0)
    ) -> StreamingResponse:
        """The stdout log from ``offset`` as SSE ``log`` events (one per line, id = the byte
        offset after it), then an ``end`` event once the execution has ended."""
        execution = await asyncio.to_thread(service.execution, execution_id)
        logs = service.logs
        await asyncio.to_thread(logs.read, execution, LogFile.STDOUT, 0, 0)  # 403 before streaming

        async def produce() -> AsyncIterator[str]:
            position, pending = offset, b""
            while not await gone(request):
                try:
                    chunk = await asyncio.to_thread(
                        logs.read, execution, LogFile.STDOUT, position, CHUNK
                    )
                    chunk = chunk or b""
                except UnsafeLogFile as exc:  # replaced while we follow it
                    yield _frame("error", json.dumps({"error": str(exc)}))
                    return
                position += len(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                sent = position - len(pending)
                if lines:  # one write per chunk read
                    yield "".join(
                        _frame("log", line.decode("utf-8", errors="replace"), sent)
                        for line in lines
                    )
                if chunk:
                    continue
                current = await asyncio.to_thread(service.execution, execution_id)
                if current.end_time is not None:
                    if pending:
                        yield _frame("log", pending.decode("utf-8", errors="replace"), position)
                    end = {"status": current.status.value, "offset": position}
                    yield _frame("end", json.dumps(end))
                    return
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(produce(), media_type="text/event-stream")

    return router
