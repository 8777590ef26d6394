"""YAML task files on disk -> validated tasks, or every problem with file, task and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from claudomator.agents.base import Capabilities
from claudomator.agents.registry import AgentRegistry, AgentSpec, default_registry
from claudomator.config import Settings
from claudomator.errors import Problem, TaskFileError
from claudomator.models import Priority, TaskState
from claudomator.service import Service
from claudomator.store.memory import MemoryStore
from claudomator.taskfile import load_taskfile
from conftest import MakeRepo


def _file(tmp_path: Path, text: str, name: str = "tasks.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path) -> tuple[Problem, ...]:
    with pytest.raises(TaskFileError) as info:
        load_taskfile(path)
    err = info.value
    assert err.problems, "a TaskFileError must carry at least one problem"
    assert str(err) == "\n".join(f"{p.file}:{p.task}:{p.field}: {p.message}" for p in err.problems)
    for p in err.problems:
        assert p.file == str(path)
    return err.problems


def _only(path: Path) -> Problem:
    problems = _problems(path)
    assert len(problems) == 1, problems
    return problems[0]


# -- valid files ------------------------------------------------------------------------------


def test_single_task_mapping(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        name: add-readme
        description: write a readme
        priority: high
        tags: [docs, small]
        timeout: 10m
        agent:
          type: claude
          model: sonnet
          instructions: Write a README.
          max_budget_usd: 0.5
          allowed_tools: [Bash, Read]
        """,
    )
    [task] = load_taskfile(path)
    assert task.name == "add-readme"
    assert task.description == "write a readme"
    assert task.priority == Priority.HIGH
    assert task.tags == ("docs", "small")
    assert task.timeout == 600.0
    assert task.state == TaskState.PENDING
    assert task.agent.type == "claude"
    assert task.agent.model == "sonnet"
    assert task.agent.instructions == "Write a README."
    assert task.agent.max_budget_usd == 0.5
    assert task.agent.allowed_tools == ("Bash", "Read")
    assert task.agent.project_dir == ""
    assert len(task.id) == 36


def test_tasks_list_keeps_file_order(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - name: one
            agent: {instructions: first}
          - name: two
            timeout: 90
            agent: {instructions: second}
          - name: three
            timeout: 1h30m
            agent: {instructions: third}
        """,
    )
    tasks = load_taskfile(path)
    assert [t.name for t in tasks] == ["one", "two", "three"]
    assert [t.timeout for t in tasks] == [None, 90.0, 5400.0]
    assert len({t.id for t in tasks}) == 3


def test_explicit_id_is_kept(tmp_path: Path) -> None:
    path = _file(tmp_path, "id: my-task.1\nname: x\nagent: {instructions: go}\n")
    assert load_taskfile(path)[0].id == "my-task.1"


def test_relative_project_dir_resolved_against_the_file(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    repo = make_repo("proj")
    path = _file(
        tmp_path,
        "name: x\nagent:\n  instructions: go\n  project_dir: ../proj\n",
        name="sub/tasks.yaml",
    )
    [task] = load_taskfile(path)
    assert task.agent.project_dir == str(repo.resolve())


def test_relative_project_dir_does_not_depend_on_cwd(
    tmp_path: Path, make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo("proj")
    path = _file(tmp_path, "name: x\nagent: {instructions: go, project_dir: proj}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_taskfile(path)[0].agent.project_dir == str(repo.resolve())


def test_absolute_project_dir(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo("proj")
    path = _file(tmp_path / "other", f"name: x\nagent: {{instructions: go, project_dir: {repo}}}\n")
    assert load_taskfile(path)[0].agent.project_dir == str(repo.resolve())


def test_depends_on_by_name_and_by_id(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - name: build
            agent: {instructions: b}
          - name: test
            depends_on: [build, 0f0e-existing-id]
            agent: {instructions: t}
          - id: deploy-1
            name: deploy
            depends_on: [test, deploy-0]
            agent: {instructions: d}
        """,
    )
    build, test, deploy = load_taskfile(path)
    assert test.depends_on == (build.id, "0f0e-existing-id")
    assert deploy.depends_on == (test.id, "deploy-0")
    assert build.depends_on == ()


