"""dbt Cloud `cloud.TriggerRun` and `cloud.CheckStatus`: a job run over dbt Cloud's Administrative API v2.

The API (docs.getdbt.com, "dbt Cloud Administrative API v2"): `POST /api/v2/accounts/{account}/jobs/{job}/run/`
with `{"cause": …}` and optional overrides starts a run; `GET /api/v2/accounts/{account}/runs/{run}/` reads it
(`include_related` adds its `run_steps` with their logs). Every answer is `{"status": {code, is_success,
user_message, developer_message}, "data": …}`. A run's `status` is 1 queued, 2 starting, 3 running, 10 success,
20 error, 30 cancelled. Once it succeeded, `GET …/runs/{run}/artifacts/run_results.json` and `manifest.json` are
stored in the execution's files (a missing one, 404, is not an error: some runs make none). Auth: the account's
API token, sent as `Authorization: Bearer <token>` as Kestra does (dbt Cloud takes `Token <token>` too).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, ClassVar
from urllib.parse import quote

from plugins.core._props import as_bool, as_int, as_str_list
from plugins.core.http import HttpOptions
from plugins.saas.api import JsonApi, first_text
from plugins.saas.polling import flag, seconds, wait_until
from plugins.values import StrList
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn, DynDuration

DEFAULT_URL = "https://cloud.getdbt.com"
STATUS = {1: "Queued", 2: "Starting", 3: "Running", 10: "Success", 20: "Error", 30: "Cancelled"}
ENDED = (10, 20, 30)
RELATED = '["trigger","job","run_steps","environment"]'
ARTIFACTS = ("run_results.json", "manifest.json")


def dbt_cloud_reason(body: Any) -> str | None:
    return first_text(body, ("status", "user_message"), ("status", "developer_message"), ("detail",))


class _DbtCloud(Task):
    baseUrl: str = DEFAULT_URL
    """dbt Cloud's address for your region or tenant (`https://emea.dbt.com`, …)."""
    accountId: str
    """The dbt Cloud account (a number)."""
    token: str
    """An API token (service or personal); a secret."""
    options: HttpOptions | None = None
    """HTTP client options (timeouts, proxy)."""
    maxRetries: Dyn[int] = 3
    """Attempts of each API call when dbt Cloud answers 429 or 502/503/504."""
    initialDelayMs: Dyn[int] = 1000
    """Milliseconds before the first repeated call, doubled after each (at most 30 s)."""
    pollFrequency: DynDuration | None = None
    """How often to read the run while waiting (PT5S by default)."""
    maxDuration: DynDuration | None = None
    """How long to wait for the run at most (PT60M by default)."""
    parseRunResults: Dyn[bool] = True
    """Log one line per node of run_results.json (its status and time) once the run succeeded."""

    def _api(self, ctx: RunContext) -> JsonApi:
        return JsonApi(
            provider="dbt Cloud",
            base_url=self.baseUrl,
            headers={"Authorization": f"Bearer {self.token}"},
            secrets=[self.token],
            reason=dbt_cloud_reason,
            options=self.options,
            attempts=as_int(self.maxRetries, "maxRetries"),
            first_delay=as_int(self.initialDelayMs, "initialDelayMs") / 1000,
            cancelled=ctx.cancelled,
            on_retry=ctx.logger.warn,
        )

    def _path(self, rest: str) -> str:
        return f"/api/v2/accounts/{quote(str(self.accountId).strip(), safe='')}{rest}"

    def _wait(self, ctx: RunContext, api: JsonApi, run_id: int) -> dict[str, Any]:
        """Poll the run until it ends, logging status changes and new step logs; then store its artifacts."""
        logged: dict[Any, int] = {}
        seen: list[Any] = []

        def poll() -> dict[str, Any] | None:
            run = _data(api.call("GET", self._path(f"/runs/{run_id}/"), params={"include_related": RELATED}))
            status = run.get("status")
            if not seen or seen[-1] != status:
                seen.append(status)
                ctx.logger.info(f"dbt Cloud run {run_id}: {_humanized(run)} after {run.get('duration_humanized')}")
            _log_steps(ctx, run, logged)
            return run if status in ENDED else None

        every = seconds(self.pollFrequency, "pollFrequency", 5.0)
        limit = seconds(self.maxDuration, "maxDuration", 3600.0)
        run = wait_until(ctx, f"dbt Cloud run {run_id} to end", poll, every, limit)
        if run.get("status") != 10:
            said = run.get("status_message")
            raise TaskFailed(
                f"dbt Cloud run {run_id} ended {_humanized(run)} after {run.get('duration_humanized')}"
                + (f": {said}" if said else ""),
                outputs={"runId": run_id},
            )
        return self._artifacts(ctx, api, run_id)

    def _artifacts(self, ctx: RunContext, api: JsonApi, run_id: int) -> dict[str, Any]:
        stored: dict[str, Any] = {"runResults": None, "manifest": None}
        for name in ARTIFACTS:
            try:
                artifact = api.call("GET", self._path(f"/runs/{run_id}/artifacts/{name}"))
            except TaskFailed as exc:
                if "(HTTP 404" not in exc.message:
                    raise
                ctx.logger.debug(f"dbt Cloud run {run_id} has no {name}")
                continue
            uri = ctx.storage.put(json.dumps(artifact).encode("utf-8"), name)
            stored["runResults" if name == "run_results.json" else "manifest"] = uri
            if name == "run_results.json" and as_bool(self.parseRunResults, "parseRunResults"):
                _log_results(ctx, artifact)
        return stored


