"""Flow outputs are typed as Kestra types them: a STRING output is a string (a map or list renders to its JSON), and
every other type is coerced as an input of that type would be; a value that does not fit fails the execution."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime

TYPED = """
id: typed
namespace: acme
tasks:
  - id: vals
    type: io.kestra.plugin.core.output.OutputValues
    values:
      count: "7"
      ratio: "0.5"
      flag: "true"
      day: "2024-01-02"
      doc:
        a: 1
        b: [1, 2.5, "x"]
      items: ["3", "4"]
outputs:
  - id: map_text
    type: STRING
    value: "{{ outputs.vals.values.doc }}"
  - id: list_text
    type: STRING
    value: "{{ outputs.vals.values.items }}"
  - id: number_text
    type: STRING
    value: "{{ 40 + 2 }}"
  - id: literal_text
    type: STRING
    value: 12
  - id: count
    type: INT
    value: "{{ outputs.vals.values.count }}"
  - id: ratio
    type: FLOAT
    value: "{{ outputs.vals.values.ratio }}"
  - id: flag
    type: BOOLEAN
    value: "{{ outputs.vals.values.flag }}"
  - id: day
    type: DATE
    value: "{{ outputs.vals.values.day }}"
  - id: doc
    type: JSON
    value: "{{ outputs.vals.values.doc }}"
  - id: doc_from_text
    type: JSON
    value: '{"k": "v"}'
  - id: items
    type: ARRAY
    value: "{{ outputs.vals.values.items }}"
  - id: pair
    type: ARRAY
    value:
      - "{{ outputs.vals.values.count }}"
      - "{{ outputs.vals.values.day }}"
  - id: untyped
    value: "{{ outputs.vals.values.doc }}"
"""


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


def test_each_output_is_coerced_to_its_type(rt: Runtime) -> None:
    rt.deploy({"typed.yaml": TYPED})
    execution = rt.run("acme.typed")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert execution["outputs"] == {
        "map_text": '{"a":1,"b":[1,2.5,"x"]}',
        "list_text": '["3","4"]',
        "number_text": "42",
        "literal_text": "12",
        "count": 7,
        "ratio": 0.5,
        "flag": True,
        "day": "2024-01-02",
        "doc": {"a": 1, "b": [1, 2.5, "x"]},
        "doc_from_text": {"k": "v"},
        "items": ["3", "4"],
        "pair": ["7", "2024-01-02"],  # each item of a list rendered
        "untyped": '{"a":1,"b":[1,2.5,"x"]}',  # an output without a type is a STRING
    }


def test_a_parent_reads_its_subflow_s_typed_outputs(rt: Runtime) -> None:
    rt.deploy(
        {
            "typed.yaml": TYPED,
            "parent.yaml": """
            id: parent
            namespace: acme
            tasks:
              - id: run
                type: io.kestra.plugin.core.flow.Subflow
                namespace: acme
                flowId: typed
              - id: use
                type: io.kestra.plugin.core.debug.Return
                format: "{{ outputs.run.outputs.count + 1 }} {{ outputs.run.outputs.map_text | length }}"
            """,
        }
    )
    execution = rt.run("acme.parent")
    assert execution["state"] == "SUCCESS", execution["error"]
    use = next(r for r in execution["task_runs"] if r["task_id"] == "use")
    assert use["outputs"]["value"] == "8 23"  # 7 + 1, and the length of the JSON text


def test_an_output_that_does_not_fit_its_type_fails_the_execution(rt: Runtime) -> None:
    rt.deploy(
        {
            "bad.yaml": """
            id: bad
            namespace: acme
            tasks:
              - id: word
                type: io.kestra.plugin.core.debug.Return
                format: seven
            outputs:
              - id: n
                type: INT
                value: "{{ outputs.word.value }}"
            """
        }
    )
    execution = rt.run("acme.bad")
    assert execution["state"] == "FAILED"
    assert execution["outputs"] == {}
    assert execution["error"] == "flow output 'n' of type INT: expected an integer, got 'seven'"
