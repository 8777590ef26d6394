"""Running git for Claudomator's own bookkeeping, with a configuration we control.

Git reads its configuration from the system file, the user's global file, the repository's own
``config`` (and ``config.worktree``, and whatever they include) and the command line. In a sandbox
the repository's files are written by the agent, so they are hostile input: a planted
``filter.<x>.clean``, ``diff.<x>.textconv``, ``gpg.program``, ``core.fsmonitor``, ``core.pager``,
``core.sshCommand`` or hook would run *our* git commands' programs after the agent exited.

What this module guarantees for every command it runs:

* the system configuration and system attributes are not read (``GIT_CONFIG_NOSYSTEM``,
  ``GIT_ATTR_NOSYSTEM``); the user's global configuration (``GIT_CONFIG_GLOBAL`` or
  ``~/.gitconfig``) is read as usual: it is the user's, and holds their identity;
* the command line (which wins over every file) turns off hooks, fsmonitor, pagers, editors,
  signing, credential helpers, the ``ext::`` transport and submodule recursion;
* replace refs and grafts are ignored, so the commits we list and push are the real ones;
* for a sandbox (:func:`tree_git`), git is pointed at ``<tree>/.git`` and ``<tree>`` explicitly
  (no discovery, so a missing or moved ``.git`` can never make git find the user's repository,
  and ``core.worktree`` is overridden).

Pattern keys (``filter.<x>.*``, ``diff.<x>.*``, ``include.path``, ``remote.<x>.receivepack``)
cannot be unset from the command line; the sandbox's ``config`` file is therefore rebuilt from
the pristine copy taken at creation before any bookkeeping (see :mod:`claudomator.sandbox.tree`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from claudomator import process
from claudomator.errors import SandboxError

GIT_TIMEOUT = 600.0  # seconds for one git command
FALLBACK_NAME = "Claudomator"
FALLBACK_EMAIL = "claudomator@localhost"
COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a full commit id: SHA-1 or SHA-256

# variables of the caller's environment that would point git at another repository or config
_DROPPED_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_SYSTEM",
    "GIT_EXTERNAL_DIFF",
)


def clean_env() -> dict[str, str]:
    """The process environment without variables that would point git elsewhere."""
    return {k: v for k, v in os.environ.items() if k not in _DROPPED_VARS}


def git_env() -> dict[str, str]:
    """The environment of every bookkeeping git command."""
    return {
        **clean_env(),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_GRAFT_FILE": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "GIT_EDITOR": "true",
        "GIT_SEQUENCE_EDITOR": "true",
        "LC_ALL": "C",  # parseable messages
    }


def overrides() -> list[str]:
    """``-c`` settings that win over every configuration file."""
    workers = max(1, min(os.cpu_count() or 1, 8))
    settings = {
        "core.hooksPath": os.devnull,
        "core.fsmonitor": "false",
        "core.untrackedCache": "false",
        "core.splitIndex": "false",
        "core.sparseCheckout": "false",
        "core.pager": "cat",
        "core.editor": "true",
        "core.askPass": "",
        "sequence.editor": "true",
        "commit.gpgSign": "false",
        "tag.gpgSign": "false",
        "push.gpgSign": "false",
        "rebase.gpgSign": "false",
        "log.showSignature": "false",
        "credential.helper": "",  # an empty value resets the list of helpers
        "protocol.ext.allow": "never",
        "submodule.recurse": "false",
        "fetch.recurseSubmodules": "false",
        "push.recurseSubmodules": "no",
        "rebase.autoStash": "false",
        "gc.auto": "0",
        "maintenance.auto": "false",
        "advice.detachedHead": "false",
        "checkout.workers": str(workers),
    }
    return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]


def tree_location(tree: Path) -> list[str]:
    """Global options that pin git to the sandbox ``tree`` and its own ``.git``."""
    return [f"--git-dir={tree / '.git'}", f"--work-tree={tree}"]


def argv(*args: str, tree: Path | None = None) -> list[str]:
    """The full command line of ``git args`` (pinned to ``tree`` if given)."""
    return ["git", *(tree_location(tree) if tree else []), *overrides(), *args]


def run(
    cwd: Path,
    *args: str,
    tree: Path | None = None,
    sandbox: Path | None = None,
    check: bool = True,
    input_text: str | None = None,
    timeout: float = GIT_TIMEOUT,
) -> process.CommandResult:
    """Run ``git args`` in ``cwd``; on failure raise :class:`SandboxError` naming command and tail.

    ``tree`` pins git to that sandbox; ``sandbox`` is the sandbox an error message points at.
    """
    result = process.run(
        argv(*args, tree=tree), cwd=cwd, env=git_env(), timeout=timeout, input_text=input_text
    )
    if check and not result.ok:
        where = sandbox or tree
        raise SandboxError(
            f"`git {' '.join(args)}` failed in {cwd} (exit {result.returncode}):\n{result.tail()}",
            str(where) if where else None,
        )
    return result


def tree_git(
    tree: Path, *args: str, check: bool = True, input_text: str | None = None
) -> process.CommandResult:
    """Run ``git args`` in the sandbox ``tree`` (pinned to it); errors name the sandbox."""
    return run(tree, *args, tree=tree, check=check, input_text=input_text)


def identity(cwd: Path, *, tree: Path | None = None) -> list[str]:
    """``-c user.name/-c user.email`` fallbacks for whatever identity git has no config for.

    The environment (``GIT_AUTHOR_*``, ``GIT_COMMITTER_*``) still wins over these, as always in git.
    """
    pattern = r"^user\.(name|email)$"
    found = run(cwd, "config", "--get-regexp", pattern, tree=tree, check=False).stdout
    keys = {line.split(" ", 1)[0] for line in found.splitlines()}
    args: list[str] = []
    if "user.name" not in keys:
        args += ["-c", f"user.name={FALLBACK_NAME}"]
    if "user.email" not in keys:
        args += ["-c", f"user.email={FALLBACK_EMAIL}"]
    return args
