"""Helpers for the web UI tests: a real ``claudomator serve`` (pool + API) whose agents are the
real Claude Code CLI talking to the fake Anthropic server, and a real headless Chromium
(Debian's ``chromium``, driven by Playwright). Screenshots go to ``test-artifacts/ui/``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import REPO_ROOT
from fakes.anthropic import ToolUse

CHROMIUM = os.environ.get("CLAUDOMATOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
CLAUDOMATOR = str(Path(sys.executable).parent / "claudomator")
PHONE = {"width": 390, "height": 844}


def ask(question: str, options: list[str]) -> ToolUse:
    """The agent writes a question for a human (the task becomes BLOCKED)."""
    payload = json.dumps({"text": question, "options": options})
    return ToolUse("Bash", {"command": f"echo '{payload}' > \"$CLAUDOMATOR_QUESTION_FILE\""})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running ``claudomator serve`` and an API client for arranging things directly."""

    url: str
    api: httpx.Client
    process: subprocess.Popen[bytes]
    banner: list[str] = field(default_factory=list)

    def wait_state(self, task_id: str, states: set[str], timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        detail: dict[str, Any] = {}
        while time.monotonic() < deadline:
            detail = self.api.get(f"/api/tasks/{task_id}").json()
            if detail["task"]["state"] in states:
                return detail
            time.sleep(0.3)
        raise AssertionError(f"task never reached {states}: {json.dumps(detail)[-1500:]}")


@dataclass
class Browser:
    """Chromium, one real (non-incognito) profile per page: Web Push is refused outright in
    incognito contexts. Pages record console errors and uncaught exceptions."""

    playwright: Any
    executable: str
    profiles: Path
    problems: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def page(self, *, phone: bool = False) -> Any:
        options: dict[str, Any] = {"permissions": ["notifications"]}
        if phone:
            options.update(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        else:
            options.update(viewport={"width": 1280, "height": 900})
        profile = self.profiles / f"profile-{len(self.contexts)}"
        context = self.playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=self.executable,
            headless=True,
            args=CHROMIUM_ARGS,
            **options,
        )
        self.contexts.append(context)
        context.set_default_timeout(20_000)
        page = context.pages[0] if context.pages else context.new_page()

        def on_console(message: Any) -> None:
            if message.type == "error" and "401" not in message.text:
                self.problems.append(f"console: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        return page


def require_chromium() -> str:
    """The Chromium binary, or skip the test saying why (and how to get it)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = f"Chromium not found at {CHROMIUM} (`make test` installs Debian's chromium)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    pytest.importorskip("playwright.sync_api", reason="playwright (a dev dependency) is missing")
    return CHROMIUM


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot as ``test-artifacts/ui/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """A real ``claudomator serve`` on a free port with ``env``, until it answers health: its
    URL. Stopped (SIGTERM) afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/api/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def chromium_browser(profiles: Path) -> Iterator[Browser]:
    """Headless Chromium (skipped without it); no page may log an error or throw."""
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        wrapped = Browser(playwright, chromium, profiles)
        try:
            yield wrapped
        finally:
            for context in wrapped.contexts:
                context.close()
    assert wrapped.problems == []
