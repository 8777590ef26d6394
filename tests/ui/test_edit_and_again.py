# ruff: noqa: F811  (the fixtures of test_web_ui are imported, then used by name)
"""Issue 11 item 23 in real Chromium against a real ``claudomator serve`` (the real Claude Code
CLI, the fake model server): editing a draft or queued task (field errors from the API's 422,
a task that started meanwhile: 409), what board cards say (project, summary, cost) and "Run
again" on ended tasks. Screenshots at 1280 and 390 px go to ``test-artifacts/ui/``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_web_ui import (  # noqa: F401  (pytest fixtures)
    StartServer,
    browser,
    chromium_path,
    expect_state,
    fake,
    start_server,
)
from ui_harness import PHONE, Browser, shot

from conftest import MakeRepo
from fakes.anthropic import FakeAnthropic, Text

pytestmark = pytest.mark.cli

LONG = (
    "Waited for the dependency, then wrote a summary long enough that no card can show it on "
    "one line: it goes on about the files it touched, the tests it ran and what is left to do."
)


def accept_next_dialog(page: Any, seen: list[str]) -> None:
    def accept(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)


def fits(page: Any, width: int) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth") <= width)


def test_edit_a_draft_with_field_errors_then_save(
    start_server: StartServer, browser: Browser, make_repo: MakeRepo
) -> None:
    project = make_repo("webapp")
    server = start_server()
    assert server.api.post("/api/projects", json={"name": "webapp", "dir": str(project)}).is_success
    body = {
        "name": "draft-one",
        "timeout": "10m",
        "tags": ["old"],
        "description": "to be changed",
        "agent": {"instructions": "EDIT-MARK", "project_dir": str(project), "model": "sonnet"},
    }
    [task] = server.api.post("/api/tasks?submit=false", json=body).json()["tasks"]

    page = browser.page()
    page.goto(f"{server.url}/tasks/{task['id']}")
    expect_state(page, "PENDING")
    # keyboard: the Edit link in the actions
    page.locator(".actions").get_by_role("link", name="Edit").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/edit$"))
    page.get_by_role("heading", name="Edit “draft-one”").wait_for()
    # the same form as "New task", filled with the task (no "Elaborate" here)
    assert page.get_by_label("Name").input_value() == "draft-one"
    assert page.get_by_label("Timeout", exact=True).input_value() == "10m"
    assert page.get_by_label("Tags").input_value() == "old"
    assert page.get_by_label("Model").input_value() == "sonnet"
    assert page.get_by_label("Project", exact=True).input_value() == "webapp"
    assert page.get_by_role("button", name="Elaborate").count() == 0
    shot(page, "edit-task")

    # the API's 422 problems, each at its field (nested ones too), without "request:"/"body."
    page.get_by_label("Timeout", exact=True).fill("soon")
    page.locator("summary", has_text="More options").click()
    page.get_by_label("Budget (USD)").fill("-1")
    page.get_by_role("button", name="Save changes").click()
    timeout = page.locator("[data-field=timeout] .problem")
    timeout.wait_for()
    budget = page.locator('[data-field="agent.max_budget_usd"] .problem')
    budget.wait_for()
    form = page.locator(".task-form").inner_text()
    assert "request:" not in form, form
    assert "body." not in form, form
    assert page.get_by_label("Timeout", exact=True).get_attribute("aria-invalid") == "true"
    assert "2 problems, marked at the fields." in page.locator(".task-form .error").inner_text()
    shot(page, "edit-task-field-errors")
    # a required field left empty is caught before anything is sent
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("alert").filter(has_text="some fields need a value").wait_for()
    assert page.locator("[data-field=name] .problem").inner_text() == "✗ required"

    page.get_by_label("Name").fill("draft-two")
    page.get_by_label("Timeout", exact=True).fill("30m")
    page.get_by_label("Budget (USD)").fill("")
    page.get_by_label("Tags").fill("")  # a cleared field is cleared, not kept (PATCH merges)
    page.get_by_label("Description").fill("")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(rf"/tasks/{task['id']}$"))
    flash = page.locator("#flash")
    flash.filter(has_text="Saved your changes to “draft-two”").wait_for()
    page.get_by_role("heading", name="draft-two").wait_for()
    saved = server.api.get(f"/api/tasks/{task['id']}").json()["task"]
    assert (saved["name"], saved["timeout"], saved["tags"]) == ("draft-two", 1800, [])
    assert saved["description"] == ""
    assert saved["agent"]["model"] == "sonnet"
    assert saved["agent"]["instructions"] == "EDIT-MARK"
    assert saved["agent"]["project_dir"] == str(project)
    assert saved["state"] == "PENDING"
    shot(page, "task-draft-edited")
    # the message goes with the next page
    page.locator("header nav").get_by_role("link", name="Board").click()
    page.get_by_role("heading", name="Board").wait_for()
    assert flash.is_hidden()

    # at 390 px: the form fits, its buttons are reachable
    phone = browser.page(phone=True)
    phone.goto(f"{server.url}/tasks/{task['id']}/edit")
    phone.get_by_role("button", name="Save changes").wait_for()
    assert fits(phone, PHONE["width"])
    shot(phone, "phone-edit-task")
    browser.problems[:] = [p for p in browser.problems if "422 (Unprocessable" not in p]


def test_edit_conflict_cards_and_run_again(
    start_server: StartServer, browser: Browser, fake: FakeAnthropic, make_repo: MakeRepo
) -> None:
    fake.route("DEP-MARK", [Text("## Summary\nThe dependency is done.")], repeat_last=True)
    fake.route("WAIT-MARK", [Text(f"## Summary\n{LONG}")], repeat_last=True)
    fake.route("CANCEL-MARK", [Text("## Summary\nRan after all.")], repeat_last=True)
    project = make_repo("shop")
    server = start_server()
    assert server.api.post("/api/projects", json={"name": "shop", "dir": str(project)}).is_success
    agent = {"project_dir": str(project)}
    [dep] = server.api.post(
        "/api/tasks?submit=false",
        json={"name": "dep", "agent": {**agent, "instructions": "DEP-MARK"}},
    ).json()["tasks"]
    # queued behind a draft: it waits, so its edit page can be open when it starts
    [waiter] = server.api.post(
        "/api/tasks",
        json={
            "name": "waiter",
            "depends_on": [dep["id"]],
            "agent": {**agent, "instructions": "WAIT-MARK"},
        },
    ).json()["tasks"]
    assert waiter["state"] == "QUEUED"

    page = browser.page()
    page.goto(f"{server.url}/tasks/{waiter['id']}/edit")
    page.get_by_text("It may start at any moment").wait_for()
    assert page.get_by_label("Depends on").input_value() == dep["id"]
    page.get_by_label("Priority").select_option("high")
    # meanwhile its dependency is submitted, completes, and the waiter runs
    assert server.api.post(f"/api/tasks/{dep['id']}/submit").is_success
    server.wait_state(waiter["id"], {"COMPLETED"})
    page.get_by_role("button", name="Save changes").click()
    conflict = page.get_by_role("alert").filter(has_text="Not saved")
    conflict.wait_for()
    text = conflict.inner_text()
    assert "“waiter” is COMPLETED now" in text, text
    assert "can no longer be changed" in text, text
    assert page.get_by_label("Priority").input_value() == "high"  # what was typed stays
    shot(page, "edit-task-conflict")
    browser.problems[:] = [p for p in browser.problems if "409 (Conflict)" not in p]
    assert server.api.get(f"/api/tasks/{waiter['id']}").json()["task"]["priority"] == "normal"
    conflict.get_by_role("link", name="See the task").click()
    expect_state(page, "COMPLETED")
    assert page.locator(".actions").get_by_role("link", name="Edit").count() == 0
    page.goto(f"{server.url}/tasks/{waiter['id']}/edit")  # an old link: said, no form
    page.get_by_text("only drafts and queued tasks can be edited").wait_for()
    assert page.locator("form.task-form").count() == 0

    # cards: project name, the summary's first line (cut, whole in the title), cost
    page.get_by_role("link", name="Board").click()
    card = page.locator(f"[data-column=done] [data-task-id='{waiter['id']}']")
    card.wait_for()
    assert "shop" in card.locator(".card-meta").inner_text()
    summary = card.locator(".card-summary")
    assert summary.inner_text() == LONG
    assert summary.get_attribute("title") == LONG
    assert summary.evaluate("e => e.scrollWidth > e.clientWidth")  # one line, an ellipsis
    shot(page, "board-cards")
    cards = page.evaluate(
        """async () => {
            const board = await import("/static/js/board.js");
            const format = await import("/static/js/format.js");
            const base = {id: "0123456789abcdef", name: "n", state: "COMPLETED", priority: "normal",
                tags: [], summary: "", updated_at: new Date().toISOString(),
                agent: {type: "", model: "", project_dir: "/srv/repos/billing/"}};
            const known = {...base, cost_usd_total: 0.4567, cost_known: true};
            const unknown = {...base, cost_usd_total: 0.02, cost_known: false};
            const named = new Map([["/srv/repos/billing", "Billing"]]);
            return {
                known: [board.card(known).textContent, format.taskCost(known)],
                unknown: [board.card(unknown).textContent, format.taskCost(unknown)],
                basename: board.projectLabel(base), named: board.projectLabel(base, named),
                scratch: board.projectLabel({...base, agent: {project_dir: ""}}),
                line: board.summaryLine("## Summary\\n\\n- Fixed the bug.\\nMore."),
            };
        }"""
    )
    for text, cost in (cards["known"], cards["unknown"]):
        assert cost, cards
        assert cost in text, cards
    assert (cards["basename"], cards["named"], cards["scratch"]) == ("billing", "Billing", "")
    assert cards["line"] == "Fixed the bug."

    phone = browser.page(phone=True)
    phone.goto(server.url + "/")
    phone_card = phone.locator(f"[data-column=done] [data-task-id='{waiter['id']}']")
    phone_card.wait_for()
    assert fits(phone, PHONE["width"])
    assert phone_card.bounding_box()["height"] < 160  # compact: the summary is one line
    shot(phone, "phone-board-cards")

    # "Run again" on a COMPLETED task: confirmed, a new task, the page goes there
    page.goto(f"{server.url}/tasks/{waiter['id']}")
    expect_state(page, "COMPLETED")
    asked: list[str] = []
    accept_next_dialog(page, asked)
    page.locator(".actions").get_by_role("button", name="Run again").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/tasks/" in url and waiter["id"] not in url)
    copy_id = page.url.rsplit("/", 1)[1]
    assert "A new task with the same definition is queued" in asked[0]
    page.locator("#flash").filter(has_text="to run again as a new task").wait_for()
    expect_state(page, "COMPLETED")
    copy = server.api.get(f"/api/tasks/{copy_id}").json()["task"]
    assert (copy["name"], copy["depends_on"]) == ("waiter", [dep["id"]])
    assert server.api.get(f"/api/tasks/{waiter['id']}").json()["task"]["state"] == "COMPLETED"
    shot(page, "task-run-again")

    # on a CANCELLED task it re-queues the task itself; refusing the dialog does nothing
    [cancelled] = server.api.post(
        "/api/tasks?submit=false",
        json={"name": "stopped", "agent": {**agent, "instructions": "CANCEL-MARK"}},
    ).json()["tasks"]
    assert server.api.post(f"/api/tasks/{cancelled['id']}/cancel").is_success
    phone.goto(f"{server.url}/tasks/{cancelled['id']}")
    expect_state(phone, "CANCELLED")
    assert fits(phone, PHONE["width"])
    shot(phone, "phone-task-cancelled")
    phone.once("dialog", lambda dialog: dialog.dismiss())
    phone.get_by_role("button", name="Run again").click()
    phone.get_by_role("button", name="Run again").wait_for()
    assert server.api.get(f"/api/tasks/{cancelled['id']}").json()["task"]["state"] == "CANCELLED"
    asked.clear()
    accept_next_dialog(phone, asked)
    phone.get_by_role("button", name="Run again").click()
    expect_state(phone, "COMPLETED")
    assert phone.url.endswith(f"/tasks/{cancelled['id']}")
    assert "queued for a fresh attempt" in asked[0]
