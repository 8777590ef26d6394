"""/docs in a real Chromium with no way out of 127.0.0.1: Swagger UI comes from the package,
asks for the API token when one is set, and shows the API's operations."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from ui_harness import CHROMIUM_ARGS, free_port, require_chromium, shot

from claudomator.api import create_app
from claudomator.config import Settings
from claudomator.service import Service
from claudomator.store import Store

TOKEN = "docs-s3cret"


def test_the_docs_work_offline_and_ask_for_the_token(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    guarded = settings.model_copy(update={"api_token": TOKEN})
    port = free_port()
    config = uvicorn.Config(
        create_app(Service(guarded, store), guarded), host="127.0.0.1", port=port, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    origin = f"http://127.0.0.1:{port}"
    outside: list[str] = []
    problems: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def offline(route: Any) -> None:  # as without internet: nothing leaves this origin
                if route.request.url.startswith(origin):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", offline)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{origin}/docs")
            page.wait_for_selector("#docs-token-input", state="visible")
            page.fill("#docs-token-input", "wrong")
            page.click("#docs-token-form button")
            page.wait_for_selector("#docs-token-input", state="visible")  # asked again
            page.fill("#docs-token-input", TOKEN)
            page.click("#docs-token-form button")
            page.wait_for_selector(".opblock", timeout=15000)
            text = page.inner_text("#swagger-ui")
            shot(page, "docs-1280")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    assert "/api/tasks" in text
    assert "Claudomator" in text
    assert outside == []
    assert problems == []
