"""Redis tasks (string Set/Get/Delete, list ListPush/ListPop) against Debian's redis-server (the `redis` fixture),
read back with the real client; flows run through `gitsync run` as a user runs them."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis as redis_client
from runtime import python_hiding, run_outputs
from taskctx import make_context

from plugins import ion
from plugins.redis.list import ListPop, ListPush
from plugins.redis.string import Delete, Get, Set
from runner.api import RunContext, TaskFailed

if TYPE_CHECKING:
    from redis_server import RedisServer

_DBS = itertools.count(1)


@pytest.fixture
def url(redis: RedisServer) -> str:
    """A database of the session's server no other test uses, empty."""
    db = next(_DBS)
    assert db < 64
    redis_client.Redis.from_url(redis.url_for(db)).flushdb()
    return redis.url_for(db)


@pytest.fixture
def client(url: str) -> redis_client.Redis:
    return redis_client.Redis.from_url(url, decode_responses=True)


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return make_context(tmp_path)


def task(cls: Any, **props: Any) -> Any:
    return cls.model_validate({"id": "task", "type": cls.type_name, **props})


def test_set_then_get_a_string(ctx: RunContext, url: str, client: redis_client.Redis) -> None:
    assert task(Set, url=url, key="greeting", value="hello").run(ctx) == {}
    assert client.get("greeting") == "hello"
    assert task(Get, url=url, key="greeting").run(ctx) == {"data": "hello", "key": "greeting"}
    assert task(Get, url=url, key="absent").run(ctx) == {"data": None, "key": "absent"}


def test_json_serde_writes_json_text_and_reads_back_a_value(
    ctx: RunContext, url: str, client: redis_client.Redis
) -> None:
    task(Set, url=url, key="doc", value={"flow": "f", "n": [1, 2]}, serdeType="JSON").run(ctx)
    assert json.loads(client.get("doc") or "") == {"flow": "f", "n": [1, 2]}
    task(Set, url=url, key="text", value='{"a": 1}', serdeType="JSON").run(ctx)
    assert client.get("text") == '{"a": 1}'
    assert task(Get, url=url, key="doc", serdeType="JSON").run(ctx)["data"] == {"flow": "f", "n": [1, 2]}
    with pytest.raises(TaskFailed, match=r"value is not valid JSON \(serdeType: JSON\)"):
        task(Set, url=url, key="bad", value="{not json", serdeType="JSON").run(ctx)
    client.set("plain", "not json")
    with pytest.raises(TaskFailed, match="read it with serdeType: STRING"):
        task(Get, url=url, key="plain", serdeType="JSON").run(ctx)


def test_set_options_guard_and_expire(ctx: RunContext, url: str, client: redis_client.Redis) -> None:
    task(Set, url=url, key="k", value="first").run(ctx)
    task(Set, url=url, key="k", value="second", options={"mustNotExist": True}).run(ctx)
    assert client.get("k") == "first"
    task(Set, url=url, key="new", value="x", options={"mustExist": True}).run(ctx)
    assert client.exists("new") == 0
    assert ctx.logger.messages("INFO") == [  # type: ignore[attr-defined]
        "redis: key 'k' was not set: it already exists (mustNotExist)",
        "redis: key 'new' was not set: it does not exist (mustExist)",
    ]
    task(Set, url=url, key="ttl", value="v", options={"expirationDuration": "PT1H"}).run(ctx)
    assert 3_500_000 < client.pttl("ttl") <= 3_600_000
    task(Set, url=url, key="ttl", value="w", options={"keepTtl": True}).run(ctx)
    assert client.get("ttl") == "w" and client.pttl("ttl") > 3_500_000
    task(Set, url=url, key="at", value="v", options={"expirationDate": "2999-01-01T00:00:00Z"}).run(ctx)
    assert client.pexpiretime("at") == 32472144000000
    with pytest.raises(TaskFailed, match="keepTtl keeps the key's current expiry"):
        task(Set, url=url, key="k", value="v", options={"keepTtl": True, "expirationDuration": "PT1M"}).run(ctx)
    with pytest.raises(TaskFailed, match="expirationDate needs a zone"):
        task(Set, url=url, key="k", value="v", options={"expirationDate": "2999-01-01T00:00:00"}).run(ctx)


def test_set_with_get_returns_the_old_value(ctx: RunContext, url: str) -> None:
    assert task(Set, url=url, key="k", value="one", get=True).run(ctx) == {}
    assert task(Set, url=url, key="k", value="two", get=True).run(ctx) == {"oldValue": "one"}


def test_get_fails_on_a_missing_key_when_asked(ctx: RunContext, url: str) -> None:
    with pytest.raises(TaskFailed, match=r"Redis key 'nope' does not exist \(failedOnMissing: true\)"):
        task(Get, url=url, key="nope", failedOnMissing=True).run(ctx)


def test_delete_counts_and_fails_on_missing_when_asked(ctx: RunContext, url: str, client: redis_client.Redis) -> None:
    client.set("a", "1")
    client.set("b", "2")
    assert task(Delete, url=url, keys=["a", "b", "c"]).run(ctx) == {"count": 2}
    assert client.exists("a", "b") == 0
    client.set("a", "1")
    with pytest.raises(TaskFailed, match="only 1 of the 2 Redis keys existed") as failed:
        task(Delete, url=url, keys=["a", "c"], failedOnMissing=True).run(ctx)
    assert failed.value.outputs == {"count": 1}


