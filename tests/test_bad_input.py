"""Bad flow files, as users write them: each is a real file loaded through the public path.

Every case names the exact line (and column where it matters) and the words the message must hold.
A crash, a vague message or a wrong position is a bug in the loader or the validator, not in the case.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitsync.cli.main import main
from gitsync.flows.loader import Problem, load_paths
from runner.registry import Registry

WriteFlow = Callable[..., Path]


@dataclass(frozen=True)
class At:
    """An expected error: its 1-based line, its column (None: not checked) and words of its message."""

    line: int | None
    column: int | None
    words: tuple[str, ...]


def at(line: int | None, column: int | None, *words: str) -> At:
    return At(line, column, words)


def _alias_bomb() -> str:
    """Nine levels of nine aliases: about 400 million nodes once expanded."""
    lines = ["id: lol", "namespace: acme", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
        previous = name
    return "\n".join(lines) + "\n"


YAML_CASES: list[Any] = [
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks: [
          {id: hello, type: io.kestra.plugin.core.log.Log, message: hi}
        """,
        [at(5, 1, "invalid YAML", "opened with '[' at line 3, column 8", "not closed")],
        id="yaml-unclosed-bracket",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
           message: hi
        """,
        [at(6, 4, "invalid YAML", "list that starts at line 4", "check the indentation")],
        id="yaml-bad-indentation",
    ),
    pytest.param(
        "id: demo\nnamespace: acme\ntasks:\n  - id: hello\n\ttype: io.kestra.plugin.core.log.Log\n",
        [at(5, 1, "invalid YAML", "tab", "indent with spaces")],
        id="yaml-tab-indentation",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: {{ inputs.name }}
        """,
        [at(6, 14, "invalid YAML", "starts with {{ must be quoted", '"{{ ... }}"')],
        id="yaml-unquoted-expression",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        description: note: this breaks
        tasks: []
        """,
        [at(3, 18, "invalid YAML", "unexpected ':'", "quote a value")],
        id="yaml-colon-in-plain-value",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        description: "never closed
        tasks: []
        """,
        [at(5, 1, "invalid YAML", "quoted scalar")],
        id="yaml-unclosed-quote",
    ),
    pytest.param(
        "- id: demo\n- namespace: acme\n",
        [at(1, 1, "must be a mapping with id, namespace and tasks", "holds a list")],
        id="not-a-mapping-list",
    ),
    pytest.param(
        "just some words\n",
        [at(1, 1, "must be a mapping", "holds 'just some words'")],
        id="not-a-mapping-scalar",
    ),
    pytest.param("", [at(1, 1, "must be a mapping", "is empty")], id="empty-file"),
    pytest.param("# a flow\n# (to be written)\n", [at(1, 1, "is empty")], id="only-comments"),
    pytest.param(
        """\
        id: one
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        ---
        id: two
        namespace: acme
        """,
        [at(7, 1, "one YAML document", "second one starts here (---)")],
        id="two-documents",
    ),
    pytest.param(
        "---\nid: one\nnamespace: acme\n---\n",
        [at(4, 1, "one YAML document")],
        id="two-documents-with-leading-marker",
    ),
    pytest.param(
        b"id: demo\nnamespace: acme\ndescription: caf\xe9\n",
        [at(3, 17, "not UTF-8", "0xe9", "save the file as UTF-8")],
        id="not-utf8",
    ),
    pytest.param(b"id: demo\nname\x00space: acme\n", [at(2, 5, "binary file", "NUL")], id="binary-nul"),
    pytest.param(
        "id: demo\nnamespace: acme\n" + "# padding\n" * 110_000,
        [at(None, None, "larger than 1 MiB", "limited to 1 MiB")],
        id="over-1-mib",
    ),
    pytest.param(_alias_bomb(), [at(8, 4, "aliases expand to more than 100,000 nodes", "alias bomb")], id="alias-bomb"),
    pytest.param(
        "id: demo\nnamespace: acme\nvariables: &loop\n  again: *loop\n",
        [at(3, 12, "alias refers to a node that contains it", "recursive")],
        id="recursive-alias",
    ),
    pytest.param(
        "id: demo\nnamespace: acme\nvariables:\n  password: ** redacted **\n",
        [at(4, 13, "invalid YAML", "starts with '*' must be quoted")],
        id="yaml-unquoted-star",
    ),
    pytest.param(
        "id: demo\nnamespace: acme\nvariables:\n  copy: *base\n",
        [at(4, 9, "undefined alias *base", "no anchor &base")],
        id="yaml-undefined-alias",
    ),
    pytest.param(
        "id: !!python/object/apply:os.system ['true']\nnamespace: acme\n",
        [at(1, 5, "unsupported YAML tag", "!!python/object/apply:os.system")],
        id="python-tag-refused",
    ),
]

