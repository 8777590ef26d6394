"""The allow-list of ``network = "model-only"`` (docs/agents.md §15): which origins an agent may
reach, and what the outer proxy (:mod:`claudomator.isolation._netproxy`) decides for one
request. Standard library only: the proxy imports it in a process started with ``python -I -S``.

An endpoint is an origin, ``scheme://host[:port]`` (the port defaults to the scheme's). A
``CONNECT host:port`` is allowed when some endpoint has that host and port (https and http
alike: the inner gate's loopback forwarders tunnel plain http too); an absolute-URI request
(``GET http://host:port/path``) when an ``http`` endpoint has them. Hosts compare without case
and without a trailing dot; nothing is resolved here (the proxy connects to the name it
allowed). Not a launcher: the ``_`` keeps it out of :func:`claudomator.isolation.launcher_names`.
It has no logger: the proxy reports on stderr.
"""

from __future__ import annotations

import ipaddress

TYPE_CHECKING = False  # not typing's: the proxy's start-up imports neither typing nor re
if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_PORTS = {"http": 80, "https": 443}
GATE_PORT = 3128
"""Where the inner gate listens for the agent's proxy requests (``http://127.0.0.1:3128``)."""


class Endpoint:
    """One allowed origin: ``scheme`` ("http" or "https"), ``host`` (lower case, no brackets,
    no trailing dot), ``port``. (A plain class: ``dataclasses`` costs the proxy's start-up
    more than all the rest of its imports.)"""

    __slots__ = ("host", "port", "scheme")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port

    def _key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Endpoint) -> bool:
        return self._key() < other._key()

    def __repr__(self) -> str:
        return f"Endpoint({self.scheme!r}, {self.host!r}, {self.port})"

    @property
    def address(self) -> str:
        """``host:port`` (an IPv6 host in brackets), as a CONNECT names it."""
        return f"{_bracketed(self.host)}:{self.port}"

    @property
    def loopback(self) -> bool:
        """Whether the host is this machine's loopback (``localhost``, 127.0.0.0/8, ``::1``):
        inside the agent's network namespace that address is the namespace's own, so the gate
        listens there and forwards."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.scheme}://{self.address}"


class Decision:
    """What the proxy does with one request: ``allowed``, and the ``host``/``port`` it named
    (``reason``: why it was refused)."""

    __slots__ = ("allowed", "host", "port", "reason")

    def __init__(self, allowed: bool, host: str, port: int, reason: str = "") -> None:
        self.allowed = allowed
        self.host = host
        self.port = port
        self.reason = reason

    @property
    def address(self) -> str:
        return f"{_bracketed(self.host)}:{self.port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def parse_endpoint(url: str) -> Endpoint:
    """The :class:`Endpoint` of ``url`` (its origin; a path, query or user is ignored).
    ``ValueError`` naming the URL when it has no http(s) scheme or no host, or a bad port.
    (Parsed here: ``urllib.parse`` would double the proxy's import time.)"""
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise ValueError(f"{url!r} is not an http(s) endpoint")
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if netloc.startswith("["):
        host, _, after = netloc[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ("" if not after else "x")
    else:
        host, _, port_text = netloc.partition(":")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"{url!r} has a bad port")
    host = normal_host(host)
    if not host:
        raise ValueError(f"{url!r} has no host")
    return Endpoint(scheme, host, int(port_text) if port_text else DEFAULT_PORTS[scheme])


def split_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port`` / ``[v6]:port`` (a CONNECT target); ``ValueError``."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{text!r}: an IPv6 host must be in brackets")
    return normal_host(host), int(port)


class AllowList:
    """The endpoints one agent may reach, and the decision for each request."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self.endpoints = tuple(sorted(set(endpoints)))
        self._addresses = {(e.host, e.port) for e in self.endpoints}
        self._http = {(e.host, e.port) for e in self.endpoints if e.scheme == "http"}

    @classmethod
    def from_urls(cls, urls: Iterable[str]) -> AllowList:
        return cls(parse_endpoint(u) for u in urls)

    def connect(self, target: str) -> Decision:
        """The decision for ``CONNECT target`` (``host:port``)."""
        try:
            host, port = split_address(target)
        except ValueError as exc:
            return Decision(False, target.strip()[:200], 0, str(exc))
        if (host, port) in self._addresses:
            return Decision(True, host, port)
        return Decision(False, host, port, "not an allowed endpoint")

    def forward(self, url: str) -> Decision:
        """The decision for a plain-http request to the absolute URI ``url``."""
        try:
            endpoint = parse_endpoint(url)
        except ValueError as exc:
            return Decision(False, url.strip()[:200], 0, str(exc))
        if endpoint.scheme != "http":
            return Decision(False, endpoint.host, endpoint.port, "only http:// is forwarded")
        if (endpoint.host, endpoint.port) in self._http:
            return Decision(True, endpoint.host, endpoint.port)
        return Decision(False, endpoint.host, endpoint.port, "not an allowed endpoint")

    def loopback(self) -> tuple[tuple[str, int], ...]:
        """The distinct ``(host, port)`` of the loopback endpoints (the gate's forwarders)."""
        return tuple(dict.fromkeys((e.host, e.port) for e in self.endpoints if e.loopback))


def gate_port(allowed: AllowList) -> int:
    """The port the gate's proxy listens on: :data:`GATE_PORT`, unless a loopback endpoint's
    forwarder needs it."""
    taken = {port for _, port in allowed.loopback()}
    return next(p for p in range(GATE_PORT, GATE_PORT + len(taken) + 1) if p not in taken)


def proxy_env(port: int) -> dict[str, str]:
    """The variables that send an agent's HTTP clients to the gate: both cases of
    ``HTTP_PROXY``/``HTTPS_PROXY``, and ``NO_PROXY`` empty (a loopback exception would send
    the clients around the proxy, and the Claude and Gemini CLIs honour the proxy once it is)."""
    url = f"http://127.0.0.1:{port}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": ""}


PROXY_VARIABLES = frozenset(
    {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"}
    | {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}
)
"""The host's proxy variables: under model-only they are replaced (:func:`proxy_env`)."""
