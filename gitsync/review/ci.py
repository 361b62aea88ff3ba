"""What `gitsync review` reviews and where it posts: read from the CI's own environment variables, each one
replaced by a flag when given. Nothing here talks to the network; the event file of an Actions run is read.

    GitHub Actions          GITHUB_ACTIONS=true; GITHUB_EVENT_PATH (the pull_request event: number, head.sha,
                            base.sha, base.ref), GITHUB_REPOSITORY, GITHUB_API_URL, GITHUB_SERVER_URL, GITHUB_RUN_ID;
                            the token: GITHUB_TOKEN, which the workflow passes (`env:`)
    Gitea/Forgejo Actions   GITEA_ACTIONS=true or FORGEJO_ACTIONS=true, with the same GITHUB_* variables (their
                            GITHUB_API_URL ends in /api/v1); the token: GITHUB_TOKEN, GITEA_TOKEN or FORGEJO_TOKEN
    GitLab CI               GITLAB_CI=true; CI_MERGE_REQUEST_IID, CI_PROJECT_PATH, CI_API_V4_URL, CI_SERVER_URL,
                            CI_COMMIT_SHA (CI_MERGE_REQUEST_SOURCE_BRANCH_SHA in merged-results pipelines),
                            CI_MERGE_REQUEST_DIFF_BASE_SHA (or _TARGET_BRANCH_SHA), CI_MERGE_REQUEST_TARGET_BRANCH_NAME,
                            CI_JOB_URL; the token: GITLAB_TOKEN (a project access token: CI_JOB_TOKEN cannot post)

GITSYNC_REVIEW_TOKEN is read first on every host. Gitea and Forgejo runners also set GITHUB_ACTIONS, so they
are recognised first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitsync.config import source_name_from_repo
from gitsync.errors import UsageError

HOSTS = ("github", "gitea", "gitlab")
TOKEN_VARIABLES = {
    "github": ("GITSYNC_REVIEW_TOKEN", "GITHUB_TOKEN"),
    "gitea": ("GITSYNC_REVIEW_TOKEN", "GITHUB_TOKEN", "GITEA_TOKEN", "FORGEJO_TOKEN"),
    "gitlab": ("GITSYNC_REVIEW_TOKEN", "GITLAB_TOKEN"),
}
PUBLIC_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
CODE_QUALITY_FILE = "gl-code-quality-report.json"
"""Where the GitLab code-quality report goes unless --code-quality says otherwise (the templates name it)."""
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

TOKEN_HELP = {
    "github": "pass the workflow's token to the step (`env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`) and give the "
    "job `permissions: {contents: read, statuses: write, pull-requests: write}`",
    "gitea": "pass the job's token to the step (`env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`; Forgejo and Gitea "
    "give every job one)",
    "gitlab": "add a masked CI/CD variable GITLAB_TOKEN holding a project access token with the `api` scope and the "
    "Developer role (the job's own CI_JOB_TOKEN cannot post comments or statuses)",
}
PERMISSION_HELP = {
    "github": "the token needs `statuses: write` and `pull-requests: write` (the job's `permissions:`); a pull "
    "request from a fork gets a read-only token under `on: pull_request`",
    "gitea": "the token needs write access to the repository (a pull request from a fork gets a read-only token)",
    "gitlab": "the token needs the `api` scope and at least the Developer role on the project",
}


@dataclass(frozen=True)
class Flags:
    """What the command line gave; None: read it from the CI's environment."""

    host: str | None = None
    api_url: str | None = None
    repository: str | None = None
    pull_request: int | None = None
    base: str | None = None
    head: str | None = None
    token_env: str | None = None
    remote: str | None = None
    source: str | None = None
    code_quality: str | None = None


@dataclass(frozen=True)
class Target:
    """One pull request to review and how to reach its host."""

    ci: str
    """Who runs us, for messages: "GitHub Actions", "GitLab CI", "Gitea/Forgejo Actions" or "the command line"."""
    host: str
    api_url: str
    repository: str
    number: int
    head: str
    """The pull request's head commit (a full sha from the CI; else a revision such as HEAD)."""
    base: str | None
    """The commit merged into (a sha or revision); None: the tip of `base_branch`."""
    base_branch: str | None
    remote: str | None
    """The repository's git URL, to fetch what a shallow clone lacks (None: the clone's `origin`, if any)."""
    token: str
    token_env: str
    source: str
    """The source name in the plan comment's hidden marker (the daemon's source of this repository)."""
    target_url: str | None = None
    step_summary: str | None = None
    code_quality: str | None = None


def detect(environ: Mapping[str, str], flags: Flags) -> Target:
    """The pull request to review: the CI's variables, each replaced by its flag when given.

    Raises UsageError saying what is missing and where to set it.
    """
    host = flags.host or _ci_host(environ)
    if host is None:
        raise UsageError(
            "not running in a CI that gitsync knows (GitHub Actions, GitLab CI, Gitea/Forgejo Actions): give --host, "
            "--repository, --pull-request, --base and --token-env (see `gitsync review --help`)"
        )
    if host not in HOSTS:
        raise UsageError(f"--host must be one of {', '.join(HOSTS)} (got {host!r})")
    found = _from_gitlab(environ) if host == "gitlab" else _from_actions(environ, host)
    label = found.pop("ci")
    ci = label if _ci_host(environ) == host else "the command line"
    values = {**found, **{k: v for k, v in vars(flags).items() if v is not None}}
    repository = _required(values, "repository", ci, "--repository OWNER/NAME (a GitLab project path or id)")
    api_url = _required({"api_url": values.get("api_url") or PUBLIC_API.get(host)}, "api_url", ci, "--api-url URL")
    number = values.get("pull_request")
    if number is None:
        raise UsageError(_not_a_pull_request(ci, environ))
    token_env, token = _token(environ, host, flags.token_env)
    source = values.get("source") or source_name_from_repo(repository)
    if not _SOURCE_NAME.match(source):
        raise UsageError(f"--source {source!r}: a source name is letters, digits, '.', '_' and '-'")
    code_quality = values.get("code_quality") or (CODE_QUALITY_FILE if host == "gitlab" else None)
    return Target(
        ci=ci,
        host=host,
        api_url=api_url,
        repository=repository,
        number=int(number),
        head=values.get("head") or "HEAD",
        base=values.get("base"),
        base_branch=values.get("base_branch"),
        remote=values.get("remote"),
        token=token,
        token_env=token_env,
        source=source,
        target_url=values.get("target_url"),
        step_summary=environ.get("GITHUB_STEP_SUMMARY") or None,
        code_quality=code_quality,
    )