DUPLICATE_KEY_CASES: list[Any] = [
    pytest.param(
        """\
        id: demo
        namespace: acme
        id: other
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(3, 1, "duplicate key 'id'", "first at line 1")],
        id="duplicate-key-top-level",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
            message: ho
        """,
        [at(7, 5, "duplicate key 'message'", "first at line 6")],
        id="duplicate-key-in-task",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: steps
            type: io.kestra.plugin.core.flow.Sequential
            tasks:
              - id: hello
                type: io.kestra.plugin.core.log.Log
                type: io.kestra.plugin.core.log.Log
                message: hi
        """,
        [at(9, 9, "duplicate key 'type'", "first at line 8")],
        id="duplicate-key-in-nested-task",
    ),
]

FLOW_CASES: list[Any] = [
    pytest.param(
        """\
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(1, 1, "missing required property 'id'")],
        id="missing-id",
    ),
    pytest.param(
        """\
        id: demo
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(1, 1, "missing required property 'namespace'")],
        id="missing-namespace",
    ),
    pytest.param("id: demo\nnamespace: acme\n", [at(1, 1, "missing required property 'tasks'")], id="missing-tasks"),
    pytest.param(
        "id: demo\nnamespace: acme\ntasks: []\n", [at(3, 1, "'tasks' is empty", "at least one task")], id="empty-tasks"
    ),
    pytest.param(
        "id: demo\nnamespace: acme\ntasks:\n  id: hello\n", [at(3, 1, "must be a list of tasks")], id="tasks-not-a-list"
    ),
    pytest.param(
        """\
        id: demo
        namespace: Acme.Data
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(2, 1, "'Acme.Data' is not valid", "lower-case")],
        id="namespace-uppercase",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: say.hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(4, 5, "'say.hello' is not valid", "no dots")],
        id="task-id-with-dots",
    ),
    pytest.param(
        f"id: {'f' * 101}\nnamespace: acme\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\n",
        [at(1, 1, "101 characters long", "limit is 100")],
        id="flow-id-101-chars",
    ),
    pytest.param(
        f"id: demo\nnamespace: {'n' * 151}\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\n",
        [at(2, 1, "151 characters long", "limit is 150")],
        id="namespace-151-chars",
    ),
    pytest.param(
        "id: -demo\nnamespace: acme\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n",
        [at(1, 1, "'-demo' is not valid", "starts with a letter or digit")],
        id="flow-id-starts-with-dash",
    ),
    pytest.param(
        "id: executions\nnamespace: acme\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n",
        [at(1, 1, "flow id 'executions' is reserved", "choose another id")],
        id="reserved-flow-id",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        taks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(3, 1, "unknown property 'taks'", "did you mean 'tasks'?")],
        id="unknown-top-level-key-did-you-mean",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        owner: data-team
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(3, 1, "unknown property 'owner'")],
        id="unknown-top-level-key",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        labels:
          system.owner: me
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(3, 1, "label key 'system.owner' is reserved", "only system.readOnly")],
        id="label-key-system-prefix",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        concurrency:
          limit: 0
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
        [at(4, 3, "must be greater than 0", "got 0")],
        id="concurrency-limit-zero",
    ),
]

