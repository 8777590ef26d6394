"""The commented default config file that ``claudomator init`` writes."""

from __future__ import annotations

import logging
from pathlib import Path

from claudomator.errors import ConfigError

logger = logging.getLogger(__name__)


DEFAULT_CONFIG = """\
# Claudomator configuration. Every key is optional; the values shown are the defaults.
# The file is read from $CLAUDOMATOR_CONFIG, else <data_dir>/config.toml.

# Where the database, logs and sandboxes live. $CLAUDOMATOR_DATA_DIR overrides it.
# data_dir = "{data_dir}"

# The agent command-line tools: see the [agents.<name>] tables below. These older flat keys
# still work, but are deprecated (a warning says so); a table's binary_path wins over them.
# claude_binary_path = "claude"
# gemini_binary_path = "gemini"

# How many agents run at once, in total and per agent type.
# max_concurrent = 3
# [agent_limits]
# claude = 2

# Timeout for a task that sets none: seconds, or a duration such as "30m" or "1h30m".
# default_timeout = "1h"

# Seconds a stopped agent gets between SIGTERM and SIGKILL.
# kill_grace_seconds = 10

# Tasks left running by an orchestrator that died: "requeue" them or "fail" them.
# on_restart = "requeue"

# Rate limits: wait the provider's Retry-After, else 30 s doubling per strike up to 900 s.
# An exhausted quota without a stated reset makes the agent unavailable for quota_wait_seconds.
# rate_limit_backoff_seconds = 30
# rate_limit_backoff_max_seconds = 900
# quota_wait_seconds = 3600

# Prices (USD per million tokens) to estimate the cost of agents that report none (Gemini).
# Entries here are added to the built-in ones for gemini-2.5-pro/-flash/-flash-lite. A model
# without a price has an unknown cost, and a max_budget_usd on its tasks cannot be checked.
# [prices."gemini-2.5-pro"]
# input_per_million = 1.25
# output_per_million = 10.0

# Address of `claudomator serve`; agents get http://<server_addr> as CLAUDOMATOR_API_URL.
# server_addr = "127.0.0.1:8484"

# If set, every project directory (task files, the API, [[projects]]) must lie under it, and
# tasks without a project_dir get their scratch git repository there. Unset: projects may be
# anywhere and scratch repositories go to <data_dir>/workspace.
# workspace_root = "/home/me/src"

# Outgoing notifications and API protection.
# webhook_url = ""
# webhook_secret = ""
# api_token = ""
# serve refuses requests whose Host header is not the address it listens on (plus 127.0.0.1,
# localhost and [::1] when that is loopback or every interface) or one of these names. Listening
# on any other address needs api_token.
# allowed_hosts = ["claudomator.example.com"]
# Subtasks an agent creates with its token stay in its task's project unless this is true.
# subtasks_any_project = false

# Web Push to browsers that pressed "notify me" in the web UI. The VAPID key is generated into
# <data_dir>/vapid_private.pem unless set here (PEM text or a path to a PEM file).
# vapid_private_key = "/etc/claudomator/vapid.pem"
# vapid_subject = "mailto:you@example.com"

# The database, as a URL: only SQLite today ("sqlite:////abs/path/claudomator.db").
# Unset: <data_dir>/claudomator.db.
# database_url = ""

# Named projects. build_command is an argument list run in the sandbox before the
# autocommit (default: `make build` with a Makefile, `./gradlew build`, `go build ./...`).
# delivery: "auto" (push to a `local` remote or local-path `origin`, else a branch),
# "push", or "branch" (kept as claudomator/<short-id>-<name-slug> for review).
# [[projects]]
# name = "webapp"
# dir = "/home/me/src/webapp"
# build_command = ["make", "check"]
# delivery = "auto"
# review = false   # true: work kept as a branch waits READY for `accept` / `reject ID "feedback"`
# launcher = ""                # "plain" | "bubblewrap" | "auto"; "": [isolation] launcher
# network = ""                 # "open" | "model-only"; "": [isolation] network
# read_only_paths = ["/srv/cache/npm"]   # added to [isolation] read_only_paths
# allowed_endpoints = ["https://registry.npmjs.org"]   # added to the operator's (model-only)

# What a running orchestrator (and `claudomator gc`) removes once a task has ended
# (COMPLETED, FAILED, TIMED_OUT, BUDGET_EXCEEDED, CANCELLED) or was deleted, that many days
# after; 0 keeps it forever. Nothing of a PENDING, QUEUED, RUNNING, BLOCKED or READY task is
# ever removed, nor a branch that is checked out. Task rows are kept.
# [retention]
# logs_days = 30               # <data_dir>/logs/<execution-id>/, deleted tasks' scratch repos
# sandboxes_days = 7           # kept sandboxes, unused warm trees, agents' private homes
# branches_days = 14           # claudomator/* branches whose commits are on another branch
# unmerged_branches_days = 0   # claudomator/* branches with commits nowhere else (work lost)
# every = "1h"                 # how often serve/run apply it; 0: only `claudomator gc`

# How agent processes are started: "auto" (the default) is bubblewrap when it can run here,
# else plain with a warning; "bubblewrap" confines each agent with bwrap (apt-get install
# bubblewrap) and refuses to start without it; "plain" runs them as they are, with your own
# rights (the sandbox is a private git copy, but nothing stops an agent reading or writing
# elsewhere).
# `claudomator doctor` shows what this machine supports.
# network: "open" (the agents use this machine's network) or "model-only" (bubblewrap only:
# each agent gets a network namespace of its own whose only way out is a proxy that lets
# through its model's API, the Claudomator API and allowed_endpoints; every refusal is a line
# in the execution's stderr.log; serve and run refuse to start if it cannot be enforced).
# read_only_paths: host paths every confined agent may read (a shared package cache).
# [isolation]
# launcher = "auto"
# network = "open"
# allowed_endpoints = []       # more scheme://host[:port], e.g. ["https://registry.npmjs.org"]
# read_only_paths = []         # absolute paths, e.g. ["/var/cache/npm"]
# allow_task_override = false  # true: a task's `isolation:` may loosen its project's
#                              # (a task may always tighten: plain -> auto -> bubblewrap)
# pass_env = []                # more variables confined agents and builds get, e.g. ["NPM_TOKEN"]

# One table per agent CLI: the binary to run (looked up on PATH unless absolute), and for
# CLIs that take a provider: model (the default), base_url (the provider endpoint),
# api_key_env (the NAME of the variable holding the key, never the key) and args (extra
# arguments). Claudomator writes each CLI's own provider config per task from these.
# [agents.claude]
# binary_path = "claude"
# [agents.gemini]
# binary_path = "gemini"
# [agents.codex]
# binary = "codex"
# model = "gpt-5-codex"
# base_url = "https://api.openai.com/v1"
# api_key_env = "OPENAI_API_KEY"
# args = []
# [agents.qwen]
# binary = "qwen"
# model = "qwen3-coder-plus"
# base_url = "https://dashscope.aliyuncs.com/compatible-mode/v1"
# api_key_env = "DASHSCOPE_API_KEY"
# [agents.opencode]
# binary = "opencode"
# model = "qwen2.5-coder:32b"
# base_url = "http://127.0.0.1:11434/v1"
# api_key_env = "OLLAMA_API_KEY"

# A local OpenAI-compatible model (Ollama, LM Studio, vLLM).
# [local_model]
# endpoint = "http://127.0.0.1:11434/v1"
# model = "qwen2.5-coder:7b"
# api_key = ""
# timeout_seconds = 120
# default_temperature = 0.2
# prefer_for_elaborate = false
# harness = ""                 # what `type: local` runs: "chat" (text only), "opencode" or
#                              # "qwen" (the model drives that CLI, which edits the sandbox);
#                              # "": the first of opencode, qwen installed, else chat
"""


def write_default_config(path: Path, data_dir: Path, *, force: bool = False) -> Path:
    """Write the commented default config to ``path``; refuse to overwrite unless ``force``."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEFAULT_CONFIG.format(data_dir=data_dir), encoding="utf-8")
    return path
