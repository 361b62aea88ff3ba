"""dbt Cloud's Administrative API v2 for job runs, played from its published documentation (docs.getdbt.com).

- Auth: `Authorization: Token <api token>` or `Authorization: Bearer <api token>`; anything else is 401.
- `POST /api/v2/accounts/{account_id}/jobs/{job_id}/run/` ("Trigger Job Run"): body `{"cause": string}` required,
  and the optional `git_sha`, `git_branch`, `schema_override`, `dbt_version_override`, `threads_override` (int),
  `target_name_override`, `generate_docs_override` (bool), `timeout_seconds_override` (int), `steps_override`
  (list of strings). Answers the new run (status 1, "Queued").
- `GET /api/v2/accounts/{account_id}/runs/{run_id}/` ("Retrieve Run"), `include_related` a JSON list of
  `trigger`, `job`, `run_steps`, `environment`, `debug_logs`: the run `{id, job_definition_id, status,
  status_humanized, status_message, is_complete, is_success, is_error, is_cancelled, duration_humanized,
  run_steps: [{id, name, status, logs}]}`.
- `GET /api/v2/accounts/{account_id}/runs/{run_id}/artifacts/{path}`: the artifact's JSON; 404 when the run made
  none.
- Every answer: `{"status": {"code", "is_success", "user_message", "developer_message"}, "data": …}`; an unknown
  account, job or run is 404 "The requested resource was not found.", a bad token 401 "Invalid token.".
- Run status: 1 Queued, 2 Starting, 3 Running, 10 Success, 20 Error, 30 Cancelled.

A test scripts a job: `add(job_id, [1, 2, 3, 10])`: each read of a run of it answers the next status.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from saas.jobs_base import Answer, Provider, Request

HUMANIZED = {1: "Queued", 2: "Starting", 3: "Running", 10: "Success", 20: "Error", 30: "Cancelled"}
TRIGGER_BODY: dict[str, type | tuple[type, ...]] = {
    "cause": str, "git_sha": str, "git_branch": str, "azure_pull_request_id": int, "github_pull_request_id": int,
    "gitlab_merge_request_id": int, "schema_override": str, "dbt_version_override": str, "threads_override": int,
    "target_name_override": str, "generate_docs_override": bool, "timeout_seconds_override": int,
    "steps_override": list,
}  # fmt: skip
RELATED = {"trigger", "job", "run_steps", "environment", "debug_logs"}
PATH = re.compile(
    r"^/api/v2/accounts/(?P<account>\d+)/(?:jobs/(?P<job>\d+)/run|runs/(?P<run>\d+)(?:/artifacts/(?P<art>.+?))?)/?$"
)
RUN_RESULTS = {
    "metadata": {"dbt_version": "1.8.0"},
    "elapsed_time": 3.5,
    "results": [
        {"unique_id": "model.shop.orders", "status": "success", "execution_time": 1.25, "message": "SELECT 4"},
        {"unique_id": "test.shop.not_null_orders_id", "status": "pass", "execution_time": 0.5, "message": None},
    ],
}


@dataclass
class Run:
    id: int
    job: int
    statuses: list[int]
    body: dict[str, Any]
    reads: int = 0
    message: str | None = 'Database Error in model orders: relation "raw.orders" does not exist'

    @property
    def status(self) -> int:
        return self.statuses[min(self.reads, len(self.statuses) - 1)]


class FakeDbtCloud(Provider):
    name = "dbt-cloud"

    def __init__(self, account: int, token: str) -> None:
        super().__init__()
        self.account = account
        self.token = token
        self.jobs: dict[int, list[int]] = {}
        self.runs: dict[int, Run] = {}
        self.artifacts = True

    def reset(self) -> None:
        super().reset()
        self.jobs.clear()
        self.runs.clear()
        self.artifacts = True

    def add(self, job: int, statuses: list[int]) -> None:
        self.jobs[job] = statuses

    def error(self, status: int, message: str) -> Any:
        return {"status": {"code": status, "is_success": False, "user_message": message, "developer_message": ""},
                "data": None}  # fmt: skip

    def route(self, request: Request) -> Answer:
        auth = request.headers.get("authorization", "")
        if auth not in (f"Token {self.token}", f"Bearer {self.token}"):
            raise self.refuse(401, "Invalid token.", violation=False)
        match = PATH.match(request.path)
        if not match:
            raise self.refuse(404, f"no such endpoint {request.path}")
        if not request.path.endswith("/") and not match["art"]:
            raise self.refuse(404, f"the documented path ends with a slash: {request.path}")
        if int(match["account"]) != self.account:
            raise self.refuse(404, "The requested resource was not found.", violation=False)
        if match["job"]:
            if request.method != "POST":
                raise self.refuse(405, f"{request.method} on a job's run/")
            return self._trigger(int(match["job"]), request)
        if request.method != "GET":
            raise self.refuse(405, f"{request.method} on a run")
        run = self.runs.get(int(match["run"]))
        if run is None:
            raise self.refuse(404, "The requested resource was not found.", violation=False)
        if match["art"]:
            return self._artifact(run, match["art"])
        self._check_related(request)
        run.reads += 1
        return self._ok(self._run(run))

    def _trigger(self, job: int, request: Request) -> Answer:
        body = self.json_body(request, TRIGGER_BODY, {"cause"})
        if job not in self.jobs:
            raise self.refuse(404, "The requested resource was not found.", violation=False)
        for step in body.get("steps_override") or []:
            if not isinstance(step, str):
                raise self.refuse(400, f"steps_override holds strings, got {step!r}")
        run = Run(id=70000 + len(self.runs) + 1, job=job, statuses=list(self.jobs[job]), body=body)
        self.runs[run.id] = run
        return self._ok(self._run(run))

    def _check_related(self, request: Request) -> None:
        for value in request.query.get("include_related", []):
            try:
                names = json.loads(value)
            except ValueError:
                raise self.refuse(400, f"include_related must be a JSON list, got {value!r}") from None
            if not isinstance(names, list) or not set(names) <= RELATED:
                raise self.refuse(400, f"include_related names {names!r}")

    def _artifact(self, run: Run, path: str) -> Answer:
        if not self.artifacts or run.status != 10 or path not in ("run_results.json", "manifest.json"):
            raise self.refuse(404, "The requested resource was not found.", violation=False)
        if path == "manifest.json":
            return Answer(200, {"metadata": {"dbt_version": "1.8.0"}, "nodes": {"model.shop.orders": {}}})
        return Answer(200, RUN_RESULTS)

    def _ok(self, data: Any) -> Answer:
        status = {"code": 200, "is_success": True, "user_message": "Success!", "developer_message": ""}
        return Answer(200, {"status": status, "data": data})

    def _run(self, run: Run) -> dict[str, Any]:
        status = run.status
        logs = "".join(f"{i}: dbt build: model orders, step log line {i}\n" for i in range(run.reads))
        return {
            "id": run.id, "account_id": self.account, "job_definition_id": run.job, "status": status,
            "status_humanized": HUMANIZED[status],
            "status_message": run.message if status == 20 else None,
            "is_complete": status in (10, 20, 30), "is_success": status == 10, "is_error": status == 20,
            "is_cancelled": status == 30, "duration_humanized": f"{run.reads} minutes",
            "trigger": {"cause": run.body["cause"]},
            "run_steps": [{"id": run.id * 10, "name": "Invoke dbt with `dbt build`", "status": status, "logs": logs}]
            if status >= 3 else [],
        }  # fmt: skip