TASK_CASES: list[Any] = [
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            mesage: hi
        """,
        [at(6, 5, "unknown property 'mesage'", "did you mean 'message'?", "io.kestra.plugin.core.log.Log")],
        id="unknown-task-property-did-you-mean",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: run
            type: io.kestra.plugin.scripts.shell.Comands
            commands: [ls]
        """,
        [at(5, 5, "unknown task type 'io.kestra.plugin.scripts.shell.Comands'", "did you mean", "shell.Commands")],
        id="unknown-task-type-close-match",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: upload
            type: io.kestra.plugin.aws.dynamodb.PutItem
            tableName: data
        """,
        [at(5, 5, "unknown task type 'io.kestra.plugin.aws.dynamodb.PutItem'", "no installed plugin provides it")],
        id="unknown-task-type-no-plugin",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: nightly
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "@daily"
        """,
        [at(5, 5, "is a trigger type, not a task type", "move it under triggers:")],
        id="trigger-type-used-as-task",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            message: hi
        """,
        [at(4, 5, "task 'hello' has no 'type'", "type: io.kestra.plugin.core.log.Log")],
        id="task-without-type",
    ),
    pytest.param(
        "id: demo\nnamespace: acme\ntasks:\n  - hello\n",
        [at(4, 5, "each task must be a mapping with an id and a type", "not 'hello'")],
        id="task-not-a-mapping",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: run
            type: io.kestra.plugin.scripts.shell.Commands
            commands: ls -la
        """,
        [at(6, 5, "expected a list or a {{ expression }}", "got 'ls -la'")],
        id="string-where-list-required",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: child
            type: io.kestra.plugin.core.flow.Subflow
            namespace: acme
            flowId:
              name: other
        """,
        [at(7, 5, "expected a string", "got a mapping")],
        id="mapping-where-string-required",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: fan
            type: io.kestra.plugin.core.flow.Parallel
            concurrent: many
            tasks:
              - id: hello
                type: io.kestra.plugin.core.log.Log
                message: hi
        """,
        [at(6, 5, "expected an integer", "got 'many'")],
        id="word-where-int-required",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: child
            type: io.kestra.plugin.core.flow.Subflow
            namespace: acme
            flowId: other
            revision: latest
        """,
        [at(8, 5, "expected an integer or a {{ expression }}", "got 'latest'")],
        id="word-where-int-or-expression-required",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
            timeout: 5 minutes
        """,
        [at(7, 5, "'5 minutes' is not an ISO-8601 duration", "PT5M")],
        id="bad-iso-duration",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
            retry:
              type: sometimes
              interval: PT1M
        """,
        [at(8, 7, "unknown type 'sometimes'", "constant, exponential, random")],
        id="retry-unknown-type",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
            retry:
              type: constant
              maxAttempts: 3
        """,
        [at(8, 7, "missing required property 'interval'")],
        id="retry-missing-interval",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: again
            type: io.kestra.plugin.core.flow.Subflow
            namespace: acme
            flowId: demo
        """,
        [at(4, 5, "task 'again' calls its own flow acme.demo", "recursive")],
        id="subflow-calls-itself",
    ),
]

DUPLICATE_ID_CASES: list[Any] = [
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
          - id: hello
            type: io.kestra.plugin.core.debug.Return
        """,
        [at(7, 5, "duplicate task id 'hello'", "first defined at line 4")],
        id="duplicate-task-id-siblings",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
          - id: steps
            type: io.kestra.plugin.core.flow.Sequential
            tasks:
              - id: hello
                type: io.kestra.plugin.core.debug.Return
        """,
        [at(10, 9, "duplicate task id 'hello'", "first defined at line 4")],
        id="duplicate-task-id-in-sequential",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: check
            type: io.kestra.plugin.core.flow.If
            condition: "{{ true }}"
            then:
              - id: say
                type: io.kestra.plugin.core.debug.Return
            else:
              - id: say
                type: io.kestra.plugin.core.debug.Return
        """,
        [at(11, 9, "duplicate task id 'say'", "first defined at line 8")],
        id="duplicate-task-id-in-if-branches",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: route
            type: io.kestra.plugin.core.flow.Switch
            value: "{{ inputs.kind }}"
            cases:
              A:
                - id: route
                  type: io.kestra.plugin.core.debug.Return
        """,
        [at(9, 11, "duplicate task id 'route'", "first defined at line 4")],
        id="duplicate-task-id-in-switch-case",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: each
            type: io.kestra.plugin.core.flow.ForEach
            values: [a, b]
            tasks:
              - id: work
                type: io.kestra.plugin.core.debug.Return
              - id: work
                type: io.kestra.plugin.core.debug.Return
        """,
        [at(10, 9, "duplicate task id 'work'", "first defined at line 8")],
        id="duplicate-task-id-in-foreach",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.debug.Return
        errors:
          - id: hello
            type: io.kestra.plugin.core.debug.Return
        """,
        [at(7, 5, "duplicate task id 'hello'", "first defined at line 4")],
        id="duplicate-task-id-in-errors",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.debug.Return
        finally:
          - id: hello
            type: io.kestra.plugin.core.debug.Return
        """,
        [at(7, 5, "duplicate task id 'hello'", "first defined at line 4")],
        id="duplicate-task-id-in-finally",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.debug.Return
        triggers:
          - id: nightly
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "0 2 * * *"
          - id: nightly
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "0 3 * * *"
        """,
        [at(10, 5, "duplicate trigger id 'nightly'", "first defined at line 7")],
        id="duplicate-trigger-id",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        inputs:
          - id: day
            type: STRING
          - id: day
            type: DATE
        tasks:
          - id: hello
            type: io.kestra.plugin.core.debug.Return
        """,
        [at(6, 5, "duplicate input id 'day'", "first defined at line 4")],
        id="duplicate-input-id",
    ),
]


