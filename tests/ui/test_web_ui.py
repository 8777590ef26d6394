"""The web UI end to end: real Chromium, real ``claudomator serve``, the real Claude Code CLI
against the fake model server. Each test saves screenshots of the pages it visits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_harness import (
    CLAUDOMATOR,
    PHONE,
    Browser,
    Server,
    ask,
    free_port,
    require_chromium,
    shot,
)

from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env

pytestmark = pytest.mark.cli


@pytest.fixture
def chromium_path() -> str:
    return require_chromium()


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server
    assert server.errors == []


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(tmp_path: Path, fake: FakeAnthropic, claude_bin: str) -> Iterator[StartServer]:
    """Factory: start ``claudomator serve`` with the given config lines (TOML)."""
    started: list[Server] = []

    def start(config: str = "") -> Server:
        env = claude_env(fake.url, tmp_path / "agent-home")
        for name in ("CLAUDOMATOR_DATA_DIR", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"):
            env[name] = os.environ[name]
        config_file = tmp_path / "config.toml"
        config_file.write_text(
            f'claude_binary_path = "{claude_bin}"\nkill_grace_seconds = 2\n{config}',
            encoding="utf-8",
        )
        env["CLAUDOMATOR_CONFIG"] = str(config_file)
        port = free_port()
        stderr = tmp_path / "serve.stderr"
        with stderr.open("wb") as sink:
            process = subprocess.Popen(
                [CLAUDOMATOR, "serve", "--addr", f"127.0.0.1:{port}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        url = f"http://127.0.0.1:{port}"
        token = "tok" if "api_token" in config else ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        api = httpx.Client(base_url=url, headers=headers, timeout=30)
        server = Server(url=url, api=api, process=process)
        started.append(server)
        deadline = time.monotonic() + 30
        while True:
            try:
                api.get("/api/health")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(stderr.read_text(errors="replace")) from None
                time.sleep(0.2)
        time.sleep(0.3)  # the banner is printed once the pool runs
        server.banner = stderr.read_text(errors="replace").splitlines()
        return server

    yield start
    for server in started:
        server.api.close()
        server.process.terminate()
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)


@pytest.fixture
def browser(
    chromium_path: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        wrapped = Browser(playwright, chromium_path, tmp_path / "chromium")
        try:
            yield wrapped
        finally:
            # the last state of every page, to see what a failing test saw
            for number, context in enumerate(wrapped.contexts):
                for page in context.pages:
                    shot(page, f"last-{request.node.name}-{number}")
                context.close()
    # 404s of expected misses (no diff yet) are logged by Chromium as console errors
    unexpected = [p for p in wrapped.problems if "404" not in p]
    assert unexpected == [], unexpected


ELABORATED = {
    "name": "greeting",
    "description": "Say hello in a file.",
    "agent": {"type": "claude", "instructions": "RUN-MARK: write hello.txt saying hello."},
    "timeout": "10m",
    "priority": "high",
    "tags": ["docs", "ui"],
    "acceptance_criteria": "",
}


def expect_state(page: Any, state: str, timeout: float = 90_000) -> None:
    """Wait until the task page's heading shows ``state`` (as text, not colour)."""
    page.locator(f'h1 .state[data-state="{state}"]').wait_for(timeout=timeout)


