"""Kestra fidelity of expressions (issue #11): input defaults, typed inputs as Kestra prints them, the functions
that read the running execution, and Kestra's argument names for every filter and function."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime import Runtime, deployed_state, gitsync_cli
from test_render import FakeKV, FakeStorage

from runner.expressions.renderer import RUNTIME, Renderer, RenderError, RenderRuntime


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


# ---------------------------------------------------------------------------------------------- input defaults


DEFAULTS_FLOW = """
    id: defaults
    namespace: acme
    inputs:
      - id: region
        type: STRING
        defaults: eu
      - id: bucket
        type: STRING
        defaults: "data-{{ inputs.region }}"
      - id: since
        type: STRING
        defaults: "{{ nope.day }}"
    tasks:
      - id: show
        type: io.kestra.plugin.core.debug.Return
        format: "{{ inputs.bucket }} {{ inputs.since }}"
"""


def test_an_undefined_variable_in_an_input_default_is_an_input_error(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"defaults.yaml": DEFAULTS_FLOW})
    done = gitsync_cli(state, "run", "acme.defaults")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "input 'since'" in done.stderr
    assert "undefined variable 'nope.day'" in done.stderr
    assert "default" in done.stderr
    listed = gitsync_cli(state, "executions", "--flow", "acme.defaults", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    # given a value, the default is not rendered, and a default may use the inputs declared before it
    done = gitsync_cli(state, "run", "acme.defaults", "--input", "since=monday")
    assert done.returncode == 0, done.stdout + done.stderr
    (execution,) = json.loads(gitsync_cli(state, "executions", "--flow", "acme.defaults", "--format", "json").stdout)
    assert execution["inputs"] == {"region": "eu", "bucket": "data-eu", "since": "monday"}


# ---------------------------------------------------------------------------------------------- typed inputs


TYPED_FLOW = """
    id: typed
    namespace: acme
    inputs:
      - id: delay
        type: DURATION
        defaults: PT0.01S
      - id: timeout
        type: DURATION
        defaults: P1D
      - id: at
        type: DATETIME
        defaults: "2024-01-15T10:00:00.1+02:00"
      - id: day
        type: DATE
        defaults: "2024-01-15"
      - id: clock
        type: TIME
        defaults: "10:15:00"
      - id: days
        type: ARRAY
        itemType: DATE
        defaults: ["2024-02-29"]
    tasks:
      - id: wait
        type: io.kestra.plugin.core.flow.Pause
        delay: "{{ inputs.delay }}"
      - id: nap
        type: io.kestra.plugin.core.flow.Sleep
        duration: "{{ inputs.delay }}"
      - id: show
        type: io.kestra.plugin.core.debug.Return
        timeout: "{{ inputs.timeout }}"
        format: >-
          {{ inputs.delay }} {{ inputs.timeout }} {{ inputs.at }} {{ inputs.day }} {{ inputs.clock }}
          {{ inputs.days }}
      - id: fmt
        type: io.kestra.plugin.core.debug.Return
        format: "{{ inputs.at | date('yyyy-MM-dd HH:mm') }} {{ inputs.day | date('dd/MM/yyyy') }}"