def _schedule(cron: str, extra: str = "") -> str:
    """A valid flow whose one Schedule trigger has `cron` on line 9."""
    return (
        "id: demo\nnamespace: acme\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.debug.Return\n"
        f"triggers:\n  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: {cron!r}\n{extra}"
    )


TRIGGER_CASES: list[Any] = [
    pytest.param(
        "id: demo\nnamespace: acme\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\ntriggers: x\n",
        [at(6, 1, "must be a list of triggers")],
        id="triggers-not-a-list",
    ),
    pytest.param(
        _schedule("@daily", "    recoverMissedSchedules: SOME\n"),
        [at(10, 5, "expected one of 'ALL', 'LAST' or 'NONE'", "got 'SOME'")],
        id="schedule-bad-enum",
    ),
    pytest.param(_schedule("61 * * * *"), [at(9, 5, "minute value 61 is out of range 0-59")], id="cron-minute-61"),
    pytest.param(_schedule("0 24 * * *"), [at(9, 5, "hour value 24 is out of range 0-23")], id="cron-hour-24"),
    pytest.param(_schedule("0 0 0 * *"), [at(9, 5, "day-of-month value 0 is out of range 1-31")], id="cron-dom-0"),
    pytest.param(_schedule("0 0 32 * *"), [at(9, 5, "day-of-month value 32 is out of range")], id="cron-dom-32"),
    pytest.param(_schedule("0 0 1 13 *"), [at(9, 5, "month value 13 is out of range 1-12")], id="cron-month-13"),
    pytest.param(_schedule("0 0 * * 8"), [at(9, 5, "day-of-week value 8 is out of range 0-7")], id="cron-dow-8"),
    pytest.param(_schedule("*/0 * * * *"), [at(9, 5, "step '0' must be a positive number")], id="cron-step-zero"),
    pytest.param(_schedule("every day"), [at(9, 5, "has 2 fields, expected 5")], id="cron-words"),
    pytest.param(
        _schedule("0 0 2 * * *"), [at(9, 5, "has 6 fields, expected 5", "withSeconds: true")], id="cron-6-fields"
    ),
    pytest.param(
        _schedule("@daily", "    timezone: Europe/Pariss\n"),
        [at(10, 5, "unknown timezone 'Europe/Pariss'", "IANA name")],
        id="unknown-timezone",
    ),
]