def test_depends_on_by_explicit_id_in_the_file(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {id: a-1, name: a, agent: {instructions: a}}
          - {name: b, depends_on: [a-1], agent: {instructions: b}}
        """,
    )
    a, b = load_taskfile(path)
    assert b.depends_on == ("a-1",) == (a.id,)


# -- one problem each -------------------------------------------------------------------------


def test_unknown_task_key(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nagent: {instructions: go}\ncolour: blue\n")
    p = _only(path)
    assert (p.task, p.field) == ("x", "colour")
    assert p.message.startswith("unknown key; expected one of: ")
    assert "depends_on" in p.message
    assert "did you mean" not in p.message


def test_instructions_at_top_level_gets_a_hint(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\ninstructions: do it\n")
    problems = _problems(path)
    by_field = {p.field: p for p in problems}
    assert set(by_field) == {"agent", "instructions"}
    assert "did you mean agent.instructions?" in by_field["instructions"].message
    assert by_field["agent"].message == "required but missing"
    assert all(p.task == "x" for p in problems)


def test_agent_key_at_top_level_hint_names_it(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nmodel: opus\nagent: {instructions: go}\n")
    p = _only(path)
    assert p.field == "model"
    assert "did you mean agent.model?" in p.message


def test_unknown_agent_key(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nagent: {instructions: go, temprature: 0.2}\n")
    p = _only(path)
    assert (p.task, p.field) == ("x", "agent.temprature")
    assert p.message.startswith("unknown key; expected one of: ")
    assert "temperature" in p.message
    assert "instructions" in p.message
    assert "depends_on" not in p.message  # the agent's keys, not the task's


@pytest.mark.parametrize(
    ("line", "field", "fragment"),
    [
        ("tags: 5", "tags", "valid list (got 5)"),
        ("tags: docs", "tags", "valid list (got 'docs')"),
        ("timeout: soon", "timeout", "invalid duration 'soon'"),
        ("timeout: 0", "timeout", "must be positive"),
        ("timeout: true", "timeout", "boolean"),
        ("priority: urgent", "priority", "'low', 'normal' or 'high'"),
        ("description: [a, b]", "description", "valid string"),
        ("id: 'has space'", "id", "letters, digits"),
        ("depends_on: other", "depends_on", "valid list"),
    ],
)
def test_wrong_types(tmp_path: Path, line: str, field: str, fragment: str) -> None:
    path = _file(tmp_path, f"name: x\nagent: {{instructions: go}}\n{line}\n")
    p = _only(path)
    assert (p.task, p.field) == ("x", field)
    assert fragment in p.message


def test_wrong_type_inside_agent(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nagent: {instructions: go, max_budget_usd: lots}\n")
    p = _only(path)
    assert p.field == "agent.max_budget_usd"


def test_missing_instructions(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nagent: {model: opus}\n")
    p = _only(path)
    assert (p.task, p.field, p.message) == ("x", "agent.instructions", "required but missing")


@pytest.mark.parametrize("value", ["''", "'   '", "|\n    \n"])
def test_empty_instructions(tmp_path: Path, value: str) -> None:
    path = _file(tmp_path, f"name: x\nagent:\n  instructions: {value}\n")
    p = _only(path)
    assert (p.task, p.field, p.message) == ("x", "agent.instructions", "must not be empty")


def test_missing_name(tmp_path: Path) -> None:
    p = _only(_file(tmp_path, "agent: {instructions: go}\n"))
    assert (p.task, p.field, p.message) == ("task", "name", "required but missing")


def test_project_dir_does_not_exist(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nagent: {instructions: go, project_dir: nowhere}\n")
    p = _only(path)
    assert (p.task, p.field) == ("x", "agent.project_dir")
    assert p.message == f"{tmp_path / 'nowhere'} does not exist"


def test_project_dir_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    path = _file(tmp_path, "name: x\nagent: {instructions: go, project_dir: afile}\n")
    p = _only(path)
    assert (p.task, p.field) == ("x", "agent.project_dir")
    assert p.message == f"{tmp_path / 'afile'} is not a directory"


def test_duplicate_names(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {name: same, agent: {instructions: a}}
          - {name: same, agent: {instructions: b}}
        """,
    )
    p = _only(path)
    assert (p.task, p.field, p.message) == ("same", "name", "duplicate task name in this file")


