"""The loader's pieces: positions (locate), bytes to text (decode), duplicate keys, Jackson-like keys and values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitsync.flows.loader import Problem, format_loc, load_flow_source, load_flow_sources, load_paths
from gitsync.flows.yaml_source import MAX_FILE_BYTES, SourceError, decode, locate, parse
from runner.registry import Registry

WriteFlow = Callable[..., Path]

DOC = """\
id: demo
namespace: acme
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: steps
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: inner
        type: io.kestra.plugin.core.debug.Return
"""


@pytest.mark.parametrize(
    ("loc", "at_key", "expected"),
    [
        pytest.param(("id",), True, (1, 1), id="top-level-key"),
        pytest.param(("id",), False, (1, 5), id="top-level-value"),
        pytest.param(("tasks", 0, "message"), True, (6, 5), id="key-in-list-item"),
        pytest.param(("tasks", 0, "message"), False, (6, 14), id="value-in-list-item"),
        pytest.param(("tasks", 1), True, (7, 5), id="list-item"),
        pytest.param(("tasks", 1, "tasks", 0, "id"), True, (10, 9), id="nested-key"),
        pytest.param(("tasks", 1, "tasks", 0, "type"), False, (11, 15), id="nested-value"),
        pytest.param(("tasks", 0, "missing"), True, (4, 5), id="missing-key-points-at-its-mapping"),
        pytest.param(("tasks", 7, "id"), True, (3, 1), id="missing-item-points-at-the-list-key"),
        pytest.param(("tasks", 0), False, (4, 5), id="mapping-that-lacks-something"),
        pytest.param((), False, (1, 1), id="whole-document"),
    ],
)
def test_locate(loc: tuple[str | int, ...], at_key: bool, expected: tuple[int, int]) -> None:
    assert locate(parse(DOC).root, loc, at_key) == expected


def test_locate_without_a_document() -> None:
    assert locate(None, ("id",)) is None


def test_locate_finds_keys_that_yaml_reads_as_booleans_and_numbers() -> None:
    root = parse("cases:\n  true: [a]\n  no: [b]\n  1: [c]\n").root
    assert locate(root, ("cases", "true")) == (2, 3)
    assert locate(root, ("cases", "no")) == (3, 3)
    assert locate(root, ("cases", "1")) == (4, 3)


# ---------------------------------------------------------------------------------------------------------------
# decode


def test_decode_plain_and_bom() -> None:
    assert decode(b"id: a\n") == "id: a\n"
    assert decode("\ufeffid: é\n".encode()) == "id: é\n"


@pytest.mark.parametrize(
    ("data", "words", "line", "column"),
    [
        pytest.param(b"id: a\nx: caf\xe9\n", "invalid byte 0xe9", 2, 7, id="latin-1"),
        pytest.param(b"\xff\xfei\x00d\x00", "NUL", 1, 4, id="utf-16"),
        pytest.param(b"ab\ncd\x00", "NUL", 2, 3, id="nul"),
        pytest.param(b"#" * (MAX_FILE_BYTES + 1), "larger than 1 MiB", None, None, id="too-big"),
    ],
)
def test_decode_refuses(data: bytes, words: str, line: int | None, column: int | None) -> None:
    with pytest.raises(SourceError) as caught:
        decode(data)
    assert words in caught.value.message
    assert (caught.value.line, caught.value.column) == (line, column)


def test_decode_accepts_exactly_one_mebibyte() -> None:
    assert len(decode(b"#" * MAX_FILE_BYTES)) == MAX_FILE_BYTES


# ---------------------------------------------------------------------------------------------------------------
# duplicate keys, merge keys, keys and values as Jackson reads them


def test_merge_key_then_override_is_not_a_duplicate() -> None:
    parsed = parse("base: &base\n  a: 1\n  b: 2\nchild:\n  <<: *base\n  a: 3\n")
    assert parsed.duplicates == []
    assert parsed.data["child"] == {"a": 3, "b": 2}


def test_duplicate_after_a_merge_key_is_still_a_duplicate() -> None:
    parsed = parse("base: &base\n  a: 1\nchild:\n  <<: *base\n  a: 3\n  a: 4\n")
    [dup] = parsed.duplicates
    assert (dup.key, dup.line, dup.column, dup.first_line) == ("a", 6, 3, 5)


def test_two_merge_keys_are_not_duplicates() -> None:
    parsed = parse("x: &x {a: 1}\ny: &y {b: 2}\nz:\n  <<: *x\n  <<: *y\n")
    assert parsed.duplicates == []


def test_every_duplicate_is_recorded_with_its_first_line() -> None:
    parsed = parse("a: 1\nb: 2\na: 3\nb: 4\na: 5\n")
    assert [(d.key, d.line, d.first_line) for d in parsed.duplicates] == [("a", 3, 1), ("b", 4, 2), ("a", 5, 1)]


def test_yaml_11_boolean_and_number_keys_become_the_text_written() -> None:
    """Jackson names a field by its text: `true:` and `1:` are two keys (as Python values, True == 1)."""
    data = parse("cases:\n  true: [a]\n  off: [b]\n  1: [c]\n  2.5: [d]\n  ~: [e]\n  0x10: [f]\n").data
    assert data["cases"] == {"true": ["a"], "off": ["b"], "1": ["c"], "2.5": ["d"], "~": ["e"], "0x10": ["f"]}


def test_merge_keys_with_non_text_keys() -> None:
    data = parse("base: &base {1: one, true: yes}\nchild:\n  <<: *base\n  1: uno\n").data
    assert data["child"] == {"1": "uno", "true": True}


def test_complex_key_is_refused() -> None:
    with pytest.raises(SourceError, match="mapping key must be a plain value"):
        parse("? [a, b]\n: c\n")


def test_timestamps_stay_text() -> None:
    data = parse("day: 2024-01-31\nat: 2024-01-31T10:00:00Z\n").data
    assert data == {"day": "2024-01-31", "at": "2024-01-31T10:00:00Z"}


def test_switch_cases_with_boolean_keys_validate(registry: Registry) -> None:
    source = b"""\