def _input(body: str) -> str:
    """A flow whose inputs list starts on line 4 with `body` (indented four spaces under `- `)."""
    return (
        f"id: demo\nnamespace: acme\ninputs:\n  - {body.strip()}\n"
        "tasks:\n  - id: hello\n    type: io.kestra.plugin.core.debug.Return\n"
    )


INPUT_CASES: list[Any] = [
    pytest.param(
        _input("id: n\n    type: INT\n    defaults: abc"),
        [at(6, 5, "does not fit type INT", "expected an integer", "got 'abc'")],
        id="input-int-default-abc",
    ),
    pytest.param(
        _input("id: b\n    type: BOOLEAN\n    defaults: maybe"),
        [at(6, 5, "does not fit type BOOLEAN", "expected true or false", "got 'maybe'")],
        id="input-boolean-default-maybe",
    ),
    pytest.param(
        _input("id: d\n    type: DATE\n    defaults: tomorrow"),
        [at(6, 5, "does not fit type DATE", "ISO-8601 date", "got 'tomorrow'")],
        id="input-date-default-tomorrow",
    ),
    pytest.param(
        _input("id: s\n    type: SELECT\n    values: [eu, us]\n    defaults: asia"),
        [at(7, 5, "'asia' is not one of the values", "eu", "us")],
        id="input-select-default-not-a-value",
    ),
    pytest.param(
        _input("id: n\n    type: INTEGER"),
        [at(5, 5, "unknown type 'INTEGER'", "did you mean INT?")],
        id="input-unknown-type-did-you-mean",
    ),
    pytest.param(
        _input("id: n"),
        [at(4, 5, "missing required property 'type'")],
        id="input-without-type",
    ),
]

# `{{ outputs.X }}` naming no task of the flow is a warning (Kestra accepts it): tests/test_output_references.py.

THREE_MISTAKES = """\
id: demo
namespace: acme
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    mesage: hi
  - id: run
    type: io.kestra.plugin.scripts.shell.Comands
  - id: bad.id
    type: io.kestra.plugin.core.debug.Return
"""

