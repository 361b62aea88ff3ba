"""One daemon on a real git repository, with flows of every kind the API and UI tests read: inputs of several types,
a revision history, a Schedule trigger, a failing flow, a chatty one, a child namespace. Started once per test
module (`api_daemon`), with a few executions already run through the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from daemon_harness import Daemon, running_daemon
from gitservers import GitRepo

API_TOKEN = "api-token-for-the-api-tests"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ENV = {"GITSYNC_API_TOKEN": API_TOKEN}

HELLO_V1 = """\
id: hello
namespace: acme.demo
description: Says hello to someone.
labels:
  team: data
inputs:
  - id: name
    type: STRING
    defaults: world
  - id: times
    type: INT
    required: false
  - id: color
    type: SELECT
    values: [red, blue]
    defaults: red
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name }}"
"""
HELLO_V2 = HELLO_V1.replace('message: "hello {{ inputs.name }}"', 'message: "bonjour {{ inputs.name }}"')
FAILS = """\
id: fails
namespace: acme.demo
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: about to fail
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: the export was empty
"""
TICK = """\
id: tick
namespace: acme.demo
tasks:
  - id: note
    type: io.kestra.plugin.core.log.Log
    message: tick
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
"""
CHATTY = """\
id: chatty
namespace: acme.demo
tasks:
  - id: talk
    type: io.kestra.plugin.core.log.Log
    message:
{lines}
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: the disk is nearly full
""".replace("{lines}", "\n".join(f"      - line {i}" for i in range(30)))
CHILD = """\
id: child
namespace: acme.ops.sub
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


@dataclass
class ApiWorld:
    daemon: Daemon
    repo: GitRepo
    commits: list[str]
    executions: dict[str, str] = field(default_factory=dict)
    """flow id -> the id of an ended execution of it."""


def run_flow(daemon: Daemon, namespace: str, flow_id: str, inputs: dict[str, object] | None = None) -> str:
    answer = daemon.post(f"/api/v1/executions/{namespace}/{flow_id}", json=inputs or {}, headers=AUTH)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def wait_ended(daemon: Daemon, execution: str) -> dict[str, object]:
    ended = {"SUCCESS", "FAILED", "WARNING", "KILLED"}
    return daemon.wait_for(
        lambda: (row := daemon.api(f"/api/v1/executions/{execution}"))["state"] in ended and row, f"run {execution}"
    )


@contextmanager
def api_world(directory: Path) -> Iterator[ApiWorld]:
    repo = GitRepo(directory / "work")
    first = repo.commit(
        {"flows/hello.yaml": HELLO_V1, "flows/fails.yaml": FAILS, "flows/tick.yaml": TICK}, "first flows"
    )
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    with running_daemon(directory / "daemon", [source], env=ENV) as daemon:
        daemon.wait_for(lambda: "acme.demo.tick" in daemon.flow_uids(), "the first commit to be applied")
        second = repo.commit(
            {"flows/hello.yaml": HELLO_V2, "flows/chatty.yaml": CHATTY, "flows/child.yaml": CHILD}, "hello in French"
        )
        wanted = {"acme.demo.hello", "acme.demo.fails", "acme.demo.tick", "acme.demo.chatty", "acme.ops.sub.child"}
        daemon.wait_for(lambda: daemon.flow_uids() == wanted, "the watcher to apply the second commit")
        world = ApiWorld(daemon, repo, [first, second])
        for flow_id in ("hello", "fails", "chatty"):
            world.executions[flow_id] = run_flow(daemon, "acme.demo", flow_id)
        for execution in world.executions.values():
            wait_ended(daemon, execution)
        yield world
