# Claudomator — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TOOLS  := .tools
CLAUDE_CODE_VERSION := 2.1.330
GEMINI_CLI_VERSION  := 0.61.0
CODEX_VERSION       := 0.169.0
QWEN_CODE_VERSION   := 0.24.4
OPENCODE_VERSION    := 1.18.33

.PHONY: run test test-all lint types unit bench install constraints tools chromium bubblewrap clean

# constraints.txt pins every package to the version the test suite last passed with
# (`make constraints` rewrites it from the dev venv), so a fresh machine installs the same.
CONSTRAINTS := constraints.txt

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# What running needs (make run): no test, lint or browser tooling.
$(VENV)/.installed-run: pyproject.toml $(CONSTRAINTS) | $(VENV)/bin/python
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e .
	touch $@

# Everything, for make test.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(VENV)/bin/python
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $(VENV)/.installed-run $@

install: $(VENV)/.installed

## Rewrite constraints.txt from the dev venv (after the tests pass with new versions).
constraints: install
	$(PY) -m pip freeze --exclude-editable > $(CONSTRAINTS)

# The real agent CLIs, pinned, in a git-ignored folder (used by the integration tests).
TOOLS_STAMP := $(TOOLS)/.installed-claude-$(CLAUDE_CODE_VERSION)-gemini-$(GEMINI_CLI_VERSION)-codex-$(CODEX_VERSION)-qwen-$(QWEN_CODE_VERSION)-opencode-$(OPENCODE_VERSION)
$(TOOLS_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix $(TOOLS) \
	    @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) \
	    @google/gemini-cli@$(GEMINI_CLI_VERSION) \
	    @openai/codex@$(CODEX_VERSION) \
	    @qwen-code/qwen-code@$(QWEN_CODE_VERSION) \
	    opencode-ai@$(OPENCODE_VERSION) && touch $@; \
	else echo "npm not found: tests that need the real agent CLIs will be skipped"; fi

tools: $(TOOLS_STAMP)

# Debian's Chromium, for the web UI tests (driven by Playwright with executable_path).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium missing and cannot be installed (needs root and apt-get): web UI tests will be skipped"; fi

chromium: $(CHROMIUM)

# bubblewrap, for the confined-agent tests ([isolation] launcher = "bubblewrap").
BWRAP := /usr/bin/bwrap
$(BWRAP):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else echo "bwrap missing and cannot be installed (needs root and apt-get): confinement tests will be skipped"; fi

bubblewrap: $(BWRAP)

## Start the service (pool + HTTP API) on SQLite.
run: $(VENV)/.installed-run
	@echo "claudomator is $(CURDIR)/$(VENV)/bin/claudomator; in another shell:"
	@echo "  export PATH=\"$(CURDIR)/$(VENV)/bin:\$$PATH\"   (or: pipx install $(CURDIR))"
	$(VENV)/bin/claudomator serve

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

types: install
	$(VENV)/bin/mypy

## Lint, types and the whole test suite (with the real Claude Code, Gemini and Codex CLIs).
test: install tools chromium bubblewrap lint types
	CLAUDOMATOR_CLAUDE_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/claude \
	CLAUDOMATOR_GEMINI_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/gemini \
	CLAUDOMATOR_CODEX_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/codex \
	CLAUDOMATOR_QWEN_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/qwen \
	CLAUDOMATOR_OPENCODE_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/opencode \
	$(PY) -m pytest

## Like `test`, with the robustness suites at the issue's full sizes (500 MB of agent output, ...).
test-all: install tools chromium bubblewrap lint types
	CLAUDOMATOR_ROBUST_SCALE=full \
	CLAUDOMATOR_CLAUDE_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/claude \
	CLAUDOMATOR_GEMINI_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/gemini \
	CLAUDOMATOR_CODEX_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/codex \
	CLAUDOMATOR_QWEN_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/qwen \
	CLAUDOMATOR_OPENCODE_BIN=$(CURDIR)/$(TOOLS)/node_modules/.bin/opencode \
	$(PY) -m pytest

## Benchmarks of issue 6 (all, or one: `make bench ONLY=dispatch`); the table goes to BENCHMARKS.md.
bench: install
	$(PY) bench/run.py $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
