"""Validation results for people (text), scripts (json) and GitHub Actions (workflow-command annotations)."""

from __future__ import annotations

import json
from typing import Any

from gitsync.flows.loader import LoadResult, Problem


def render_text(result: LoadResult) -> str:
    lines = [problem.format() for problem in result.all_problems]
    valid = sum(1 for f in result.files if f.ok)
    errors = len(result.errors)
    warnings = len(result.all_problems) - errors
    summary = f"{len(result.files)} file(s): {valid} valid, {len(result.files) - valid} invalid"
    summary += f"; {errors} error(s), {warnings} warning(s)"
    lines.append(summary)
    return "\n".join(lines)


def render_json(result: LoadResult) -> str:
    document: dict[str, Any] = {
        "valid": result.ok,
        "files": [
            {
                "path": f.path,
                "flow": f.flow.uid if f.flow else None,
                "valid": f.ok,
                "problems": [p.as_dict() for p in f.problems],
            }
            for f in result.files
        ],
        "errors": [p.as_dict() for p in result.errors],
        "warnings": [p.as_dict() for p in result.all_problems if p.severity == "warning"],
    }
    return json.dumps(document, indent=2)


def render_github(result: LoadResult) -> str:
    """`::error file=…,line=…,col=…::message`: GitHub shows these on the pull request's lines."""
    lines = [annotation(p) for p in result.all_problems]
    lines.append(render_text(result).rsplit("\n", 1)[-1])
    return "\n".join(lines)


def annotation(problem: Problem) -> str:
    """One problem as a GitHub Actions workflow command (`gitsync review` prints them too)."""
    props = [f"file={_escape_property(problem.path)}"]
    if problem.line is not None:
        props.append(f"line={problem.line}")
    if problem.column is not None:
        props.append(f"col={problem.column}")
    props.append("title=" + _escape_property(f"gitsync: {problem.flow}" if problem.flow else "gitsync"))
    message = f"{problem.where}: {problem.message}" if problem.where else problem.message
    return f"::{problem.severity} {','.join(props)}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


RENDERERS = {"text": render_text, "json": render_json, "github": render_github}
