"""Per-execution git sandboxes: create, autocommit after a build check, collect, deliver, release.

Every execution works in its own git repository, ``<root>/<execution-id>``, and Claudomator's
own git commands never act on the user's working tree. The package is synchronous; the async
pool calls it in the sandbox executor of :class:`claudomator.blocking.Blocking`.

The agent is hostile
    Everything in a sandbox (its ``.git`` included) is written by the agent. Our own git commands
    run with a configuration we control (:mod:`~claudomator.sandbox.git`): no system config, hooks,
    fsmonitor, pager, editor, signing or credential helper, git pinned to ``<tree>/.git`` and
    ``<tree>``, and, before any bookkeeping, the sandbox's ``config`` rebuilt from the pristine
    copy recorded outside the tree at creation (:mod:`~claudomator.sandbox.tree`). A tree whose
    layout would make git act elsewhere (``.git`` a link or gitfile, ``commondir``, links inside
    ``.git``) is never touched by git: it is refused, and discarded on release.

Cheap copies
    A sandbox is a ``git clone --shared --no-checkout`` of the project: the user's object store is
    borrowed through ``objects/info/alternates``, never copied, and only the project's current
    branch is cloned (no tags), so the clone itself is nearly free. The checkout that follows uses
    parallel workers (``checkout.workers``). Nothing is written into the user's repository: no
    worktree is registered there and no ref is written there, except by delivery in branch mode
    (or when a push truly conflicts). The sandbox's own commits and refs live in the sandbox only.

Warm pool
    :meth:`Sandboxes.release` does not throw a finished tree away: its ``.git`` is replaced by a
    fresh clone's, its files are compared by content with the project's HEAD, checked out and
    cleaned (:mod:`~claudomator.sandbox.warm`), and it is moved (one atomic ``os.rename``) into
    ``<root>/.warm/<project-and-branch-key>/``, keeping at most ``warm_per_project`` trees per
    project and branch.
    :meth:`Sandboxes.create` takes one back with another atomic rename, so two racing creators
    never get the same tree, then hard-resets it to the project's current HEAD: git compares the
    index with the new tree and rewrites only the files that differ.

Plain folders
    A project folder that is not a repository is initialised and committed whole, but never
    ``/``, the home or temp directory, the data directory or a folder above them, a folder that
    holds another project or repository, or one bigger than the init limits
    (:mod:`~claudomator.sandbox.project`). A failing git is never taken for "not a repository".

Monorepos
    A project folder committed inside a repository is a package of it: the sandbox is a copy of
    the whole repository (the repository is the project for warm trees and delivery) and
    :attr:`Sandbox.subdir` is where the agent and the build check work. That folder is checked
    without following links whenever it is used (an agent may have replaced it by a link).

Delivery
    :mod:`~claudomator.sandbox.delivery`: pushes to one target are serialised on this machine and
    rebased and retried while rejected; the result is a typed :class:`Delivered`.
"""

from claudomator.sandbox.build import BUILD_TIMEOUT, detect_build_command
from claudomator.sandbox.collection import AUTOCOMMIT_MESSAGE, MAX_DIFF_BYTES, Collected
from claudomator.sandbox.delivery import (
    BRANCH_PREFIX,
    MAX_PUSH_ATTEMPTS,
    Delivered,
    DeliveryKind,
)
from claudomator.sandbox.git import FALLBACK_EMAIL, FALLBACK_NAME, GIT_TIMEOUT
from claudomator.sandbox.project import INITIAL_MESSAGE, MAX_INIT_BYTES, MAX_INIT_FILES
from claudomator.sandbox.sandboxes import Sandboxes
from claudomator.sandbox.tree import Sandbox

__all__ = [
    "AUTOCOMMIT_MESSAGE",
    "BRANCH_PREFIX",
    "BUILD_TIMEOUT",
    "FALLBACK_EMAIL",
    "FALLBACK_NAME",
    "GIT_TIMEOUT",
    "INITIAL_MESSAGE",
    "MAX_DIFF_BYTES",
    "MAX_INIT_BYTES",
    "MAX_INIT_FILES",
    "MAX_PUSH_ATTEMPTS",
    "Collected",
    "Delivered",
    "DeliveryKind",
    "Sandbox",
    "Sandboxes",
    "detect_build_command",
]
