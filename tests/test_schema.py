"""`gitsync schema`: a JSON Schema editors can use, that the example flows satisfy."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from gitsync.cli.main import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "flows"


@pytest.fixture(scope="module")
def schema() -> dict:
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["schema"]) == 0
    return json.loads(buffer.getvalue())


def test_schema_is_a_valid_draft7_schema(schema: dict) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    assert set(schema["required"]) >= {"id", "namespace", "tasks"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.yaml")), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_validates_against_the_schema(schema: dict, path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_properties_carry_their_descriptions(schema: dict) -> None:
    defs = schema["$defs"]
    task_ids = [name for name in defs if defs[name].get("properties", {}).get("id", {}).get("description")]
    assert task_ids, "task ids should be described"
    task_dispatch = defs["Task"]
    assert "io.kestra.plugin.core.log.Log" in task_dispatch["properties"]["type"]["enum"]
    assert "io.kestra.core.tasks.log.Log" in task_dispatch["properties"]["type"]["enum"]


@pytest.mark.parametrize(
    "flow",
    [
        pytest.param({"id": "x", "namespace": "a", "tasks": [{"id": "t", "type": "no.such.Type"}]}, id="unknown-type"),
        pytest.param(
            {"id": "x", "namespace": "a", "tasks": [{"id": "t", "type": "io.kestra.plugin.core.log.Log"}]},
            id="missing-required-property",
        ),
        pytest.param(
            {
                "id": "x",
                "namespace": "a",
                "tasks": [{"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": "m", "oops": 1}],
            },
            id="unknown-property",
        ),
        pytest.param({"id": "x", "namespace": "a", "tasks": []}, id="no-tasks"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(schema: dict, flow: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(flow, schema)