id: demo
namespace: acme
tasks:
  - id: route
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.flag }}"
    cases:
      true:
        - id: yes_branch
          type: io.kestra.plugin.core.debug.Return
      false:
        - id: no_branch
          type: io.kestra.plugin.core.debug.Return
"""
    loaded = load_flow_source("switch.yaml", source, registry)
    assert loaded.ok, [p.format() for p in loaded.problems]
    assert set(loaded.flow.tasks[0].cases) == {"true", "false"}  # type: ignore[union-attr]


def test_shared_anchor_tasks_are_validated_in_place(registry: Registry) -> None:
    """A task block reused through an alias is a duplicate task id, and the YAML data is not modified."""
    source = b"""\
id: demo
namespace: acme
tasks:
  - &say
    id: say
    type: io.kestra.plugin.core.debug.Return
  - *say
"""
    loaded = load_flow_source("alias.yaml", source, registry)
    [error] = loaded.errors
    assert error.message.startswith("duplicate task id 'say' (the block is repeated through a YAML alias")
    assert error.where == "tasks[1].id"


# ---------------------------------------------------------------------------------------------------------------
# load_flow_source / load_flow_sources / Problem


GOOD = b"id: demo\nnamespace: acme\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.debug.Return\n"


def test_load_flow_source_returns_the_flow_and_its_text(registry: Registry) -> None:
    loaded = load_flow_source("demo.yaml", GOOD, registry)
    assert loaded.ok and loaded.flow is not None
    assert loaded.flow.uid == "acme.demo"
    assert loaded.text == GOOD.decode()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00", id="nul"),
        pytest.param(b"[" * 2000, id="deep-flow"),
        pytest.param(b"a:\n" + b"".join(b"  " * i + b"b:\n" for i in range(1, 3000)), id="deep-block"),
        pytest.param(b"&a [*a]", id="self-alias"),
        pytest.param(b"id: x\nnamespace: y\ntasks:\n  - {id: t, type: 5}\n", id="numeric-type"),
        pytest.param(
            b"id: x\nnamespace: y\ntasks:\n  - {id: [t], type: io.kestra.plugin.core.log.Log}\n", id="list-id"
        ),
        pytest.param(b"id: x\nnamespace: y\ntasks: [{}]\ntriggers: [{}]\ninputs: [{}]\n", id="empty-blocks"),
        pytest.param(b"id: x\nnamespace: y\ntasks: 3\ntriggers: 3\nerrors: {}\nlabels: 5\n", id="wrong-shapes"),
        pytest.param(b"? [a]\n: b\n", id="complex-key"),
    ],
)
def test_bad_content_never_raises(registry: Registry, data: bytes) -> None:
    loaded = load_flow_source("bad.yaml", data, registry)
    assert loaded.flow is None
    assert loaded.errors


def test_load_flow_sources_flags_the_later_file_of_a_duplicate_uid(registry: Registry) -> None:
    result = load_flow_sources([("b.yaml", GOOD), ("a.yaml", GOOD)], registry)
    [problem] = result.errors
    assert problem.path == "b.yaml"
    assert (problem.line, problem.column) == (1, 1)
    assert "also defined in a.yaml" in problem.message
    assert set(result.flows) == {"acme.demo"}


def test_load_paths_reports_a_missing_path(tmp_path: Path, registry: Registry) -> None:
    result = load_paths([tmp_path / "nope"], registry)
    assert [p.message for p in result.errors] == ["no such file or folder"]


def test_load_paths_reads_yaml_and_yml_and_skips_hidden_folders(write_flow: WriteFlow, registry: Registry) -> None:
    write_flow(GOOD, "flows/a.yaml")
    write_flow(GOOD.replace(b"demo", b"other"), "flows/b.yml")
    write_flow(b"not: a flow", "flows/.hidden/c.yaml")
    write_flow(b"not: a flow", "flows/readme.md")
    result = load_paths([write_flow(GOOD.replace(b"demo", b"third"), "flows/sub/c.yaml").parent.parent], registry)
    assert result.ok
    assert sorted(result.flows) == ["acme.demo", "acme.other", "acme.third"]


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (Problem("f.yaml", 3, 5, "bad"), "f.yaml:3:5: bad"),
        (Problem("f.yaml", 3, None, "bad"), "f.yaml:3: bad"),
        (Problem("f.yaml", None, None, "bad", "warning"), "f.yaml: warning: bad"),
        (Problem("f.yaml", 1, 1, "bad", flow="a.b", where="tasks[0].id"), "f.yaml:1:1: flow 'a.b': tasks[0].id: bad"),
    ],
)
def test_problem_format(problem: Problem, text: str) -> None:
    assert problem.format() == text


@pytest.mark.parametrize(
    ("loc", "text"),
    [(("tasks", 2, "commands"), "tasks[2].commands"), ((), ""), (("cases", "A", 0), "cases.A[0]")],
)
def test_format_loc(loc: tuple[Any, ...], text: str) -> None:
    assert format_loc(loc) == text
