"""The Celery executor as a user meets it: the daemon with `executor: celery`, `gitsync worker` processes on
two queues, a real Redis. No part is mocked: the broker, the workers and their task processes are real.

One Redis per session (flushed here), one daemon and its workers per module; a test that kills a worker starts
it again. Every wait polls a condition until a generous deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from celery_cluster import Worker, celery_env, process_alive, start_worker, wait_for
from daemon_harness import Daemon, daemon_env, metric_value, start_daemon
from gitservers import GitRepo

if TYPE_CHECKING:
    from redis_server import RedisServer

TOKEN = "api-token-for-celery-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENDED = ("SUCCESS", "FAILED", "WARNING", "KILLED")


def _flows(marks: Path) -> dict[str, str]:
    return {
        "flows/fanout.yaml": """\
id: fanout
namespace: acme.scale
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: east
        type: io.kestra.plugin.scripts.shell.Commands
        workerGroup:
          key: east
        commands:
          - echo "hello from the east"
          - echo '::{"outputs":{"side":"east","n":1}}::'
      - id: west
        type: io.kestra.plugin.scripts.shell.Commands
        workerGroup:
          key: west
        commands:
          - echo "hello from the west"
          - echo '::{"outputs":{"side":"west","n":2}}::'
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.east.vars.side }} and {{ outputs.west.vars.side }}"
""",
        "flows/files.yaml": """\
id: files
namespace: acme.scale
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    workerGroup:
      key: east
    outputFiles: [made.txt]
    commands:
      - echo "made on the east" > made.txt
  - id: use
    type: io.kestra.plugin.scripts.shell.Commands
    workerGroup:
      key: west
    inputFiles:
      got.txt: "{{ outputs.make.outputFiles['made.txt'] }}"
    outputFiles: [back.txt]
    commands:
      - cat got.txt
      - tr a-z A-Z < got.txt > back.txt
""",
        "flows/lost.yaml": f"""\
id: lost
namespace: acme.scale
inputs:
  - id: mark
    type: STRING
tasks:
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    workerGroup:
          key: east
    commands:
      - 'if [ ! -e {marks}/{{{{ inputs.mark }}}} ]; then echo $$ > {marks}/{{{{ inputs.mark }}}}; sleep 120; fi'
      - echo second attempt ran
""",
        "flows/lostretry.yaml": f"""\
id: lostretry
namespace: acme.scale
inputs:
  - id: mark
    type: STRING
tasks:
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    workerGroup:
      key: east
    retry:
      type: constant
      interval: PT0.2S
      maxAttempts: 3
    commands:
      - 'if [ ! -e {marks}/{{{{ inputs.mark }}}} ]; then echo $$ > {marks}/{{{{ inputs.mark }}}}; sleep 120; fi'
      - echo second attempt ran
""",
        "flows/long.yaml": f"""\
id: long
namespace: acme.scale
inputs:
  - id: mark
    type: STRING
tasks:
  - id: wait
    type: io.kestra.plugin.scripts.shell.Commands
    workerGroup:
      key: west
    commands:
      - 'echo $$ > {marks}/{{{{ inputs.mark }}}}; sleep 120'
""",
        "flows/late.yaml": f"""\
id: late
namespace: acme.scale
inputs:
  - id: mark
    type: STRING
tasks:
  - id: wait
    type: io.kestra.plugin.scripts.shell.Commands
    timeout: PT3S  # long enough for a loaded machine to start the shell and write its mark first
    workerGroup:
      key: west
    commands:
      - 'echo $$ > {marks}/{{{{ inputs.mark }}}}; sleep 120'
""",
        "flows/many.yaml": """\
id: many
namespace: acme.scale
tasks:
  - id: all
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
"""
        + "".join(
            f"""      - id: t{i}
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - sleep 1
          - echo 'line of t{i}'
          - echo '::{{"outputs":{{"i":{i}}}}}::'
