"""`claudomator doctor`: can the configured setup run here? The confinement this machine offers
(bwrap, its version, the namespaces it can create), what ``[isolation] launcher`` resolves to,
whether ``[isolation] network`` can be enforced with it, and the agents' readiness (the facts
``claudomator agents`` shows)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from claudomator.cli.common import app, load, make_console, open_service
from claudomator.isolation._choice import Choice, resolve
from claudomator.isolation._host import BwrapHost, network_problem, probe_bwrap
from claudomator.isolation.base import MODEL_ONLY
from claudomator.readiness import summary_line

if TYPE_CHECKING:
    from claudomator.readiness import Readiness

logger = logging.getLogger(__name__)


def _payload(
    choice: Choice, host: BwrapHost, network: tuple[str, str], ready: dict[str, Readiness]
) -> dict[str, Any]:
    return {
        "can_run": not choice.refused and not network[1],
        "isolation": {
            "configured": choice.configured,
            "launcher": choice.launcher or None,
            "confined": choice.confined,
            "summary": choice.summary(),
            "warning": choice.warning,
            "refusal": choice.refusal,
        },
        "network": {
            "configured": network[0],
            "enforced": network[0] == MODEL_ONLY and not network[1] and not choice.refused,
            "problem": network[1],
        },
        "bwrap": {
            "found": host.found,
            "path": host.path or None,
            "version": host.version,
            "usable": host.usable,
            "namespaces": {n.name: {"ok": n.ok, "error": n.error} for n in host.namespaces},
        },
        "agents": {name: r.model_dump(mode="json") for name, r in ready.items()},
    }


def _confinement_table(choice: Choice, host: BwrapHost, network: tuple[str, str]) -> Table:
    table = Table(header_style="bold", title="Confinement", title_justify="left")
    table.add_column("CHECK", no_wrap=True)
    table.add_column("RESULT")
    table.add_row("bwrap", escape(host.path) if host.found else "[red]not found on PATH[/]")
    if host.found:
        table.add_row("bwrap version", escape(host.version or "unknown"))
        for ns in host.namespaces:
            result = "[green]yes[/]" if ns.ok else f"[red]no[/]: {escape(ns.error)}"
            table.add_row(f"{ns.name} namespace", result)
    table.add_row(escape("[isolation] launcher"), escape(choice.configured))
    style = "red" if choice.refused else ("green" if choice.confined else "yellow")
    table.add_row("resolves to", f"[{style}]{escape(choice.summary())}[/]")
    policy, problem = network
    table.add_row(escape("[isolation] network"), escape(policy))
    if problem:
        table.add_row("network policy", f"[red]cannot be enforced[/]: {escape(problem)}")
    elif policy == MODEL_ONLY and not choice.refused:
        table.add_row(
            "network policy",
            "[green]enforced[/]: a network namespace per agent, the model endpoints by proxy",
        )
    return table


def _agents_table(ready: dict[str, Readiness]) -> Table:
    table = Table(header_style="bold", title="Agents", title_justify="left")
    table.add_column("AGENT", no_wrap=True)
    table.add_column("READINESS")
    for r in ready.values():
        table.add_row(escape(r.agent), escape(summary_line(r)))
    return table


@app.command(rich_help_panel="Look")
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check that the configured setup can run here: bubblewrap (found? version? namespaces?),
    what [isolation] launcher resolves to, whether [isolation] network can be enforced, and
    which agents can run.

    Exits 0 when the orchestrator can start with this config, 1 when it cannot
    ([isolation] launcher = "bubblewrap" and bubblewrap cannot run here, or network =
    "model-only" and it cannot be enforced)."""
    settings = load()
    choice = resolve(settings)
    host = probe_bwrap()
    policy = settings.isolation.network
    problem = "" if choice.refused else network_problem(policy, choice.launcher, host)
    service = open_service(settings, quick=True)
    try:
        ready = service.agent_readiness()  # the facts `claudomator agents` and GET /api/agents give
    finally:
        service.close()
    if as_json:
        typer.echo(json.dumps(_payload(choice, host, (policy, problem), ready), indent=2))
    else:
        console = make_console()
        console.print(_confinement_table(choice, host, (policy, problem)))
        console.print(_agents_table(ready))
        for refusal in (choice.refusal, problem):
            if refusal:
                make_console(stderr=True).print(
                    f"[bold red]error:[/] {escape(refusal)}", soft_wrap=True
                )
    raise typer.Exit(1 if choice.refused or problem else 0)
