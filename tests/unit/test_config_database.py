"""``database_url``: where the database is; only SQLite files are accepted today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from claudomator.config import load_settings
from claudomator.errors import ConfigError
from claudomator.models import AgentConfig, Task
from claudomator.service import Service


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text, encoding="utf-8")
    return {"CLAUDOMATOR_DATA_DIR": str(tmp_path / "data"), "CLAUDOMATOR_CONFIG": str(cfg)}


def test_a_sqlite_url_puts_the_database_there(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "queue.db"
    settings = load_settings(_config(tmp_path, f'database_url = "sqlite:///{db}"\n'))
    assert settings.db_path == db
    service = Service.open(settings)
    try:
        service.store.add_tasks([Task(name="t", agent=AgentConfig(instructions="x"))])
    finally:
        service.close()
    assert db.is_file()
    assert not (tmp_path / "data" / "claudomator.db").exists()
    reopened = Service.open(settings)
    try:
        assert [t.name for t in reopened.store.list_tasks()] == ["t"]
    finally:
        reopened.close()


def test_unset_is_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, 'database_url = ""\n'))
    assert settings.db_path == tmp_path / "data" / "claudomator.db"


@pytest.mark.parametrize(
    "url",
    ["postgresql://db.example/claudomator", "sqlite://", "sqlite:///", "memory://", "/var/q.db"],
)
def test_any_other_url_is_refused_naming_the_key(tmp_path: Path, url: str) -> None:
    env = _config(tmp_path, f'database_url = "{url}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(f"{env['CLAUDOMATOR_CONFIG']}:")
    assert re.search(r"(^|[ ;])database_url:", message), message
    assert "sqlite:///<path to a file>" in message


def test_open_store_refuses_other_urls_and_opens_memory(tmp_path: Path) -> None:
    from claudomator.errors import StoreError
    from claudomator.store import open_store
    from claudomator.store.memory import MemoryStore

    with pytest.raises(StoreError, match=r"'postgresql://h/db'.*sqlite:///<path to a file>"):
        open_store("postgresql://h/db")
    assert isinstance(open_store("memory://"), MemoryStore)
    opened = open_store(f"sqlite:///{tmp_path}/new/dir/q.db")  # the folder is created
    opened.close()
    assert (tmp_path / "new" / "dir" / "q.db").is_file()