def test_duplicate_ids(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {id: t1, name: a, agent: {instructions: a}}
          - {id: t1, name: b, agent: {instructions: b}}
        """,
    )
    p = _only(path)
    assert (p.task, p.field) == ("b", "id")
    assert "duplicate id 't1'" in p.message


@pytest.mark.parametrize("dep", ["me", "me-1"])
def test_self_dependency(tmp_path: Path, dep: str) -> None:
    path = _file(
        tmp_path, f"id: me-1\nname: me\ndepends_on: [{dep}]\nagent: {{instructions: go}}\n"
    )
    p = _only(path)
    assert (p.task, p.field, p.message) == ("me", "depends_on", "a task cannot depend on itself")


def test_cycle_is_named(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {name: A, depends_on: [B], agent: {instructions: a}}
          - {name: B, depends_on: [A], agent: {instructions: b}}
        """,
    )
    p = _only(path)
    assert p.field == "depends_on"
    assert p.task in {"A", "B"}
    assert p.message in {"cycle: A -> B -> A", "cycle: B -> A -> B"}


def test_longer_cycle_through_ids(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {id: a1, name: A, depends_on: [b1], agent: {instructions: a}}
          - {id: b1, name: B, depends_on: [C], agent: {instructions: b}}
          - {name: C, depends_on: [A], agent: {instructions: c}}
          - {name: D, depends_on: [A], agent: {instructions: d}}
        """,
    )
    p = _only(path)
    assert p.message == "cycle: A -> B -> C -> A"


def test_dependency_chain_without_cycle_is_fine(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {name: A, depends_on: [B, C], agent: {instructions: a}}
          - {name: B, depends_on: [C], agent: {instructions: b}}
          - {name: C, agent: {instructions: c}}
        """,
    )
    assert [t.name for t in load_taskfile(path)] == ["A", "B", "C"]


