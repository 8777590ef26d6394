"""The short commands start without the heavy libraries (issue 11: `--version`, `list`, `show`
and `answer` under 0.5 s; bench/bench_startup.py times them): `--version` loads no models or
Typer, a command loads only its own module, and on a database at the newest revision `list`,
`show` and `answer` go through the quick store without SQLAlchemy."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from claudomator.cli import COMMAND_MODULES, command_of, modules_for
from claudomator.config import load_settings
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.store import open_store
from claudomator.store.quick import QuickStore, open_quick, revision_of
from claudomator.store.revisions import newest_revision
from claudomator.store.sql.store import SqlStore
from claudomator.store.sqlite_codec import COLUMNS
from claudomator.store.tables import UTCDateTime, metadata

LOADED = "import sys; print(sorted(m for m in {names!r} if m in sys.modules))"


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _cli(
    argv: list[str], env: dict[str, str], heavy: tuple[str, ...]
) -> tuple[int, str, list[str]]:
    """Run the CLI's ``main`` with ``argv`` in a new interpreter: exit code, output, and which
    of ``heavy`` it loaded."""
    code = (
        f"import sys; sys.argv = ['claudomator', *{argv!r}]\n"
        "from claudomator.cli import main\n"
        "code = 0\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code or 0\n"
        f"print('LOADED', sorted(m for m in {heavy!r} if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    done = _python(code, env)
    out, _, loaded = done.stdout.rpartition("LOADED ")
    return done.returncode, out + done.stderr, json.loads(loaded.replace("'", '"'))


def test_the_command_name_is_the_first_word_that_is_not_an_option() -> None:
    assert command_of(["-vv", "list", "--state", "QUEUED"]) == "list"
    assert command_of(["--version"]) is None
    assert modules_for(["show", "x"]) == ["views"]
    everything = sorted(set(COMMAND_MODULES.values()))
    assert modules_for(["--help"]) == everything
    assert modules_for(["lsit"]) == everything  # a typo: Typer lists every command


def test_each_command_is_registered_by_the_module_the_table_names() -> None:
    """Importing a module alone registers its commands: the table can neither miss a command
    nor send one to the wrong module."""
    registered: set[str] = set()
    for module in sorted(set(COMMAND_MODULES.values())):
        code = (
            f"import claudomator.cli.{module}\n"
            "from claudomator.cli.common import app\n"
            "names = [c.name or c.callback.__name__.replace('_', '-') "
            "for c in app.registered_commands]\n"
            "names += [g.name for g in app.registered_groups]\n"
            "print(' '.join(names))"
        )
        done = _python(code)
        assert done.returncode == 0, done.stderr
        names = set(done.stdout.split())
        mine = {c for c, m in COMMAND_MODULES.items() if m == module}
        assert mine <= names, f"{module} does not register {sorted(mine - names)}"
        registered |= names
    assert registered == set(COMMAND_MODULES)


def test_version_loads_neither_typer_nor_the_models(tmp_path: Path) -> None:
    env = {**os.environ, "CLAUDOMATOR_DATA_DIR": str(tmp_path / "data")}
    code, out, loaded = _cli(["--version"], env, ("typer", "pydantic", "claudomator.models"))
    assert (code, loaded) == (0, [])
    assert out.startswith("claudomator ")


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A data dir whose database is at the newest revision, holding a BLOCKED task."""
    monkeypatch.setenv("CLAUDOMATOR_DATA_DIR", str(tmp_path / "data"))
    store = open_store(load_settings().db_path)
    try:
        [task] = store.add_tasks([Task(name="the-question", agent=AgentConfig(instructions="q"))])
        store.transition(task.id, TaskState.RUNNING, "claimed")
        question = json.dumps({"text": "Which database?", "options": ["sqlite", "postgres"]})
        store.transition(task.id, TaskState.BLOCKED, "question", question=question)
    finally:
        store.close()
    return {**os.environ, "CLAUDOMATOR_DATA_DIR": str(tmp_path / "data")}


def test_list_show_and_answer_run_without_sqlalchemy(data_env: dict[str, str]) -> None:
    heavy = ("sqlalchemy", "alembic", "openai", "fastapi", "claudomator.cli.run")
    code, out, loaded = _cli(["list"], data_env, heavy)
    assert (code, loaded) == (0, []), out
    assert "the-question" in out
    assert "Which database?" in out
    code, out, loaded = _cli(["show", "the-question"], data_env, heavy)
    assert (code, loaded) == (0, []), out
    assert "BLOCKED" in out
    code, out, loaded = _cli(["answer", "the-question", "postgres"], data_env, heavy)
    assert (code, loaded) == (0, []), out

    store = open_store(load_settings().db_path)  # the full store sees what the quick one wrote
    try:
        [task] = store.tasks_named("the-question")
        assert (task.state, task.question) == (TaskState.QUEUED, "")
        assert [e.reason for e in store.events(task.id)][-1] == "answered; resuming"
    finally:
        store.close()


def test_a_database_not_at_the_newest_revision_opens_the_full_store(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    assert open_quick(path) is None  # no file yet
    opened = open_store(path, quick=True)  # so the full store creates and migrates it
    try:
        assert isinstance(opened, SqlStore)
    finally:
        opened.close()
    assert revision_of(path) == newest_revision()
    quick = open_store(path, quick=True)
    assert isinstance(quick, QuickStore)
    quick.close()

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001_initial'")
    conn.close()
    assert open_quick(path) is None


def test_the_quick_store_decodes_every_encoded_column_of_the_tables_it_reads() -> None:
    """:data:`COLUMNS` names exactly the JSON and timestamp columns of each table it reads."""
    for table, kinds in COLUMNS.items():
        columns = metadata.tables[table].columns
        expected = {
            c.name: "json" if c.type.__class__.__name__ == "JSON" else "time"
            for c in columns
            if c.type.__class__.__name__ == "JSON" or isinstance(c.type, UTCDateTime)
        }
        assert kinds == expected, table