def test_create_through_the_form_run_to_completed_then_log_and_diff(
    start_server: StartServer, browser: Browser, fake: FakeAnthropic, make_repo: MakeRepo
) -> None:
    fake.route("ELAB-MARK", [Text(json.dumps(ELABORATED))])
    fake.route(
        "RUN-MARK",
        [
            ToolUse("Bash", {"command": "echo hello > hello.txt"}, text="I will write the file."),
            Text("## Summary\nWrote hello.txt."),
        ],
    )
    project = make_repo("webapp")
    server = start_server('api_token = "tok"\n')
    assert any(line.startswith(f"Web UI: {server.url}/") for line in server.banner), server.banner

    page = browser.page()
    page.goto(server.url + "/")
    # the token is asked for once and kept for the session
    dialog = page.locator("#token-dialog")
    dialog.wait_for()
    page.get_by_label("API token", exact=True).fill("tok")
    page.get_by_role("button", name="Use token").click()
    page.get_by_role("heading", name="Board").wait_for()
    page.locator("[data-column=queued]").wait_for()
    shot(page, "board-empty")

    # a project and a story, through their pages
    page.get_by_role("link", name="Projects").click()
    page.get_by_label("Name").fill("webapp")
    page.get_by_label("Directory").fill(str(project))
    page.get_by_role("button", name="Add project").click()
    page.locator("[data-project=webapp]").wait_for()
    shot(page, "projects")
    page.get_by_role("link", name="Stories").click()
    page.get_by_label("Name").fill("Greetings")
    page.get_by_role("button", name="Create story").click()
    page.locator(".card", has_text="Greetings").wait_for()
    page.get_by_role("button", name="Edit Greetings").click()
    page.get_by_label("Description").fill("Everything that says hello.")
    page.get_by_role("button", name="Save story").click()
    page.locator(".card", has_text="Everything that says hello.").wait_for()
    shot(page, "stories")

    # the new-task form, filled by "Elaborate" from a rough prompt
    page.get_by_role("link", name="New task").first.click()
    page.get_by_label("Project", exact=True).select_option("webapp")
    # the agent picker offers every agent the server knows, saying which cannot run here
    picker = page.locator('select[name="agent.type"] option')
    picker.first.wait_for(state="attached")
    offered = picker.evaluate_all("(os) => os.map((o) => [o.value, o.textContent])")
    known = [a["agent"] for a in server.api.get("/api/agents").json()]
    assert [value for value, _ in offered] == ["", *known]
    assert {"claude", "gemini", "codex", "qwen", "opencode", "local"} <= set(known)
    labels = dict(offered)
    assert labels["codex"].startswith("Codex CLI")
    assert labels["local"].startswith("Local model (")  # not configured here: it says why
    page.get_by_label("What do you want done?").fill("ELAB-MARK greet people in a file")
    page.get_by_role("button", name="Elaborate").click()
    page.get_by_text("Drafted by claude").wait_for(timeout=60_000)
    assert page.get_by_label("Name").input_value() == "greeting"
    assert "RUN-MARK" in page.get_by_label("Instructions for the agent").input_value()
    assert page.get_by_label("Tags").input_value() == "docs, ui"
    page.get_by_label("Story").select_option(label="Greetings")
    shot(page, "new-task")
    # a required field left empty is named, and nothing is created
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Create and queue").click()
    page.get_by_role("alert").filter(has_text="some fields need a value").wait_for()
    assert server.api.get("/api/tasks").json()["tasks"] == []
    page.get_by_label("Name").fill("greeting")
    page.get_by_role("button", name="Create and queue").click()

    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]{36}$"))
    task_id = page.url.rsplit("/", 1)[1]
    expect_state(page, "COMPLETED")
    detail = server.api.get(f"/api/tasks/{task_id}").json()
    assert detail["task"]["tags"] == ["docs", "ui"]
    assert detail["task"]["priority"] == "high"
    assert detail["task"]["story_id"]
    assert detail["task"]["agent"]["project_dir"] == str(project)

    # the log, for people: assistant text, the tool call with its input, the folded result
    log = page.locator("ol.log")
    log.locator(".entry-assistant", has_text="I will write the file.").wait_for()
    log.locator(".entry-tool", has_text="Tool call: Bash").wait_for()
    assert "echo hello > hello.txt" in log.locator(".entry-tool").first.inner_text()
    result = log.locator(".entry-result details").first
    assert result.get_attribute("open") is None  # folded
    log.locator(".entry-done", has_text="Wrote hello.txt.").wait_for()
    # raw JSON is one click away
    page.get_by_role("button", name="Show raw JSON").click()
    raw = page.locator("pre.raw")
    assert '"type":"system"' in raw.inner_text().replace(" ", "")
    page.get_by_role("button", name="Show readable log").click()
    # the summary, cost, commits and the diff of what was delivered
    page.get_by_text("Wrote hello.txt.", exact=True).first.wait_for()
    diff = page.locator("pre.diff")
    diff.wait_for()
    assert "+hello" in diff.inner_text()
    assert "hello.txt" in diff.inner_text()
    assert "autocommit" not in page.locator("#main").inner_text()  # named after the task
    branch = kept_branch(project, task_id)
    assert git(project, "show", f"{branch}:hello.txt") == "hello"
    assert git(project, "log", "-1", "--format=%s", branch) == "greeting"
    delivered = page.locator("dl.facts .delivered").inner_text()
    assert delivered == (
        f"kept as branch {branch} in {project} — see: git -C {project} log HEAD..{branch}"
    )
    shot(page, "task-completed")

    # the board, filtered by project, story and tag
    page.get_by_role("link", name="Board").click()
    done = page.locator("[data-column=done]")
    done.locator(f"[data-task-id='{task_id}']").wait_for()
    page.get_by_label("Tag").fill("ui")
    page.get_by_label("Project").select_option("webapp")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"tag=ui"))
    done.locator(f"[data-task-id='{task_id}']").wait_for()
    shot(page, "board")
    page.get_by_label("Tag").fill("nope")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"tag=nope"))
    page.locator("[data-column=done] .count", has_text="(0)").wait_for()

    page.get_by_role("link", name="Agents").click()
    page.locator("tr[data-agent=claude]").wait_for()
    assert "✓ ready" in page.locator("tr[data-agent=claude]").inner_text()
    shot(page, "agents")

    # "notify me": the service worker is registered; the push service is out of reach here
    page.get_by_role("button", name="Notify me").click()
    flash = page.locator("#flash")
    flash.filter(has_text="Notifications").wait_for(timeout=45_000)
    registered = page.evaluate(
        "navigator.serviceWorker.getRegistration('/')"
        ".then(r => Boolean(r && (r.active || r.installing || r.waiting)))"
    )
    assert registered
    assert "push service is unavailable" in flash.inner_text() or "Notifications on" in (
        page.locator("#notify").inner_text()
    ), flash.inner_text()
    # the token was asked once: a reload in the same tab does not ask again
    page.reload()
    page.get_by_role("heading", name="Agents").wait_for()
    assert not dialog.is_visible()


