"""How one execution's agent is confined: :func:`confinement_for` settles the three layers, the
operator's ``[isolation]`` table, the task's project and the task itself, into the
:class:`~claudomator.isolation.base.Confinement` the runner adds to the agent's
:class:`~claudomator.isolation.base.Access` and the build check uses too.

Decisions are values: nothing here looks at the machine. A project may set its own launcher and
network and add read-only paths and endpoints; a task may set a launcher and a network, always
to tighten (plain -> auto -> bubblewrap, open -> model-only), to loosen only when
``[isolation] allow_task_override = true`` (:func:`override_problems`, checked at submit).
The checks of the values themselves (:func:`check_launcher`, :func:`check_network`,
:func:`check_endpoints`, :func:`check_paths`) are shared by the models that hold them.

Not a launcher: the module name is in :data:`claudomator.isolation._NOT_LAUNCHERS`.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from claudomator.isolation.base import MODEL_ONLY, NETWORKS, OPEN, Confinement

if TYPE_CHECKING:
    from claudomator.config import Settings  # the config imports this package

logger = logging.getLogger(__name__)

AUTO = "auto"  # as claudomator.isolation._choice names them
PLAIN = "plain"
INHERIT = ""  # a project's or task's field left empty: the layer below decides


class ProjectLayer(Protocol):
    """What a project says about its agents' confinement (:class:`claudomator.models.Project`)."""

    @property
    def name(self) -> str: ...
    @property
    def dir(self) -> str: ...
    @property
    def launcher(self) -> str: ...
    @property
    def network(self) -> str: ...
    @property
    def read_only_paths(self) -> tuple[str, ...]: ...
    @property
    def allowed_endpoints(self) -> tuple[str, ...]: ...


