"""A review's problems where each CI shows them on the pull request's lines (pure: text and data out).

GitHub Actions reads workflow commands from a step's output (`::error file=…,line=…::message`, the same lines
`gitsync validate --format github` prints); Gitea and Forgejo keep them in the log. GitLab reads a code-quality
report, a JSON file the job declares as `artifacts: reports: codequality:` (an array of issues: description,
check_name, fingerprint, severity, location.path and location.lines.begin).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from gitsync.flows.loader import Problem
from gitsync.flows.report import annotation

CHECK_NAME = "gitsync"
SEVERITY = {"error": "blocker", "warning": "minor"}
"""An error keeps the head from being applied (the merge would change nothing): a blocker in GitLab's words."""


def workflow_commands(problems: Iterable[Problem]) -> list[str]:
    return [annotation(problem) for problem in problems]


def code_quality(problems: Iterable[Problem]) -> str:
    """The GitLab code-quality report of `problems`: one issue each, its fingerprint stable across runs."""
    issues: list[dict[str, Any]] = []
    for problem in problems:
        where = f" ({problem.where})" if problem.where else ""
        flow = f"flow '{problem.flow}'{where}: " if problem.flow else (f"{problem.where}: " if problem.where else "")
        identity = f"{problem.path}\0{problem.line}\0{problem.column}\0{problem.where}\0{problem.message}"
        issues.append(
            {
                "description": f"{flow}{problem.message}",
                "check_name": CHECK_NAME,
                "fingerprint": hashlib.sha256(identity.encode()).hexdigest(),
                "severity": SEVERITY.get(problem.severity, "major"),
                "location": {"path": problem.path, "lines": {"begin": problem.line or 1}},
            }
        )
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"
