"""A new agent, added as docs/design.md ("Adding an agent") says: this one module, and one
``registry.register(SCRIBE)`` where the registry is built (tests/integration/
test_adding_an_agent.py does that and runs a task with it through the pool).

Scribe is a made-up CLI: ``scribe --prompt TEXT`` works in its current directory, prints what
it did one line at a time and exits 0 when it is done.
"""

from __future__ import annotations

from claudomator.agents.base import Capabilities, Outcome, RunContext
from claudomator.agents.cli import CliRunner, ended_early, instructions_with_context
from claudomator.agents.registry import AgentSpec
from claudomator.models import TaskState
from claudomator.process import tail_file


class ScribeRunner(CliRunner):
    """Runs ``scribe --prompt TEXT`` in the sandbox; its stdout is what it says."""

    name = "scribe"
    label = "Scribe CLI"
    install_hint = "pipx install scribe-cli"
    home_paths = (".scribe",)  # what it keeps under $HOME (the launcher lets it write there)
    capabilities = Capabilities(options=frozenset({"context_files"}))

    async def run(self, ctx: RunContext) -> Outcome:
        said: list[str] = []
        argv = [self.resolve_binary(), "--prompt", instructions_with_context(ctx.task.agent)]
        proc = await self.spawn(ctx, argv, said.append, mark=ctx.execution_id)
        ended = await self.wait(proc, ctx)
        early = ended_early(ended, ctx)  # timed out, or stopped
        if early is not None:
            return Outcome(status=early[0], exit_code=ended.returncode, error_msg=early[1])
        if ended.returncode != 0:
            error = tail_file(ctx.stderr_path) or f"exit code {ended.returncode}"
            return Outcome(status=TaskState.FAILED, exit_code=ended.returncode, error_msg=error)
        return Outcome(status=TaskState.COMPLETED, exit_code=0, text="\n".join(said))


SCRIBE = AgentSpec(
    name="scribe",
    profile="Scribe CLI: writes notes and documentation; changes no code.",
    capabilities=ScribeRunner.capabilities,
    make_runner=lambda settings, launcher: ScribeRunner(settings.agent_binary("scribe"), launcher),
    default_binary="scribe",
    install_hint=ScribeRunner.install_hint,
)
