"""Runner for the Codex CLI (``codex exec --json ... -- PROMPT``; docs/agents.md §3b).

Facts about the CLI (0.169.0) this runner relies on, checked against the real CLI:

* The provider is configured in ``$CODEX_HOME/config.toml`` only. Claudomator writes that file
  before every run, in the task's private home (``<data_dir>/homes/<task>/.codex``), from the
  ``[agents.codex]`` table: ``model``, ``model_provider = "claudomator"`` and
  ``[model_providers.claudomator] base_url, env_key, wire_api = "responses"`` (the only wire
  API 0.169 speaks), with ``approval_policy = "never"`` and the ``sandbox_mode``. So two tasks
  never share it, and ``codex exec resume`` (which takes no ``-s``, ``-C`` nor ``--add-dir``)
  runs with the same settings.
* ``sandbox_mode``: ``workspace-write`` under the plain launcher (Codex's own bwrap-based
  sandbox confines the commands to the sandbox); ``danger-full-access`` under bubblewrap, where
  Codex's sandbox cannot start (``bwrap: setting up uid map: Operation not permitted``: our
  namespace has no capabilities) and where our bwrap already confines the agent.
* With ``CODEX_HOME`` under ``$TMPDIR`` (``/tmp`` when unset) Codex refuses to create its
  sandbox helper, and every ``workspace-write`` command fails while the run exits 0 with no
  ``command_execution`` item. A plain run whose home is there gets a ``TMPDIR`` of its own in
  the private home; and a run whose commands failed in Codex's own sandbox (its session file
  shows ``bwrap: ...`` outputs) fails, whatever the exit code said.
* Codex reads stdin until EOF (``Reading additional input from stdin...``): the process gets
  ``/dev/null``.
* ``turn.completed.usage`` is cumulative over the session: a resumed run's own tokens are that
  minus what the session file recorded before it started. No cost is reported: the pool
  estimates it from the price table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from claudomator.agents.base import Capabilities, Outcome, RunContext
from claudomator.agents.cli import (
    CliRunner,
    context_dirs,
    ended_early,
    home_of,
    instructions_with_context,
)
from claudomator.agents.codex_session import (
    SandboxCheck,
    find_rollout,
    sandbox_failures,
    session_model,
    session_usage,
    size_of,
)
from claudomator.agents.codex_stream import BudgetGuard, CodexStream, names_quota
from claudomator.config import AgentSettings, Settings
from claudomator.isolation.base import Access, Launcher
from claudomator.isolation.bubblewrap import HOME as CONFINED_HOME
from claudomator.isolation.bubblewrap import copy_file
from claudomator.isolation.policy import origin
from claudomator.models import TaskState
from claudomator.process import Exit, tail_file

logger = logging.getLogger(__name__)

PROVIDER: Final = "claudomator"
"""The ``model_providers`` id of the provider Claudomator writes."""
OPENAI_URL: Final = "https://api.openai.com/v1"
WORKSPACE_WRITE: Final = "workspace-write"
FULL_ACCESS: Final = "danger-full-access"
_KEYS: Final = ("CODEX_API_KEY", "OPENAI_API_KEY")
LOGIN_HINT: Final = (
    "set OPENAI_API_KEY (or the variable [agents.codex] api_key_env names) or log in once "
    "with `codex login`"
)
_HELPER_REFUSED: Final = "Refusing to create helper binaries"
_STDERR_NOISE: Final = ("Reading additional input from stdin",)


@dataclass(frozen=True)
class CodexSettings:
    """What the runner takes from the settings: the ``[agents.codex]`` table and where the
    private homes are."""

    homes_dir: Path
    model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    args: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> CodexSettings:
        table = settings.agents.get("codex") or AgentSettings()
        return cls(
            homes_dir=settings.homes_dir,
            model=table.model,
            base_url=table.base_url,
            api_key_env=table.api_key_env,
            args=table.args,
        )


def _toml(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, for the control characters JSON escapes
    (and DEL, which it does not); anything else goes as UTF-8 (a JSON surrogate pair would not
    be valid TOML)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def config_toml(
    config: CodexSettings, *, sandbox_mode: str, task_id: str, writable: tuple[Path, ...] = ()
) -> str:
    """The ``config.toml`` Claudomator writes into a task's ``CODEX_HOME``. Under
    ``workspace-write`` the commands may also write ``writable`` (the execution's log
    directory: the question and summary files) and use the network, as under the other
    agents (Codex's sandbox blocks it by default)."""
    lines = [
        f"# Written by Claudomator for task {task_id} before each run: edit [agents.codex] in",
        "# Claudomator's config instead.",
        'approval_policy = "never"',
        f"sandbox_mode = {_toml(sandbox_mode)}",
    ]
    if config.model:
        lines.append(f"model = {_toml(config.model)}")
    custom = bool(config.base_url or config.api_key_env)
    if custom:
        lines.append(f"model_provider = {_toml(PROVIDER)}")
    lines += ["", "[analytics]", "enabled = false", "", "[feedback]", "enabled = false"]
    if sandbox_mode == WORKSPACE_WRITE:
        roots = ", ".join(_toml(str(p)) for p in writable)
        lines += ["", "[sandbox_workspace_write]", f"writable_roots = [{roots}]"]
        lines.append("network_access = true")
    if custom:
        url = config.base_url or OPENAI_URL
        lines += [
            "",
            f"[model_providers.{PROVIDER}]",
            f"name = {_toml('Claudomator: ' + origin(url))}",
            f"base_url = {_toml(url)}",
            'wire_api = "responses"',
        ]
        if config.api_key_env:
            lines.append(f"env_key = {_toml(config.api_key_env)}")
    return "\n".join(lines) + "\n"


def build_argv(binary: str, ctx: RunContext, config: CodexSettings) -> list[str]:
    """``codex exec --json`` (or ``codex exec resume --json ... <thread>``) for ``ctx``; the
    prompt last, after ``--``. The default model is in ``config.toml``; a task's own is ``-m``."""
    agent = ctx.task.agent
    model = agent.model
    argv = [binary, "exec"]
    if ctx.resume:
        argv.append("resume")
    argv += ["--json", "--skip-git-repo-check"]
    if not ctx.resume:  # resume takes neither: its cwd is the process's, reads are unconfined
        argv += ["-C", str(ctx.workdir)]
        for directory in context_dirs(agent, ctx.workdir):
            argv += ["--add-dir", directory]
    if model:
        argv += ["-m", model]
    argv += [*config.args, *agent.additional_args, "--"]
    if ctx.resume:
        argv.append(ctx.session_id)
    argv.append(instructions_with_context(agent))
    return argv


def under(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return path == folder or path.is_relative_to(folder)


class CodexRunner(CliRunner):
    """Runs one execution of the Codex CLI and maps its result to an :class:`Outcome`."""

    name = "codex"
    label = "Codex CLI"
    install_hint = "npm install -g @openai/codex"
    home_paths = (".codex",)  # config.toml, auth.json, sessions/, its sqlite state
    home_files = (".codex/auth.json",)  # a `codex login`; config.toml is ours, written per task
    env_patterns = ("CODEX_*", "OPENAI_*")
    capabilities = Capabilities(
        resumes_in_place=False,  # the session lives in CODEX_HOME; resume works from any cwd
        # max_budget_usd: a live estimate stops the run (Codex itself takes no budget)
        options=frozenset({"model", "max_budget_usd", "additional_args", "context_files"}),
    )

    def __init__(self, binary: str, launcher: Launcher, config: CodexSettings) -> None:
        super().__init__(binary, launcher)
        self.config = config

    # -- where things are --------------------------------------------------------------------

    def home(self, ctx: RunContext) -> Path:
        """The task's private home on the host (bubblewrap binds it at /home/agent)."""
        return self.config.homes_dir / ctx.task.id

    def agent_paths(self, env: Mapping[str, str]) -> tuple[Path, ...]:
        """``$CODEX_HOME`` when set (it holds everything), else ``home_paths``."""
        if env.get("CODEX_HOME"):
            return (Path(env["CODEX_HOME"]),)
        return super().agent_paths(env)

    def home_copies(self, env: Mapping[str, str]) -> tuple[tuple[Path, str], ...]:
        """The user's ``auth.json``: from ``$CODEX_HOME`` when set, else ``~/.codex``."""
        folder = Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else home_of(env) / ".codex"
        return ((folder / "auth.json", ".codex/auth.json"),)

    def endpoints(self, env: Mapping[str, str]) -> tuple[str, ...]:
        """The provider's origin: ``base_url``'s, else OpenAI's (and ChatGPT's, for a
        ``codex login`` with a ChatGPT account)."""
        if self.config.base_url:
            return (origin(self.config.base_url),)
        return ("https://api.openai.com", "https://chatgpt.com", "https://auth.openai.com")

    def access(self, ctx: RunContext) -> Access:
        """As for every CLI, with the variable that holds the key passed too, and no files for
        the launcher to copy: :meth:`prepare` has copied them (``ctx.env`` here is the run's,
        whose ``CODEX_HOME`` may be the confined path)."""
        access = dataclasses.replace(super().access(ctx), home_files=())
        if self.config.api_key_env:
            patterns = (*access.env_patterns, self.config.api_key_env)
            access = dataclasses.replace(access, env_patterns=patterns)
        return access

    def prepare(self, ctx: RunContext) -> tuple[RunContext, Path, str]:
        """Write the task's ``config.toml`` (and copy the user's login once); the context with
        ``CODEX_HOME`` (and, when needed, ``TMPDIR``) set, the home's ``.codex`` on the host and
        the sandbox mode."""
        confined = self.confined(ctx)
        home = self.home(ctx)
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = FULL_ACCESS if confined else WORKSPACE_WRITE
        text = config_toml(
            self.config, sandbox_mode=mode, task_id=ctx.task.id, writable=(ctx.log_dir,)
        )
        (codex_home / "config.toml").write_text(text, encoding="utf-8")
        for source, relative in self.home_copies(ctx.env):
            target = home / relative
            if not target.exists() and not target.is_symlink():
                copy_file(source, target)
        env = dict(ctx.env)
        if confined:
            env["CODEX_HOME"] = str(CONFINED_HOME / ".codex")
        else:
            env["CODEX_HOME"] = str(codex_home)
            temp = Path(env.get("TMPDIR") or "/tmp")  # noqa: S108 - what Codex compares with
            if under(
                codex_home, temp
            ):  # Codex would refuse its sandbox helper: a TMPDIR of its own
                private = home / "tmp"
                private.mkdir(exist_ok=True, mode=0o700)
                env["TMPDIR"] = str(private)
        return dataclasses.replace(ctx, env=env), codex_home, mode

    # -- the run -----------------------------------------------------------------------------

    async def run(self, ctx: RunContext) -> Outcome:
        ctx, codex_home, _mode = self.prepare(ctx)
        before, start = (0, 0), 0
        if ctx.resume:
            earlier = find_rollout(codex_home, ctx.session_id)
            before, start = session_usage(earlier), size_of(earlier)
        stream = CodexStream()
        stream.context_chars = len(instructions_with_context(ctx.task.agent))
        guard = BudgetGuard(stream, ctx, ctx.task.agent.model or self.config.model)
        argv = build_argv(self.resolve_binary(), ctx, self.config)
        proc = await self.spawn(ctx, argv, guard.feed, mark=ctx.execution_id)
        ended = await self.wait(proc, ctx, guard.halt)
        rollout = find_rollout(codex_home, stream.session_id or ctx.session_id)
        # whatever the mode written (``args`` may override it): did Codex's sandbox run them?
        check = sandbox_failures(rollout, start)
        outcome = self._outcome(stream, ended, ctx, before=before, check=check)
        if not outcome.model:
            outcome = dataclasses.replace(outcome, model=session_model(rollout))
        if guard.over_budget is not None and outcome.status == TaskState.CANCELLED:
            outcome = dataclasses.replace(
                outcome, status=TaskState.BUDGET_EXCEEDED, error_msg=guard.message()
            )
        logger.info(
            "codex run for task %s ended %s (exit %s)",
            ctx.task.id,
            outcome.status.value,
            ended.returncode,
            extra={"action": "codex_outcome"},
        )
        return outcome

    def _outcome(
        self,
        stream: CodexStream,
        ended: Exit,
        ctx: RunContext,
        *,
        before: tuple[int, int],
        check: SandboxCheck,
    ) -> Outcome:
        total_in, total_out = stream.tokens
        tokens_in = max(total_in - before[0], 0) if stream.usage is not None else 0
        tokens_out = max(total_out - before[1], 0) if stream.usage is not None else 0
        details: dict[str, object] = {
            "tools": stream.tools,
            "commands": stream.commands_run,
            "retries": stream.retries,
            "warnings": [w[:500] for w in stream.warnings[-5:]],
            "bad_lines": stream.bad_lines,
            "session_tokens": [total_in, total_out],
            "leftover_processes": ended.leftovers,
        }
        status, error_msg, api_status = TaskState.FAILED, "", None
        stderr = tail_file(ctx.stderr_path, 8000)
        early = ended_early(ended, ctx)
        if early is not None:
            status, error_msg = early
        elif ctx.resume and stream.session_id and stream.session_id != ctx.session_id:
            # an id Codex does not parse as a UUID is looked up as a thread *name*: not found,
            # it starts a new thread and exits 0, without the conversation
            error_msg = (
                f"Codex started a new thread {stream.session_id} instead of resuming "
                f"{ctx.session_id!r}; the earlier conversation was not continued"
            )
        elif ended.returncode == 0 and stream.completed and not check.failed:
            status = TaskState.COMPLETED
            if _HELPER_REFUSED in stderr:
                status, error_msg = TaskState.FAILED, self._helper_refused(stderr)
        elif ended.returncode == 0 and stream.completed:
            error_msg = check.message()
        else:
            api_status = stream.api_error_status
            error_msg = self._error_text(stream, stderr, ended.returncode, api_status)
            if names_quota(error_msg):
                details["quota"] = True
        return Outcome(
            status=status,
            exit_code=ended.returncode,
            session_id=stream.session_id or ctx.session_id,
            model=ctx.task.agent.model or self.config.model,
            cost_reported=False,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            error_msg=error_msg,
            text=stream.text,
            api_error_status=api_status,
            details=details,
        )

    @staticmethod
    def _helper_refused(stderr: str) -> str:
        line = next((x for x in stderr.splitlines() if _HELPER_REFUSED in x), _HELPER_REFUSED)
        return (
            "Codex could not set up its sandbox, so the agent's commands did not run "
            f"(the run still exited 0): {line.strip()}"
        )

    @staticmethod
    def _error_text(stream: CodexStream, stderr: str, code: int | None, status: int | None) -> str:
        """Codex's own reason, else the stderr tail, else the exit code."""
        message = stream.error_message.strip()
        if not message:
            lines = [x for x in stderr.splitlines() if not x.startswith(_STDERR_NOISE)]
            message = "\n".join(lines).strip()[-2000:]
        if not message:
            message = "the agent exited without finishing its turn" + (
                f" (exit code {code})" if code is not None else ""
            )
        if status is not None and str(status) not in message:
            message = f"API error {status}: {message}"
        return message


# -- credentials (for readiness) ---------------------------------------------------------------


def credentials(env: Mapping[str, str]) -> tuple[bool | None, str]:
    """Whether Codex will find credentials, and where: a key variable, or a ``codex login``
    (``auth.json``); None when neither (the key may be in the variable ``[agents.codex]
    api_key_env`` names, which this cannot see)."""
    for name in _KEYS:
        if env.get(name):
            return True, name
    folder = Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else home_of(env) / ".codex"
    if (folder / "auth.json").is_file():
        return True, str(folder / "auth.json")
    return None, ""
