"""Core runnable tasks against real parts: an HTTP server and an SMTP server on 127.0.0.1, SQLite, temp dirs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from taskctx import RecordingLogger, make_context

from gitsync.state.kv import SqliteKeyValue
from plugins.core import debug, execution, http, kv, log, output, storage
from plugins.notifications.email import MailSend
from plugins.notifications.slack import SlackIncomingWebhook
from runner.api import MISSING, RunContext, TaskFailed
from runner.signals import ExitExecution
from runner.storage import LocalStorage


def task(cls: type, **props: Any) -> Any:
    """A task model as the flow loader builds it (properties already rendered)."""
    return cls.model_validate({"id": "task", "type": cls.type_name, **props})


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[RunContext]:
    context = make_context(tmp_path)
    yield context
    context.kv.close()  # type: ignore[attr-defined]


def lines(ctx: RunContext) -> list[tuple[str, str]]:
    assert isinstance(ctx.logger, RecordingLogger)
    return ctx.logger.lines


# --- log, debug, output ------------------------------------------------------------------------------------


def test_log_writes_each_message_at_its_level(ctx: RunContext) -> None:
    assert task(log.Log, message="hello").run(ctx) == {}
    assert task(log.Log, message=["one", "two"], level="warn").run(ctx) == {}
    assert lines(ctx) == [("INFO", "hello"), ("WARN", "one"), ("WARN", "two")]


def test_log_refuses_a_rendered_level_that_is_not_a_level(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match="level must be one of TRACE"):
        task(log.Log, message="x", level="{{ inputs.level }}").run(ctx)


def test_echo_logs_and_return_outputs_value(ctx: RunContext) -> None:
    assert task(debug.Echo, format="echoed", level="ERROR").run(ctx) == {}
    assert ("ERROR", "echoed") in lines(ctx)
    assert task(debug.Return, format="42").run(ctx) == {"value": "42"}


def test_output_values(ctx: RunContext) -> None:
    outputs = task(output.OutputValues, values={"a": "1", "nested": {"b": [1, 2]}}).run(ctx)
    assert outputs == {"values": {"a": "1", "nested": {"b": [1, 2]}}}
    assert task(output.OutputValues).run(ctx) == {"values": {}}


# --- execution: Fail, Exit, Labels -------------------------------------------------------------------------


def test_fail_without_condition_fails_with_its_message(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match=r"^Task failure$"):
        task(execution.Fail).run(ctx)
    with pytest.raises(TaskFailed, match=r"^bad input$"):
        task(execution.Fail, errorMessage="bad input").run(ctx)


@pytest.mark.parametrize("condition", ["true", "True", "yes", "1", True, "anything"])
def test_fail_when_the_condition_is_truthy(ctx: RunContext, condition: Any) -> None:
    with pytest.raises(TaskFailed, match="stop"):
        task(execution.Fail, condition=condition, errorMessage="stop").run(ctx)


@pytest.mark.parametrize("condition", ["false", "False", "0", "-0", "", "  ", False, "None"])
def test_fail_succeeds_when_the_condition_is_falsy(ctx: RunContext, condition: Any) -> None:
    assert task(execution.Fail, condition=condition).run(ctx) == {}


@pytest.mark.parametrize(
    ("state", "expected"), [("SUCCESS", "SUCCESS"), ("KILLED", "KILLED"), ("CANCELED", "CANCELLED")]
)
def test_exit_signals_the_engine(ctx: RunContext, state: str, expected: str) -> None:
    with pytest.raises(ExitExecution) as raised:
        task(execution.Exit, state=state).run(ctx)
    assert raised.value.state == expected
    assert not isinstance(raised.value, TaskFailed)


def test_exit_refuses_an_unknown_rendered_state(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match="state must be one of"):
        task(execution.Exit, state="{{ inputs.state }}").run(ctx)


def test_labels_from_a_map_a_list_and_json(ctx: RunContext) -> None:
    task(execution.Labels, labels={"team": "data", "on": True}).run(ctx)
    task(execution.Labels, labels=[{"key": "env", "value": "prod"}]).run(ctx)
    task(execution.Labels, labels="{{ x }}").model_copy(update={"labels": '{"owner": "ann"}'}).run(ctx)
    assert ctx.new_labels == {"team": "data", "on": "true", "env": "prod", "owner": "ann"}


def test_labels_refuse_reserved_keys(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match="reserved"):
        task(execution.Labels, labels="{{ x }}").model_copy(update={"labels": '{"system.x": "1"}'}).run(ctx)


# --- key-value store ---------------------------------------------------------------------------------------


def test_kv_set_get_delete_in_the_flow_namespace(ctx: RunContext) -> None:
    assert task(kv.Set, key="k", value={"n": 1}).run(ctx) == {}
    assert ctx.kv.get("company.team", "k") == {"n": 1}
    assert task(kv.Get, key="k").run(ctx) == {"value": {"n": 1}}
    assert task(kv.GetKeys).run(ctx) == {"keys": ["k"]}
    assert task(kv.Delete, key="k").run(ctx) == {"deleted": True}
    assert task(kv.Delete, key="k").run(ctx) == {"deleted": False}
    assert task(kv.Get, key="k").run(ctx) == {"value": None}


def test_kv_explicit_namespace_and_prefix(ctx: RunContext) -> None:
    task(kv.Set, key="a.1", value="x", namespace="other").run(ctx)
    task(kv.Set, key="b.1", value="y", namespace="other").run(ctx)
    assert task(kv.GetKeys, namespace="other", prefix="a.").run(ctx) == {"keys": ["a.1"]}
    assert task(kv.Get, key="a.1").run(ctx) == {"value": None}


def test_kv_overwrite_false_fails_on_an_existing_key(ctx: RunContext) -> None:
    task(kv.Set, key="k", value="first").run(ctx)
    with pytest.raises(TaskFailed, match="already exists and overwrite is false"):
        task(kv.Set, key="k", value="second", overwrite="false").run(ctx)
    assert ctx.kv.get("company.team", "k") == "first"


def test_kv_missing_key_with_error_on_missing(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match=r"No value found for key 'nope' in namespace 'company\.team'"):
        task(kv.Get, key="nope", errorOnMissing=True).run(ctx)
    with pytest.raises(TaskFailed, match="No value found for key 'nope'"):
        task(kv.Delete, key="nope", errorOnMissing="true").run(ctx)


@pytest.mark.parametrize(
    ("kv_type", "value", "stored"),
    [("NUMBER", "42", 42), ("NUMBER", "1.5", 1.5), ("BOOLEAN", "true", True), ("JSON", '{"a": [1]}', {"a": [1]}),
     ("STRING", 7, "7"), ("DATE", "2024-01-31", "2024-01-31"), ("DURATION", "PT5M", "PT5M")],
)  # fmt: skip
def test_kv_type_conversion(ctx: RunContext, kv_type: str, value: Any, stored: Any) -> None:
    task(kv.Set, key="k", value=value, kvType=kv_type).run(ctx)
    assert ctx.kv.get("company.team", "k") == stored


def test_kv_type_and_key_errors(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match="not a valid NUMBER"):
        task(kv.Set, key="k", value="abc", kvType="NUMBER").run(ctx)
    with pytest.raises(TaskFailed, match="key '/etc' is invalid"):
        task(kv.Set, key="/etc", value="x").run(ctx)


def test_kv_ttl_expires_with_the_clock(tmp_path: Path) -> None:
    now = [1000.0]
    ctx = make_context(tmp_path, clock=lambda: now[0])
    assert isinstance(ctx.kv, SqliteKeyValue)
    task(kv.Set, key="short", value="v", ttl="PT1M").run(ctx)
    task(kv.Set, key="long", value="v").run(ctx)
    now[0] += 59
    assert task(kv.Get, key="short").run(ctx) == {"value": "v"}
    now[0] += 2
    assert task(kv.Get, key="short").run(ctx) == {"value": None}
    assert task(kv.GetKeys).run(ctx) == {"keys": ["long"]}
    task(kv.Set, key="short", value="again", overwrite=False).run(ctx)  # an expired key no longer exists
    assert ctx.kv.get("company.team", "short") == "again"
    ctx.kv.close()


def test_kv_store_ttl_with_the_real_clock(tmp_path: Path) -> None:
    store = SqliteKeyValue(tmp_path / "kv.db")
    store.set("ns", "k", 1, ttl_seconds=0.05)
    deadline = time.monotonic() + 10
    while store.get("ns", "k") is not MISSING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.get("ns", "k") is MISSING
    store.close()


def test_kv_store_is_shared_between_threads(tmp_path: Path) -> None:
    store = SqliteKeyValue(tmp_path / "kv.db")

    def write(n: int) -> None:
        for i in range(50):
            store.set("ns", f"k{n}-{i}", i)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.keys("ns")) == 200
    other = SqliteKeyValue(tmp_path / "kv.db")
    assert other.get("ns", "k3-49") == 49  # another connection sees the writes
    other.close()
    store.close()


# --- storage -----------------------------------------------------------------------------------------------


def test_storage_uri_round_trip(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path, "company.team", "etl", "e1").for_task("load")
    uri = store.put(b"a,b\n", "out.csv")
    assert uri == "kestra:///company/team/etl/executions/e1/load/out.csv"
    assert store.path(uri) == tmp_path / "executions" / "e1" / "load" / "out.csv"
    assert store.path(uri).read_bytes() == b"a,b\n"
    assert store.put(b"again", "out.csv").endswith("/load/out-2.csv")  # a second file never replaces the first


@pytest.mark.parametrize(
    "uri",
    [
        "kestra:///company/team/etl/executions/e1/load/../../e2/load/x.csv",
        "kestra:///company/team/etl/executions/../../../../etc/passwd",
        "kestra:///company/team/etl/executions/e1//load/out.csv",
        "file:///etc/passwd",
        "kestra:///company/team/etl/out.csv",
    ],
)
def test_storage_refuses_traversal_and_foreign_uris(tmp_path: Path, uri: str) -> None:
    store = LocalStorage(tmp_path, "company.team", "etl", "e1").for_task("load")
    store.put(b"x", "out.csv")
    with pytest.raises(TaskFailed):
        store.path(uri)


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../b", ""])
def test_storage_refuses_names_outside_the_task_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(TaskFailed, match="refused"):
        LocalStorage(tmp_path, "ns", "flow", "e1").put(b"x", name)


def test_storage_namespace_rules_for_other_executions(tmp_path: Path) -> None:
    theirs = LocalStorage(tmp_path, "other.team", "secret", "e2").for_task("t")
    uri = theirs.put(b"private", "data.txt")
    mine = LocalStorage(tmp_path, "company.team", "etl", "e1")
    with pytest.raises(TaskFailed, match="another namespace"):
        mine.path(uri)
    forged = uri.replace("other/team/secret", "company/team/etl")
    with pytest.raises(TaskFailed, match="does not name a stored file"):
        mine.path(forged)
    sibling = LocalStorage(tmp_path, "company.team", "etl", "e0").put(b"mine", "f.txt")
    assert mine.path(sibling).read_bytes() == b"mine"  # same namespace: readable
    allowed = LocalStorage(tmp_path, "company.team", "etl", "e1", readable_executions=frozenset({"e2"}))
    assert allowed.path(uri).read_bytes() == b"private"


def test_local_files_inputs_and_outputs(ctx: RunContext) -> None:
    stored = ctx.storage.put(b"from storage", "seed.txt")
    outputs = task(
        storage.LocalFiles,
        inputs={"hello.txt": "inline", "sub/seed.txt": stored, "other.log": "x"},
        outputs=["*.txt", "sub/**"],
    ).run(ctx)
    assert (ctx.workdir / "sub" / "seed.txt").read_text() == "from storage"
    assert set(outputs["uris"]) == {"hello.txt", "sub/seed.txt"}
    assert ctx.storage.path(outputs["uris"]["hello.txt"]).read_text() == "inline"


@pytest.mark.parametrize(("inputs", "outputs"), [({"../x": "y"}, None), (None, ["../*"]), ({"/tmp/x": "y"}, None)])
def test_local_files_refuses_paths_outside_the_workdir(ctx: RunContext, inputs: Any, outputs: Any) -> None:
    with pytest.raises(TaskFailed, match="refused"):
        task(storage.LocalFiles, inputs=inputs, outputs=outputs).run(ctx)


def test_purge_current_execution_files(ctx: RunContext) -> None:
    uri = ctx.storage.put(b"1", "a.txt")
    ctx.storage.put(b"2", "b.txt")
    outputs = task(storage.PurgeCurrentExecutionFiles).run(ctx)
    assert outputs["count"] == 2 and uri in outputs["uris"]
    with pytest.raises(TaskFailed):
        ctx.storage.path(uri)
    assert task(storage.PurgeCurrentExecutionFiles).run(ctx) == {"uris": [], "count": 0}


# --- a real HTTP server --------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: bytes, content_type: str = "text/plain", **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Handler.received.append(
            {"path": self.path, "method": self.command, "headers": dict(self.headers), "body": body}
        )
        path = self.path.split("?")[0]
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._reply(code, b"server says no: " + b"x" * 400)
        elif path == "/echo":
            document = {"method": self.command, "query": self.path.partition("?")[2], "body": body.decode()}
            document["content_type"] = self.headers.get("Content-Type")
            document["authorization"] = self.headers.get("Authorization")
            self._reply(200, json.dumps(document).encode(), "application/json", X_Trace="a")
        elif path == "/slow":
            time.sleep(3)
            self._reply(200, b"late")
        elif path == "/redirect":
            self._reply(302, b"", Location="/echo")
        elif path == "/files/report.csv":
            self._reply(200, b"id,name\n1,a\n" * 1000, "text/csv")
        elif path == "/named":
            self._reply(200, b"payload", "application/octet-stream", Content_Disposition='attachment; filename="x.bin"')
        elif path == "/empty":
            self._reply(200, b"")
        elif path == "/slack/ok":
            self._reply(200, b"ok")
        elif path.startswith("/slack/"):
            self._reply(400, b"invalid_payload")
        else:
            self._reply(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_request_outputs(ctx: RunContext, server: str) -> None:
    outputs = task(http.Request, uri=f"{server}/echo", params={"q": "1"}).run(ctx)
    assert outputs["code"] == 200
    assert outputs["uri"] == f"{server}/echo?q=1"
    assert outputs["headers"]["X-Trace"] == ["a"]
    assert isinstance(outputs["body"], str)
    assert json.loads(outputs["body"])["query"] == "q=1"


def test_request_body_headers_and_basic_auth(ctx: RunContext, server: str) -> None:
    outputs = task(
        http.Request,
        uri=f"{server}/echo",
        method="POST",
        body='{"a": 1}',
        headers={"X-Custom": "yes"},
        options={"auth": {"type": "BASIC", "username": "u", "password": "p"}},
    ).run(ctx)
    echoed = json.loads(outputs["body"])
    assert echoed["method"] == "POST" and echoed["body"] == '{"a": 1}'
    assert echoed["content_type"] == "application/json"
    assert echoed["authorization"] == "Basic dTpw"
    assert Handler.received[-1]["headers"]["X-Custom"] == "yes"


def test_request_form_data_url_encoded_and_multipart(ctx: RunContext, server: str) -> None:
    outputs = task(http.Request, uri=f"{server}/echo", method="POST", formData={"a": "1", "b": "two"}).run(ctx)
    assert json.loads(outputs["body"])["body"] == "a=1&b=two"
    assert outputs["formData"] == {"a": "1", "b": "two"}
    uri = ctx.storage.put(b"file content", "up.txt")
    outputs = task(http.Request, uri=f"{server}/echo", method="POST", formData={"f": uri, "k": "v"}).run(ctx)
    echoed = json.loads(outputs["body"])
    assert echoed["content_type"].startswith("multipart/form-data")
    assert "file content" in echoed["body"] and 'filename="up.txt"' in echoed["body"]


def test_request_follows_redirects(ctx: RunContext, server: str) -> None:
    assert task(http.Request, uri=f"{server}/redirect").run(ctx)["code"] == 200
    assert task(http.Request, uri=f"{server}/redirect", options={"followRedirects": False}).run(ctx)["code"] == 302


def test_request_http_500_fails_with_code_and_body(ctx: RunContext, server: str) -> None:
    with pytest.raises(TaskFailed) as raised:
        task(http.Request, uri=f"{server}/status/500").run(ctx)
    assert "response code '500'" in raised.value.message
    assert "server says no" in raised.value.message
    assert len(raised.value.message) < 300
    assert raised.value.outputs["code"] == 500


@pytest.mark.parametrize("allow", [{"allowFailed": True}, {"options": {"allowFailed": "true"}}])
def test_request_allow_failed(ctx: RunContext, server: str, allow: dict[str, Any]) -> None:
    outputs = task(http.Request, uri=f"{server}/status/404", **allow).run(ctx)
    assert outputs["code"] == 404 and outputs["body"].startswith("server says no")


def test_request_allowed_response_codes(ctx: RunContext, server: str) -> None:
    assert task(http.Request, uri=f"{server}/status/404", options={"allowedResponseCodes": [404]}).run(ctx)
    with pytest.raises(TaskFailed, match="'200'"):
        task(http.Request, uri=f"{server}/echo", options={"allowedResponseCodes": [201]}).run(ctx)


def test_request_connection_refused(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match="connection refused"):
        task(http.Request, uri=f"http://127.0.0.1:{free_port()}/x").run(ctx)


@pytest.mark.parametrize(
    ("code", "permanent"),
    [(400, True), (401, True), (404, True), (408, False), (429, False), (500, False), (503, False)],
)
def test_a_4xx_answer_is_a_permanent_failure_except_408_and_429(
    ctx: RunContext, server: str, code: int, permanent: bool
) -> None:
    for kind in (http.Request, http.Download):
        with pytest.raises(TaskFailed) as raised:
            task(kind, uri=f"{server}/status/{code}").run(ctx)
        assert f"response code '{code}'" in raised.value.message
        assert raised.value.permanent is permanent


def test_a_refused_connection_an_unknown_host_and_a_bad_url_are_permanent(ctx: RunContext, server: str) -> None:
    with pytest.raises(TaskFailed) as refused:
        task(http.Download, uri=f"http://127.0.0.1:{free_port()}/orders.csv").run(ctx)
    assert refused.value.permanent and "connection refused" in refused.value.message
    for uri in ("file:///etc/passwd", "http://[not-closed/x", "http://127.0.0.1:99999/x"):
        with pytest.raises(TaskFailed) as bad:
            task(http.Request, uri=uri).run(ctx)
        assert bad.value.permanent, uri
    with pytest.raises(TaskFailed) as slow:
        task(http.Request, uri=f"{server}/slow", options={"timeout": {"readIdleTimeout": "PT0.2S"}}).run(ctx)
    assert not slow.value.permanent  # a timeout may pass on another attempt


def test_an_unknown_host_is_permanent_and_a_failing_name_server_is_not() -> None:
    unknown = httpx.ConnectError("[Errno -2] Name or service not known")
    unknown.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert http.permanent_transport_error(unknown)
    again = httpx.ConnectError("[Errno -3] Temporary failure in name resolution")
    again.__cause__ = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert not http.permanent_transport_error(again)


def test_request_read_timeout(ctx: RunContext, server: str) -> None:
    with pytest.raises(TaskFailed, match="timed out"):
        task(http.Request, uri=f"{server}/slow", options={"timeout": {"readIdleTimeout": "PT0.2S"}}).run(ctx)


def test_request_refuses_other_schemes_and_hides_passwords(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match="http:// or https://"):
        task(http.Request, uri="file:///etc/passwd").run(ctx)
    with pytest.raises(TaskFailed) as raised:
        task(http.Request, uri=f"http://user:hunter2@127.0.0.1:{free_port()}/").run(ctx)
    assert "hunter2" not in raised.value.message


def test_client_settings_from_options() -> None:
    settings = http.client_settings(
        http.HttpOptions.model_validate({"timeout": {"connectTimeout": "PT2S"}, "readTimeout": "PT7S"}),
        http.SslOptions(insecureTrustAllCertificates=True),
    )
    assert settings["verify"] is False
    assert settings["timeout"].connect == 2 and settings["timeout"].read == 7
    proxied = http.client_settings(
        http.HttpOptions.model_validate({"proxy": {"type": "HTTP", "address": "proxy.local", "port": 3128}}), None
    )
    assert proxied["proxy"] == "http://proxy.local:3128" and proxied["verify"] is True


def test_download_stores_the_body(ctx: RunContext, server: str) -> None:
    outputs = task(http.Download, uri=f"{server}/files/report.csv").run(ctx)
    expected = b"id,name\n1,a\n" * 1000
    assert outputs["code"] == 200 and outputs["length"] == len(expected)
    assert outputs["uri"] == "kestra:///company/team/flow/executions/exec1/task/report.csv"
    assert ctx.storage.path(outputs["uri"]).read_bytes() == expected
    assert outputs["headers"]["Content-Type"] == ["text/csv"]


def test_download_names(ctx: RunContext, server: str) -> None:
    assert task(http.Download, uri=f"{server}/named").run(ctx)["uri"].endswith("/task/x.bin")
    assert task(http.Download, uri=f"{server}/named", saveAs="mine.dat").run(ctx)["uri"].endswith("/task/mine.dat")


def test_download_empty_and_failed_responses(ctx: RunContext, server: str) -> None:
    with pytest.raises(TaskFailed, match="No response from server"):
        task(http.Download, uri=f"{server}/empty").run(ctx)
    outputs = task(http.Download, uri=f"{server}/empty", failOnEmptyResponse=False).run(ctx)
    assert outputs["length"] == 0
    with pytest.raises(TaskFailed, match="response code '503'"):
        task(http.Download, uri=f"{server}/status/503").run(ctx)
    with pytest.raises(TaskFailed, match="maxContentLength"):
        task(http.Download, uri=f"{server}/files/report.csv", options={"maxContentLength": 100}).run(ctx)


# --- Slack -------------------------------------------------------------------------------------------------


def test_slack_posts_the_payload_or_the_text(ctx: RunContext, server: str) -> None:
    payload = '{"text": "deployed", "blocks": []}'
    assert task(SlackIncomingWebhook, url=f"{server}/slack/ok", payload=payload).run(ctx) == {}
    assert Handler.received[-1]["body"] == payload.encode()
    assert Handler.received[-1]["headers"]["Content-Type"] == "application/json"
    task(SlackIncomingWebhook, url=f"{server}/slack/ok", messageText="hi").run(ctx)
    assert json.loads(Handler.received[-1]["body"]) == {"text": "hi"}


def test_slack_failure_names_the_status_not_the_url(ctx: RunContext, server: str) -> None:
    url = f"{server}/slack/T000/B000/secret-token"
    with pytest.raises(TaskFailed) as raised:
        task(SlackIncomingWebhook, url=url, messageText="hi").run(ctx)
    assert "HTTP 400" in raised.value.message and "invalid_payload" in raised.value.message
    assert "secret-token" not in raised.value.message
    with pytest.raises(TaskFailed) as raised:
        task(SlackIncomingWebhook, url=f"http://127.0.0.1:{free_port()}/secret-token", messageText="x").run(ctx)
    assert "secret-token" not in raised.value.message


def test_slack_checks_its_payload(ctx: RunContext, server: str) -> None:
    with pytest.raises(TaskFailed, match="not valid JSON"):
        task(SlackIncomingWebhook, url=f"{server}/slack/ok", payload="{oops").run(ctx)
    with pytest.raises(TaskFailed, match=r"payload .* or messageText"):
        task(SlackIncomingWebhook, url=f"{server}/slack/ok").run(ctx)


# --- MailSend against a real SMTP server ---------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    inbox = Inbox()
    controller = controller_module.Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def test_mail_send_with_attachment(ctx: RunContext, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    report = ctx.storage.put(b"id\n1\n", "report.csv")
    task(
        MailSend,
        host="127.0.0.1",
        port=port,
        transportStrategy="SMTP",
        **{"from": "bot@example.com"},
        to="a@example.com, b@example.com",
        cc=["c@example.com"],
        bcc="hidden@example.com",
        subject="Nightly report",
        plainTextContent="see attached",
        htmlTextContent="<p>see attached</p>",
        attachments=[{"name": "report.csv", "uri": report, "contentType": "text/csv"}],
    ).run(ctx)
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "bot@example.com"
    assert sorted(envelope.rcpt_tos) == ["a@example.com", "b@example.com", "c@example.com", "hidden@example.com"]
    mail: Message = message_from_bytes(envelope.content)
    assert mail["Subject"] == "Nightly report" and mail["Bcc"] is None
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert {"text/plain", "text/html", "text/csv"} <= set(parts)
    assert parts["text/csv"].get_filename() == "report.csv"
    assert parts["text/csv"].get_payload(decode=True) == b"id\n1\n"


def test_mail_send_failures(ctx: RunContext, smtp: tuple[int, Inbox]) -> None:
    port, _ = smtp
    base = {"host": "127.0.0.1", "port": port, "from": "bot@example.com", "to": "a@example.com"}
    with pytest.raises(TaskFailed, match="does not offer STARTTLS"):
        task(MailSend, transportStrategy="SMTP_TLS", **base).run(ctx)
    with pytest.raises(TaskFailed, match=r"could not send the mail through 127\.0\.0\.1"):
        task(MailSend, transportStrategy="SMTP", **{**base, "port": free_port()}).run(ctx)
    with pytest.raises(TaskFailed, match="at least one recipient"):
        task(MailSend, transportStrategy="SMTP", **{**base, "to": None}).run(ctx)


def test_mail_send_html_with_an_embedded_image(ctx: RunContext, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    logo = ctx.storage.put(b"\x89PNG fake", "logo.png")
    task(
        MailSend,
        host="127.0.0.1",
        port=port,
        transportStrategy="SMTP",
        **{"from": "bot@example.com"},
        to=["a@example.com"],
        subject="html only",
        htmlTextContent='<img src="cid:logo">',
        embeddedImages=[{"name": "logo", "uri": logo, "contentType": "image/png"}],
    ).run(ctx)
    mail = message_from_bytes(inbox.envelopes[0].content)
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert mail.get_content_type() == "multipart/related"
    assert parts["image/png"]["Content-ID"] == "<logo>"
    assert parts["image/png"].get_payload(decode=True) == b"\x89PNG fake"


# --- properties Kestra's current plugin documentation lists ------------------------------------------------------


def test_kv_set_takes_a_description(ctx: RunContext) -> None:
    assert task(kv.Set, key="k", value="v", kvDescription="the last export").run(ctx) == {}
    assert ctx.kv.get("company.team", "k") == "v"


def test_http_options_take_tcp_keep_alive(ctx: RunContext, server: str) -> None:
    options = {"enabledTcpExtendedKeepAlive": False}
    outputs = task(http.Download, uri=f"{server}/files/report.csv", options=options).run(ctx)
    assert outputs["code"] == 200