MISC_CASES: list[Any] = [
    pytest.param(
        THREE_MISTAKES,
        [at(6, 5, "unknown property 'mesage'"), at(8, 5, "unknown task type"), at(9, 5, "'bad.id' is not valid")],
        id="three-mistakes-in-line-order",
    ),
    pytest.param(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
        """,
        [at(4, 5, "missing required property 'message'")],
        id="task-missing-required-property",
    ),
]

ALL_CASES = (
    YAML_CASES
    + DUPLICATE_KEY_CASES
    + FLOW_CASES
    + TASK_CASES
    + DUPLICATE_ID_CASES
    + TRIGGER_CASES
    + INPUT_CASES
    + MISC_CASES
)


def assert_problems(problems: list[Problem], expected: list[At]) -> None:
    """The errors are exactly the expected ones, in this order, at these places, with these words."""
    shown = "\n".join(p.format() for p in problems)
    assert len(problems) == len(expected), f"expected {len(expected)} error(s), got:\n{shown}"
    for problem, want in zip(problems, expected, strict=True):
        assert problem.line == want.line, f"wrong line:\n{shown}"
        if want.column is not None:
            assert problem.column == want.column, f"wrong column:\n{shown}"
        for word in want.words:
            assert word in problem.message, f"{word!r} not in:\n{shown}"


@pytest.mark.parametrize(("content", "expected"), ALL_CASES)
def test_bad_input(write_flow: WriteFlow, registry: Registry, content: str | bytes, expected: list[At]) -> None:
    path = write_flow(content)
    result = load_paths([path], registry)
    assert not result.ok
    [loaded] = result.files
    assert loaded.flow is None
    assert_problems(loaded.errors, expected)


def test_case_count() -> None:
    assert len(ALL_CASES) >= 60


def test_alias_bomb_is_refused_quickly(write_flow: WriteFlow, registry: Registry) -> None:
    path = write_flow(_alias_bomb())
    started = time.perf_counter()
    result = load_paths([path], registry)
    assert time.perf_counter() - started < 0.5
    assert "alias bomb" in result.errors[0].message


def test_every_error_of_a_file_is_reported_in_line_order(write_flow: WriteFlow, registry: Registry) -> None:
    path = write_flow(THREE_MISTAKES)
    errors = load_paths([path], registry).errors
    assert [e.line for e in errors] == [6, 8, 9]
    assert all(e.flow == "acme.demo" for e in errors)


# ---------------------------------------------------------------------------------------------------------------
# Rules that need more than one file, a source prefix, or the file system


VALID = """\
id: {id}
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_namespace_outside_the_source_prefix(write_flow: WriteFlow, registry: Registry) -> None:
    inside = write_flow(VALID.format(id="ok", namespace="acme.data"), "ok.yaml")
    outside = write_flow(VALID.format(id="etl", namespace="other.data"), "etl.yaml")
    result = load_paths([inside, outside], registry, namespace_prefix="acme")
    assert_problems(result.errors, [at(2, 1, "'other.data' is outside this source's prefix 'acme'", "acme.team")])
    assert result.errors[0].path.endswith("etl.yaml")
    assert [f.ok for f in result.files] == [True, False]


def test_prefix_is_a_namespace_boundary_not_a_string_prefix(write_flow: WriteFlow, registry: Registry) -> None:
    path = write_flow(VALID.format(id="etl", namespace="acmecorp"))
    assert "outside this source's prefix" in load_paths([path], registry, namespace_prefix="acme").errors[0].message


def test_duplicate_uid_across_files_names_the_first_file(write_flow: WriteFlow, registry: Registry) -> None:
    first = write_flow(VALID.format(id="etl", namespace="acme"), "a/etl.yaml")
    second = write_flow("# the same flow again\n" + VALID.format(id="etl", namespace="acme"), "b/etl.yaml")
    result = load_paths([first.parent.parent], registry)
    assert_problems(result.errors, [at(2, 1, "flow 'acme.etl' is also defined in", "exactly one file")])
    problem = result.errors[0]
    assert problem.path.endswith("b/etl.yaml")
    assert str(first) in problem.message or "a/etl.yaml" in problem.message
    assert {f.path.endswith("a/etl.yaml"): f.ok for f in result.files} == {True: True, False: False}
    assert second.exists()


def test_legacy_alias_is_a_warning_not_an_error(write_flow: WriteFlow, registry: Registry) -> None:
    path = write_flow(
        """\
        id: demo
        namespace: acme
        tasks:
          - id: hello
            type: io.kestra.core.tasks.log.Log
            message: hi
        """
    )
    result = load_paths([path], registry)
    assert result.ok
    [warning] = result.all_problems
    assert (warning.severity, warning.line, warning.column) == ("warning", 5, 5)
    assert "io.kestra.plugin.core.log.Log" in warning.message
    assert result.files[0].flow is not None


def test_symlinked_file_and_folder_are_skipped_with_a_warning(
    tmp_path: Path, write_flow: WriteFlow, registry: Registry
) -> None:
    real = write_flow(VALID.format(id="real", namespace="acme"), "outside/real.yaml")
    write_flow(VALID.format(id="other", namespace="acme"), "outside/other.yaml")
    root = tmp_path / "flows"
    root.mkdir()
    (root / "link.yaml").symlink_to(real)
    (root / "linked-folder").symlink_to(real.parent, target_is_directory=True)
    write_flow(VALID.format(id="kept", namespace="acme"), "flows/kept.yaml")
    result = load_paths([root], registry)
    assert result.ok
    assert [f.flow.uid for f in result.files if f.flow] == ["acme.kept"]
    warnings = sorted(p.path.rsplit("/", 1)[-1] for p in result.all_problems if p.severity == "warning")
    assert warnings == ["link.yaml", "linked-folder"]
    assert all("symbolic link ignored" in p.message for p in result.all_problems)


def test_valid_file_next_to_invalid_ones_still_validates(write_flow: WriteFlow, registry: Registry) -> None:
    write_flow(VALID.format(id="good", namespace="acme"), "flows/good.yaml")
    write_flow("id: bad\nnamespace: acme\ntasks: [\n", "flows/bad.yaml")
    write_flow(THREE_MISTAKES, "flows/worse.yml")
    result = load_paths([write_flow("", "flows/empty.yaml").parent], registry)
    assert not result.ok
    by_name = {f.path.rsplit("/", 1)[-1]: f for f in result.files}
    assert {name: f.ok for name, f in by_name.items()} == {
        "bad.yaml": False,
        "empty.yaml": False,
        "good.yaml": True,
        "worse.yml": False,
    }
    assert set(result.flows) == {"acme.good"}
    assert {p.path.rsplit("/", 1)[-1] for p in result.errors} == {"bad.yaml", "empty.yaml", "worse.yml"}


def test_truncated_files_never_crash_the_loader(write_flow: WriteFlow, registry: Registry) -> None:
    """Every prefix of a valid flow is loaded without an exception (bad content never raises)."""
    text = (
        THREE_MISTAKES + 'triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: "@daily"\n'
    )
    for end in range(len(text)):
        path = write_flow(text[:end], f"cut/{end}.yaml")
        for loaded in load_paths([path], registry).files:
            assert all(p.message for p in loaded.problems)


# ---------------------------------------------------------------------------------------------------------------
# The same mistakes through the real command line: exit 1 and `file:line:col: ...`

CLI_IDS = {
    "yaml-unclosed-bracket",
    "yaml-tab-indentation",
    "yaml-unquoted-expression",
    "two-documents",
    "not-utf8",
    "alias-bomb",
    "duplicate-key-in-task",
    "unknown-top-level-key-did-you-mean",
    "unknown-task-type-close-match",
    "word-where-int-or-expression-required",
    "duplicate-task-id-in-sequential",
    "cron-6-fields",
    "input-int-default-abc",
    "outputs-of-unknown-task",
}
CLI_CASES = [case for case in ALL_CASES if case.id in CLI_IDS]


@pytest.mark.parametrize(("content", "expected"), CLI_CASES)
def test_cli_reports_file_line_column(
    write_flow: WriteFlow, capsys: pytest.CaptureFixture[str], content: str | bytes, expected: list[At]
) -> None:
    path = write_flow(content)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    want = expected[0]
    place = f"{path}:{want.line}:" + (f"{want.column}:" if want.column is not None else "")
    [line] = [line for line in out.splitlines() if line.startswith(place)]
    assert all(word in line for word in want.words), out
    assert "1 invalid" in out


def test_cli_as_a_process(write_flow: WriteFlow) -> None:
    import subprocess
    import sys

    path = write_flow(THREE_MISTAKES)
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines[:3]] == [f"{path}:6:5", f"{path}:8:5", f"{path}:9:5"]
