"""`taskCache` (Kestra 0.24+): a runnable task whose rendered properties match a cache entry younger than `ttl` is
not run again; its task run is SUCCESS with the cached outputs. Entries are stored only for SUCCESS or WARNING."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime

CACHED = """
id: cached
namespace: acme
inputs:
  - id: day
    type: STRING
    defaults: monday
tasks:
  - id: extract
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    taskCache:
      enabled: true
      ttl: {ttl}
    commands:
      - echo {{{{ inputs.day }}}} >> {marker}
      - echo '::{{"outputs":{{"rows":'$(wc -l < {marker})'}}}}::'
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.extract.vars.rows }}}}"
"""


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


def _runs(execution: dict[str, object], task_id: str) -> list[dict[str, object]]:
    return [r for r in execution["task_runs"] if r["task_id"] == task_id]  # type: ignore[attr-defined]


def test_a_cached_task_is_not_run_again_and_gives_its_cached_outputs(rt: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "calls.txt"
    rt.deploy({"cached.yaml": CACHED.format(ttl="PT1H", marker=marker)})
    first = rt.run("acme.cached")
    second = rt.run("acme.cached")
    assert first["state"] == second["state"] == "SUCCESS", (first["error"], second["error"])
    assert marker.read_text() == "monday\n"  # the command ran once
    [cached] = _runs(second, "extract")
    assert cached["state"] == "SUCCESS" and cached["attempt"] == 1
    assert cached["outputs"]["vars"] == {"rows": 1}
    assert _runs(second, "use")[0]["outputs"] == {"value": "1"}
    assert "task 'extract' is not run: its outputs come from the task cache (taskCache, ttl PT1H)" in second["logs"]

    other = rt.run("acme.cached", day="tuesday")  # other rendered properties: another cache entry
    assert marker.read_text() == "monday\ntuesday\n"
    assert _runs(other, "use")[0]["outputs"] == {"value": "2"}


def test_an_entry_older_than_ttl_is_not_used(rt: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "calls.txt"
    rt.deploy({"cached.yaml": CACHED.format(ttl="PT0S", marker=marker)})
    rt.run("acme.cached")
    second = rt.run("acme.cached")
    assert marker.read_text() == "monday\nmonday\n"
    assert _runs(second, "use")[0]["outputs"] == {"value": "2"}


def test_a_failed_run_is_not_cached(rt: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "calls.txt"
    flow = CACHED.format(ttl="PT1H", marker=marker).replace(
        "      - echo '::",
        f"      - test -e {marker}.ok || {{ touch {marker}.ok; exit 3; }}\n      - echo '::",
    )
    rt.deploy({"cached.yaml": flow})
    assert rt.run("acme.cached")["state"] == "FAILED"
    second = rt.run("acme.cached")
    assert second["state"] == "SUCCESS", second["error"]
    assert marker.read_text() == "monday\nmonday\n"  # the failure left no entry: the task ran again