"""


def test_typed_inputs_render_as_kestra_prints_them(rt: Runtime) -> None:
    rt.deploy({"typed.yaml": TYPED_FLOW})
    execution = rt.run("acme.typed")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert rt.states(execution) == {"wait": "SUCCESS", "nap": "SUCCESS", "show": "SUCCESS", "fmt": "SUCCESS"}
    outputs = {run["task_id"]: run["outputs"].get("value") for run in execution["task_runs"]}
    # Java's Duration (PT24H, never P1D), Instant (UTC, millis in groups of three), LocalDate, LocalTime (HH:mm)
    assert outputs["show"] == 'PT0.01S PT24H 2024-01-15T08:00:00.100Z 2024-01-15 10:15 ["2024-02-29"]'
    assert outputs["fmt"] == "2024-01-15 08:00 15/01/2024"
    given = rt.run("acme.typed", delay="PT0.02S", timeout="PT90M", at="2024-06-01T00:00:00Z", clock="23:59:30.5")
    assert given["state"] == "SUCCESS", given["error"]
    show = next(run for run in given["task_runs"] if run["task_id"] == "show")
    assert show["outputs"]["value"] == 'PT0.02S PT1H30M 2024-06-01T00:00:00Z 2024-01-15 23:59:30.500 ["2024-02-29"]'


# ---------------------------------------------------------------------------------------------- execution functions


REPORT_FLOW = """
    id: report
    namespace: acme
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: ["a", "b"]
        tasks:
          - id: echo
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: boom
        type: io.kestra.plugin.core.execution.Fail
        errorMessage: the warehouse is closed
    errors:
      - id: failed
        type: io.kestra.plugin.core.debug.Return
        format: "{{ tasksWithState('failed') }}"
      - id: failed_by_default
        type: io.kestra.plugin.core.debug.Return
        format: "{{ tasksWithState() | length }}"
      - id: succeeded
        type: io.kestra.plugin.core.debug.Return
        format: "{{ tasksWithState(state='SUCCESS') }}"
      - id: logs
        type: io.kestra.plugin.core.debug.Return
        format: "{{ errorLogs() }}"
      - id: first_log
        type: io.kestra.plugin.core.debug.Return
        format: "{{ errorLogs()[0].taskId }}: {{ errorLogs()[0].message }}"
