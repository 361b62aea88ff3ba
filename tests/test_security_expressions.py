"""Issue 9, class 6: no expression stalls or swells the process.

Each attack runs through `gitsync run --file` (a real subprocess, measured by a parent of its own so its peak RSS
is its own) and must fail its task with a reason naming the filter and the limit, within a wall-clock bound. One
attack runs inside a daemon subprocess while `/healthz` is polled: it must answer within 1 s throughout. A
hypothesis test renders generated expressions over generated data and checks bounded time and memory, and that
data holding `{{ }}` / `{% %}` comes back literally.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import daemon_env, running_daemon
from gitservers import GitRepo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.expressions import limits
from runner.expressions.renderer import Renderer, RenderError

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
"""A YAML alias bomb: 9**9 leaves once expanded."""

# task id -> (expression, what the failure must say)
ATTACKS: dict[str, tuple[str, str]] = {
    "round": ("{{ 1 | round(6000000) }}", "round: precision 6000000 is over the limit of 100"),
    "indent": ("{{ 'x\\ny' | indent(1500000000) }}", "indent: amount 1500000000 is over the limit of 10000"),
    "repeat": ("{{ (['aaaaaaaaaa'] * 300000000) | join }}", "over the limit of 100000"),
    "repeatjoin": (
        "{{ ([inputs.big] * 90000) | join(',') }}",
        "*: the result would be 900450000 characters, over the limit of 10485760",
    ),
    "percent": ("{{ '%0300000000d' % 1 }}", "%: width 300000000 is over the limit of 10000"),
    "jqrange": ("{{ {'a': 1} | jq('[range(100000000)]') }}", "jq range: length 100000000 is over the limit"),
    "yamlbomb": ("{{ fromYaml(inputs.bomb) | toJson }}", "fromYaml: the data holds more than 1000000 values"),
    "redos": ("{{ inputs.evil | replace('^(a|aa)+$', 'x', regexp=true) }}", "replace: the regular expression ran"),
    "jqredos": ("{{ inputs.evil | jq('test(\"^(a|aa)+$\")') }}", "jq test: the regular expression ran"),
    "nested": (
        "{% for i in range(1, 100000) %}{{ render('{% for j in range(1, 100000) %}{% endfor %}') }}{% endfor %}",
        "this render walks more than 1000000 items",
    ),
}
WALL_SECONDS = 45.0
"""All attacks together (each ends within a few seconds; the interpreter start is included)."""
RSS_LIMIT_MB = 400


def _attack_flow() -> str:
    tasks = "".join(
        f"  - id: {task}\n    type: io.kestra.plugin.core.debug.Return\n    allowFailure: true\n"
        f"    format: {json.dumps(expression)}\n"
        for task, (expression, _) in ATTACKS.items()
    )
    return (
        "id: stall\nnamespace: acme\ninputs:\n  - id: big\n    type: STRING\n  - id: bomb\n    type: STRING\n"
        "  - id: evil\n    type: STRING\ntasks:\n" + tasks
    )


_MEASURE = textwrap.dedent(
    """\
    import json, resource, subprocess, sys
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"rc": done.returncode, "out": done.stdout + done.stderr, "peak_kb": peak}))
    """
)


def _measured_gitsync(tmp_path: Path, *args: str, timeout: float) -> dict[str, Any]:
    """`gitsync ARGS` under a parent of its own that reports the child's peak RSS (kB)."""
    state = ["--db", str(tmp_path / "s.db"), "--data-dir", str(tmp_path / "d")]
    command = [sys.executable, "-m", "gitsync", *args, *state]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, timeout=timeout, env=daemon_env()
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_each_attack_fails_its_task_quickly_with_the_limit_named(tmp_path: Path) -> None:
    flow = tmp_path / "stall.yaml"
    flow.write_text(_attack_flow(), encoding="utf-8")
    inputs = {"big": "b" * 10_000, "bomb": BOMB, "evil": "a" * 60 + "!"}
    args = [arg for key, value in inputs.items() for arg in ("--input", f"{key}={value}")]
    started = time.monotonic()
    result = _measured_gitsync(tmp_path, "run", "--file", str(flow), *args, timeout=WALL_SECONDS + 30)
    elapsed = time.monotonic() - started
    assert elapsed < WALL_SECONDS, result["out"]
    assert result["peak_kb"] / 1024 < RSS_LIMIT_MB, result
    listing = subprocess.run(
        [sys.executable, "-m", "gitsync", "executions", "--flow", "acme.stall", "--format", "json",
         "--db", str(tmp_path / "s.db"), "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    (execution,) = json.loads(listing.stdout)
    runs = {run["task_id"]: run for run in execution["task_runs"]}
    for task, (_, reason) in ATTACKS.items():
        assert runs[task]["state"] in ("FAILED", "WARNING"), (task, runs[task])
        shown = json.dumps(runs[task]) + result["out"]
        assert reason in shown, (task, reason, runs[task])


HEALTH_FLOW = textwrap.dedent(
    """\
    id: slow
    namespace: acme.demo
    tasks:
      - id: redos
        type: io.kestra.plugin.core.flow.ForEach
        values: "{{ range(1, 4) }}"
        tasks:
          - id: one
            type: io.kestra.plugin.core.debug.Return
            allowFailure: true
            format: "{{ trigger.body.evil | replace('^(a|aa)+$', 'x', regexp=true) }}"
      - id: round
        type: io.kestra.plugin.core.debug.Return
        allowFailure: true
        format: "{{ 1 | round(trigger.body.digits) }}"
    triggers:
      - id: web
        type: io.kestra.plugin.core.trigger.Webhook
        key: stall-key
    """
)


def test_healthz_answers_within_a_second_while_an_attack_runs(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/slow.yaml": HEALTH_FLOW})
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    with running_daemon(tmp_path / "daemon", [source]) as daemon:
        daemon.wait_for(lambda: "acme.demo.slow" in daemon.flow_uids(), "the flow is applied")
        slowest: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            with httpx.Client(base_url=daemon.url, timeout=5.0, trust_env=False) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    client.get("/healthz")
                    slowest.append(time.monotonic() - started)
                    time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        answer = daemon.post(
            "/api/v1/executions/webhook/acme.demo/slow/stall-key", json={"evil": "a" * 60 + "!", "digits": 6000000}
        )
        assert answer.status_code == 200, answer.text
        execution_id = answer.json()["id"]

        def ended() -> bool:
            rows = daemon.query("SELECT state FROM executions WHERE id = ?", (execution_id,))
            return bool(rows) and rows[0]["state"] not in ("CREATED", "RUNNING")

        daemon.wait_for(ended, "the attack's execution ends", timeout=60)
        stop.set()
        poller.join(10)
        runs = daemon.query("SELECT task_id, state, error FROM task_runs WHERE execution_id = ?", (execution_id,))
    assert slowest and max(slowest) < 1.0, sorted(slowest)[-5:]
    errors = " ".join(str(r["error"]) for r in runs)
    assert "round: precision 6000000 is over the limit of 100" in errors, runs
    assert "the regular expression ran longer than" in errors, runs


# -- property-based: generated expressions over generated data ----------------------------------------------------

SECRET_VALUE = "hypothesis-secret-5e1b"
_RENDERER = Renderer(secrets={"X": SECRET_VALUE})
_TEMPLATE_BITS = ["{{ secret('X') }}", "{% for i in range(1, 9) %}x{% endfor %}", "{{", "}}", "{%", "%}", "{#"]
_data_text = st.lists(
    st.one_of(st.sampled_from(_TEMPLATE_BITS), st.text(alphabet="ab {}%#'\"\n|", max_size=8)), max_size=6
).map("".join)
_big = st.one_of(st.integers(-10, 12), st.sampled_from([10**3, 10**6, 10**9, 6_000_000, 1_500_000_000]))
_FILTERS = st.one_of(
    st.builds(lambda n: f"round({n})", _big),
    st.builds(lambda n: f"indent({n})", _big),
    st.builds(lambda n: f"nindent({n}, 'ab')", _big),
    st.builds(lambda n: f"abbreviate({max(4, n)})", _big),
    st.builds(lambda n: f"jq('[range({n})]')", _big),
    st.builds(lambda n: f"chunk({max(1, n)})", _big),
    st.sampled_from(
        [
            "upper", "trim", "toJson", "string", "reverse", "length", "split('a')", "join(',')", "distinct",
            "flatten", "replace('a', 'aaaa')", "replace('(a|aa)+$', 'b', regexp=true)", "jq('.')", "first",
            "toYaml", "urlencode", "base64encode", "sort", "keys", "fromJson", "fromYaml", "slugify", "title",
        ]
    ),
)  # fmt: skip
_OPERATORS = st.one_of(
    st.builds(lambda n: f"* {n}", _big),
    st.builds(lambda n: f"+ {n}", _big),
    st.just("~ data"),
    st.builds(lambda n: f"~ ('%0{n}d' % 1)", _big),
)


@st.composite
def _expressions(draw: st.DrawFn) -> str:
    term = draw(st.sampled_from(["data", "[data, data]", "(data * 3)", "'a'", "[1, 2]", "{'k': data}", "7"]))
    for _ in range(draw(st.integers(0, 4))):
        term = f"({term} | {draw(_FILTERS)})" if draw(st.booleans()) else f"({term} {draw(_OPERATORS)})"
    return "{{ " + term + " }}"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@settings(max_examples=250, deadline=8000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(expression=_expressions(), data=_data_text)
def test_generated_expressions_are_bounded_and_never_evaluate_data(expression: str, data: str) -> None:
    before = _peak_mb()
    started = time.monotonic()
    try:
        out = _RENDERER.render(expression, {"data": data})
    except RenderError:
        out = ""
    assert time.monotonic() - started < limits.MAX_RENDER_SECONDS + 2.0, expression
    assert _peak_mb() - before < 300, expression
    assert len(out) <= limits.MAX_OUTPUT
    assert SECRET_VALUE not in out, (expression, data)


_WRAPS = ["{{ data }}", "{{ data | string }}", "{{ data ~ '' }}", "{{ [data] | first }}", "{{ {'k': data}.k }}"]


@settings(max_examples=150, deadline=2000, derandomize=True)
@given(data=_data_text, wrap=st.sampled_from(_WRAPS))
def test_data_text_comes_back_literally(data: str, wrap: str) -> None:
    assert _RENDERER.render(wrap, {"data": data}) == data
    assert _RENDERER.evaluate(wrap, {"data": data}) == data


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("{{ 1 | round(6000000) }}", "round: precision 6000000 is over the limit of 100"),
        ("{{ 'x' | numberFormat('#.' ~ ('0' * 500)) }}", "numberFormat: decimals 500 is over the limit of 100"),
        ("{{ ('ab' * 5000000) | replace('', 'xx') }}", "replace: the result would be"),
        ("{{ [data] | jq('.[0] * 100000000') }}", "jq *: the result would be"),
    ],
)
def test_refusals_name_the_filter_and_the_limit(expression: str, reason: str) -> None:
    with pytest.raises(RenderError) as refused:
        _RENDERER.render(expression, {"data": "abc"})
    assert reason in refused.value.message


def test_a_yaml_input_holding_an_alias_bomb_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    flow = tmp_path / "doc.yaml"
    flow.write_text(
        "id: doc\nnamespace: acme\ninputs:\n  - id: doc\n    type: YAML\ntasks:\n  - id: t\n"
        '    type: io.kestra.plugin.core.debug.Return\n    format: "{{ inputs.doc | length }}"\n',
        encoding="utf-8",
    )
    started = time.monotonic()
    result = _measured_gitsync(tmp_path, "run", "--file", str(flow), "--input", f"doc={BOMB}", timeout=60)
    assert time.monotonic() - started < 20
    assert result["rc"] == 1, result
    assert "input 'doc' (YAML): YAML input: the data holds more than 1000000 values" in result["out"]
    assert result["peak_kb"] / 1024 < RSS_LIMIT_MB
    stored = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert stored < 5 * 1024 * 1024