def test_invalid_yaml_has_the_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nagent:\n  instructions: go\n   bad: [unclosed\n")
    p = _only(path)
    assert (p.task, p.field) == ("-", "-")
    assert p.message.startswith("invalid YAML: line 4: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    p = _only(_file(tmp_path, text))
    assert (p.task, p.field, p.message) == ("-", "-", "the file is empty")


@pytest.mark.parametrize(
    "text", ["- name: x\n  agent: {instructions: go}\n", "just text\n", "42\n"]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    p = _only(_file(tmp_path, text))
    assert (p.task, p.field) == ("-", "-")
    assert p.message == "expected a task mapping or a 'tasks:' list at the top"


@pytest.mark.parametrize("value", ["[]", "", "{name: x}", "a task"])
def test_tasks_must_be_a_non_empty_list(tmp_path: Path, value: str) -> None:
    p = _only(_file(tmp_path, f"tasks: {value}\n"))
    assert (p.task, p.field, p.message) == ("-", "tasks", "must be a non-empty list")


def test_unknown_top_level_key_next_to_tasks(tmp_path: Path) -> None:
    path = _file(
        tmp_path, "defaults: {timeout: 1m}\ntasks:\n  - {name: a, agent: {instructions: a}}\n"
    )
    p = _only(path)
    assert (p.task, p.field) == ("-", "defaults")
    assert "unknown top-level key" in p.message


def test_a_task_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {name: ok, agent: {instructions: a}}
          - just a string
        """,
    )
    p = _only(path)
    assert (p.task, p.field, p.message) == ("#2", "-", "a task must be a mapping of fields")


def test_labels_are_names_or_positions(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {name: first, agent: {instructions: a}, bogus: 1}
          - {agent: {instructions: b}}
          - {name: '', agent: {instructions: c}}
          - {name: 7, agent: {instructions: d}}
        """,
    )
    labels = [p.task for p in _problems(path)]
    assert labels == ["first", "#2", "#3", "#4"]


def test_every_problem_is_reported(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - name: a
            tags: 5
            agent: {instructions: a, colour: red}
          - name: b
            agent: {instructions: '  ', project_dir: missing}
          - 17
          - name: d
            timeout: soon
            priority: urgent
            agent: {instructions: d}
        """,
    )
    problems = _problems(path)
    assert {(p.task, p.field) for p in problems} == {
        ("a", "agent.colour"),
        ("a", "tags"),
        ("b", "agent.instructions"),
        ("b", "agent.project_dir"),
        ("#3", "-"),
        ("d", "timeout"),
        ("d", "priority"),
    }
    assert len(problems) == 7
    # tasks are reported in file order
    order = ["a", "b", "#3", "d"]
    labels = [p.task for p in problems]
    assert labels == sorted(labels, key=order.index)


def test_project_dir_checked_even_when_another_field_is_bad(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\ntags: 5\nagent: {instructions: go, project_dir: nowhere}\n")
    assert {p.field for p in _problems(path)} == {"tags", "agent.project_dir"}


def test_nothing_is_returned_when_one_task_is_bad(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {name: good, agent: {instructions: fine}}
          - {name: bad, agent: {instructions: fine}, priority: urgent}
        """,
    )
    assert [p.task for p in _problems(path)] == ["bad"]


def test_unreadable_file(tmp_path: Path) -> None:
    p = _only(tmp_path / "missing.yaml")
    assert p.message.startswith("cannot read file")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert _only(path).message == "not UTF-8 text"


def test_field_errors_and_duplicate_names_reported_together(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        tasks:
          - {name: a, tags: 5, agent: {instructions: a}}
          - {name: b, agent: {instructions: b}}
          - {name: b, agent: {instructions: c}}
        """,
    )
    fields = {(p.task, p.field) for p in _problems(path)}
    assert fields == {("a", "tags"), ("b", "name")}


def test_nan_timeout_is_a_task_file_error(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\ntimeout: .nan\nagent: {instructions: go}\n")
    p = _only(path)
    assert (p.task, p.field) == ("x", "timeout")


# -- agent types come from the registry -------------------------------------------------------


def _registry_with(name: str) -> AgentRegistry:
    registry = default_registry()
    registry.register(AgentSpec(name, "made up", Capabilities(), lambda s, launcher: None))
    return registry


def test_an_agent_of_the_registry_passed_in_is_accepted(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nagent: {type: aider, instructions: do it}\n")
    [task] = load_taskfile(path, agents=_registry_with("aider"))
    assert task.agent.type == "aider"
    assert "aider" in str(_only(path))  # the built-in agents alone do not know it


def test_an_unknown_agent_names_file_task_field_and_the_known_agents(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\nagent: {type: robot, instructions: do it}\n")
    with pytest.raises(TaskFileError) as info:
        load_taskfile(path, agents=_registry_with("aider"))
    [problem] = info.value.problems
    assert (problem.file, problem.task, problem.field) == (str(path), "x", "agent.type")
    assert problem.message == (
        "unknown agent type 'robot'; use one of claude, gemini, codex, qwen, opencode, local, "
        "aider (or leave it empty to let Claudomator choose)"
    )


def test_the_service_validates_with_its_own_registry(tmp_path: Path) -> None:
    """The CLI's `run` and the API go through Service.prepare, with Service.agents."""
    service = Service(
        Settings(data_dir=tmp_path / "data"), MemoryStore(), agents=_registry_with("aider")
    )
    document = {"name": "x", "agent": {"type": "aider", "instructions": "do it"}}
    [task] = service.prepare(document, source="request", base_dir=tmp_path).tasks
    assert task.agent.type == "aider"
    with pytest.raises(TaskFileError, match="unknown agent type 'aider'"):
        Service(Settings(data_dir=tmp_path / "d2"), MemoryStore()).prepare(
            document, source="request", base_dir=tmp_path
        )
