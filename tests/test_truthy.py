"""The one truthiness rule (runner.truthy, Kestra's TruthUtils) and the tasks that judge conditions with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime import Runtime

from runner.truthy import truthy

RULE = [
    # (id, value, truthy?)
    ("true", True, True),
    ("false", False, False),
    ("none", None, False),
    ("text-true", "true", True),
    ("text-True", "True", True),
    ("text-false", "false", False),
    ("text-FALSE-padded", "  FALSE ", False),
    ("text-zero", "0", False),
    ("text-minus-zero", "-0", False),
    ("text-empty", "", False),
    ("text-blank", "   ", False),
    ("text-null", "null", False),
    ("text-None", "None", False),
    ("text-no", "no", True),
    ("text-off", "off", True),
    ("text-yes", "yes", True),
    ("text-one", "1", True),
    ("text-zero-point-zero", "0.0", True),
    ("text-empty-list", "[]", True),
    ("text-sentence", "This should be true", True),
    ("int-zero", 0, False),
    ("int-one", 1, True),
    ("int-negative", -3, True),
    ("float-zero", 0.0, False),
    ("float-minus-zero", -0.0, False),
    ("float", 0.5, True),
    ("empty-list", [], True),
    ("list", [0], True),
    ("empty-map", {}, True),
    ("map", {"a": 1}, True),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in RULE], ids=[c[0] for c in RULE])
def test_truthy_rule(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


AGREEMENT = [
    ("no", "'no'", True),
    ("minus-zero", "'-0'", False),
    ("empty-list", "[]", True),
    ("zero", "0", False),
    ("false-text", "'False'", False),
    ("yes", "'yes'", True),
]


@pytest.mark.parametrize(("expression", "expected"), [c[1:] for c in AGREEMENT], ids=[c[0] for c in AGREEMENT])
def test_if_fail_and_run_if_judge_a_value_alike(rt: Runtime, expression: str, expected: bool) -> None:
    condition = "{{ " + expression + " }}"
    rt.deploy(
        {
            "judge.yaml": f"""
            id: judge
            namespace: acme
            tasks:
              - id: branch
                type: io.kestra.plugin.core.flow.If
                condition: "{condition}"
                then:
                  - id: in_then
                    type: io.kestra.plugin.core.debug.Return
                    format: then
                else:
                  - id: in_else
                    type: io.kestra.plugin.core.debug.Return
                    format: else
              - id: guarded
                type: io.kestra.plugin.core.debug.Return
                format: ran
                runIf: "{condition}"
              - id: fail
                type: io.kestra.plugin.core.execution.Fail
                condition: "{condition}"
                allowFailure: true
            """
        }
    )
    execution = rt.run("acme.judge")
    states = rt.states(execution)
    branch = next(r for r in execution["task_runs"] if r["task_id"] == "branch")
    assert branch["outputs"] == {"evaluationResult": expected}
    assert ("in_then" in states) is expected and ("in_else" in states) is not expected
    assert states["guarded"] == ("SUCCESS" if expected else "SKIPPED")
    assert states["fail"] == ("WARNING" if expected else "SUCCESS")  # failed, allowed: recorded WARNING as in Kestra
