"""The OpenAPI document checked against the running daemon by schemathesis (issue 13): every documented response
shape holds, no request it generates gets a 500, documented refusals are the documented problem details, a
request the schema allows is not refused, one it forbids is, and each path's Allow header is exact.

schemathesis runs as its own process (its CLI, from the test extras) against the daemon of `api_fixture`, with the
identifiers of real rows (a flow with a trigger, an ended execution, a sync) so that it reaches past the 404s."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixture import API_TOKEN, ApiWorld, api_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world(tmp_path_factory.mktemp("api-schema")) as built:
        yield built


def schemathesis() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return str(found)
    command = shutil.which("schemathesis")
    assert command, "schemathesis is in the test extras: pip install -e '.[test]'"
    return command


def test_the_api_holds_to_its_openapi_document(world: ApiWorld, tmp_path: Path) -> None:
    daemon = world.daemon
    sync_id = daemon.api("/api/v1/syncs")[0]["id"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""\
# every check (schemathesis runs them all unless told otherwise), but the one turned off below
[parameters]
"path.namespace" = "acme.demo"
"path.flow_id" = "tick"
"path.trigger_id" = "nightly"
"path.execution_id" = "{world.executions["hello"]}"
"path.sync_id" = "{sync_id}"

# A run's inputs are checked against the flow it runs (422 names each input that does not fit); the document is
# the same for every flow, so it cannot list them, and a schema-valid body of unknown inputs is rightly refused.
[[operations]]
include-path = "/api/v1/executions/{{namespace}}/{{flow_id}}"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
""",
        encoding="utf-8",
    )
    url = f"{daemon.client.base_url}/api/v1/openapi.json"
    result = subprocess.run(
        [
            schemathesis(), "--config-file", str(config), "--no-color", "run", url,
            "--max-examples", "25", "--workers", "1", "--seed", "13",
            "-H", f"Authorization: Bearer {API_TOKEN}",
            # the live stream runs until its execution ends; the webhook routes need a signature or a key
            "--exclude-path-regex", "logs/stream|^/webhooks/|/executions/webhook/",
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    report = result.stdout[-6000:] + result.stderr[-2000:]
    print(result.stdout[-1200:])  # the summary (operations, phases, cases generated) in the test's output
    assert result.returncode == 0, report
    assert " passed" in result.stdout and "failed" not in result.stdout.split("SUMMARY")[-1], report
