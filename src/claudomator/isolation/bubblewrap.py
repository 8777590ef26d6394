"""The ``bubblewrap`` launcher: every agent CLI runs under ``bwrap``, confined to its sandbox.

The agent gets a mount namespace of its own (docs/agents.md §15): the host's ``/usr``, ``/bin``,
``/lib*``, ``/sbin`` and ``/etc`` read-only (``/etc``'s password hashes hidden), a minimal
``/dev``, a ``/proc`` of its own pid namespace, a private ``/tmp``, the agent CLI's install
read-only, its sandbox (and the project's git object store, read-only, which the sandbox borrows),
its log directory, the context directories of :class:`~claudomator.isolation.base.Access`, and a
private ``HOME`` (``<data_dir>/homes/<task>``) that holds only what the CLI needs: its settings
and credentials, copied from the user's real home before the first run, and its session store,
which stays there between the runs of one task so ``--resume`` works. Nothing else: not the
user's home, no other project, not the data dir or the database.

It also gets new pid, ipc and uts namespaces, ``--die-with-parent``, ``--new-session`` and no
capabilities, and an environment built from an allow-list (:data:`BASE_ENV` plus the runner's
``env_patterns``; of ``CLAUDOMATOR_*`` only the agent protocol's). Under ``network = "open"``
the network stays shared; under ``"model-only"`` the agent gets a network namespace of its own
(``--unshare-net``: loopback only) whose only way out is the outer proxy
(:mod:`~claudomator.isolation._netproxy`, which starts bwrap and lets through
``Access.endpoints``) reached through the inner gate (:mod:`~claudomator.isolation._netgate`,
which starts the agent), see :func:`model_only`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import claudomator
from claudomator.errors import ConfinementError
from claudomator.isolation import _netgate, _netproxy
from claudomator.isolation._network import PROXY_VARIABLES, AllowList, gate_port, proxy_env
from claudomator.isolation.base import MODEL_ONLY, OPEN, Access, Launcher

if TYPE_CHECKING:
    from claudomator.config import Settings  # the config imports this package

logger = logging.getLogger(__name__)

BWRAP = "bwrap"
HOME = Path("/home/agent")  # where the private home is, inside the namespace
TMP = "/tmp"  # noqa: S108 - a tmpfs of the agent's own namespace
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
HIDDEN = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-")
BASE_ENV = (
    # the agent protocol's (claudomator.protocol.agent_env) and the execution's mark; never the
    # orchestrator's own (CLAUDOMATOR_CONFIG, CLAUDOMATOR_DATA_DIR)
    "CLAUDOMATOR_API_URL",
    "CLAUDOMATOR_API_TOKEN",
    "CLAUDOMATOR_TASK_ID",
    "CLAUDOMATOR_PROJECT_DIR",
    "CLAUDOMATOR_QUESTION_FILE",
    "CLAUDOMATOR_SUMMARY_FILE",
    "CLAUDOMATOR_EXECUTION_ID",
    "CLAUDOMATOR_PREVIOUS_LOG_DIR",
    "PATH",
    "PWD",  # the working directory (AgentProcess sets it), the same path inside
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "COLORTERM",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
"""The variables every confined agent gets (shell patterns); its runner adds its own."""

HOME_VARIABLES = ("CLAUDE_CONFIG_DIR", "GEMINI_CLI_HOME")
"""Variables naming a CLI's config folder on the host: the private home takes their place."""

_PROBE = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent")
MARK = "CLAUDOMATOR_EXECUTION_ID"  # claudomator.process.marks.MARK_VARIABLE
NET_DIR = "/run/claudomator-net"
"""Where the outer proxy's socket directory is inside the namespace (a short unix path)."""


