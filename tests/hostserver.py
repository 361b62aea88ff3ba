"""A real HTTP server on 127.0.0.1 that plays GitHub, Gitea or GitLab for commit statuses and PR comments.

    with host_server("github", repository="acme/flows", token="t0k3n") as host:
        provider = GitHubProvider("acme/flows", "t0k3n", host.api_url)
        ...
        assert host.violations == [] and [s["state"] for s in host.statuses] == ["success"]

Every request is checked against the host's published schema, read at run time from ../shared/hosts/schemas
(`GITSYNC_TEST_SCHEMAS` overrides; nothing is copied): method and path (owner/repo or the URL-encoded GitLab
project, a 40-hex sha), the auth header of the host, `Content-Type: application/json`, and the JSON body validated
with jsonschema. A request that breaks them is answered like the host would (401, 404, 422) and recorded in
`violations`; accepted ones are recorded in `requests` (and `statuses`, `comments`), and answered with 201 + a body
of the host's response schema (the server validates its own answers where the extract has the schema).

What comes from the schema extracts, and what is checked by hand:
- GitHub `POST /repos/{owner}/{repo}/statuses/{sha}`: request body = the operation's inline requestBody schema
  (OpenAPI 3.0 `nullable` turned into JSON Schema); answer validated against `github.status.schema.json`. The
  owner/repo path parameters are `$ref`s into components the extract lacks: checked by hand (they must name the
  configured repository). Limits not in the spec, from HOST_APIS §1.1: description <= 140 and context <= 255
  characters, 1000 statuses per sha and context (422 with GitHub's error body).
- GitHub `POST /repos/{owner}/{repo}/issues/{n}/comments`: request body from the operation's inline schema; the
  answer's `issue-comment` schema is an unresolved `$ref`: a hand-made comment (id, node_id, url, html_url, body,
  user, created_at, updated_at, issue_url, author_association). Body <= 65,536 characters (HOST_APIS §1.5).
  `GET …/issues/{n}/comments` and `PATCH …/issues/comments/{id}` are not in the extract: checked by hand (PATCH
  body `{"body": string}` required, same limit).
- Gitea `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`: the `in: body` parameter's `$ref` is resolved to
  `CreateStatusOption` from definitions.commit-status.json; the answer is validated against `CommitStatus` with its
  `creator` (`$ref` User, not in the extract) checked as an object. Comments endpoints: by hand ([U] in HOST_APIS).
- GitLab: no schema extract exists; the request body is checked against a schema written here from the documented
  attribute table (HOST_APIS §3.1, GL-DOCS): state enum, name/context, ref/target_url/description <= 255, coverage,
  pipeline_id, nothing else. Merge-request notes: by hand (`{"body": string}`).

Faults: `host.fail(code, times=1, retry_after=None)` answers the next status POSTs with `code` (429 carries
`Retry-After` and the host's rate-limit headers); `times=None` keeps failing until `host.clear_faults()`;
`host.slow(seconds, times)` delays answers; `host.latency` delays every answer (the benchmark's 50 ms host).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jsonschema
import yaml
from shared import SHARED, require

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(os.environ.get("GITSYNC_TEST_SCHEMAS") or SHARED / "hosts" / "schemas")
SHA = re.compile(r"^[0-9a-f]{40}$")
GITHUB_COMMENT_LIMIT = 65_536

GITLAB_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "state": {"enum": ["pending", "running", "success", "failed", "canceled", "skipped"]},
        "ref": {"type": "string", "maxLength": 255},
        "name": {"type": "string"},
        "context": {"type": "string"},
        "target_url": {"type": "string", "maxLength": 255},
        "description": {"type": "string", "maxLength": 255},
        "coverage": {"type": "number"},
        "pipeline_id": {"type": "integer"},
    },
    "required": ["state"],
    "additionalProperties": False,
}
COMMENT_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"body": {"type": "string"}},
    "required": ["body"],
}


# -- the published schemas --------------------------------------------------------------------------------------


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema (`type: [t, "null"]`)."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _operation(file: str, path: str, method: str) -> dict[str, Any]:
    location = require(SCHEMAS / file)
    text = location.read_text(encoding="utf-8")
    data = yaml.safe_load(text) if file.endswith(".yaml") else json.loads(text)
    return data[path][method]


@dataclass(frozen=True)
class Schemas:
    github_status: dict[str, Any]
    github_status_answer: dict[str, Any]
    github_comment: dict[str, Any]
    gitea_status: dict[str, Any]
    gitea_status_answer: dict[str, Any]

    @classmethod
    def load(cls) -> Schemas:
        status_op = _operation(
            "github/repos-create-commit-status.operation.yaml", "/repos/{owner}/{repo}/statuses/{sha}", "post"
        )
        comment_op = _operation(
            "github/issues-create-comment.operation.yaml",
            "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            "post",
        )
        gitea_op = _operation(
            "gitea/paths.repos-owner-repo-statuses-sha.json", "/repos/{owner}/{repo}/statuses/{sha}", "post"
        )
        definitions = json.loads((SCHEMAS / "gitea/definitions.commit-status.json").read_text(encoding="utf-8"))
        body_param = next(p for p in gitea_op["parameters"] if p["in"] == "body")
        ref = body_param["schema"]["$ref"]  # "#/definitions/CreateStatusOption": resolved from the definitions file
        gitea_request = definitions[ref.rsplit("/", 1)[1]]
        answer = dict(definitions["CommitStatus"])
        answer["properties"] = {**answer["properties"], "creator": {"type": ["object", "null"]}}  # $ref User: by hand
        return cls(
            github_status=_openapi_to_jsonschema(status_op["requestBody"]["content"]["application/json"]["schema"]),
            github_status_answer=json.loads((SCHEMAS / "github/github.status.schema.json").read_text(encoding="utf-8")),
            github_comment=_openapi_to_jsonschema(comment_op["requestBody"]["content"]["application/json"]["schema"]),
            gitea_status=gitea_request,
            gitea_status_answer=answer,
        )


def _errors(schema: dict[str, Any], value: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in validator.iter_errors(value)]


# -- the server -------------------------------------------------------------------------------------------------


@dataclass
class Fault:
    status: int | None
    delay: float = 0.0
    retry_after: float | None = None


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class HostError(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class FakeHost:
    """The state and rules of one host; `HostServer` feeds it requests."""

    def __init__(self, kind: str, repository: str, token: str, schemas: Schemas) -> None:
        if kind not in ("github", "gitea", "gitlab"):
            raise ValueError(kind)
        self.kind, self.repository, self.token, self.schemas = kind, repository, token, schemas
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.comments: dict[int, dict[str, Any]] = {}
        self.violations: list[str] = []
        self.faulted: list[dict[str, Any]] = []
        self.received = 0
        self.latency = 0.0
        self.base_url = "http://127.0.0.1"
        self._faults: deque[Fault] = deque()
        self._sticky: Fault | None = None
        self._ids = iter(range(1, 10**9))

    # -- faults ---------------------------------------------------------------------------------------------------

    def fail(self, status: int, times: int | None = 1, retry_after: float | None = None) -> None:
        with self.lock:
            if times is None:
                self._sticky = Fault(status, retry_after=retry_after)
            else:
                self._faults.extend(Fault(status, retry_after=retry_after) for _ in range(times))

    def slow(self, seconds: float, times: int = 1) -> None:
        with self.lock:
            self._faults.extend(Fault(None, delay=seconds) for _ in range(times))

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._sticky = None

    def _next_fault(self) -> Fault | None:
        with self.lock:
            if self._faults:
                return self._faults.popleft()
            return self._sticky

    # -- dispatch -------------------------------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return {"github": "", "gitea": "/api/v1", "gitlab": "/api/v4"}[self.kind]

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> Answer:
        with self.lock:
            self.received += 1
        if self.latency:
            time.sleep(self.latency)
        parts = urlsplit(raw_path)
        try:
            self._check_auth(headers)
            route, args = self._route(method, parts.path)
            body = self._body(method, headers, raw)
            if route == "status":
                self._check_status(body)  # a faulted request is checked too
                fault = self._next_fault()
                if fault is not None:
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.status is not None:
                        self.faulted.append({"status": fault.status, "body": body})
                        return self._fault_answer(fault)
            return getattr(self, f"_{route}")(args, body, {"path": parts.path, **parse_qs(parts.query)})
        except HostError as exc:
            return exc.answer

    def _reject(self, status: int, message: str, violation: bool = True) -> HostError:
        if violation:
            with self.lock:
                self.violations.append(message)
        return HostError(Answer(status, self._error_body(status, message)))

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        if self.kind == "gitlab":
            return {"message": f"{status} {message}"}
        if self.kind == "gitea":
            return {"message": message, "url": "https://gitea.example.com/api/swagger"}
        return {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)}

    def _check_auth(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if self.kind == "github":
            ok = auth in (f"Bearer {self.token}", f"token {self.token}")
        elif self.kind == "gitea":
            ok = auth == f"token {self.token}" or auth.lower() == f"bearer {self.token}".lower()
        else:
            ok = headers.get("private-token") == self.token or auth == f"Bearer {self.token}"
        if not ok:
            raise self._reject(401, "Bad credentials" if self.kind == "github" else "Unauthorized")

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        if not path.startswith(self.prefix + "/"):
            raise self._reject(404, f"Not Found: {path}")
        rest = path[len(self.prefix) :]
        if self.kind == "gitlab":
            project = quote(self.repository, safe="")
            patterns = [
                ("POST", rf"^/projects/{re.escape(project)}/statuses/(?P<sha>[^/]+)$", "status"),
                ("GET", rf"^/projects/{re.escape(project)}/merge_requests/(?P<pr>\d+)/notes$", "list_comments"),
                ("POST", rf"^/projects/{re.escape(project)}/merge_requests/(?P<pr>\d+)/notes$", "create_comment"),
                (
                    "PUT",
                    rf"^/projects/{re.escape(project)}/merge_requests/(?P<pr>\d+)/notes/(?P<id>\d+)$",
                    "edit_comment",
                ),
            ]
        else:
            repo = "/repos/" + "/".join(quote(p, safe="") for p in self.repository.split("/", 1))
            edit = "PATCH"
            patterns = [
                ("POST", rf"^{re.escape(repo)}/statuses/(?P<sha>[^/]+)$", "status"),
                ("GET", rf"^{re.escape(repo)}/issues/(?P<pr>\d+)/comments$", "list_comments"),
                ("POST", rf"^{re.escape(repo)}/issues/(?P<pr>\d+)/comments$", "create_comment"),
                (edit, rf"^{re.escape(repo)}/issues/comments/(?P<id>\d+)$", "edit_comment"),
            ]
        for verb, pattern, route in patterns:
            match = re.match(pattern, rest)
            if match and verb == method:
                args = match.groupdict()
                if "sha" in args and not SHA.match(args["sha"]):
                    raise self._reject(422, f"sha is not a commit id: {args['sha']}")
                return route, args
        raise self._reject(404, f"Not Found: {method} {path}")

    def _body(self, method: str, headers: dict[str, str], raw: bytes) -> Any:
        if method == "GET":
            return None
        if not headers.get("content-type", "").startswith("application/json"):
            raise self._reject(415, f"Content-Type must be application/json (got {headers.get('content-type')!r})")
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise self._reject(400, f"Problems parsing JSON: {exc}") from exc

    def _fault_answer(self, fault: Fault) -> Answer:
        status = int(fault.status or 500)
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after) if fault.retry_after >= 1 else fault.retry_after)
        if status in (403, 429) and fault.retry_after is not None:
            reset = str(int(time.time() + fault.retry_after))
            if self.kind == "github":
                headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000", "x-ratelimit-reset": reset})
            elif self.kind == "gitlab":
                headers.update({"RateLimit-Remaining": "0", "RateLimit-Reset": reset})
        messages = {
            401: "Bad credentials",
            403: "API rate limit exceeded" if fault.retry_after is not None else "Resource not accessible by token",
            404: "Not Found",
            422: "Validation Failed",
            429: "API rate limit exceeded",
        }
        return Answer(status, self._error_body(status, messages.get(status, "Server Error")), headers)

    # -- statuses -------------------------------------------------------------------------------------------------

    def _check_status(self, body: Any) -> None:
        schema = {
            "github": self.schemas.github_status,
            "gitea": self.schemas.gitea_status,
            "gitlab": GITLAB_STATUS_SCHEMA,
        }[self.kind]
        problems = _errors(schema, body)
        if problems:
            raise self._reject(422 if self.kind != "gitlab" else 400, "Validation Failed: " + "; ".join(problems))

    def _status(self, args: dict[str, str], body: Any, _query: Any) -> Answer:
        context = body.get("context") or body.get("name") or "default"
        if self.kind == "github":
            self._github_limits(args["sha"], context, body)
        record = {
            "sha": args["sha"],
            "context": context,
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
        }
        with self.lock:
            ident = next(self._ids)
            self.statuses.append(record)
            self.requests.append({"method": "POST", "route": "status", "body": body})
        return self._status_answer(ident, record)

    def _github_limits(self, sha: str, context: str, body: dict[str, Any]) -> None:
        description = body.get("description") or ""
        if len(description) > 140:
            raise self._validation("Status", "description", "description is too long (maximum is 140 characters)")
        if len(context) > 255:
            raise self._validation("Status", "context", "context is too long (maximum is 255 characters)")
        with self.lock:
            same = sum(1 for s in self.statuses if s["sha"] == sha and s["context"].lower() == context.lower())
        if same >= 1000:
            raise self._validation(
                "Status", "context", "This SHA and context has reached the maximum number of statuses."
            )

    def _validation(self, resource: str, field_name: str, message: str) -> HostError:
        """GitHub's 422 for a limit the schema does not state: answered as the host does, not a client bug."""
        body = {
            "message": "Validation Failed",
            "errors": [{"resource": resource, "code": "custom", "field": field_name, "message": message}],
            "documentation_url": "https://docs.github.com/rest",
        }
        return HostError(Answer(422, body))

    def _status_answer(self, ident: int, record: dict[str, Any]) -> Answer:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        base = f"{self.base_url}{self.prefix}"
        if self.kind == "github":
            body = {
                "url": f"{base}/repos/{self.repository}/statuses/{record['sha']}",
                "avatar_url": None,
                "id": ident,
                "node_id": f"SC_{ident}",
                "state": record["state"],
                "description": record["description"],
                "target_url": record["target_url"],
                "context": record["context"],
                "created_at": now,
                "updated_at": now,
                "creator": None,
            }
            self._self_check(self.schemas.github_status_answer, body)
            return Answer(201, body, {"Location": body["url"]})
        if self.kind == "gitea":
            body = {
                "id": ident,
                "status": record["state"],
                "target_url": record["target_url"] or "",
                "description": record["description"] or "",
                "url": f"{base}/repos/{self.repository}/statuses/{record['sha']}",
                "context": record["context"],
                "creator": {"id": 1, "login": "gitsync"},
                "created_at": now,
                "updated_at": now,
            }
            self._self_check(self.schemas.gitea_status_answer, body)
            return Answer(201, body)
        body = {
            "id": ident,
            "sha": record["sha"],
            "ref": None,
            "status": record["state"],
            "name": record["context"],
            "target_url": record["target_url"],
            "description": record["description"],
            "coverage": None,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "allow_failure": False,
            "author": {"id": 1, "username": "gitsync", "name": "gitsync"},
        }
        return Answer(201, body)

    def _self_check(self, schema: dict[str, Any], body: Any) -> None:
        problems = _errors(schema, body)
        if problems:
            raise AssertionError(f"the fake {self.kind} answered outside its schema: {problems}")

    # -- comments -------------------------------------------------------------------------------------------------

    def _check_comment(self, body: Any) -> str:
        schema = self.schemas.github_comment if self.kind == "github" else COMMENT_BODY_SCHEMA
        problems = _errors(schema, body)
        if problems:
            raise self._reject(422, "Validation Failed: " + "; ".join(problems))
        text = body["body"]
        if self.kind == "github" and len(text) > GITHUB_COMMENT_LIMIT:
            raise self._validation("IssueComment", "data", "Body is too long (maximum is 65536 characters)")
        return text

    def _list_comments(self, args: dict[str, str], _body: Any, query: dict[str, Any]) -> Answer:
        size_key = "limit" if self.kind == "gitea" else "per_page"
        size = int((query.get(size_key) or ["30"])[0])
        page = int((query.get("page") or ["1"])[0])
        with self.lock:
            items = [c for c in self.comments.values() if c["pr"] == int(args["pr"])]
            self.requests.append({"method": "GET", "route": "list_comments", "body": None})
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if page * size < len(items):
            headers["Link"] = f'<{self.base_url}{query["path"]}?{size_key}={size}&page={page + 1}>; rel="next"'
        return Answer(200, [self._comment_answer(c) for c in chunk], headers)

    def _create_comment(self, args: dict[str, str], body: Any, _query: Any) -> Answer:
        text = self._check_comment(body)
        with self.lock:
            ident = next(self._ids)
            self.comments[ident] = {"id": ident, "pr": int(args["pr"]), "body": text, "edits": 0}
            self.requests.append({"method": "POST", "route": "create_comment", "body": body})
            comment = dict(self.comments[ident])
        return Answer(201, self._comment_answer(comment))

    def _edit_comment(self, args: dict[str, str], body: Any, _query: Any) -> Answer:
        text = self._check_comment(body)
        with self.lock:
            comment = self.comments.get(int(args["id"]))
            if comment is None or ("pr" in args and comment["pr"] != int(args["pr"])):
                raise self._reject(404, "Not Found", violation=False)
            comment["body"] = text
            comment["edits"] += 1
            self.requests.append({"method": "EDIT", "route": "edit_comment", "body": body})
            snapshot = dict(comment)
        return Answer(200, self._comment_answer(snapshot))

    def _comment_answer(self, comment: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        user = {"id": 1, "login": "gitsync"} if self.kind != "gitlab" else {"id": 1, "username": "gitsync"}
        answer = {"id": comment["id"], "body": comment["body"], "created_at": now, "updated_at": now}
        if self.kind == "gitlab":
            return {**answer, "author": user, "system": False, "noteable_type": "MergeRequest"}
        return {
            **answer,
            "node_id": f"IC_{comment['id']}",
            "url": f"http://127.0.0.1{self.prefix}/repos/{self.repository}/issues/comments/{comment['id']}",
            "html_url": f"http://127.0.0.1/{self.repository}/pull/{comment['pr']}#issuecomment-{comment['id']}",
            "issue_url": f"http://127.0.0.1{self.prefix}/repos/{self.repository}/issues/{comment['pr']}",
            "user": user,
            "author_association": "OWNER",
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # headers and body leave in one write (two small writes meet delayed ACKs: +40 ms each)
    host: FakeHost

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.server.host.handle(self.command, self.path, headers, raw)  # type: ignore[attr-defined]
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HostServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: FakeHost) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.host = host

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class RunningHost:
    """What a test holds: the fake host's records and faults, and the API URL to configure."""

    fake: FakeHost
    server: HostServer

    @property
    def api_url(self) -> str:
        return self.server.base_url + self.fake.prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)


@contextmanager
def host_server(kind: str, repository: str = "acme/flows", token: str = "t0k3n") -> Iterator[RunningHost]:
    server = HostServer(FakeHost(kind, repository, token, Schemas.load()))
    server.host.base_url = server.base_url
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningHost(server.host, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main() -> None:
    """`python tests/hostserver.py github --latency 0.05`: serve until killed; prints the API URL, then counts."""
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["github", "gitea", "gitlab"])
    parser.add_argument("--repository", default="acme/flows")
    parser.add_argument("--token", default="t0k3n")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    with host_server(args.kind, args.repository, args.token) as host:
        host.fake.latency = args.latency
        print(host.api_url, flush=True)
        try:
            for line in iter(input, "quit"):
                if line == "count":
                    print(
                        json.dumps(
                            {
                                "statuses": len(host.statuses),
                                "received": host.received,
                                "violations": len(host.violations),
                            }
                        ),
                        flush=True,
                    )
        except EOFError:
            pass


if __name__ == "__main__":
    main()
