"""The compatibility corpus: 399 public Kestra flows (needs ../shared/compat/kestra beside the checkout).

- `gitsync validate` never crashes on any of them;
- every file whose plugin types are all supported here validates, except the documented exceptions;
- every other file fails only with unknown-type errors that name the type (plus the exceptions).
The README states the coverage figure computed here.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

import installed
import pytest
from shared import SHARED, require

from gitsync.flows.loader import LoadedFile, load_flow_source

ROOT = Path(__file__).resolve().parent.parent
CORPUS = SHARED / "compat" / "kestra"
require(CORPUS / "MANIFEST.tsv")  # every test here measures the corpus: the module skips (or fails in CI) without it

# Every corpus file that gitsync rejects for a reason other than an unknown plugin type, and why.
# Each entry is checked: if the file stops failing this way, the test says so and the entry goes.
EXCEPTIONS: dict[str, tuple[str, str]] = {
    "kestra/core__src__test__resources__flows__valids__pause.yaml": (
        "Kestra 1.0 reserves the flow id 'pause' for its API; this 0.21 test flow is refused by Kestra 1.x too",
        "flow id 'pause' is reserved",
    ),
    "examples/blueprints_published__48.yml": (
        "its Webhook trigger has no `key`, which Kestra requires as well",
        "missing required property 'key'",
    ),
    "examples/postgres__eachSequentialPostgres.yml": (
        "unquoted `**` placeholders read as YAML aliases; Kestra's YAML parser rejects the file as well",
        "must be quoted",
    ),
    "blueprints/flows__data-pipeline-assets.yml": (
        "its Enterprise `assets:` block is accepted with a warning, so the EE asset type inside it is not checked",
        "'assets' is accepted but not acted on",
    ),
    "kestra_enterprise_resources/resources__flows__data_pipeline_assets_sqlite.yaml": (
        "its Enterprise `assets:` block is accepted with a warning, so the EE asset type inside it is not checked",
        "'assets' is accepted but not acted on",
    ),
    "kestra_enterprise_resources/resources__flows__generate_assets.yaml": (
        "its Enterprise `assets:` block is accepted with a warning, so the EE asset type inside it is not checked",
        "'assets' is accepted but not acted on",
    ),
    "examples/flows__ee_executions.yml": (
        "a Nashorn script task, which Kestra removed: refused with what to use instead (besides its unknown types)",
        "Nashorn (JavaScript on the JVM) script tasks are not supported",
    ),
    "examples/flows__ee_stream_flows_to_bq.yml": (
        "a Nashorn script task, which Kestra removed: refused with what to use instead (besides its unknown types)",
        "Nashorn (JavaScript on the JVM) script tasks are not supported",
    ),
    # jdbc postgres/mysql: `sqlType` is no property of Kestra's PostgreSQL Queries (nor of any plugin-jdbc task);
    # Kestra refuses the unknown property too. These files also name types gitsync does not ship (ai, notion).
    **dict.fromkeys(
        [
            "lighthouse-kestra/blueprint__lighthouse-research-quickstart.yaml",
            "lighthouse-kestra/flows__ingest__audio_video.yaml",
            "lighthouse-kestra/flows__ingest__hn_reddit.yaml",
            "lighthouse-kestra/flows__ingest__rss.yaml",
        ],
        ("`sqlType` is not a property of io.kestra.plugin.jdbc.postgresql.Queries", "unknown property 'sqlType'"),
    ),
}
# Kestra's own blueprints repository adds an `extend:` metadata block that Kestra's strict parser rejects too.
BLUEPRINT_EXTEND = "unknown property 'extend'"
UNKNOWN_TYPE = re.compile(r"unknown (?:task|trigger|condition|task runner) type '([^']+)'|'([^']+)' is a \w+")


@cache
def corpus_rows() -> list[dict[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@cache
def plugin_class_types() -> frozenset[str]:
    with (CORPUS / "TYPE_FREQ.tsv").open() as handle:
        return frozenset(row["type"] for row in csv.DictReader(handle, delimiter="\t") if row["kind"] == "plugin-class")


@cache
def load(name: str) -> LoadedFile:
    return load_flow_source(name, (CORPUS / name).read_bytes(), installed.registry())


def declared_types(row: dict[str, str]) -> list[str]:
    return [t for t in row["task_types"].split(",") if t in plugin_class_types()]


def supported(row: dict[str, str]) -> bool:
    registry = installed.registry()
    return all(registry.lookup(t) is not None for t in declared_types(row))


def residual_errors(row: dict[str, str]) -> list[str]:
    """Errors that are neither unknown types nor the blueprint `extend:` block."""
    loaded = load(row["file"])
    out = []
    for problem in loaded.errors:
        if UNKNOWN_TYPE.search(problem.message):
            continue
        if row["repo"] == "kestra-io/blueprints" and problem.message.startswith(BLUEPRINT_EXTEND):
            continue
        out.append(problem.format())
    return out


def test_corpus_is_complete() -> None:
    assert len(corpus_rows()) == 399


def test_no_file_crashes_the_loader() -> None:
    for row in corpus_rows():
        loaded = load(row["file"])  # load_flow_source must never raise
        assert loaded.flow is not None or loaded.errors, row["file"]


def test_supported_files_validate() -> None:
    failures = {}
    for row in corpus_rows():
        if row["file"] in EXCEPTIONS or not supported(row):
            continue
        errors = residual_errors(row)
        if errors:
            failures[row["file"]] = errors
    assert failures == {}


def test_unsupported_files_fail_only_on_unknown_types_they_name() -> None:
    registry = installed.registry()
    failures = {}
    for row in corpus_rows():
        if row["file"] in EXCEPTIONS or supported(row):
            continue
        loaded = load(row["file"])
        missing = {t for t in declared_types(row) if registry.lookup(t) is None}
        named = set()
        for problem in loaded.errors:
            match = UNKNOWN_TYPE.search(problem.message)
            if match:
                named.add(match.group(1) or match.group(2))
        if residual_errors(row) or not named or not named <= missing | _case_variants(missing, named):
            failures[row["file"]] = (sorted(missing), sorted(named), residual_errors(row))
    assert failures == {}


def _case_variants(missing: set[str], named: set[str]) -> set[str]:
    lowered = {m.lower() for m in missing}
    return {n for n in named if n.lower() in lowered}


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_documented_exceptions_still_fail_for_their_reason(name: str) -> None:
    reason, expected = EXCEPTIONS[name]
    messages = [p.message for p in load(name).problems]
    assert any(expected in m for m in messages), (reason, messages)


def coverage() -> tuple[int, int, int]:
    """(files that load, files whose types are all supported, all files): blueprints counted without `extend:`."""
    rows = corpus_rows()
    supported_rows = [r for r in rows if supported(r)]
    loading = [r for r in supported_rows if r["file"] not in EXCEPTIONS and not residual_errors(r)]
    return len(loading), len(supported_rows), len(rows)


LOADING_AT_LEAST = 284
"""The coverage reached so far: it may only go up (raise it when more files load)."""


def test_readme_states_the_coverage_figure() -> None:
    loading, supported_count, total = coverage()
    assert loading >= LOADING_AT_LEAST, f"only {loading} corpus files load now, {LOADING_AT_LEAST} did before"
    readme = (ROOT / "README.md").read_text()
    figure = f"{loading} of the {total} corpus flows"
    assert figure in readme, f"README should say: {figure} ({supported_count} use only supported types)"