"""
            for i in range(8)
        ),
    }


class Cluster:
    def __init__(self, root: Path, redis: RedisServer) -> None:
        self.root = root
        self.redis = redis
        self.marks = root / "marks"
        self.marks.mkdir(parents=True)
        self.repo = GitRepo(root / "repo")
        self.repo.commit(_flows(self.marks))
        self.env = {
            "GITSYNC_API_TOKEN": TOKEN,
            **celery_env(redis.url, claim_seconds="2", visibility_timeout="4", max_in_flight="3"),
        }
        self.daemon: Daemon | None = None
        self.workers: dict[str, Worker] = {}

    def source(self) -> dict[str, Any]:
        return {"name": "main", "repo": str(self.repo.path), "branch": "main", "path": "flows", "poll": "1h"}

    def start(self) -> None:
        self.daemon = start_daemon(self.root / "daemon", [self.source()], env=self.env)
        self.daemon.wait_for(lambda: "acme.scale.many" in self.daemon.flow_uids(), "the flows are applied")
        self.start_worker("east", "east,gitsync")
        self.start_worker("west", "west,gitsync")

    def start_worker(self, name: str, queues: str) -> Worker:
        worker = start_worker(self.root / "workers", name, queues, self.env, concurrency=4)
        self.workers[name] = worker
        assert self.daemon is not None
        self.daemon.wait_for(
            lambda: name in {w["hostname"] for w in self.health()["executor"]["workers"]}, f"worker {name} is seen"
        )
        return worker

    def health(self) -> dict[str, Any]:
        assert self.daemon is not None
        return dict(self.daemon.get("/healthz").json())

    def run(self, flow: str, **inputs: str) -> str:
        assert self.daemon is not None
        files = {k: (None, v) for k, v in inputs.items()} if inputs else None
        answer = self.daemon.post(
            f"/api/v1/executions/acme.scale/{flow}", headers=AUTH, files=files, json=None if files else {}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def ended(self, execution: str, timeout: float = 120.0) -> str:
        assert self.daemon is not None
        return str(
            self.daemon.wait_for(
                lambda: (
                    (rows := self.daemon.query("SELECT state FROM executions WHERE id = ?", (execution,)))
                    and rows[0]["state"] in ENDED
                    and rows[0]["state"]
                ),
                f"execution {execution} ends",
                timeout=timeout,
            )
        )

    def task_runs(self, execution: str) -> list[dict[str, Any]]:
        assert self.daemon is not None
        return self.daemon.query(
            "SELECT id, task_id, attempt, state, outputs, error, value FROM task_runs WHERE execution_id = ? "
            "ORDER BY task_id, attempt",
            (execution,),
        )

    def logs(self, execution: str) -> list[str]:
        assert self.daemon is not None
        rows = self.daemon.query("SELECT message FROM logs WHERE execution_id = ? ORDER BY id", (execution,))
        return [r["message"] for r in rows]

    def redis_keys(self, pattern: str) -> list[bytes]:
        import redis as redis_client

        return list(redis_client.Redis.from_url(self.redis.url).scan_iter(pattern))

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        if self.daemon is not None and self.daemon.alive():
            self.daemon.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[Cluster]:
    redis.flush()
    cluster = Cluster(tmp_path_factory.mktemp("celery"), redis)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        for mark in cluster.marks.iterdir():  # the task processes a killed worker left behind
            kill_group(int(mark.read_text().strip() or 0))


def kill_group(pid: int) -> None:
    if pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _shape(rows: list[dict[str, Any]]) -> list[tuple[str, int, str, Any]]:
    return [(r["task_id"], r["attempt"], r["state"], json.loads(r["outputs"])) for r in rows]


def test_parallel_tasks_run_on_their_worker_groups_and_match_a_local_run(cluster: Cluster, tmp_path: Path) -> None:
    execution = cluster.run("fanout")
    assert cluster.ended(execution) == "SUCCESS"
    logs = cluster.logs(execution)
    assert "running on worker east (queue east)" in logs
    assert "running on worker west (queue west)" in logs
    assert "hello from the east" in logs and "hello from the west" in logs
    assert "east and west" in logs
    east_log = logs.index("running on worker east (queue east)")
    assert logs.index("hello from the east") > east_log
    celery_runs = _shape(cluster.task_runs(execution))

    with_local = start_daemon(tmp_path / "local", [cluster.source()], env={"GITSYNC_API_TOKEN": TOKEN})
    try:
        with_local.wait_for(lambda: "acme.scale.fanout" in with_local.flow_uids(), "the flows are applied")
        answer = with_local.post("/api/v1/executions/acme.scale/fanout", headers=AUTH, json={})
        local = str(answer.json()["id"])
        with_local.wait_for(
            lambda: with_local.query("SELECT state FROM executions WHERE id = ?", (local,))[0]["state"] in ENDED,
            "the local run ends",
        )
        assert "executor" not in with_local.get("/healthz").json()
        local_runs = _shape(
            with_local.query(
                "SELECT task_id, attempt, state, outputs FROM task_runs WHERE execution_id = ? "
                "ORDER BY task_id, attempt",
                (local,),
            )
        )
        local_state = with_local.query("SELECT state FROM executions WHERE id = ?", (local,))[0]["state"]
    finally:
        with_local.stop()
    assert local_state == "SUCCESS"
    assert celery_runs == local_runs
    outputs = {task: out for task, _, _, out in celery_runs}
    assert outputs["east"]["vars"] == {"side": "east", "n": 1}
    assert outputs["west"]["vars"] == {"side": "west", "n": 2}


def test_files_travel_from_one_worker_to_another_and_back_to_the_execution(cluster: Cluster) -> None:
    assert cluster.daemon is not None
    execution = cluster.run("files")
    assert cluster.ended(execution) == "SUCCESS"
    assert "made on the east" in cluster.logs(execution)
    runs = {r["task_id"]: json.loads(r["outputs"]) for r in cluster.task_runs(execution)}
    made, back = runs["make"]["outputFiles"]["made.txt"], runs["use"]["outputFiles"]["back.txt"]
    assert made.startswith("kestra:///acme/scale/files/executions/") and back.startswith("kestra:///")
    stored = cluster.daemon.data_dir / "executions" / execution
    assert (stored / made.split(f"/executions/{execution}/", 1)[1]).read_text() == "made on the east\n"
    assert (stored / back.split(f"/executions/{execution}/", 1)[1]).read_text() == "MADE ON THE EAST\n"
    assert not cluster.redis_keys("gitsync:in:*") and not cluster.redis_keys("gitsync:out:*")


def test_a_file_over_max_file_mb_fails_the_task_saying_so(redis: RedisServer, tmp_path: Path) -> None:
    import redis as redis_client

    from gitsync.workers import files
    from runner.api import TaskFailed
    from runner.engine.invocation import TaskInvocation
    from runner.storage import LocalStorage

    storage = LocalStorage(tmp_path, "acme", "f", "e2", "make")
    uri = storage.put(b"x" * 2048, "big.bin")
    invocation = TaskInvocation("t", {}, "e2", "acme", "f", 1, "use", "tr-9", 1, input_files=[uri])
    client = redis_client.Redis.from_url(redis.url_for(4))
    with pytest.raises(TaskFailed, match=r"over celery.max_file_mb .* raise celery.max_file_mb"):
        files.send_inputs(client, invocation, tmp_path, cap=1024)
    files.send_inputs(client, invocation, tmp_path, cap=4096)
    files.receive_inputs(client, invocation, tmp_path / "worker")
    assert (tmp_path / "worker" / "executions" / "e2" / "make" / "big.bin").read_bytes() == b"x" * 2048


def _wait_mark(cluster: Cluster, mark: str) -> int:
    path = cluster.marks / mark
    wait_for(lambda: path.exists() and path.read_text().strip(), f"the task wrote {mark}")
    return int(path.read_text().strip())


def test_a_worker_killed_mid_task_fails_the_attempt_once(cluster: Cluster) -> None:
    execution = cluster.run("lost", mark="lost-once")
    pid = _wait_mark(cluster, "lost-once")
    cluster.workers["east"].kill()
    kill_group(pid)
    try:
        assert cluster.ended(execution) == "FAILED"
    finally:
        cluster.start_worker("east", "east,gitsync")
    runs = cluster.task_runs(execution)
    assert [(r["task_id"], r["attempt"], r["state"]) for r in runs] == [("slow", 1, "FAILED")]
    assert "worker lost" in runs[0]["error"]
    assert "second attempt ran" not in cluster.logs(execution)


def test_a_worker_killed_mid_task_is_retried_per_the_tasks_retry(cluster: Cluster) -> None:
    execution = cluster.run("lostretry", mark="lost-retry")
    pid = _wait_mark(cluster, "lost-retry")
    cluster.workers["east"].kill()
    kill_group(pid)
    cluster.start_worker("east", "east,gitsync")
    assert cluster.ended(execution) == "SUCCESS"
    runs = cluster.task_runs(execution)
    assert [(r["attempt"], r["state"]) for r in runs] == [(1, "RETRIED"), (2, "SUCCESS")]
    assert "worker lost" in runs[0]["error"]
    assert cluster.logs(execution).count("second attempt ran") == 1
    assert not [r for r in runs if r["state"] == "RUNNING"]


def test_gitsync_kill_stops_the_task_process_group_on_its_worker(cluster: Cluster) -> None:
    assert cluster.daemon is not None
    execution = cluster.run("long", mark="killed")
    pid = _wait_mark(cluster, "killed")
    assert process_alive(pid)
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "kill", execution, "--config", str(cluster.daemon.config_path)],
        env=daemon_env(cluster.env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert cluster.ended(execution) == "KILLED"
    wait_for(lambda: not process_alive(pid), "the task's process is gone")
    assert [r["state"] for r in cluster.task_runs(execution)] == ["KILLED"]


def test_a_timeout_stops_the_task_on_its_worker(cluster: Cluster) -> None:
    execution = cluster.run("late", mark="late")
    pid = _wait_mark(cluster, "late")
    assert cluster.ended(execution) == "FAILED"
    wait_for(lambda: not process_alive(pid), "the timed-out process is gone")
    runs = cluster.task_runs(execution)
    assert [r["state"] for r in runs] == ["FAILED"]
    assert "timed out after 3s" in runs[0]["error"]


def test_never_more_than_max_in_flight_and_health_metrics_and_workers_show_it(cluster: Cluster) -> None:
    assert cluster.daemon is not None
    execution = cluster.run("many")
    seen: list[dict[str, Any]] = []
    metrics: list[float] = []
    while cluster.daemon.query("SELECT state FROM executions WHERE id = ?", (execution,))[0]["state"] not in ENDED:
        seen.append(cluster.health()["executor"])
        metrics.append(metric_value(cluster.daemon.get("/metrics").text, "gitsync_celery_in_flight"))
    assert cluster.ended(execution) == "SUCCESS"
    assert max(s["in_flight"] for s in seen) <= 3 and max(metrics) <= 3
    assert max(s["peak_in_flight"] for s in seen) == 3
    assert any(s["waiting"] > 0 for s in seen)
    runs = cluster.task_runs(execution)
    assert sorted(r["task_id"] for r in runs if r["task_id"] != "all") == [f"t{i}" for i in range(8)]
    assert all(r["state"] == "SUCCESS" for r in runs)
    health = cluster.health()["executor"]
    assert health["broker"] == "ok" and health["max_in_flight"] == 3
    assert {"east", "west"} <= {w["hostname"] for w in health["workers"]}
    assert "gitsync" in health["queues"]
    text = cluster.daemon.get("/metrics").text
    assert metric_value(text, "gitsync_celery_workers") >= 2
    assert metric_value(text, "gitsync_celery_broker_up") == 1
    assert "gitsync_celery_queue_depth" in text
    listing = subprocess.run(
        [sys.executable, "-m", "gitsync", "workers", "--config", str(cluster.daemon.config_path), "--format", "json"],
        env=daemon_env(cluster.env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    shown = json.loads(listing.stdout)
    assert {"east", "west"} <= {w["hostname"] for w in shown["workers"]}
    assert "gitsync" in shown["queues"] and "east" in shown["queues"]
    text_listing = subprocess.run(
        [sys.executable, "-m", "gitsync", "workers", "--config", str(cluster.daemon.config_path)],
        env=daemon_env(cluster.env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "worker(s) seen" in text_listing.stdout and "east: queues east,gitsync" in text_listing.stdout


def test_redis_stopped_ten_seconds_mid_run_loses_and_doubles_nothing(cluster: Cluster) -> None:
    assert cluster.daemon is not None
    execution = cluster.run("many")
    wait_for(lambda: len(cluster.task_runs(execution)) >= 3, "some tasks started")
    cluster.redis.pause()
    try:
        cluster.daemon.wait_for(
            lambda: cluster.health()["executor"]["broker"] == "unreachable", "the broker is seen down"
        )
        health = cluster.health()
        assert health["status"] == "degraded"
        assert "cannot be reached" in health["executor"]["message"]
        time.sleep(10)  # the scenario: Redis away for 10 s (nothing is asserted on how long anything takes)
    finally:
        cluster.redis.resume()
    assert cluster.ended(execution, timeout=180) == "SUCCESS"
    cluster.daemon.wait_for(lambda: cluster.health()["executor"]["broker"] == "ok", "the broker is seen back")
    runs = cluster.task_runs(execution)
    tasks = [r["task_id"] for r in runs if r["task_id"] != "all"]
    assert sorted(tasks) == [f"t{i}" for i in range(8)]
    assert all(r["state"] == "SUCCESS" for r in runs)
    logs = cluster.logs(execution)
    for i in range(8):
        assert logs.count(f"line of t{i}") == 1
    assert sorted(json.loads(r["outputs"])["vars"]["i"] for r in runs if r["task_id"] != "all") == list(range(8))


def test_executor_celery_without_a_broker_url_says_which_variable(tmp_path: Path) -> None:
    from gitsync.config import load_settings
    from gitsync.errors import ConfigError
    from gitsync.workers.settings import CeleryConfig

    settings = load_settings(None, environ={"GITSYNC_EXECUTOR": "celery"})
    with pytest.raises(ConfigError, match="GITSYNC_BROKER_URL"):
        settings.celery.broker_url({})
    with pytest.raises(ConfigError, match="must be Redis"):
        CeleryConfig().broker_url({"GITSYNC_BROKER_URL": "amqp://x"})


def test_a_message_delivered_twice_runs_once_and_a_lost_attempt_is_not_run_again(
    redis: RedisServer, tmp_path: Path
) -> None:
    """The worker's side of one message, in this process, against the real Redis: a redelivery of a finished
    task run sends the stored result again; a task run started by a worker that is gone is failed, not run."""
    import redis as redis_client

    from gitsync.compose import load_registry
    from gitsync.state.kv import SqliteKeyValue
    from gitsync.workers import keys
    from gitsync.workers.settings import CeleryConfig
    from gitsync.workers.task import WorkerContext, run_message
    from runner.engine.executors import WorkerServices
    from runner.engine.invocation import TaskInvocation

    redis.flush()
    client = redis_client.Redis.from_url(redis.url_for(3))
    services = WorkerServices(load_registry(), tmp_path / "data", SqliteKeyValue(tmp_path / "kv.db"))
    context = WorkerContext(CeleryConfig(claim_seconds=2), client, services, "here", ["gitsync"])
    ran = tmp_path / "ran.txt"

    def payload(task_run: str) -> dict[str, Any]:
        invocation = TaskInvocation(
            type="io.kestra.plugin.scripts.shell.Commands",
            properties={"id": "once", "type": "io.kestra.plugin.scripts.shell.Commands",
                        "commands": [f"echo ran >> {ran}", "echo 'the secret is hunter22'"]},
            execution_id="e1", namespace="acme", flow_id="f", flow_revision=1, task_id="once",
            task_run_id=task_run, attempt=1, secrets=["hunter22"],
        )  # fmt: skip
        return {"invocation": invocation.to_dict(), "reply": "test"}

    run_message(context, payload("tr-1"))
    run_message(context, payload("tr-1"))
    assert ran.read_text().splitlines() == ["ran"]
    replies = [json.loads(raw) for raw in client.lrange(keys.reply("test"), 0, -1)]
    done = [r["result"] for r in replies if r["kind"] == "done"]
    assert len(done) == 2 and done[0] == done[1] and done[0]["state"] == "SUCCESS"
    lines = [line for r in replies if r["kind"] == "logs" for _, line in r["lines"]]
    assert "the secret is ******" in lines
    assert not any("hunter22" in line for line in lines)

    client.set(keys.seen("tr-2"), "a worker that died")
    run_message(context, payload("tr-2"))
    assert ran.read_text().splitlines() == ["ran"]
    lost = [json.loads(raw) for raw in client.lrange(keys.reply("test"), 0, -1)][-1]
    assert lost["kind"] == "done" and lost["result"]["state"] == "FAILED"
    assert "worker lost" in lost["result"]["error"]