def test_answer_a_blocked_task_from_a_phone(
    start_server: StartServer, browser: Browser, fake: FakeAnthropic, make_repo: MakeRepo
) -> None:
    fake.route(
        "ASK-MARK",
        [
            ask("Which colour should the button be?", ["red", "blue"]),
            Text("I asked a human."),
            ToolUse("Write", {"file_path": "colour.txt", "content": "blue\n"}),
            Text("## Summary\nThe button is blue now."),
        ],
    )
    project = make_repo()
    server = start_server()
    body = {"name": "button", "agent": {"instructions": "ASK-MARK", "project_dir": str(project)}}
    [task] = server.api.post("/api/tasks", json=body).json()["tasks"]

    page = browser.page(phone=True)
    page.goto(server.url + "/")
    blocked = page.locator(f"[data-column=blocked] [data-task-id='{task['id']}']")
    blocked.wait_for(timeout=90_000)  # moved there live, from the events stream
    assert "Needs your answer" in blocked.inner_text()
    assert "1 task needs your answer" in page.locator(".needs-banner").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # the header is two compact rows at most; an empty column is a one-line heading
    assert page.locator("header.top").bounding_box()["height"] < 100
    empty = page.locator("[data-column=done]")
    assert "(0)" in empty.inner_text()
    assert empty.bounding_box()["height"] < 60
    shot(page, "phone-board-blocked")

    blocked.get_by_role("link", name="button").click()
    panel = page.locator(".panel-blocked")
    panel.get_by_text("Which colour should the button be?").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-task-blocked")
    # keyboard: focus the option and press Enter
    panel.get_by_role("button", name="blue").focus()
    page.keyboard.press("Enter")
    # the page follows the resumed run to its end
    expect_state(page, "COMPLETED")
    page.get_by_text("The button is blue now.").first.wait_for()
    page.locator("h2", has_text="Log of execution #2").wait_for()
    page.locator(".talk", has_text="Answer: blue").wait_for()
    # the executions are labelled cards, not a table scrolling sideways
    region = page.locator(".table-scroll")
    assert region.evaluate("e => e.scrollWidth <= e.clientWidth")
    label = page.locator(".table-scroll tbody td").first.evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert "Status" in label, label
    shot(page, "phone-task-completed")
    assert git(project, "show", f"{kept_branch(project, task['id'])}:colour.txt") == "blue"


