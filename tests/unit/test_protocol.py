"""The agent protocol (preamble, environment, question file), acceptance checkers,
webhook notifications and cost estimates."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
from pathlib import Path

import pytest

from claudomator.checker import checker_task, verdict_from
from claudomator.config import DEFAULT_PRICES, ModelPrice, estimate_cost, load_settings
from claudomator.models import (
    AgentConfig,
    Commit,
    Execution,
    Interaction,
    Priority,
    Task,
    TaskState,
)
from claudomator.notify import SIGNATURE_HEADER, Notifier, sign
from claudomator.protocol import (
    PREAMBLE_HEADING,
    Question,
    agent_env,
    history_prompt,
    looks_like_report,
    parse_question,
    prompt_for,
    question_file,
    read_question,
    summary_file,
    with_preamble,
)
from fakes.receiver import WebhookReceiver

PROTOCOL_VARIABLES = (
    "CLAUDOMATOR_API_URL",
    "CLAUDOMATOR_TASK_ID",
    "CLAUDOMATOR_PROJECT_DIR",
    "CLAUDOMATOR_QUESTION_FILE",
    "CLAUDOMATOR_SUMMARY_FILE",
)


def _task(instructions: str = "Fix the login bug", **agent: object) -> Task:
    config = AgentConfig.model_validate({"instructions": instructions, **agent})
    return Task(name="login", agent=config)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the preamble --------------------------------------------------------------------------


def test_preamble_starts_with_the_heading_and_names_every_variable() -> None:
    prompt = prompt_for(_task())
    assert prompt.startswith(PREAMBLE_HEADING + "\n")
    assert PREAMBLE_HEADING == "## Runtime Environment"
    for name in PROTOCOL_VARIABLES:
        assert f"${name}" in prompt, name
    assert prompt.endswith("\n## Task\n\nFix the login bug")
    # how to ask, how to report
    assert '{"text": "your question", "options": ["choice A", "choice B"]}' in prompt
    assert "## Summary" in prompt


def test_with_preamble_keeps_the_instructions_verbatim() -> None:
    odd = "Use {braces} and {{double}} and $HOME literally"
    assert with_preamble(odd).endswith(odd)


def test_skip_planning_sends_the_instructions_alone() -> None:
    assert prompt_for(_task(skip_planning=True)) == "Fix the login bug"


# -- the question file ---------------------------------------------------------------------


def _write_question(log_dir: Path, raw: str | bytes) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = question_file(log_dir)
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(raw, encoding="utf-8")


def test_question_and_summary_files_live_in_the_log_dir(tmp_path: Path) -> None:
    assert question_file(tmp_path) == tmp_path / "question.json"
    assert summary_file(tmp_path) == tmp_path / "summary.txt"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{"text": "  Which colour?  ", "options": ["red", "blue"]}\n',
            Question("Which colour?", ("red", "blue")),
        ),
        ('{"text": "Which?", "options": ["a", 2, true]}', Question("Which?", ("a", "2", "True"))),
        ('{"text": "Which?", "options": "a,b"}', Question("Which?")),
        ('{"text": "Which?", "options": null}', Question("Which?")),
        ('{"question": "Deploy now?"}', Question("Deploy now?")),
        ('{"text": "", "question": "Deploy now?"}', Question("Deploy now?")),
        ("Should I drop the table?\n", Question("Should I drop the table?")),
        ('"Is it a string?"', Question("Is it a string?")),
    ],
)
def test_read_question(tmp_path: Path, raw: str, expected: Question) -> None:
    _write_question(tmp_path, raw)
    assert read_question(tmp_path) == expected


@pytest.mark.parametrize("raw", ["", "  \n\t\n"])
def test_read_question_empty_file_is_no_question(tmp_path: Path, raw: str) -> None:
    _write_question(tmp_path, raw)
    assert read_question(tmp_path) is None


def test_read_question_missing_file_is_no_question(tmp_path: Path) -> None:
    assert read_question(tmp_path) is None
    assert read_question(tmp_path / "does-not-exist") is None


@pytest.mark.parametrize("raw", ["[1, 2]", '{"options": ["a"]}', '{"text": 5}', "42"])
def test_read_question_unusable_json_is_kept_as_text(tmp_path: Path, raw: str) -> None:
    _write_question(tmp_path, raw)
    assert read_question(tmp_path) == Question(raw)


def test_read_question_binary_garbage_does_not_raise(tmp_path: Path) -> None:
    _write_question(tmp_path, b"\xff\xfe{not json\x00")
    question = read_question(tmp_path)
    assert question is not None
    assert "not json" in question.text
    assert question.options == ()


def test_looks_like_report() -> None:
    assert looks_like_report(Question("Implemented the export and added tests."))
    assert looks_like_report(Question("Summary: all done"))
    assert not looks_like_report(Question("Implemented it. Should I also add tests?"))
    assert not looks_like_report(Question("Finished part one", ("continue", "stop")))
    assert not looks_like_report(Question("Which database should I use"))


@pytest.mark.parametrize(
    "question",
    [
        Question("Which colour?", ("red", "blue")),
        Question("Plain?"),
        Question('Quotes " and \\ and ünïcode', ("{}", "")),
    ],
)
def test_parse_question_round_trips_to_json(question: Question) -> None:
    stored = question.to_json()
    assert json.loads(stored) == {"text": question.text, "options": list(question.options)}
    assert parse_question(stored) == question


def test_parse_question_of_plain_text() -> None:
    assert parse_question("just words?") == Question("just words?")
    assert parse_question('["a list"]') == Question('["a list"]')


# -- the environment and resumed prompts ---------------------------------------------------


def test_agent_env_sets_the_protocol_and_keeps_the_base(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin", "HOME": "/home/x", "CLAUDOMATOR_TASK_ID": "stale"}
    env = agent_env(
        base,
        api_url="http://127.0.0.1:8484",
        task_id="t-1",
        project_dir=tmp_path / "project",
        log_dir=tmp_path / "logs",
        api_token="ct1.t-1.mac",
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/x",
        "CLAUDOMATOR_API_URL": "http://127.0.0.1:8484",
        "CLAUDOMATOR_API_TOKEN": "ct1.t-1.mac",
        "CLAUDOMATOR_TASK_ID": "t-1",
        "CLAUDOMATOR_PROJECT_DIR": str(tmp_path / "project"),
        "CLAUDOMATOR_QUESTION_FILE": str(tmp_path / "logs" / "question.json"),
        "CLAUDOMATOR_SUMMARY_FILE": str(tmp_path / "logs" / "summary.txt"),
    }
    assert base["CLAUDOMATOR_TASK_ID"] == "stale"  # the base is not modified


def test_history_prompt_carries_the_questions_and_answers() -> None:
    task = _task()
    history = [
        Interaction(task_id=task.id, execution_id="e1", question="Which colour?", answer="blue"),
        Interaction(task_id=task.id, execution_id="e2", question="Light or dark?"),
    ]
    prompt = history_prompt(task, history)
    assert prompt.startswith(prompt_for(task))
    assert "Q: Which colour?\nA: blue\n" in prompt
    assert "Q: Light or dark?\nA: (no answer)\n" in prompt
    assert prompt.index("Which colour?") < prompt.index("Light or dark?")
    assert "could not be resumed" in prompt


def test_history_prompt_without_preamble_when_skipping_planning() -> None:
    task = _task(skip_planning=True)
    prompt = history_prompt(task, [])
    assert prompt.startswith("Fix the login bug\n")
    assert PREAMBLE_HEADING not in prompt


# -- acceptance checkers -------------------------------------------------------------------


def test_checker_task_fields() -> None:
    task = Task(
        name="export",
        agent=AgentConfig(
            type="",
            model="claude-sonnet",
            instructions="TASK-EXPORT: add export()",
            project_dir="/src/app",
            permission_mode="acceptEdits",
        ),
        acceptance_criteria="export() is covered by a unit test",
        timeout=600,
        priority=Priority.HIGH,
        tags=("backend",),
    )
    execution = Execution(
        task_id=task.id,
        agent="gemini",
        commits=(
            Commit(hash="a" * 40, message="Add export"),
            Commit(hash="b" * 40, message="Tests"),
        ),
    )
    check = checker_task(task, execution, "branch claudomator/x")
    assert check.checker_for_task_id == task.id
    assert check.id != task.id
    assert check.name == "check: export"
    assert check.agent.type == "gemini"  # the agent that did the work, not the task's ""
    assert check.agent.model == "claude-sonnet"
    assert check.agent.skip_planning is True
    assert check.agent.project_dir == "/src/app"
    assert check.agent.permission_mode == "acceptEdits"
    assert check.timeout == 600
    assert check.priority == Priority.HIGH
    assert check.tags == ("backend", "checker")
    assert check.state == TaskState.PENDING
    assert check.acceptance_criteria == ""  # a checker is not checked itself
    text = check.agent.instructions
    assert text.startswith("You are checking work another agent delivered")
    assert "export() is covered by a unit test" in text
    assert "TASK-EXPORT: add export()" in text
    assert f"- {'a' * 40} Add export" in text
    assert f"- {'b' * 40} Tests" in text
    assert "branch claudomator/x" in text
    assert '{"verdict": "pass" or "fail"' in text


def test_checker_task_without_commits_says_so() -> None:
    task = _task(type="claude").model_copy(update={"acceptance_criteria": "nothing breaks"})
    check = checker_task(task, Execution(task_id=task.id, agent="claude"), "no new commits")
    assert "- (none)" in check.agent.instructions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('Looked.\n{"verdict": "pass", "report": "tests cover it"}', ("pass", "tests cover it")),
        ('{"verdict": " FAIL ", "report": "  no tests  "}', ("fail", "no tests")),
        ('{"verdict": "fail"}', ("fail", "")),
        (
            '{"verdict": "fail", "report": "first look"}\nthen\n'
            '{"verdict": "pass", "report": "after a second look"}',
            ("pass", "after a second look"),
        ),
        (
            '{"verdict": "pass", "report": "good"}\n{"verdict": "maybe", "report": "unsure"}',
            ("pass", "good"),
        ),
        (
            '{"verdict": "fail", "report": "bad"}\n{"verdict": "pass", "report": broken json}',
            ("fail", "bad"),
        ),
    ],
)
def test_verdict_from(text: str, expected: tuple[str, str]) -> None:
    assert verdict_from(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I looked at it and it seems fine.",
        '{"verdict": "maybe", "report": "unsure"}',
        '{"verdict": "pass" or "fail", "report": "what you found"}',
        '{"result": "pass"}',
    ],
)
def test_verdict_from_without_a_verdict(text: str) -> None:
    assert verdict_from(text) == ("", "the checker gave no verdict")


def test_verdict_from_report_with_braces() -> None:
    text = 'Checked.\n{"verdict": "fail", "report": "export() returns {} instead of the rows"}'
    assert verdict_from(text) == ("fail", "export() returns {} instead of the rows")


# -- webhook notifications -----------------------------------------------------------------


def test_sign_is_hmac_sha256_hex() -> None:
    body = b'{"event": "task.completed"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"
    assert sign("other", body) != sign("s3cret", body)
    assert sign("s3cret", body + b" ") != sign("s3cret", body)


def _blocked_task() -> Task:
    return _task().model_copy(
        update={
            "state": TaskState.BLOCKED,
            "question": Question("Which?", ("a", "b")).to_json(),
            "summary": "half way",
        }
    )


async def test_notifier_posts_a_signed_json_body() -> None:
    task = _blocked_task()
    with WebhookReceiver() as hook:
        notifier = Notifier(hook.url, "s3cret")
        assert notifier.enabled
        assert await notifier.task_event("task.blocked", task, options=["a", "b"]) is True
    [delivery] = hook.deliveries
    assert delivery.path == "/hook"
    assert delivery.headers["content-type"] == "application/json"
    expected = hmac.new(b"s3cret", delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"
    payload = delivery.json()
    assert payload["event"] == "task.blocked"
    assert payload["options"] == ["a", "b"]
    assert payload["at"]
    assert payload["task"] == {
        "id": task.id,
        "name": "login",
        "state": "BLOCKED",
        "summary": "half way",
        "question": task.question,
    }


async def test_notifier_without_secret_sends_no_signature() -> None:
    with WebhookReceiver() as hook:
        assert await Notifier(hook.url).task_event("task.completed", _task()) is True
    [delivery] = hook.deliveries
    assert SIGNATURE_HEADER.lower() not in delivery.headers
    assert delivery.json()["event"] == "task.completed"


async def test_notifier_receiver_error_returns_false() -> None:
    with WebhookReceiver(status=500) as hook:
        assert await Notifier(hook.url, "s").task_event("task.failed", _task()) is False
    assert len(hook.deliveries) == 1


async def test_notifier_unreachable_url_returns_false() -> None:
    notifier = Notifier(f"http://127.0.0.1:{_free_port()}/hook", "s3cret", timeout=5)
    assert await notifier.task_event("task.failed", _task()) is False


async def test_notifier_without_url_is_disabled() -> None:
    notifier = Notifier("")
    assert not notifier.enabled
    assert await notifier.task_event("task.completed", _task()) is False


# -- cost estimates ------------------------------------------------------------------------


def test_estimate_cost_exact_match() -> None:
    cost = estimate_cost(DEFAULT_PRICES, "gemini-2.5-pro", 1_000_000, 100_000)
    assert cost == pytest.approx(1.25 + 1.0)
    assert estimate_cost(DEFAULT_PRICES, "gemini-2.5-pro", 0, 0) == 0


def test_estimate_cost_longest_prefix_wins() -> None:
    lite = estimate_cost(DEFAULT_PRICES, "gemini-2.5-flash-lite-preview-06", 1_000_000, 0)
    assert lite == pytest.approx(0.10)  # not gemini-2.5-flash's 0.30
    flash = estimate_cost(DEFAULT_PRICES, "gemini-2.5-flash-preview", 0, 1_000_000)
    assert flash == pytest.approx(2.50)


@pytest.mark.parametrize("model", ["", "gpt-4o", "gemini-2.0-flash", "auto", "gemini-2.5"])
def test_estimate_cost_unknown_model(model: str) -> None:
    assert estimate_cost(DEFAULT_PRICES, model, 1000, 1000) is None


def test_estimate_cost_custom_table() -> None:
    prices = {"m": ModelPrice(input_per_million=2, output_per_million=4)}
    assert estimate_cost(prices, "m", 500_000, 250_000) == pytest.approx(2.0)


def test_config_prices_add_to_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "data" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        '[prices."my-model"]\ninput_per_million = 3.0\noutput_per_million = 15.0\n\n'
        '[prices."gemini-2.5-pro"]\ninput_per_million = 2.5\noutput_per_million = 20.0\n',
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.prices["my-model"] == ModelPrice(input_per_million=3, output_per_million=15)
    assert settings.prices["gemini-2.5-pro"] == ModelPrice(
        input_per_million=2.5, output_per_million=20
    )
    for name in ("gemini-2.5-flash", "gemini-2.5-flash-lite"):
        assert settings.prices[name] == DEFAULT_PRICES[name]
    assert estimate_cost(settings.prices, "my-model-v2", 1_000_000, 0) == pytest.approx(3.0)
    assert DEFAULT_PRICES["gemini-2.5-pro"].input_per_million == 1.25  # defaults untouched


def test_no_prices_in_config_gives_the_defaults() -> None:
    assert load_settings().prices == DEFAULT_PRICES


def test_agent_files_are_read_safely(tmp_path: Path) -> None:
    from claudomator.protocol import MAX_AGENT_FILE, read_agent_file

    regular = tmp_path / "summary.txt"
    regular.write_text("x" * (MAX_AGENT_FILE + 100))
    assert read_agent_file(regular) == "x" * MAX_AGENT_FILE  # capped
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_agent_file(fifo) is None  # would block forever if opened for a read
    link = tmp_path / "link"
    link.symlink_to(regular)
    assert read_agent_file(link) is None  # an agent must not make us read elsewhere
    assert read_agent_file(tmp_path / "missing") is None
    assert read_agent_file(tmp_path) is None  # a directory


async def test_posted_notifications_retry_in_the_background_until_taken() -> None:
    from fakes.receiver import WebhookReceiver

    with WebhookReceiver(script=[500, 503]) as hook:
        notifier = Notifier(hook.url, retry_delays=(0.05, 0.05, 0.05))
        notifier.post("task.completed", _task())  # returns at once
        assert len(hook.deliveries) <= 1
        await notifier.drain(5)
        assert [d.json()["event"] for d in hook.deliveries] == ["task.completed"] * 3


async def test_posting_gives_up_after_the_last_retry() -> None:
    from fakes.receiver import WebhookReceiver

    with WebhookReceiver(status=500) as hook:
        notifier = Notifier(hook.url, retry_delays=(0.01, 0.01))
        notifier.post("task.failed", _task())
        await notifier.drain(5)
        assert len(hook.deliveries) == 3