class TriggerRun(_DbtCloud):
    """Start a dbt Cloud job's run and, with `wait` (the default), wait for it to succeed."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cloud.TriggerRun"

    jobId: str
    """The job to run (a number)."""
    cause: str = "Triggered by gitsync."
    """Why the run was started, as dbt Cloud shows it."""
    gitSha: str | None = None
    """Check this commit out before the run."""
    gitBranch: str | None = None
    """Check this branch out before the run."""
    schemaOverride: str | None = None
    """Build into this schema instead of the job's."""
    dbtVersionOverride: str | None = None
    """Run with this dbt version."""
    threadsOverride: str | None = None
    """Run with this many threads."""
    targetNameOverride: str | None = None
    """The `target.name` of the run."""
    generateDocsOverride: Dyn[bool] | None = None
    """Generate docs, whatever the job says."""
    timeoutSecondsOverride: Dyn[int] | None = None
    """The run's timeout in seconds."""
    stepsOverride: StrList | None = None
    """The commands to run instead of the job's steps."""
    wait: Dyn[bool] = True
    """Wait for the run to end, failing unless it succeeds; false returns the run id at once."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        api = self._api(ctx)
        answer = api.call("POST", self._path(f"/jobs/{quote(str(self.jobId).strip(), safe='')}/run/"), self._body())
        run = _data(answer)
        run_id = run.get("id")
        if not isinstance(run_id, int):
            raise TaskFailed(f"dbt Cloud answered the run without its id: {str(answer)[:200]!r}")
        ctx.logger.info(f"dbt Cloud started run {run_id} of job {self.jobId} ({_humanized(run)})")
        if not flag(self.wait, "wait", True):
            return {"runId": run_id, "runResults": None, "manifest": None}
        return {"runId": run_id, **self._wait(ctx, api, run_id)}

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"cause": self.cause}
        texts = {
            "git_sha": self.gitSha,
            "git_branch": self.gitBranch,
            "schema_override": self.schemaOverride,
            "dbt_version_override": self.dbtVersionOverride,
            "target_name_override": self.targetNameOverride,
        }
        body.update({key: value for key, value in texts.items() if value is not None})
        if self.threadsOverride is not None:
            body["threads_override"] = as_int(self.threadsOverride, "threadsOverride")
        if self.generateDocsOverride is not None:
            body["generate_docs_override"] = as_bool(self.generateDocsOverride, "generateDocsOverride")
        if self.timeoutSecondsOverride is not None:
            body["timeout_seconds_override"] = as_int(self.timeoutSecondsOverride, "timeoutSecondsOverride")
        steps = as_str_list(self.stepsOverride, "stepsOverride")
        if steps:
            body["steps_override"] = steps
        return body


class CheckStatus(_DbtCloud):
    """Wait for a dbt Cloud run to end, failing unless it succeeds; its artifacts are stored."""

    type_name: ClassVar[str] = "io.kestra.plugin.dbt.cloud.CheckStatus"

    runId: str
    """The run to wait for (a number)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        try:
            run_id = int(str(self.runId).strip())
        except ValueError:
            raise TaskFailed(f"runId must be a dbt Cloud run number, got {self.runId!r}", permanent=True) from None
        return self._wait(ctx, self._api(ctx), run_id)


def _data(answer: Any) -> dict[str, Any]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise TaskFailed(f"dbt Cloud answered without a run: {str(answer)[:200]!r}")
    return data


def _humanized(run: dict[str, Any]) -> str:
    return str(run.get("status_humanized") or STATUS.get(run.get("status"), run.get("status")))  # type: ignore[arg-type]


def _log_steps(ctx: RunContext, run: dict[str, Any], logged: dict[Any, int]) -> None:
    """Log what each step printed since the last poll, one line at a time."""
    for step in run.get("run_steps") or []:
        if not isinstance(step, dict):
            continue
        text = str(step.get("logs") or "")
        key = step.get("id", step.get("name"))
        new = text[logged.get(key, 0) :]
        logged[key] = len(text)
        for line in new.splitlines():
            if line.strip():
                ctx.logger.info(f"[Step {step.get('name')}]: {line}")


def _log_results(ctx: RunContext, results: Any) -> None:
    """One line per node of run_results.json, and the counts by status."""
    items = results.get("results") if isinstance(results, dict) else None
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, dict):
            message = f" ({item['message']})" if item.get("message") else ""
            time = float(item.get("execution_time") or 0.0)
            ctx.logger.info(f"dbt {item.get('unique_id')}: {item.get('status')} in {time:.2f} s{message}")
    counts = Counter(str(item.get("status")) for item in items if isinstance(item, dict))
    ctx.logger.info("dbt Cloud run results: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
