"""checkout: the note that the user's uncommitted changes were not in the sandbox. It lives in
the log folder, which the agent can write to: it is read like an agent file and checked."""

from __future__ import annotations

from pathlib import Path

from claudomator.checkout import CheckoutNote, note_file, read_note, write_note

HEAD = "0123456789abcdef0123456789abcdef01234567"


def test_a_note_round_trips_and_says_what_was_left_out(tmp_path: Path) -> None:
    note = CheckoutNote(project_dir="/src/app", branch="main", head=HEAD, changes=3)
    write_note(tmp_path, note)
    assert read_note(tmp_path) == note
    assert note.line == (
        "the agent started from main@01234567; your uncommitted changes in /src/app "
        "(3 paths) were not included"
    )


def test_write_replaces_a_planted_link_without_following_it(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("mine\n", encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    note_file(logs).symlink_to(target)
    write_note(logs, CheckoutNote(project_dir="/p", branch="HEAD", head=HEAD, changes=1))
    assert target.read_text(encoding="utf-8") == "mine\n"
    assert not note_file(logs).is_symlink()


def test_links_and_malformed_notes_are_ignored(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    write_note(tmp_path, CheckoutNote(project_dir="/p", branch="main", head=HEAD, changes=1))
    note_file(tmp_path).rename(real)
    note_file(tmp_path).symlink_to(real)
    assert read_note(tmp_path) is None  # a link, not a file we wrote
    note_file(tmp_path).unlink()
    for bad in (
        "not json",
        '{"project_dir": "/p", "branch": "main", "head": "HEAD", "changes": 1}',
        '{"project_dir": "/p", "branch": "main", "head": "' + HEAD + '", "changes": 0}',
        '{"project_dir": "/p", "branch": "main", "head": "' + HEAD + '", "changes": 1, "x": 1}',
    ):
        note_file(tmp_path).write_text(bad, encoding="utf-8")
        assert read_note(tmp_path) is None, bad
    assert read_note(tmp_path / "missing") is None