def _ci_host(environ: Mapping[str, str]) -> str | None:
    if _true(environ, "GITEA_ACTIONS") or _true(environ, "FORGEJO_ACTIONS"):
        return "gitea"
    if _true(environ, "GITHUB_ACTIONS"):
        return "github"
    if _true(environ, "GITLAB_CI"):
        return "gitlab"
    return None


def _true(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() == "true"


def _from_actions(environ: Mapping[str, str], host: str) -> dict[str, Any]:
    """GitHub Actions, and Gitea's and Forgejo's, which set the same GITHUB_* variables."""
    event = _event(environ)
    found = event.get("pull_request")
    pr: dict[str, Any] = found if isinstance(found, dict) else {}
    head, base = _mapping(pr.get("head")), _mapping(pr.get("base"))
    server = (environ.get("GITHUB_SERVER_URL") or ("https://github.com" if host == "github" else "")).rstrip("/")
    repository = environ.get("GITHUB_REPOSITORY") or None
    api_url = environ.get("GITHUB_API_URL") or (f"{server}/api/v1" if host == "gitea" and server else None)
    run_id = environ.get("GITHUB_RUN_ID")
    number = (event.get("number") or pr.get("number")) if pr else None
    return {
        "ci": "Gitea/Forgejo Actions" if host == "gitea" else "GitHub Actions",
        "api_url": api_url,
        "repository": repository,
        "pull_request": int(number) if isinstance(number, int | str) and str(number).isdigit() else None,
        "head": head.get("sha") or None,
        "base": base.get("sha") or None,
        "base_branch": base.get("ref") or environ.get("GITHUB_BASE_REF") or None,
        "remote": f"{server}/{repository}.git" if server and repository else None,
        # Gitea and Forgejo link a run by its number in the repository, which the variables do not say for sure
        "target_url": f"{server}/{repository}/actions/runs/{run_id}" if host == "github" and run_id else None,
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _event(environ: Mapping[str, str]) -> dict[str, Any]:
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read this run's event (GITHUB_EVENT_PATH={path}): {exc}") from None
    return data if isinstance(data, dict) else {}


def _from_gitlab(environ: Mapping[str, str]) -> dict[str, Any]:
    server = environ.get("CI_SERVER_URL", "").rstrip("/")
    project = environ.get("CI_PROJECT_PATH") or environ.get("CI_PROJECT_ID") or None
    iid = environ.get("CI_MERGE_REQUEST_IID", "")
    return {
        "ci": "GitLab CI",
        "api_url": environ.get("CI_API_V4_URL") or (f"{server}/api/v4" if server else None),
        "repository": project,
        "pull_request": int(iid) if iid.isdigit() else None,
        # in a merged-results pipeline CI_COMMIT_SHA is the merge GitLab made; the source branch's head is this
        "head": environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") or environ.get("CI_COMMIT_SHA") or None,
        "base": environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_SHA")
        or environ.get("CI_MERGE_REQUEST_DIFF_BASE_SHA")
        or None,
        "base_branch": environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") or None,
        "remote": f"{server}/{environ['CI_PROJECT_PATH']}.git" if server and environ.get("CI_PROJECT_PATH") else None,
        "target_url": environ.get("CI_JOB_URL") or None,
    }


def _token(environ: Mapping[str, str], host: str, token_env: str | None) -> tuple[str, str]:
    names = (token_env,) if token_env else TOKEN_VARIABLES[host]
    for name in names:
        if environ.get(name):
            return name, environ[name]
    tried = " or ".join(names)
    raise UsageError(
        f"no token to post the review to the pull request with: {tried} is not set. To fix it, {TOKEN_HELP[host]}"
        + ("" if token_env else "; or name the variable that holds one with --token-env")
    )


def _required(values: Mapping[str, Any], key: str, ci: str, flag: str) -> str:
    value = values.get(key)
    if not value:
        raise UsageError(f"{ci} does not say which {key.replace('_', ' ')} to use: give {flag}")
    return str(value)


def _not_a_pull_request(ci: str, environ: Mapping[str, str]) -> str:
    if ci == "GitLab CI":
        return (
            f"this is not a merge request pipeline (CI_MERGE_REQUEST_IID is not set; CI_PIPELINE_SOURCE is "
            f"{environ.get('CI_PIPELINE_SOURCE') or 'not set'}): run the job in merge request pipelines "
            '(`rules: [{if: $CI_PIPELINE_SOURCE == "merge_request_event"}]`), or give --pull-request N'
        )
    if ci in ("GitHub Actions", "Gitea/Forgejo Actions"):
        event = environ.get("GITHUB_EVENT_NAME") or "unknown"
        return (
            f"this run is not for a pull request (its event is {event}): run the workflow `on: pull_request`, or "
            "give --pull-request N"
        )
    return "give --pull-request N: the number of the pull (or merge) request to post the review on"