def test_list_push_from_a_list_a_json_array_and_an_ion_file(
    ctx: RunContext, url: str, client: redis_client.Redis
) -> None:
    assert task(ListPush, url=url, key="l", **{"from": ["a", "b", "c"]}, batchSize=2).run(ctx) == {"count": 3}
    assert client.lrange("l", 0, -1) == ["c", "b", "a"]  # LPUSH: each value goes to the head
    assert task(ListPush, url=url, key="j", **{"from": '["x", "y"]'}).run(ctx) == {"count": 2}
    assert client.lrange("j", 0, -1) == ["y", "x"]
    rows = ctx.workdir / "rows.ion"
    ion.write_file(rows, [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}])
    uri = ctx.storage.put(rows, "rows.ion")
    assert task(ListPush, url=url, key="r", serdeType="JSON", **{"from": uri}).run(ctx) == {"count": 2}
    assert [json.loads(v) for v in client.lrange("r", 0, -1)] == [{"id": 2, "name": "bob"}, {"id": 1, "name": "ada"}]
    with pytest.raises(TaskFailed, match="from must be a list of values, a JSON array, or a kestra:// file URI"):
        task(ListPush, url=url, key="r", **{"from": "just text"}).run(ctx)


def test_list_pop_stops_at_max_records_and_stores_ion_rows(
    ctx: RunContext, url: str, client: redis_client.Redis
) -> None:
    client.rpush("q", *[json.dumps({"n": n}) for n in range(10)])
    outputs = task(ListPop, url=url, key="q", serdeType="JSON", maxRecords=4, count=3).run(ctx)
    assert outputs["count"] == 6  # checked after each LPOP of `count`, as Kestra does
    assert list(ion.read_file(ctx.storage.path(outputs["uri"]))) == [{"n": n} for n in range(6)]
    assert client.llen("q") == 4
    drained = task(ListPop, url=url, key="q", maxDuration="PT10S").run(ctx)
    assert drained["count"] == 4 and client.llen("q") == 0
    assert list(ion.read_file(ctx.storage.path(drained["uri"]))) == [json.dumps({"n": n}) for n in range(6, 10)]
    with pytest.raises(TaskFailed, match="set maxRecords or maxDuration"):
        task(ListPop, url=url, key="q").run(ctx)


def test_an_unreachable_server_fails_without_showing_the_password(ctx: RunContext) -> None:
    from services import free_port

    port = free_port()
    with pytest.raises(TaskFailed) as failed:
        task(Get, url=f"redis://:hunter2@127.0.0.1:{port}/0", key="k").run(ctx)
    assert failed.value.message.startswith(f"cannot reach the Redis server at redis://:****@127.0.0.1:{port}/0: ")
    assert "hunter2" not in failed.value.message


def test_the_blueprint_flows_run_through_gitsync_run(tmp_path: Path, url: str, client: redis_client.Redis) -> None:
    """The corpus's redis-list blueprint and the older `io.kestra.plugin.redis.Set` name, with this server's url."""
    flow = tmp_path / "redis.yaml"
    flow.write_text(
        f"""
id: redis_flow
namespace: company.team
variables:
  key: favorite_plugins
tasks:
  - id: clear_list
    type: io.kestra.plugin.redis.list.ListPop
    url: {url}
    key: "{{{{ vars.key }}}}"
    maxRecords: 1
  - id: publish_list
    type: io.kestra.plugin.redis.list.ListPush
    url: {url}
    key: "{{{{ vars.key }}}}"
    from: [redis, duckdb, gcp, aws]
  - id: set
    type: io.kestra.plugin.redis.Set
    url: {url}
    key: "count"
    value: "{{{{ outputs.publish_list.count }}}}"
  - id: get
    type: io.kestra.plugin.redis.string.Get
    url: {url}
    key: count
outputs:
  - id: pushed
    type: STRING
    value: "{{{{ outputs.get.data }}}}"
""",
        encoding="utf-8",
    )
    client.rpush("favorite_plugins", "stale")
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "run", "--file", str(flow)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_outputs(done) == {"pushed": "4"}
    assert client.lrange("favorite_plugins", 0, -1) == ["aws", "gcp", "duckdb", "redis"]


def test_without_the_redis_extra_the_run_names_the_pip_install(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "id: noextra\nnamespace: company.team\ntasks:\n"
        "  - id: get\n    type: io.kestra.plugin.redis.string.Get\n    url: redis://127.0.0.1:1/0\n    key: k\n",
        encoding="utf-8",
    )
    python = python_hiding(tmp_path, ["redis"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    checked = subprocess.run(
        [str(python), "-m", "gitsync", "validate", str(flow)], capture_output=True, text=True, env=env, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = subprocess.run(
        [str(python), "-m", "gitsync", "run", "--file", str(flow)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1
    assert "string.Get needs the Python package redis, which is not installed" in done.stdout
    assert "pip install 'gitsync[redis]'" in done.stdout


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@cache:6379/1", "redis://:****@cache:6379/1"),
        ("redis://app:pw@cache/2", "redis://app:****@cache/2"),
        ("rediss://pw@cache:6380", "rediss://****@cache:6380"),  # a user alone is what Redis reads as a password
    ],
)
def test_a_url_is_shown_with_its_password_masked(url: str, shown: str) -> None:
    from plugins.redis.connection import masked

    assert masked(url) == shown