class TaskLayer(Protocol):
    """What a task says (:class:`claudomator.models.TaskIsolation`)."""

    @property
    def launcher(self) -> str: ...
    @property
    def network(self) -> str: ...


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` ("" when it has no host)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


# -- the values --------------------------------------------------------------------------------


def launcher_choices() -> tuple[str, ...]:
    """What a launcher field accepts: every launcher module, and ``auto``."""
    from claudomator.isolation import launcher_names  # the package imports this module

    return tuple(dict.fromkeys((*launcher_names(), AUTO)))


def check_launcher(value: str, *, inherit: bool = False) -> str:
    """``value`` if it names a launcher (or, with ``inherit``, is empty); else ValueError."""
    if inherit and value == INHERIT:
        return value
    known = launcher_choices()
    if value not in known:
        empty = ' or "" (inherit)' if inherit else ""
        raise ValueError(f"{value!r} is not a launcher; use one of: {', '.join(known)}{empty}")
    return value


def check_network(value: str, *, inherit: bool = False) -> str:
    """``value`` if it is a network policy (or, with ``inherit``, empty); else ValueError."""
    if inherit and value == INHERIT:
        return value
    if value not in NETWORKS:
        empty = ' or "" (inherit)' if inherit else ""
        raise ValueError(
            f"{value!r} is not a network policy; use one of: {', '.join(NETWORKS)}{empty}"
        )
    return value


_ENV_PATTERN = re.compile(r"[A-Za-z_*?\[][A-Za-z0-9_*?\[\]!-]*")


def check_env_patterns(value: Sequence[str]) -> tuple[str, ...]:
    """Shell patterns of variable names (``NPM_TOKEN``, ``GO*``); not one that passes every
    variable (``*``): the allow-list is what keeps the orchestrator's secrets out."""
    for pattern in value:
        if not _ENV_PATTERN.fullmatch(pattern):
            raise ValueError(f"{pattern!r} is not a variable name or shell pattern of one")
        if fnmatch.fnmatchcase("CLAUDOMATOR_CONFIG", pattern) or fnmatch.fnmatchcase(
            "SSH_AUTH_SOCK", pattern
        ):
            raise ValueError(
                f"{pattern!r} would pass the orchestrator's own variables (CLAUDOMATOR_CONFIG, "
                "SSH_AUTH_SOCK); name the variables the agents need"
            )
    return tuple(value)


def check_endpoints(value: Sequence[str]) -> tuple[str, ...]:
    """The endpoints (``scheme://host[:port]``, a trailing ``/`` dropped); else ValueError."""
    for url in value:
        if not origin(url) or origin(url) != url.rstrip("/"):
            raise ValueError(
                f"{url!r} is not an endpoint; write scheme://host[:port] "
                "(e.g. https://registry.npmjs.org)"
            )
    return tuple(url.rstrip("/") for url in value)


def check_paths(value: Sequence[str]) -> tuple[str, ...]:
    """The paths if every one is absolute; else ValueError."""
    for path in value:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} is not an absolute path")
    return tuple(value)


# -- strictness ----------------------------------------------------------------------------------


def launcher_rank(name: str) -> int:
    """How tightly a launcher confines: ``plain`` 0, ``auto`` 1 (confined where it can be),
    any other (``bubblewrap``) 2."""
    return {PLAIN: 0, AUTO: 1}.get(name, 2)


def network_rank(name: str) -> int:
    """``open`` 0, ``model-only`` 1."""
    return 1 if name == MODEL_ONLY else 0


# -- the layers ----------------------------------------------------------------------------------


def governing_project(projects: Iterable[ProjectLayer], project_dir: str) -> ProjectLayer | None:
    """The project whose settings apply to a task in ``project_dir``: the one registered with
    that folder, else the nearest one above it (a monorepo package of a registered repository);
    None for a scratch task or an unregistered folder."""
    if not project_dir:
        return None
    wanted = Path(project_dir).expanduser().resolve()
    best: tuple[int, ProjectLayer] | None = None
    for project in projects:
        if not project.dir:
            continue
        folder = Path(project.dir).expanduser().resolve()
        if wanted == folder or wanted.is_relative_to(folder):
            depth = len(folder.parts)
            if best is None or depth > best[0]:
                best = (depth, project)
    return best[1] if best else None


def project_launcher(settings: Settings, project: ProjectLayer | None) -> tuple[str, str]:
    """The launcher the project's tasks get before their own say, and who set it (for
    messages): ``(name, 'project "webapp" launcher')`` or the operator's."""
    if project is not None and project.launcher:
        return project.launcher, f'project "{project.name}" launcher'
    return settings.isolation.launcher, "[isolation] launcher"


def project_network(settings: Settings, project: ProjectLayer | None) -> tuple[str, str]:
    """As :func:`project_launcher`, for the network policy."""
    if project is not None and project.network:
        return project.network, f'project "{project.name}" network'
    return settings.isolation.network, "[isolation] network"


def launcher_origin(
    settings: Settings, project: ProjectLayer | None = None, task: TaskLayer | None = None
) -> str:
    """Who chose the launcher :func:`confinement_for` settles on (for messages)."""
    if task is not None and task.launcher:
        return "the task's isolation.launcher"
    return project_launcher(settings, project)[1]


def confinement_for(
    settings: Settings, project: ProjectLayer | None = None, task: TaskLayer | None = None
) -> Confinement:
    """The confinement of an agent of ``task`` in ``project``: the launcher and network the
    task sets, else its project's, else the operator's; the operator's read-only paths and the
    project's; under ``model-only`` the operator's and the project's extra endpoints and the
    Claudomator API (so an agent can still ask questions and file subtasks).

    ``launcher`` is ``""`` while it is the orchestrator's own (``[isolation] launcher``), else
    the name to start the agent through (``auto`` left to the launcher that settles it here).
    The override rules are not checked here but at submit (:func:`override_problems`).
    """
    isolation = settings.isolation
    launcher, _ = project_launcher(settings, project)
    network, _ = project_network(settings, project)
    if task is not None:
        launcher = task.launcher or launcher
        network = task.network or network
    read_only = tuple(isolation.read_only_paths)
    extra: tuple[str, ...] = tuple(isolation.allowed_endpoints)
    if project is not None:
        read_only = (*read_only, *project.read_only_paths)
        extra = (*extra, *project.allowed_endpoints)
    endpoints: tuple[str, ...] = ()
    if network == MODEL_ONLY:
        api = origin(settings.api_url)
        endpoints = tuple(dict.fromkeys((*extra, *([api] if api else []))))
    return Confinement(
        launcher="" if launcher == isolation.launcher else launcher,
        network=network,
        read_only=tuple(dict.fromkeys(Path(p) for p in read_only)),
        endpoints=endpoints,
        env_patterns=tuple(isolation.pass_env),
    )


def override_problems(
    settings: Settings, project: ProjectLayer | None, task: TaskLayer
) -> list[tuple[str, str]]:
    """``(field, message)`` for each of the task's isolation fields that loosens what its
    project (else the operator) gives, unless ``[isolation] allow_task_override`` lets it;
    tightening is always allowed."""
    if settings.isolation.allow_task_override:
        return []
    problems: list[tuple[str, str]] = []
    hint = "only [isolation] allow_task_override = true lets a task loosen its confinement"
    base, who = project_launcher(settings, project)
    if task.launcher and launcher_rank(task.launcher) < launcher_rank(base):
        problems.append(
            (
                "isolation.launcher",
                f'"{task.launcher}" is looser than {who} = "{base}"; {hint}',
            )
        )
    net, who = project_network(settings, project)
    if task.network and network_rank(task.network) < network_rank(net):
        problems.append(
            ("isolation.network", f'"{task.network}" is looser than {who} = "{net}"; {hint}')
        )
    return problems


def project_loosening(settings: Settings, project: ProjectLayer) -> list[tuple[str, str]]:
    """``(field, message)`` for each confinement field of a project saved through an API with
    no ``api_token`` that is looser than the operator's ``[isolation]``: any local process (a
    confined agent too) can use such an API, so only ``config.toml`` or a token-holder may
    loosen a project's confinement."""
    isolation = settings.isolation
    hint = "set api_token to change it through the API, or define the project in config.toml"
    problems: list[tuple[str, str]] = []
    if project.launcher and launcher_rank(project.launcher) < launcher_rank(isolation.launcher):
        problems.append(
            (
                "launcher",
                f'"{project.launcher}" is looser than [isolation] launcher = '
                f'"{isolation.launcher}"; {hint}',
            )
        )
    if project.network and network_rank(project.network) < network_rank(isolation.network):
        problems.append(
            (
                "network",
                f'"{project.network}" is looser than [isolation] network = '
                f'"{isolation.network}"; {hint}',
            )
        )
    if project.read_only_paths:  # more of the host to read: ~/.ssh is a path too
        problems.append(("read_only_paths", f"extra read-only paths loosen confinement; {hint}"))
    if project.allowed_endpoints:
        problems.append(("allowed_endpoints", f"extra endpoints loosen model-only; {hint}"))
    return problems


def describe(launcher: str, confinement: Confinement, note: str = "") -> str:
    """What an execution records of its confinement: ``"bubblewrap, network model-only"``,
    with the extra read-only paths counted and ``note`` (an ``auto`` fallback) in brackets."""
    parts = [launcher, f"network {confinement.network or OPEN}"]
    if confinement.read_only:
        count = len(confinement.read_only)
        parts.append(f"{count} extra read-only path{'s' if count != 1 else ''}")
    text = ", ".join(parts)
    return f"{text} ({note})" if note else text


def for_subtask(
    settings: Settings,
    parent_project: ProjectLayer | None,
    parent: TaskLayer,
    project: ProjectLayer | None,
    task: TaskLayer,
) -> tuple[str, str, list[tuple[str, str]]]:
    """The launcher and network of a subtask an agent creates, never looser than its parent's
    (whatever ``[isolation] allow_task_override`` says: an agent never loosens its own
    confinement): a field it leaves empty gets its parent's value when its own project would
    give less; a field it sets looser is a ``(field, message)`` problem."""
    fields: list[str] = []
    problems: list[tuple[str, str]] = []
    for name, rank, below in (
        ("launcher", launcher_rank, project_launcher),
        ("network", network_rank, project_network),
    ):
        above: str = getattr(parent, name) or below(settings, parent_project)[0]
        own: str = getattr(task, name)
        mine = own or below(settings, project)[0]
        if rank(mine) >= rank(above):
            fields.append(own)
        elif own:
            problems.append(
                (
                    f"isolation.{name}",
                    f'"{own}" is looser than its parent task\'s {name} "{above}": a subtask '
                    "is confined at least as its parent",
                )
            )
            fields.append(own)
        else:
            fields.append(above)
    return fields[0], fields[1], problems