"""


def test_an_errors_branch_reports_what_went_wrong(rt: Runtime) -> None:
    rt.deploy({"report.yaml": REPORT_FLOW})
    execution = rt.run("acme.report")
    assert execution["state"] == "FAILED"
    states = rt.states(execution)
    for task in ("failed", "failed_by_default", "succeeded", "logs", "first_log"):
        assert states[task] == "SUCCESS", execution["logs"]
    value = {run["task_id"]: run["outputs"].get("value") for run in execution["task_runs"]}
    assert json.loads(value["failed"]) == [{"state": "FAILED", "taskId": "boom"}]
    assert value["failed_by_default"] == "1"
    succeeded = json.loads(value["succeeded"])
    assert sorted(succeeded, key=lambda t: (t["taskId"], t.get("value", ""))) == [
        {"state": "SUCCESS", "taskId": "each"},
        {"state": "SUCCESS", "taskId": "echo", "value": "a"},
        {"state": "SUCCESS", "taskId": "echo", "value": "b"},
        {"state": "SUCCESS", "taskId": "failed"},  # the errors branch's own tasks that ended before it
        {"state": "SUCCESS", "taskId": "failed_by_default"},
    ]
    (entry,) = json.loads(value["logs"])  # Kestra's LogEntry: the execution's ERROR logs, oldest first
    boom = next(run for run in execution["task_runs"] if run["task_id"] == "boom")
    assert entry["level"] == "ERROR" and "the warehouse is closed" in entry["message"]
    assert entry["namespace"] == "acme" and entry["flowId"] == "report" and entry["executionId"] == execution["id"]
    assert entry["taskId"] == "boom" and entry["taskRunId"] == boom["id"] and entry["attemptNumber"] == 1
    assert entry["timestamp"].endswith("Z")
    assert value["first_log"].startswith("boom: ") and "the warehouse is closed" in value["first_log"]


def test_file_functions_read_the_execution_files(rt: Runtime) -> None:
    rt.deploy(
        {
            "files.yaml": """
            id: files
            namespace: acme
            tasks:
              - id: make
                type: io.kestra.plugin.core.storage.LocalFiles
                inputs:
                  hello.txt: "hello"
                  empty.txt: ""
                outputs: ["*.txt"]
              - id: check
                type: io.kestra.plugin.core.debug.Return
                format: >-
                  {{ fileSize(outputs.make.uris['hello.txt']) }}
                  {{ fileExists(outputs.make.uris['hello.txt']) }}
                  {{ fileExists(outputs.make.uris['hello.txt'] ~ '.gone') }}
                  {{ isFileEmpty(outputs.make.uris['empty.txt']) }}
                  {{ fileEmpty(path=outputs.make.uris['hello.txt']) }}
            """
        }
    )
    execution = rt.run("acme.files")
    assert execution["state"] == "SUCCESS", execution["logs"]
    check = next(run for run in execution["task_runs"] if run["task_id"] == "check")
    assert check["outputs"]["value"] == "5 true false true false"


# ---------------------------------------------------------------------------------------------- argument names

NO_ARGUMENT_FILTERS = (
    "abs", "base64decode", "base64encode", "capitalize", "className", "distinct", "first", "flatten", "keys",
    "last", "length", "lower", "md5", "reverse", "rsort", "sha1", "sha256", "sha512", "slugify", "sort",
    "string", "title", "toJson", "json", "trim", "upper", "urldecode", "urlencode", "values", "yaml",
)  # fmt: skip
# Kestra's (and Pebble's) argument names, in their positional order, from their docs and getArgumentNames().
KESTRA_FILTER_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "abbreviate": ("length",),
    "chunk": ("size",),
    "date": ("format", "timeZone", "existingFormat", "locale"),
    "dateAdd": ("amount", "unit", "format", "timeZone", "existingFormat", "locale"),
    "default": ("default",),
    "endsWith": ("value",),
    "escapeChar": ("type",),
    "indent": ("amount", "prefix"),
    "nindent": ("amount", "prefix"),
    "jq": ("expression",),
    "join": ("separator",),
    "merge": ("items",),
    "number": ("type",),
    "numberFormat": ("format",),
    "numberformat": ("format",),
    "replace": ("replace_pairs", "regexp"),
    "slice": ("fromIndex", "toIndex"),
    "split": ("delimiter", "limit"),
    "startsWith": ("value",),
    "substringAfter": ("separator",),
    "substringAfterLast": ("separator",),
    "substringBefore": ("separator",),
    "substringBeforeLast": ("separator",),
    "timestamp": ("timeZone", "existingFormat"),
    "timestampMilli": ("timeZone", "existingFormat"),
    "timestampMicro": ("timeZone", "existingFormat"),
    "timestampNano": ("timeZone", "existingFormat"),
    **dict.fromkeys(NO_ARGUMENT_FILTERS, ()),
}
KESTRA_FUNCTION_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "now": ("format", "timeZone", "existingFormat", "locale"),
    "secret": ("key",),
    "kv": ("key", "namespace", "errorOnMissing"),
    "read": ("path", "namespace"),
    "fileSize": ("path", "namespace"),
    "fileExists": ("path", "namespace"),
    "isFileEmpty": ("path", "namespace"),
    "render": ("toRender", "recursive"),
    "renderOnce": ("toRender",),
    "fromJson": ("json",),
    "json": ("json",),
    "yaml": ("yaml",),
    "currentEachOutput": ("outputs",),
    "randomInt": ("lower", "upper"),
    "range": ("start", "end", "increment"),
    "uuid": (),
    "id": (),
}


def _arguments_of(renderer: Renderer, template: str) -> tuple[str, ...]:
    """The arguments a filter or function takes, as its refusal of an unknown argument names them."""
    with pytest.raises(RenderError) as refused:
        renderer.render(template, {})
    message = refused.value.message
    if "it takes no argument" in message:
        return ()
    match = re.search(r"its arguments: ([^)]*)\)", message)
    assert match, message
    return tuple(name for name in match.group(1).split(", ") if not name.startswith("*"))


@pytest.mark.parametrize(("name", "expected"), KESTRA_FILTER_ARGUMENTS.items(), ids=list(KESTRA_FILTER_ARGUMENTS))
def test_each_filter_takes_kestras_argument_names_in_kestras_order(name: str, expected: tuple[str, ...]) -> None:
    taken = _arguments_of(Renderer(), f"{{{{ 'x' | {name}(notAnArgument=1) }}}}")
    assert taken[: len(expected)] == expected


@pytest.mark.parametrize(("name", "expected"), KESTRA_FUNCTION_ARGUMENTS.items(), ids=list(KESTRA_FUNCTION_ARGUMENTS))
def test_each_function_takes_kestras_argument_names_in_kestras_order(name: str, expected: tuple[str, ...]) -> None:
    taken = _arguments_of(Renderer(), f"{{{{ {name}(notAnArgument=1) }}}}")
    assert taken[: len(expected)] == expected


def test_a_wrong_argument_name_is_refused_with_the_names_it_takes() -> None:
    with pytest.raises(RenderError) as refused:
        Renderer().render("{{ execution.startDate | date(fmt='yyyy') }}", {"execution": {"startDate": "2024-01-31"}})
    assert refused.value.message == (
        "filter date() has no argument 'fmt' (its arguments: format, timeZone, existingFormat, locale)"
        " in {{ execution.startDate | date(fmt='yyyy') }}"
    )


START = "2024-01-31T10:05:09.123456Z"

# (named call, the same call with positional arguments, what Kestra renders)
CALLS = [
    ("{{ 'this is long' | abbreviate(length=7) }}", "{{ 'this is long' | abbreviate(7) }}", "this..."),
    ("{{ [1, 2, 3] | chunk(size=2) }}", "{{ [1, 2, 3] | chunk(2) }}", "[[1,2],[3]]"),
    (
        "{{ start | date(format='yyyy-MM-dd HH:mm', timeZone='Asia/Tokyo', locale='en') }}",
        "{{ start | date('yyyy-MM-dd HH:mm', 'Asia/Tokyo', null, 'en') }}",
        "2024-01-31 19:05",
    ),
    (
        "{{ '31/01/2024 23:00' | date(format='yyyy-MM-dd HH:mm XXX', timeZone='Asia/Tokyo',"
        " existingFormat='dd/MM/yyyy HH:mm') }}",
        "{{ '31/01/2024 23:00' | date('yyyy-MM-dd HH:mm XXX', 'Asia/Tokyo', 'dd/MM/yyyy HH:mm') }}",
        "2024-01-31 23:00 +09:00",
    ),
    ("{{ '2024-01-31T10:00:00+02:00' | date('HH:mm') }}", None, "08:00"),  # formatted in UTC, as Kestra's servers
    (
        "{{ '31/01/2024' | dateAdd(amount=1, unit='MONTHS', format='yyyy-MM-dd', timeZone='UTC',"
        " existingFormat='dd/MM/yyyy', locale='en') }}",
        "{{ '31/01/2024' | dateAdd(1, 'MONTHS', 'yyyy-MM-dd', 'UTC', 'dd/MM/yyyy', 'en') }}",
        "2024-02-29",
    ),
    ("{{ start | dateAdd(-1, 'DAYS') }}", None, "2024-01-30T10:05:09.123456Z"),  # the `iso` format by default
    ("{{ start | dateAdd(1, 'HOURS', format='HH:mm', timeZone='Europe/Paris') }}", None, "12:05"),
    ("{{ null | default(default='none') }}", "{{ null | default('none') }}", "none"),
    ("{{ 'abc' | endsWith(value='c') }}", "{{ 'abc' | endsWith('c') }}", "true"),
    ("{{ 'abc' | startsWith(value='b') }}", "{{ 'abc' | startsWith('b') }}", "false"),
    ("{{ \"it's\" | escapeChar(type='single') }}", "{{ \"it's\" | escapeChar('single') }}", "it\\'s"),
    ("{{ 'a\nb' | indent(amount=2, prefix='-') }}", "{{ 'a\nb' | indent(2, '-') }}", "a\n--b"),
    ("{{ 'a' | nindent(amount=2, prefix='-') }}", "{{ 'a' | nindent(2, '-') }}", "\n--a"),
    ("{{ {'a': 1} | jq(expression='.a') }}", "{{ {'a': 1} | jq('.a') }}", "[1]"),
    ("{{ ['a', 'b'] | join(separator='+') }}", "{{ ['a', 'b'] | join('+') }}", "a+b"),
    ("{{ [1] | merge(items=[2]) }}", "{{ [1] | merge([2]) }}", "[1,2]"),
    ("{{ '12' | number(type='FLOAT') }}", "{{ '12' | number('FLOAT') }}", "12.0"),
    ("{{ 3.14159 | numberFormat(format='#.##') }}", "{{ 3.14159 | numberformat('#.##') }}", "3.14"),
    (
        "{{ 'a1b22' | replace(replace_pairs={'[0-9]+': '#'}, regexp=true) }}",
        "{{ 'a1b22' | replace({'[0-9]+': '#'}, true) }}",
        "a#b#",
    ),
    ("{{ 'abcd' | slice(fromIndex=1, toIndex=3) }}", "{{ 'abcd' | slice(1, 3) }}", "bc"),
    ("{{ 'a,b,c' | split(delimiter=',', limit=2) }}", "{{ 'a,b,c' | split(',', 2) }}", '["a","b,c"]'),
    ("{{ 'a.b.c' | substringAfter(separator='.') }}", "{{ 'a.b.c' | substringAfter('.') }}", "b.c"),
    ("{{ 'a.b.c' | substringAfterLast(separator='.') }}", "{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
    ("{{ 'a.b.c' | substringBefore(separator='.') }}", "{{ 'a.b.c' | substringBefore('.') }}", "a"),
    ("{{ 'a.b.c' | substringBeforeLast(separator='.') }}", "{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"),
    (
        "{{ '2024-01-01 01:00' | timestamp(timeZone='Europe/Paris', existingFormat='yyyy-MM-dd HH:mm') }}",
        "{{ '2024-01-01 01:00' | timestamp('Europe/Paris', 'yyyy-MM-dd HH:mm') }}",
        "1704067200",
    ),
    ("{{ start | timestampMilli(timeZone='UTC') }}", "{{ start | timestampMilli('UTC') }}", "1706695509123"),
    ("{{ start | timestampMicro(timeZone='UTC') }}", "{{ start | timestampMicro('UTC') }}", "1706695509123456"),
    ("{{ start | timestampNano(timeZone='UTC') }}", "{{ start | timestampNano('UTC') }}", "1706695509123456000"),
    (
        "{{ now(format='yyyy', timeZone='UTC', locale='en') | length }}",
        "{{ now('yyyy', 'UTC', null, 'en') | length }}",
        "4",
    ),
    ("{{ secret(key='TOKEN') }}", "{{ secret('TOKEN') }}", "s3cr3t-value"),
    ("{{ kv(key='k', namespace='acme', errorOnMissing=false) }}", "{{ kv('k', 'acme', false) }}", "from-kv"),
    ("{{ kv(key='gone', errorOnMissing=false) ?? 'none' }}", None, "none"),
    ("{{ read(path=file) }}", "{{ read(file) }}", "file text"),
    ("{{ fileSize(path=file, namespace='acme') }}", "{{ fileSize(file, 'acme') }}", "9"),
    ("{{ fileExists(path=file) }}", "{{ fileExists(file) }}", "true"),
    ("{{ isFileEmpty(path=file) }}", "{{ isFileEmpty(file) }}", "false"),
    ("{{ render(toRender=template, recursive=false) }}", "{{ render(template, false) }}", "{{ 1 + 1 }}"),
    ("{{ renderOnce(toRender='{{ 1 + 1 }}') }}", "{{ renderOnce('{{ 1 + 1 }}') }}", "2"),
    ("{{ fromJson(json='[1, 2]')[1] }}", "{{ fromJson('[1, 2]')[1] }}", "2"),
    ("{{ json(json='{\"a\": 1}').a }}", "{{ json('{\"a\": 1}').a }}", "1"),
    ("{{ yaml(yaml='a: [1]').a[0] }}", "{{ yaml('a: [1]').a[0] }}", "1"),
    ("{{ currentEachOutput(outputs=each).value }}", "{{ currentEachOutput(each).value }}", "second"),
    ("{{ randomInt(lower=5, upper=6) }}", "{{ randomInt(5, 6) }}", "5"),
    ("{{ range(start=0, end=6, increment=3) }}", "{{ range(0, 6, 3) }}", "[0,3,6]"),
]


@pytest.mark.parametrize(("named", "positional", "expected"), CALLS, ids=[c[0] for c in CALLS])
def test_filters_and_functions_take_kestras_arguments_by_name_and_position(
    tmp_path: Path, named: str, positional: str | None, expected: str
) -> None:
    storage = FakeStorage(tmp_path)
    variables = {
        "flow": {"id": "demo", "namespace": "acme"},
        "start": START,
        "file": storage.put(b"file text", "f.txt"),
        "template": "{{ inner }}",
        "inner": "{{ 1 + 1 }}",
        "each": {"a": {"value": "first"}, "b": {"value": "second"}},
        "taskrun": {"value": "b"},
        RUNTIME: RenderRuntime(kv=FakeKV({("acme", "k"): "from-kv"}), storage=storage),
    }
    renderer = Renderer(secrets={"TOKEN": "s3cr3t-value"})
    assert renderer.render(named, variables) == expected
    if positional is not None:
        assert renderer.render(positional, variables) == expected