def test_reject_with_feedback_then_accept_the_second_attempt(
    start_server: StartServer, browser: Browser, fake: FakeAnthropic, make_repo: MakeRepo
) -> None:
    fake.route(
        "REVIEW-MARK",
        [
            ToolUse("Write", {"file_path": "a.txt", "content": "v1\n"}),
            Text("## Summary\nfirst try"),
            ToolUse("Write", {"file_path": "a.txt", "content": "v2\n"}),
            Text("## Summary\nsecond try"),
        ],
    )
    project = make_repo()
    server = start_server()
    created = server.api.post(
        "/api/projects", json={"name": "app", "dir": str(project), "review": True}
    )
    assert created.status_code == 201, created.text
    body = {
        "name": "review me",
        "agent": {"instructions": "REVIEW-MARK", "project_dir": str(project)},
    }
    # a draft, submitted from its page
    [task] = server.api.post("/api/tasks?submit=false", json=body).json()["tasks"]
    assert task["state"] == "PENDING"

    page = browser.page()
    page.goto(f"{server.url}/tasks/{task['id']}")
    expect_state(page, "PENDING")
    page.get_by_role("button", name="Submit").click()
    expect_state(page, "READY")
    page.locator("pre.diff", has_text="+v1").wait_for()
    shot(page, "task-ready")
    page.get_by_label("Feedback for the agent").fill("Please write v2 instead.")
    page.get_by_role("button", name="Reject with feedback").click()
    # the agent's second attempt arrives on the same page
    page.locator("h2", has_text="Log of execution #2").wait_for(timeout=90_000)
    expect_state(page, "READY")
    page.get_by_text("second try").first.wait_for()
    page.locator("pre.diff", has_text="+v2").wait_for()
    page.locator(".talk", has_text="Please write v2 instead.").wait_for()
    shot(page, "task-ready-second-attempt")
    assert "Please write v2 instead." in json.dumps(fake.requests[-1].body["messages"])
    branch = kept_branch(project, task["id"])
    assert branch == f"claudomator/{task['id'][:8]}-review-me"
    look = f"git -C {project} log HEAD..{branch}"
    assert (
        f"The work is on the branch {branch} (see: {look})"
        in page.locator(".panel-ready").inner_text()
    )
    page.locator(".panel-ready").get_by_role("button", name="Accept").click()
    expect_state(page, "COMPLETED", timeout=20_000)
    assert page.locator(".panel-ready").count() == 0
    # the review box is gone; where the work is stays on the page, with the command to see it
    delivered = page.locator("dl.facts .delivered")
    assert delivered.inner_text() == f"kept as branch {branch} in {project} — see: {look}"
    shot(page, "task-accepted-delivered")
    assert git(project, "show", f"{branch}:a.txt") == "v2"
    assert Path(project).is_dir()


def test_page_not_found_durations_flash_and_field_errors(
    start_server: StartServer, browser: Browser
) -> None:
    """Item 19: a proper not-found page, "8 s" (not "0 min"), a flash that goes away when the
    page changes, no emoji in the state badges, and form errors at the fields without the
    server's "request:" prefixes."""
    server = start_server()
    body = {"name": "draft-eight", "timeout": 8, "agent": {"instructions": "nothing"}}
    [task] = server.api.post("/api/tasks?submit=false", json=body).json()["tasks"]
    page = browser.page()

    response = page.goto(server.url + "/no/such/page")
    assert response is not None
    assert response.status == 404
    page.get_by_role("heading", name="Page not found").wait_for()
    page.get_by_role("link", name="Go to the board").click()
    page.get_by_role("heading", name="Board").wait_for()

    page.goto(server.url + f"/tasks/{task['id']}")
    page.locator(".facts dd", has_text="8 s").wait_for()
    assert "0 min" not in page.locator(".facts").inner_text()
    formats = page.evaluate(
        """async () => {
            const f = await import("/static/js/format.js");
            return [8, 90, 7200, 3900].map(f.seconds);
        }"""
    )
    assert formats == ["8 s", "1 min 30 s", "2 h", "1 h 5 min"]
    symbols = page.evaluate(
        """async () => {
            const d = await import("/static/js/dom.js");
            return ["TIMED_OUT", "RUNNING"].map((s) => d.stateBadge(s).textContent);
        }"""
    )
    assert not re.search("[\u231a-\u23ff\U0001f300-\U0001faff\ufe0f]", "".join(symbols)), symbols

    page.get_by_role("button", name="Submit").click()
    flash = page.locator("#flash")
    flash.filter(has_text="Submitted").wait_for()
    page.locator("header nav").get_by_role("link", name="Board").click()
    page.get_by_role("heading", name="Board").wait_for()
    assert flash.is_hidden()  # the message was about the task page's state

    page.goto(server.url + "/new")
    page.get_by_label("Name").fill("bad-timeout")
    page.get_by_label("Instructions for the agent").fill("do it")
    page.get_by_label("Timeout", exact=True).fill("soon")
    page.get_by_role("button", name="Save as draft").click()
    problem = page.locator("[data-field=timeout] .problem")
    problem.wait_for()
    box = page.locator(".task-form .error").inner_text()
    assert "request:" not in box, box
    assert "request:" not in problem.inner_text()
    assert page.get_by_label("Timeout", exact=True).get_attribute("aria-invalid") == "true"
    shot(page, "form-field-errors")
    # Chromium logs the expected 422 answer as a console error
    browser.problems[:] = [p for p in browser.problems if "422 (Unprocessable" not in p]