def unavailable(settings: Settings) -> str:
    """Why bwrap cannot confine agents here ("" when it can): not on PATH, or it cannot create
    the namespaces (it runs ``bwrap ... true`` once to see)."""
    found = shutil.which(BWRAP)
    if found is None:
        return f"{BWRAP} is not on PATH (install the bubblewrap package)"
    argv = [found, *_PROBE, "--ro-bind", "/", "/", "--proc", "/proc", "--", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{found} cannot run: {exc}"
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return f"{found} cannot create namespaces here: {detail[0]}"
    return ""


def allowed(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def copy_file(source: Path, target: Path) -> bool:
    """Copy the regular file ``source`` to ``target`` (mode 0600) without following a link at
    either end; False when ``source`` is not a regular file."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            return False
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(target, flags, 0o600), "wb") as dst:
            shutil.copyfileobj(src, dst)
    return True


def _under(path: Path, roots: Sequence[str]) -> bool:
    return any(path == Path(r) or path.is_relative_to(r) for r in roots)


def install_dirs(argv0: str, env: Mapping[str, str]) -> list[Path]:
    """The directories the agent CLI's install needs, to bind read-only: for the binary (as
    named and resolved) and its script interpreter, the outermost ``node_modules`` above it, else
    its directory; nothing for what the system directories already hold."""
    found = shutil.which(argv0, path=env.get("PATH")) or argv0
    paths = [Path(os.path.abspath(found)), Path(os.path.realpath(found))]
    paths += _interpreter(Path(os.path.realpath(found)), env)
    dirs: list[Path] = []
    for path in paths:
        if _under(path, SYSTEM):
            continue
        parts = path.parts
        top = parts.index("node_modules") if "node_modules" in parts else -1
        root = Path(*parts[: top + 1]) if top >= 0 else path.parent
        if root not in dirs:
            dirs.append(root)
    return dirs


def _interpreter(script: Path, env: Mapping[str, str]) -> list[Path]:
    """The interpreter of a ``#!`` script (``env NAME`` resolved on PATH), as named and real."""
    try:
        with script.open("rb") as handle:
            first = handle.readline(256)
    except OSError:
        return []
    if not first.startswith(b"#!"):
        return []
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return []
    name = words[0]
    if Path(name).name == "env" and len(words) > 1:
        program = words[-1] if words[1].startswith("-") else words[1]
        name = shutil.which(program, path=env.get("PATH")) or ""
    if not name:
        return []
    return [Path(name), Path(os.path.realpath(name))]


def project_objects(env: Mapping[str, str]) -> Path | None:
    """The git object store of the task's project (``CLAUDOMATOR_PROJECT_DIR``, set by us), which
    a sandbox borrows through its alternates: the ``objects`` of the nearest real ``.git``
    directory at or above it."""
    if not env.get("CLAUDOMATOR_PROJECT_DIR"):
        return None
    here = Path(os.path.abspath(env["CLAUDOMATOR_PROJECT_DIR"]))
    for folder in (here, *here.parents):
        git = folder / ".git"
        if git.is_dir() and not git.is_symlink():
            objects = git / "objects"
            return objects if objects.is_dir() and not objects.is_symlink() else None
    return None


class BubblewrapLauncher:
    """Wraps each agent command in ``bwrap`` (see the module docstring)."""

    name = "bubblewrap"

    def __init__(self, bwrap: str, homes: Path, sandboxes_dir: Path) -> None:
        self.bwrap = bwrap
        self.homes = homes  # Settings.homes_dir: retention removes the ended tasks' homes
        self.sandboxes_dir = sandboxes_dir

    def home_for(self, paths: Access) -> Path:
        """The private home on the host: per task (``home_key``), else in the log directory."""
        if paths.home_key:
            if "/" in paths.home_key or paths.home_key in (".", ".."):
                raise ValueError(f"home key {paths.home_key!r} is not a plain name")
            return self.homes / paths.home_key
        return paths.log_dir / ".home"

    def prepare_home(self, paths: Access) -> Path:
        """Make the private home and copy in the CLI's files it does not have yet."""
        home = self.home_for(paths)
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        for source, relative in paths.home_files:
            target = home / relative
            if not target.exists() and not target.is_symlink():
                copied = copy_file(source, target)
                logger.debug("private home: %s %s", relative, "copied" if copied else "absent")
        return home

    def tree(self, workdir: Path) -> Path:
        """The whole sandbox tree ``workdir`` is in (a monorepo package works in a folder)."""
        if workdir.is_relative_to(self.sandboxes_dir) and workdir != self.sandboxes_dir:
            return self.sandboxes_dir / workdir.relative_to(self.sandboxes_dir).parts[0]
        return workdir

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        home = self.prepare_home(paths)
        opts = [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]
        for system in SYSTEM:
            if os.path.islink(system):
                opts += ["--symlink", os.readlink(system), system]
            elif os.path.isdir(system):
                opts += ["--ro-bind", system, system]
        for secret in HIDDEN:
            if os.path.lexists(secret):
                opts += ["--ro-bind", "/dev/null", secret]
        opts += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", TMP]
        resolver = Path(os.path.realpath("/etc/resolv.conf"))
        if resolver.is_file() and not _under(resolver, SYSTEM):  # systemd-resolved: in /run
            opts += ["--ro-bind", str(resolver), str(resolver)]
        for folder in install_dirs(argv[0], env):
            opts += ["--ro-bind", str(folder), str(folder)]
        objects = project_objects(env)
        if objects is not None:
            opts += ["--ro-bind", str(objects), str(objects)]
        for folder in paths.read_only:
            opts += ["--ro-bind-try", str(folder), str(folder)]
        workdir = paths.workdir.absolute()
        tree = self.tree(workdir) if paths.workdir_writable else workdir
        opts += ["--bind" if paths.workdir_writable else "--ro-bind", str(tree), str(tree)]
        opts += ["--bind", str(paths.log_dir), str(paths.log_dir)]
        opts += ["--bind", str(home), str(HOME), "--chdir", str(cwd.absolute())]
        patterns = (*BASE_ENV, *paths.env_patterns)
        clean = {k: v for k, v in env.items() if allowed(k, patterns) and k not in HOME_VARIABLES}
        clean.update({"HOME": str(HOME), "TMPDIR": TMP, "USER": "agent"})
        if paths.network == OPEN:
            return [self.bwrap, *opts, "--", *argv], clean
        if paths.network != MODEL_ONLY:
            raise ConfinementError(f"network = {paths.network!r} is not a network policy")
        outer, extra, gate, proxy_vars = model_only(paths)
        clean = {k: v for k, v in clean.items() if k not in PROXY_VARIABLES} | proxy_vars
        if MARK in clean:  # the agent's mark, not the proxy's: it outlives bwrap by a moment
            extra += ["--setenv", MARK, clean.pop(MARK)]
        return [*outer, self.bwrap, *opts, *extra, "--", *gate, *argv], clean


def model_only(paths: Access) -> tuple[list[str], list[str], list[str], dict[str, str]]:
    """What ``network = "model-only"`` adds to the bwrap command for ``paths``: the outer
    proxy's argv before bwrap, bwrap's extra options (a network namespace of its own, the
    Python interpreter and the gate's file read-only, the proxy's socket directory at
    :data:`NET_DIR`), the gate's argv before the agent's, and the proxy variables.
    :class:`~claudomator.errors.ConfinementError` when an endpoint is not a URL."""
    try:
        allow = AllowList.from_urls(paths.endpoints)
    except ValueError as exc:
        raise ConfinementError(f"network = model-only: allowed endpoint {exc}") from exc
    python = os.path.realpath(sys.executable)
    root = str(Path(claudomator.__file__).resolve().parent.parent)
    socket_dir = paths.log_dir / f".net-{uuid.uuid4().hex[:12]}"
    outer = _netproxy.command(python, root, socket_dir, [str(e) for e in allow.endpoints])
    extra = ["--unshare-net"]
    prefix = Path(sys.base_prefix).resolve()  # the interpreter and its standard library
    folders = [prefix] if Path(python).is_relative_to(prefix) else [prefix, Path(python).parent]
    for folder in folders:
        if not _under(folder, SYSTEM):
            extra += ["--ro-bind", str(folder), str(folder)]
    gate_file = str(Path(_netgate.__file__).resolve())
    extra += ["--ro-bind", gate_file, gate_file, "--bind", str(socket_dir), NET_DIR]
    port = gate_port(allow)
    gate = [python, "-I", "-S", gate_file, "--socket", f"{NET_DIR}/{_netproxy.SOCKET_NAME}"]
    gate += ["--proxy", str(port)]
    for host, at in allow.loopback():
        gate += ["--forward", f"[{host}]:{at}" if ":" in host else f"{host}:{at}"]
    logger.debug("model-only: %s", ", ".join(map(str, allow.endpoints)) or "no endpoint")
    return outer, extra, [*gate, "--"], proxy_env(port)


def make_launcher(settings: Settings) -> Launcher:
    found = shutil.which(BWRAP) or BWRAP
    return BubblewrapLauncher(found, settings.homes_dir, settings.sandboxes_dir)
