"""Which names the API answers to: a guard against DNS rebinding and cross-site requests.

A web page the user visits can make the browser send requests to ``127.0.0.1:8484``, either
directly (a cross-site "simple" POST) or after pointing its own name at 127.0.0.1 (DNS
rebinding, where the browser then sends ``Host: evil.example``). :class:`HostCheck` refuses both:

* the ``Host`` header must name an address ``serve`` listens on (the bound host; 127.0.0.1,
  localhost and [::1] when bound to loopback or to every interface) or one of the configured
  ``allowed_hosts``; anything else is answered 403;
* a state-changing request (POST, PUT, PATCH, DELETE) that carries an ``Origin`` header must
  come from the very origin it is sent to (same host and port); requests without ``Origin``
  (curl, agents, scripts) are not browsers' cross-site requests and go on.

The signed GitHub webhook is exempt: GitHub sends it with the public name of a tunnel or proxy,
and it is authenticated by its HMAC signature, which a rebinding page cannot forge.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_EVERY_INTERFACE = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _bare(host: str) -> str:
    """``host`` lower-cased, without IPv6 brackets or a trailing dot."""
    host = host.strip().lower().rstrip(".")
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address as bound) is reachable only from this machine."""
    bare = _bare(host)
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def is_every_interface(host: str) -> bool:
    """Whether binding ``host`` listens on every interface (0.0.0.0, ::, empty)."""
    return _bare(host) in _EVERY_INTERFACE


def allowed_hosts(listen_host: str, configured: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` names to answer for a server bound to ``listen_host``."""
    hosts = {_bare(h) for h in configured if h.strip()}
    if not is_every_interface(listen_host):
        hosts.add(_bare(listen_host))
    if is_loopback(listen_host) or is_every_interface(listen_host):
        hosts |= LOOPBACK_NAMES
    return frozenset(hosts)


def split_host(header: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a ``Host`` header value, or None if it is not one."""
    try:
        parts = urlsplit(f"//{header.strip()}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.path:
        return None
    return _bare(host), port


class HostCheck:
    """ASGI middleware: refuse a ``Host`` not in ``allowed``, and cross-origin state changes."""

    def __init__(
        self, app: ASGIApp, allowed: Collection[str], exempt: Collection[str] = ()
    ) -> None:
        self.app = app
        self.allowed = frozenset(_bare(h) for h in allowed)
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope.get("method", "GET"), headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        logger.warning("refused %s %s: %s", scope.get("method"), scope["path"], refusal)
        await JSONResponse({"error": refusal}, status_code=403)(scope, receive, send)

    def refusal(self, method: str, headers: Headers) -> str | None:
        """Why a request with these headers is refused, or None to let it through."""
        raw_host = headers.get("host", "")
        host = split_host(raw_host)
        if host is None or host[0] not in self.allowed:
            shown = raw_host[:100].encode("ascii", "backslashreplace").decode("ascii")
            return (
                f"Host {shown!r} is not a name this server answers to (it answers to "
                f"{', '.join(sorted(self.allowed))}); add the name to allowed_hosts in the "
                "config if clients reach the server by it"
            )
        origin = headers.get("origin")
        if origin is None or method.upper() not in _STATE_CHANGING:
            return None
        if not _same_origin(origin, host):
            shown = origin[:100].encode("ascii", "backslashreplace").decode("ascii")
            return (
                f"Origin {shown!r} is not this server's origin: a page on another site may not "
                "change anything here (requests without Origin, such as curl's, are not affected)"
            )
        return None


def _same_origin(origin: str, host: tuple[str, int | None]) -> bool:
    try:
        parts = urlsplit(origin.strip())
        name, port = parts.hostname, parts.port
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme)
    if not name or default is None:  # "null" (a sandboxed frame, a file), or no http(s) origin
        return False
    return _bare(name) == host[0] and (port or default) == (host[1] or default)
