"""Kestra fidelity of expressions (issue #11): input defaults, typed inputs as Kestra prints them, the functions
that read the running execution, and Kestra's argument names for every filter and function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime, deployed_state, gitsync_cli


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


# ---------------------------------------------------------------------------------------------- input defaults


DEFAULTS_FLOW = """
    id: defaults
    namespace: acme
    inputs:
      - id: region
        type: STRING
        defaults: eu
      - id: bucket
        type: STRING
        defaults: "data-{{ inputs.region }}"
      - id: since
        type: STRING
        defaults: "{{ nope.day }}"
    tasks:
      - id: show
        type: io.kestra.plugin.core.debug.Return
        format: "{{ inputs.bucket }} {{ inputs.since }}"
"""


def test_an_undefined_variable_in_an_input_default_is_an_input_error(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"defaults.yaml": DEFAULTS_FLOW})
    done = gitsync_cli(state, "run", "acme.defaults")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "input 'since'" in done.stderr
    assert "undefined variable 'nope.day'" in done.stderr
    assert "default" in done.stderr
    listed = gitsync_cli(state, "executions", "--flow", "acme.defaults", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    # given a value, the default is not rendered, and a default may use the inputs declared before it
    done = gitsync_cli(state, "run", "acme.defaults", "--input", "since=monday")
    assert done.returncode == 0, done.stdout + done.stderr
    (execution,) = json.loads(gitsync_cli(state, "executions", "--flow", "acme.defaults", "--format", "json").stdout)
    assert execution["inputs"] == {"region": "eu", "bucket": "data-eu", "since": "monday"}
