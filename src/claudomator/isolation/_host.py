"""What confinement this machine offers: is bwrap on PATH, which version, and can it create the
user, pid and network namespaces the bubblewrap launcher needs (``claudomator doctor``).

Each namespace is tried by really running ``bwrap --unshare-<ns> --ro-bind / / -- true``: the
kernel, a container or an AppArmor policy may forbid unprivileged namespaces even where bwrap is
installed. :func:`network_problem` says whether ``network = "model-only"`` can be enforced.
Not a launcher: the ``_`` keeps it out of
:func:`claudomator.isolation.launcher_names`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

from claudomator.isolation.base import MODEL_ONLY

logger = logging.getLogger(__name__)

NAMESPACES = ("user", "pid", "net")
PROBE_SECONDS = 10.0


@dataclass(frozen=True)
class NamespaceProbe:
    """Whether bwrap could create one namespace here (``error``: its first line when not)."""

    name: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class BwrapHost:
    """bwrap on this machine: ``path`` empty when it is not on PATH."""

    path: str
    version: str = ""
    namespaces: tuple[NamespaceProbe, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.path)

    @property
    def usable(self) -> bool:
        """bwrap is here and made every namespace it was asked for."""
        return self.found and all(n.ok for n in self.namespaces)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _run(argv: list[str]) -> tuple[bool, str]:
    """Run ``argv``: (exited 0, its output's first line or why it did not run)."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=PROBE_SECONDS, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    if done.returncode == 0:
        return True, _first_line(done.stdout)
    return False, _first_line(done.stderr) or f"exit status {done.returncode}"


def probe_bwrap(path: str | None = None) -> BwrapHost:
    """bwrap as found on ``path`` (a PATH value; None: this process's), tried for real."""
    binary = shutil.which("bwrap", path=os.environ.get("PATH") if path is None else path)
    if binary is None:
        return BwrapHost("")
    ok, version = _run([binary, "--version"])
    probes = []
    for name in NAMESPACES:
        made, said = _run([binary, f"--unshare-{name}", "--ro-bind", "/", "/", "--", "true"])
        probes.append(NamespaceProbe(name, made, "" if made else said))
    host = BwrapHost(binary, version if ok else "", tuple(probes))
    logger.debug("bwrap here: %s", host, extra={"action": "isolation"})
    return host


def network_problem(network: str, launcher: str, host: BwrapHost | None = None) -> str:
    """Why ``[isolation] network`` cannot be enforced with ``launcher`` (the launcher it
    resolved to) on this machine; "" when it can. Only ``model-only`` asks anything: the
    bubblewrap launcher, and a bwrap that can make a network namespace (``host``'s probe, else
    one ``bwrap --unshare-net`` tried here)."""
    if network != MODEL_ONLY:
        return ""
    if launcher != "bubblewrap":
        return (
            f'[isolation] network = "model-only" needs the bubblewrap launcher, and the agents '
            f"would run under {launcher or 'no launcher'!r}: set [isolation] launcher = "
            '"bubblewrap" (with bubblewrap installed), or network = "open"'
        )
    if host is None:
        binary = shutil.which("bwrap")
        if binary is None:
            return '[isolation] network = "model-only": bwrap is not on PATH'
        made, said = _run([binary, "--unshare-net", "--ro-bind", "/", "/", "--", "true"])
        probe = NamespaceProbe("net", made, "" if made else said)
    else:
        probe = next((n for n in host.namespaces if n.name == "net"), NamespaceProbe("net", False))
    if not probe.ok:
        return (
            '[isolation] network = "model-only", but bwrap cannot create a network namespace '
            f'here: {probe.error or "not probed"}; use network = "open" on this machine'
        )
    return ""
