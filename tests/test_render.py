"""runner.render: Kestra/Pebble expressions on Jinja2's sandbox; runner.masking: the Masker."""

from __future__ import annotations

import base64
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.api import MISSING
from runner.expressions.dates import format_pattern
from runner.expressions.jq import jq
from runner.expressions.renderer import (
    RUNTIME,
    Renderer,
    RenderError,
    RenderRuntime,
    env_variables,
    load_secrets,
)
from runner.masking import MASK, Masker
from runner.truthy import truthy as is_truthy

START = datetime(2024, 1, 31, 10, 5, 9, 123456, tzinfo=UTC)


class FakeKV:
    def __init__(self, data: dict[tuple[str, str], Any]) -> None:
        self.data = data

    def get(self, namespace: str, key: str) -> Any:
        return self.data.get((namespace, key), MISSING)

    def set(
        self, namespace: str, key: str, value: Any, ttl_seconds: float | None = None, overwrite: bool = True
    ) -> None:
        self.data[(namespace, key)] = value

    def delete(self, namespace: str, key: str) -> bool:
        return self.data.pop((namespace, key), None) is not None

    def keys(self, namespace: str, prefix: str | None = None) -> list[str]:
        return [k for ns, k in self.data if ns == namespace and k.startswith(prefix or "")]


class FakeStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, source: Path | bytes, name: str) -> str:
        (self.root / name).write_bytes(source if isinstance(source, bytes) else source.read_bytes())
        return f"kestra:///ns/flow/executions/e1/{name}"

    def path(self, uri: str) -> Path:
        path = self.root / uri.rsplit("/", 1)[-1]
        if not path.exists():
            raise FileNotFoundError(uri)
        return path

    def delete_all(self) -> int:
        return 0


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(secrets={"PLAIN": "plain-secret-value"}, environ={"SECRET_B64": _b64("decoded-secret-value")})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def context(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "flow": {"id": "hello", "namespace": "company.team", "revision": 3},
        "execution": {"id": "exec1", "startDate": START, "state": "RUNNING"},
        "task": {"id": "log", "type": "io.kestra.plugin.core.log.Log"},
        "taskrun": {"id": "tr1", "value": "a", "iteration": 1, "attemptsCount": 0, "startDate": START},
        "inputs": {
            "n": 3,
            "name": "world",
            "taxi": "yellow",
            "year": 2024,
            "month": "01",
            "dry_run": False,
            "values": ["x", "y"],
            "data": '{"nom": "Dupont", "prenom": "Jean"}',
            "from-parent": "p",
            "template": "{{ inputs.name }}",
            "empty": "",
            "nothing": None,
        },
        "outputs": {
            "task-id": {"value": "dash"},
            "each": {"a": {"value": "A"}, "b": {"value": "B"}},
            "extract": {"uri": "kestra:///x/y.csv", "outputFiles": {"yellow_tripdata_2024-01.csv": "kestra:///f.csv"}},
            "return": {"values": {"one": 1}, "items": [1, 2]},
            "query": {"rows": [{"total": 10}, {"total": 20}], "size": 2},
            "body": {"state": {"current": "SUCCESS"}},
            "json": {"body": '{"id": 42, "results": [{"name": "n1"}, {"name": "n2"}]}'},
            "nested": {"a b": {"c": 1}},
            "mongo": {"rows": [{"_id": "oid1"}]},
        },
        "vars": {"table": "{{ flow.namespace }}_{{ inputs.name }}", "deep": "{{ render(vars.table) }}", "plain": "v"},
        "labels": {"team": "data"},
        "trigger": {"date": datetime(2024, 3, 1, 0, 0, tzinfo=UTC), "body": {"hello": "world"}},
        "parent": {"taskrun": {"value": "p1"}},
        "parents": [{"taskrun": {"value": "p1"}}, {"taskrun": {"value": "p0"}}],
        "envs": {"my_var": "env-value"},
        "globals": {"region": "eu", "claude-code-oauth-token": "t"},
        "workingDir": "/tmp/wd",
        "outputDir": "/tmp/wd/out",
    }
    base.update(extra)
    return base


RENDER_CASES = [
    # variables and access
    ("input", "{{ inputs.name }}", "world"),
    ("no-spaces", "{{inputs.name}}", "world"),
    ("extra-spaces", "{{  flow.namespace  }}", "company.team"),
    ("text-around", "Hello {{ inputs.name }}!", "Hello world!"),
    ("several", "{{ flow.namespace }}.{{ flow.id }}/{{ execution.id }}", "company.team.hello/exec1"),
    ("task-id", "{{task.id}}", "log"),
    ("taskrun-value", "{{ taskrun.value }}", "a"),
    ("taskrun-iteration-plus-one", "{{ taskrun.iteration + 1 }}", "2"),
    ("attempts", "{{ taskrun.attemptsCount == 0 ? 'ok' : 'ko' }}", "ok"),
    ("bracket-dash", "{{ outputs['task-id'].value }}", "dash"),
    ("bracket-double-quotes", '{{ outputs["task-id"]["value"] }}', "dash"),
    ("bracket-input-dash", "{{inputs['from-parent']}}", "p"),
    ("dynamic-key", "{{ outputs.each[taskrun.value].value }}", "A"),
    (
        "concat-key",
        "{{ outputs.extract.outputFiles[inputs.taxi ~ '_tripdata_' ~ inputs.year ~ '-' ~ inputs.month ~ '.csv'] }}",
        "kestra:///f.csv",
    ),
    ("map-key-named-values", "{{ outputs.return.values.one }}", "1"),
    ("map-key-named-items", "{{ outputs.return.items | length }}", "2"),
    ("index", "{{ outputs.query.rows[0].total }}", "10"),
    ("negative-index", "{{ outputs.query.rows[-1].total }}", "20"),
    ("space-key", "{{ outputs.nested['a b'].c }}", "1"),
    ("underscore-key-of-map", "{{ outputs.mongo.rows[0]._id }}", "oid1"),
    ("parent", "{{ parent.taskrun.value }}", "p1"),
    ("parents-index", "{{parents[1].taskrun.value}}", "p0"),
    ("labels", "{{ labels.team }}", "data"),
    ("envs", "{{ envs.my_var }}", "env-value"),
    ("globals-bracket", "{{ globals['claude-code-oauth-token'] }}", "t"),
    ("working-dir", "{{workingDir}}/x", "/tmp/wd/x"),
    ("trigger-body", "{{ trigger.body.hello == 'world' }}", "true"),
    # printing
    ("null-prints-empty", "[{{ inputs.nothing }}]", "[]"),
    ("null-literal", "[{{ null }}]", "[]"),
    ("bool-lowercase", "{{ inputs.dry_run }}", "false"),
    ("list-as-json", "{{ inputs.values }}", '["x","y"]'),
    ("map-as-json", "{{ trigger.body }}", '{"hello":"world"}'),
    ("datetime-iso", "{{ execution.startDate }}", "2024-01-31T10:05:09.123456Z"),
    # operators
    ("eq-false", "{{ inputs.dry_run == false }}", "true"),
    ("equals-word", "{{ inputs.taxi equals 'yellow' }}", "true"),
    ("neq", "{{ inputs.taxi != 'green' }}", "true"),
    ("gt", "{{ outputs.query.size > 0 }}", "true"),
    ("and-or", "{{ inputs.n > 1 and inputs.n < 5 or false }}", "true"),
    ("not", "{{ not inputs.dry_run }}", "true"),
    ("concat", "{{ 'a' ~ inputs.n ~ true }}", "a3true"),
    ("concat-binds-tighter-than-filter", "{{ 'a' ~ 'b' | upper }}", "AB"),
    ("arith", "{{ 2 + 3 * 4 - 1 }}", "13"),
    ("int-division", "{{ 7 / 2 }}", "3"),
    ("float-division", "{{ 7.0 / 2 }}", "3.5"),
    ("modulo", "{{ 7 % 3 }}", "1"),
    ("contains-list", "{{ inputs.values contains 'x' }}", "true"),
    ("contains-map-key", "{{ trigger.body contains 'hello' }}", "true"),
    ("contains-string", "{{ inputs.name contains 'orl' }}", "true"),
    ("range-operator", "{{ 1..3 }}", "[1,2,3]"),
    ("list-literal", "{{ [1, 'a', null] }}", '[1,"a",null]'),
    ("map-literal", "{{ {'a': 1}.a }}", "1"),
    # ?? ??? ternary
    ("nc-undefined", "{{ inputs.nope ?? 'd' }}", "d"),
    ("nc-null", "{{ inputs.nothing ?? 'd' }}", "d"),
    ("nc-defined", "{{ inputs.name ?? 'd' }}", "world"),
    ("nc-empty-string-kept", "[{{ inputs.empty ?? 'd' }}]", "[]"),
    ("nc-deep-undefined", "{{ outputs.missing.value.deeper ?? 'd' }}", "d"),
    ("nc-chain", "{{ inputs.a ?? inputs.b ?? inputs.name }}", "world"),
    ("nc-chain-all-missing", "{{ inputs.a ?? inputs.b ?? 'last' }}", "last"),
    ("nc-then-filter", "{{ trigger.nope ?? execution.startDate | date('yyyy-MM-dd') }}", "2024-01-31"),
    (
        "nc-parens-date",
        "{{ (trigger.date ?? execution.startDate) | dateAdd(-1, 'DAYS') | date('yyyy-MM-dd') }}",
        "2024-02-29",
    ),
    ("nc-zero-compare", "{{ (outputs.fetch.size ?? 0) > 0 }}", "false"),
    ("nc-lazy-right", "{{ inputs.name ?? kv('absent') }}", "world"),
    ("nc-call-left", "{{ fromJson('null') ?? 'fallback' }}", "fallback"),
    ("uc-undefined", "{{ inputs.nope ??? 'd' }}", "d"),
    ("uc-null-kept", "[{{ inputs.nothing ??? 'd' }}]", "[]"),
    ("ternary", "{{ inputs.n == 3 ? 'three' : 'other' }}", "three"),
    ("ternary-false", "{{ inputs.n > 5 ? 'big' : 'small' }}", "small"),
    ("ternary-nested", "{{ (inputs.x ?? 0) == 0 ? 'create' : (inputs.x == 1 ? 'update' : 'delete') }}", "create"),
    ("ternary-undefined-branch-not-taken", "{{ true ? 'ok' : ko }}", "ok"),
    # tests
    ("is-defined", "{{ inputs.name is defined }}", "true"),
    ("is-not-defined", "{{ inputs.nope is not defined }}", "true"),
    ("is-defined-deep", "{{ outputs.a.b.c is defined }}", "false"),
    ("is-null", "{{ inputs.nothing is null }}", "true"),
    ("is-not-null", "{{ inputs.name is not null }}", "true"),
    ("is-empty", "{{ inputs.empty is empty }}", "true"),
    ("is-empty-list", "{{ [] is empty }}", "true"),
    ("is-json", "{{ inputs.data is json }}", "true"),
    ("is-not-json", "{{ inputs.name is json }}", "false"),
    ("is-even", "{{ 4 is even }}", "true"),
    ("is-startswith", "{{ inputs.name is startsWith('wor') }}", "true"),
    # tags
    ("if", "{% if inputs.n > 2 %}big{% else %}small{% endif %}", "big"),
    ("elseif", "{% if inputs.n > 5 %}a{% elseif inputs.n > 2 %}b{% else %}c{% endif %}", "b"),
    ("for", "{% for v in inputs.values %}{{ v }}{% if not loop.last %},{% endif %}{% endfor %}", "x,y"),
    ("for-loop-index-0-based", "{% for v in inputs.values %}{{ loop.index }}{% endfor %}", "01"),
    ("for-map-entries", "{% for e in trigger.body %}{{ e.key }}={{ e.value }}{% endfor %}", "hello=world"),
    ("for-rows", "{% for r in outputs.query.rows %}{{ r.total }};{% endfor %}", "10;20;"),
    ("for-else", "{% for v in [] %}x{% else %}none{% endfor %}", "none"),
    ("set", "{% set x = inputs.n * 2 %}{{ x }}", "6"),
    ("raw", "{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"),
    ("verbatim", "{% verbatim %}{{ x }}{% endverbatim %}", "{{ x }}"),
    ("comment", "a{# a comment #}b{{ 'c' }}", "abc"),
    ("comment-only-is-plain-text", "a{# a comment #}b", "a{# a comment #}b"),
    ("whitespace-control", "a  {{- inputs.n -}}  b", "a3b"),
    ("string-with-braces", "{{ '}}' ~ \"{{\" }}", "}}{{"),
    # bash and non-template text
    ("bash-array-length", 'n=${#arr[@]}; echo "{{ inputs.name }}"', 'n=${#arr[@]}; echo "world"'),
    ("bash-array-length-twice", "${#a[@]} ${#b[@]} {{ inputs.n }} #}", "${#a[@]} ${#b[@]} 3 #}"),
    ("unclosed-comment-is-text", "x {# not closed {{ inputs.n }}", "x {# not closed 3"),
    ("control-char-in-text", "a\x02{b {{ inputs.n }}", "a\x02{b 3"),
    ("jinja-syntax-in-text", "{{ inputs.n }} {%raw%}{% endraw %}", "3 "),
    # non-recursion and render()
    ("not-recursive", "{{ inputs.template }}", "{{ inputs.name }}"),
    ("render-function", "{{ render(inputs.template) }}", "world"),
    ("render-vars", "{{render(vars.table)}}", "company.team_world"),
    ("render-recursive", "{{ render(vars.deep) }}", "company.team_world"),
    ("render-once", "{{ renderOnce(vars.deep) }}", "company.team_world"),
    ("render-non-string", "{{ render(inputs.n) }}", "3"),
    # functions
    ("fromJson", "{{ fromJson(inputs.data).nom }}", "Dupont"),
    ("json-function", '{{ json(inputs.data)["prenom"] }}', "Jean"),
    ("json-keys-first", "{{ json(inputs.data) | keys | first }}", "nom"),
    ("yaml-function", "{{ yaml('a: [1, 2]').a[1] }}", "2"),
    ("range-function-inclusive", "{{ range(1, 3) }}", "[1,2,3]"),
    ("max", "{{ max(1, 5, 3) }}", "5"),
    ("uuid-shape", "{{ uuid() | length }}", "36"),
    ("randomInt-bounds", "{{ randomInt(5, 6) }}", "5"),
    ("now-tz", "{{ now(timeZone='Europe/Paris') | date('XXX') in ['+01:00', '+02:00'] }}", "ERR"),
    ("current-each-output", "{{ currentEachOutput(outputs.each).value }}", "A"),
    # filters
    ("upper", "{{ inputs.name | upper }}", "WORLD"),
    ("lower", "{{ 'ABC' | lower }}", "abc"),
    ("capitalize", "{{ 'hello world' | capitalize }}", "Hello world"),
    ("title", "{{ 'hello world' | title }}", "Hello World"),
    ("trim", "{{ '  x  ' | trim }}", "x"),
    ("default-undefined", "{{ inputs.nope | default('d') }}", "d"),
    ("default-empty", "{{ inputs.empty | default('d') }}", "d"),
    ("default-set", "{{ inputs.name | default('d') }}", "world"),
    ("length-string", "{{ inputs.name | length }}", "5"),
    ("join", "{{ inputs.values | join(', ') }}", "x, y"),
    ("split", "{{ 'a.b.c' | split('.') | last }}", "c"),
    ("replace-two-args", "{{ taskrun.value | replace('a', '_') }}", "_"),
    ("replace-map", "{{ 'hello' | replace({'h': 'j', 'o': '0'}) }}", "jell0"),
    ("first-last", "{{ inputs.values | first }}{{ inputs.values | last }}", "xy"),
    ("keys-values", "{{ trigger.body | keys }}{{ trigger.body | values }}", '["hello"]["world"]'),
    ("number-int", "{{ '42' | number + 1 }}", "43"),
    ("number-float", "{{ '4.5' | number }}", "4.5"),
    ("abs", "{{ -3 | abs }}", "3"),
    ("round", "{{ 2.567 | round(2) }}", "2.57"),
    ("round-zero", "{{ 2.5 | round }}", "3"),
    ("slugify", "{{ 'Hello World, Été!' | slugify }}", "hello-world-ete"),
    ("startsWith-filter", "{{ inputs.name | startsWith('wo') }}", "true"),
    ("endsWith-filter", "{{ inputs.name | endsWith('ld') }}", "true"),
    ("substringBefore", "{{ 'a.b.c' | substringBefore('.') }}", "a"),
    ("substringAfter", "{{ 'a.b.c' | substringAfter('.') }}", "b.c"),
    ("substringBeforeLast", "{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"),
    ("substringAfterLast", "{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
    ("toJson-string", "{{ 'say \"hi\"' | toJson }}", '"say \\"hi\\""'),
    ("toJson-map", "{{ trigger.body | toJson }}", '{"hello":"world"}'),
    ("json-filter", "{{ trigger.body | json }}", '{"hello":"world"}'),
    ("fromJson-filter", "{{ (inputs.data | fromJson).nom }}", "Dupont"),
    ("flatten", "{{ [[1, 2], [3]] | flatten }}", "[1,2,3]"),
    ("chunk", "{{ [1, 2, 3] | chunk(2) }}", "[[1,2],[3]]"),
    ("distinct", "{{ [1, 2, 1] | distinct }}", "[1,2]"),
    ("sort", "{{ [3, 1, 2] | sort }}", "[1,2,3]"),
    ("reverse", "{{ [1, 2] | reverse }}", "[2,1]"),
    ("abbreviate", "{{ 'abcdefghij' | abbreviate(6) }}", "abc..."),
    ("indent", "{{ 'a\nb' | indent(2) }}", "a\n  b"),
    ("nindent", "{{ 'a\nb' | nindent(2) }}", "\n  a\n  b"),
    ("escapeChar", "{{ 'say \"x\"' | escapeChar('double') }}", 'say \\"x\\"'),
    ("urlencode", "{{ 'a b&c' | urlencode }}", "a+b%26c"),
    ("urldecode", "{{ 'a+b%26c' | urldecode }}", "a b&c"),
    ("b64encode", "{{ 'hi' | base64encode }}", "aGk="),
    ("b64decode", "{{ 'aGk=' | b64decode }}", "hi"),
    ("sha256", "{{ 'abc' | sha256 }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("sha1", "{{ 'abc' | sha1 }}", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("md5", "{{ 'abc' | md5 }}", "900150983cd24fb0d6963f7d28e17f72"),
    ("className", "{{ inputs.name | className }}", "java.lang.String"),
    ("yaml-filter", "{{ trigger.body | yaml }}", "hello: world\n"),
    # jq
    ("jq-path", "{{ outputs.body | jq('.state.current') | first }}", "SUCCESS"),
    ("jq-compare", "{{ outputs.body | jq('.state.current == \"SUCCESS\"') | first }}", "true"),
    ("jq-on-json-string", "{{ outputs.json.body | jq('.results[].name') }}", '["n1","n2"]'),
    ("jq-map", "{{ fromJson(outputs.json.body).results | jq('map(.name)') | flatten }}", '["n1","n2"]'),
    ("jqFirst", "{{ outputs.json.body | jqFirst('.id') }}", "42"),
    ("jq-iterate-rows", "{{ outputs.query.rows | jq('.[].total') }}", "[10,20]"),
    # dates
    ("date-ymd", "{{ execution.startDate | date('yyyy-MM-dd') }}", "2024-01-31"),
    ("date-iso-string-input", "{{ '2024-01-31T10:05:09Z' | date('yyyyMMdd-HHmmss') }}", "20240131-100509"),
    ("date-epoch-input", "{{ 0 | date('yyyy-MM-dd HH:mm') }}", "1970-01-01 00:00"),
    (
        "date-timezone",
        "{{ execution.startDate | date('yyyy-MM-dd HH:mm XXX', timeZone='Asia/Tokyo') }}",
        "2024-01-31 19:05 +09:00",
    ),
    ("date-literal", "{{ execution.startDate | date(\"yyyy-MM-dd'T'07:00:00\") }}", "2024-01-31T07:00:00"),
    ("date-month-names", "{{ execution.startDate | date('EEE EEEE MMM MMMM') }}", "Wed Wednesday Jan January"),
    ("date-quarter", "{{ execution.startDate | date('Q') }}", "1"),
    ("date-millis", "{{ execution.startDate | date('HH:mm:ss.SSS') }}", "10:05:09.123"),
    ("date-iso-named", "{{ execution.startDate | date('iso_local_date') }}", "2024-01-31"),
    ("date-existing-format", "{{ '31/01/2024' | date('yyyy-MM-dd', existingFormat='dd/MM/yyyy') }}", "2024-01-31"),
    ("dateAdd-months-clamped", "{{ execution.startDate | dateAdd(1, 'MONTHS') | date('yyyy-MM-dd') }}", "2024-02-29"),
    ("dateAdd-hours", "{{ execution.startDate | dateAdd(-11, 'HOURS') | date('yyyy-MM-dd HH') }}", "2024-01-30 23"),
    ("dateAdd-from-string", "{{ '2024-01-31' | dateAdd(1, 'WEEKS') | date('yyyy-MM-dd') }}", "2024-02-07"),
    ("trigger-date", "{{trigger.date | date('yyyy_MM')}}", "2024_03"),
    ("timestamp", "{{ '1970-01-02T00:00:00Z' | timestamp }}", "86400"),
    ("timestampMilli", "{{ '1970-01-01T00:00:01Z' | timestampMilli }}", "1000"),
    ("timestampMicro", "{{ '1970-01-01T00:00:01Z' | timestampMicro }}", "1000000"),
    ("timestampNano", "{{ '1970-01-01T00:00:01Z' | timestampNano }}", "1000000000"),
]


@pytest.mark.parametrize(("template", "expected"), [c[1:] for c in RENDER_CASES], ids=[c[0] for c in RENDER_CASES])
def test_render(renderer: Renderer, template: str, expected: str) -> None:
    if expected == "ERR":
        with pytest.raises(RenderError):
            renderer.render(template, context())
        return
    assert renderer.render(template, context()) == expected


EVALUATE_CASES = [
    ("int", "{{ inputs.n }}", 3),
    ("padded", "  {{ inputs.n }}  ", 3),
    ("bool", "{{ inputs.dry_run == false }}", True),
    ("list", "{{ inputs.values }}", ["x", "y"]),
    ("map", "{{ trigger.body }}", {"hello": "world"}),
    ("null", "{{ inputs.nothing }}", None),
    ("datetime", "{{ execution.startDate }}", START),
    ("coalesce", "{{ outputs.x.size ?? 0 }}", 0),
    ("range", "{{ range(1, inputs.n) }}", [1, 2, 3]),
    ("jq-list", "{{ outputs.query.rows | jq('.[].total') }}", [10, 20]),
    ("text-around-is-string", "n={{ inputs.n }}", "n=3"),
    ("two-expressions-is-string", "{{ inputs.n }}{{ inputs.n }}", "33"),
    ("no-template", "plain", "plain"),
    ("non-string", 5, 5),
]


@pytest.mark.parametrize(
    ("expression", "expected"), [c[1:] for c in EVALUATE_CASES], ids=[c[0] for c in EVALUATE_CASES]
)
def test_evaluate_is_typed(renderer: Renderer, expression: Any, expected: Any) -> None:
    assert renderer.evaluate(expression, context()) == expected


UNDEFINED_CASES = [
    ("input", "{{ inputs.nope }}", "undefined variable 'inputs.nope' in {{ inputs.nope }}"),
    ("top-level", "{{ missingVar }}", "undefined variable 'missingVar' in {{ missingVar }}"),
    (
        "deep",
        "x {{ outputs.each.c.value }} y",
        "undefined variable 'outputs.each.c.value' in {{ outputs.each.c.value }}",
    ),
    ("under-filter", "{{ inputs.nope | upper }}", "undefined variable 'inputs.nope'"),
    ("in-concat", "{{ 'a' ~ vars.nope }}", "undefined variable 'vars.nope'"),
    ("in-if", "{% if inputs.nope %}x{% endif %}", "undefined variable 'inputs.nope' in {% if inputs.nope %}"),
    ("in-for", "{% for x in outputs.nope.rows %}{% endfor %}", "undefined variable 'outputs.nope"),
    ("dynamic-key", "{{ outputs.each[inputs.name].value }}", "undefined variable 'outputs.each[…]"),
    ("in-comparison", "{{ inputs.nope == 1 }}", "undefined variable 'inputs.nope'"),
    ("ternary-condition", "{{ inputs.nope ? 1 : 2 }}", "undefined variable 'inputs.nope'"),
    ("function-argument", "{{ fromJson(inputs.nope) }}", "undefined variable 'inputs.nope'"),
    ("evaluate", "{{ inputs.nope }}", "undefined variable 'inputs.nope'"),
]


@pytest.mark.parametrize(("template", "message"), [c[1:] for c in UNDEFINED_CASES], ids=[c[0] for c in UNDEFINED_CASES])
def test_undefined_variable_fails_with_its_name(renderer: Renderer, template: str, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        renderer.render(template, context())
    assert message in caught.value.message
    with pytest.raises(RenderError):
        renderer.evaluate(template, context())


ERROR_CASES = [
    ("unclosed-expression", "{{ inputs.name", "unclosed '{{'"),
    ("unknown-filter", "{{ inputs.name | nope }}", "unknown filter 'nope'"),
    ("unknown-function", "{{ nope() }}", "unknown function 'nope'"),
    ("unsupported-tag", "{% include 'x' %}", "unsupported tag"),
    ("bad-syntax", "{{ inputs.name ) }}", "unexpected ')'"),
    ("bad-json", "{{ fromJson('{nope') }}", "invalid JSON"),
    ("bad-number", "{{ 'abc' | number }}", "cannot parse 'abc' as a number"),
    ("bad-date", "{{ 'yesterday' | date('yyyy') }}", "not an ISO-8601 date"),
    ("bad-unit", "{{ now() | dateAdd(1, 'FORTNIGHTS') }}", "unknown dateAdd unit"),
    ("bad-jq", "{{ inputs.values | jq('.[') }}", "jq"),
    ("division-by-zero", "{{ 1 / 0 }}", "division by zero"),
    ("secret-missing", "{{ secret('NOPE') }}", "secret 'NOPE' is not defined"),
    ("kv-without-store", "{{ kv('k') }}", "kv() is not available here"),
    ("runtime-function-missing", "{{ errorLogs() }}", "errorLogs() is not available here"),
]


@pytest.mark.parametrize(("template", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_errors_name_the_expression_and_why(renderer: Renderer, template: str, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        renderer.render(template, context())
    assert message in caught.value.message


SANDBOX_ESCAPES = [
    ("class", "{{ ''.__class__ }}"),
    ("mro-subclasses", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
    ("mro-no-call", "{{ ''.__class__.__mro__ }}"),
    ("cycler-globals", "{{ cycler.__init__.__globals__ }}"),
    ("joiner", "{{ joiner.__init__.__globals__.os }}"),
    ("namespace", "{{ namespace.__init__ }}"),
    ("lipsum", "{{ lipsum.__globals__ }}"),
    ("self-context", "{{ self._TemplateReference__context }}"),
    ("set-abuse", "{% set x = ''.__class__.__base__ %}{{ x }}"),
    ("set-call", "{% set x = ''.__class__.__base__.__subclasses__() %}{{ x }}"),
    ("private-attribute", "{{ inputs._private }}"),
    ("format-method", "{{ 'a'.format }}"),
    ("format-call", "{{ '{0.__class__}'.format(1) }}"),
    ("mro-call", "{{ inputs.mro() }}"),
    ("function-globals", "{{ range.__globals__ }}"),
    ("function-code", "{{ kv.__code__ }}"),
    ("dict-method", "{{ inputs.values.pop }}"),
    ("getitem-class", "{{ inputs['__class__'] }}"),
    ("config", "{{ config }}"),
    ("request", "{{ request.environ }}"),
    ("internal-helper-name", "{{ __runtime__ }}"),
    ("huge-string", "{{ 'a' * 100000000 }}"),
    ("huge-range", "{{ range(1, 100000000) | length }}"),
    ("nested-loops", "{% for i in range(1, 2000) %}{% for j in range(1, 2000) %}{% endfor %}{% endfor %}"),
    ("loop-output-bomb", "{% for i in range(1, 99999) %}{{ '" + "x" * 200 + "' }}{% endfor %}"),
    ("import", "{% import 'os' as os %}"),
    ("extends", "{% extends 'base' %}"),
    ("macro", "{% macro m() %}{% endmacro %}"),
]


@pytest.mark.parametrize("template", [c[1] for c in SANDBOX_ESCAPES], ids=[c[0] for c in SANDBOX_ESCAPES])
def test_sandbox_escapes_fail(renderer: Renderer, template: str) -> None:
    with pytest.raises(RenderError):
        renderer.render(template, context())


def test_security_errors_are_reported_as_forbidden(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match=r"forbidden: access to attribute '__class__'"):
        renderer.render("{{ ''.__class__ }}", context())


def test_jinja_globals_that_are_not_kestras_are_gone(renderer: Renderer) -> None:
    for name in ("lipsum", "cycler", "joiner", "namespace", "dict"):
        with pytest.raises(RenderError, match="undefined variable"):
            renderer.render("{{ " + name + " }}", context())


# ---------------------------------------------------------------------------------------------- secrets


def test_secret_from_mapping_and_from_base64_environment(renderer: Renderer) -> None:
    assert renderer.render("{{ secret('PLAIN') }}", context()) == "plain-secret-value"
    assert renderer.render("{{ secret('B64') }}", context()) == "decoded-secret-value"
    assert "decoded-secret-value" in renderer.masker
    assert renderer.masker.mask("x decoded-secret-value y") == f"x {MASK} y"


def test_secret_never_appears_in_errors_or_repr() -> None:
    renderer = Renderer(environ={"SECRET_TOKEN": _b64("s3cr3t-token")})
    with pytest.raises(RenderError) as caught:
        renderer.render("{{ secret('TOKEN') | number }}", context())
    assert "s3cr3t-token" not in caught.value.message
    assert "s3cr3t-token" not in repr(caught.value)
    assert "s3cr3t-token" not in str(caught.value)
    assert MASK in caught.value.message
    assert caught.value.__cause__ is None
    assert "s3cr3t-token" not in repr(renderer)
    assert "s3cr3t-token" not in repr(renderer.masker)


def test_secret_in_a_json_error_is_masked() -> None:
    renderer = Renderer(secrets={"PEM": "-----BEGIN KEY-----\nabcdefghij\n-----END KEY-----"})
    with pytest.raises(RenderError) as caught:
        renderer.render("{{ fromJson(secret('PEM')) }}", context())
    assert "abcdefghij" not in caught.value.message


def test_missing_secret_message_holds_no_value() -> None:
    renderer = Renderer(secrets={"OTHER": "other-value-123"}, environ={"SECRET_BAD": "%%%not-base64"})
    with pytest.raises(RenderError) as caught:
        renderer.render("{{ secret('MISSING') }}", context())
    assert "SECRET_MISSING" in caught.value.message
    with pytest.raises(RenderError, match="not valid base64") as bad:
        renderer.render("{{ secret('BAD') }}", context())
    assert "%%%not-base64" not in bad.value.message


def test_load_secrets_from_yaml_and_env_files(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("DB_PASSWORD: pw1\nPORT: 5432\n")
    (tmp_path / ".env").write_text("# comment\nexport API_KEY='k-1'\nEMPTY=\nURL=http://x?a=b\n")
    assert load_secrets(tmp_path / "s.yaml") == {"DB_PASSWORD": "pw1", "PORT": "5432"}
    assert load_secrets(tmp_path / ".env") == {"API_KEY": "k-1", "EMPTY": "", "URL": "http://x?a=b"}


# ---------------------------------------------------------------------------------------------- kv and read


def test_kv_reads_the_flow_namespace_by_default() -> None:
    store = FakeKV({("company.team", "GCP_PROJECT_ID"): "proj", ("other", "k"): {"field": 1}})
    variables = context(**{RUNTIME: RenderRuntime(kv=store)})
    renderer = Renderer()
    assert renderer.render("{{kv('GCP_PROJECT_ID')}}", variables) == "proj"
    assert renderer.render("{{ kv('k', namespace='other').field }}", variables) == "1"
    assert renderer.render("{{ kv('absent', errorOnMissing=false) ?? 'localhost' }}", variables) == "localhost"
    with pytest.raises(RenderError, match=r"kv key 'absent' not found in namespace 'company\.team'"):
        renderer.render("{{ kv('absent') }}", variables)


def test_read_execution_file_and_namespace_file(tmp_path: Path) -> None:
    storage = FakeStorage(tmp_path)
    uri = storage.put(b"file {{ not rendered }}", "a.txt")
    files = {("shared", "s.sh"): "echo ${#arr[@]}", ("company.team", "own.sh"): "own"}
    runtime = RenderRuntime(storage=storage, namespace_files=lambda ns, path: files[(ns, path)])
    variables = context(**{RUNTIME: runtime}, uri=uri)
    renderer = Renderer()
    assert renderer.render("{{ read(uri) }}", variables) == "file {{ not rendered }}"
    assert renderer.render("{{ read('s.sh', namespace='shared') }}", variables) == "echo ${#arr[@]}"
    assert renderer.render("{{ read('own.sh') }}", variables) == "own"


def test_runtime_functions_come_from_the_engine() -> None:
    runtime = RenderRuntime(functions={"tasksWithState": lambda state: [{"id": "t1", "taskId": "t1", "state": state}]})
    variables = context(**{RUNTIME: runtime})
    assert Renderer().render("{{ tasksWithState('FAILED')[0].id }}", variables) == "t1"


# ---------------------------------------------------------------------------------------------- API details


def test_render_value_is_deep_and_keeps_keys(renderer: Renderer) -> None:
    value = {"{{ k }}": ["{{ inputs.n }}", {"x": "{{ inputs.name }}"}], "n": 5, "none": None}
    assert renderer.render_value(value, context()) == {"{{ k }}": ["3", {"x": "world"}], "n": 5, "none": None}


def test_plain_string_is_returned_without_compiling() -> None:
    renderer = Renderer()
    text = "no expressions here {# even a comment #} ${#a[@]}"
    assert renderer.render(text, {}) is text
    assert renderer.cache_info().misses == 0


def test_compiled_template_cache_is_hit() -> None:
    renderer = Renderer(cache_size=8)
    variables = context()
    for _ in range(1000):
        assert renderer.render("{{ inputs.name | upper }}", variables) == "WORLD"
    info = renderer.cache_info()
    assert (info.misses, info.hits) == (1, 999)
    for i in range(20):
        renderer.render("{{ inputs.n + " + str(i) + " }}", variables)
    assert renderer.cache_info().currsize == 8


def test_rendering_is_thread_safe() -> None:
    renderer = Renderer()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(200):
                assert renderer.render("{{ inputs.n }}-{{ x }}", context(x=i)) == f"3-{i}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_render_error_repr_and_message() -> None:
    error = RenderError("undefined variable 'x' in {{ x }}")
    assert error.message == str(error) == "undefined variable 'x' in {{ x }}"
    assert repr(error) == "RenderError(\"undefined variable 'x' in {{ x }}\")"


def test_render_rejects_non_strings(renderer: Renderer) -> None:
    with pytest.raises(TypeError):
        renderer.render(3, {})  # type: ignore[arg-type]


def test_render_recursion_is_bounded(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="nested more than"):
        renderer.render("{{ render(vars.loop) }}", context(vars={"loop": "{{ render(vars.loop) }}"}))


def test_output_size_is_capped() -> None:
    renderer = Renderer(max_output=1000)
    with pytest.raises(RenderError, match="larger than 1000"):
        renderer.render("{% for i in range(1, 100) %}{{ '" + "x" * 50 + "' }}{% endfor %}", {})


def test_now_is_kestras_iso_text_in_utc_or_the_time_zone(renderer: Renderer) -> None:
    # Kestra's now() is the date filter's `iso` format of the current time: six fraction digits, an offset
    value = renderer.evaluate("{{ now() }}", {})
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", value), value
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", renderer.render("{{ now() | date('yyyy-MM-dd') }}", {}))
    paris = renderer.evaluate("{{ now(timeZone='Europe/Paris') }}", {})
    assert paris.endswith(("+01:00", "+02:00")), paris
    assert re.fullmatch(r"\d{4}", renderer.render("{{ now(format='yyyy') }}", {}))


ENV_CASES = [
    ("prefixed", {"ENV_MY_VAR": "1"}, {"my_var": "1"}),
    ("unprefixed-ignored", {"PATH": "/bin", "MY_ENV_X": "2"}, {}),
    ("lower-cased", {"ENV_DB_URL": "u", "ENV_Mixed": "m"}, {"db_url": "u", "mixed": "m"}),
]


@pytest.mark.parametrize(("environ", "expected"), [c[1:] for c in ENV_CASES], ids=[c[0] for c in ENV_CASES])
def test_env_variables(environ: dict[str, str], expected: dict[str, str]) -> None:
    assert env_variables(environ) == expected


TRUTHY_CASES = [
    ("true", True, True),
    ("false", False, False),
    ("string-true", "true", True),
    ("string-false", "false", False),
    ("string-FALSE", " FALSE ", False),
    ("zero", "0", False),
    ("minus-zero", "-0", False),
    ("empty", "", False),
    ("none", None, False),
    ("int-zero", 0, False),
    ("word", "yes", True),
    ("list", [1], True),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in TRUTHY_CASES], ids=[c[0] for c in TRUTHY_CASES])
def test_is_truthy(value: Any, expected: bool) -> None:
    assert is_truthy(value) is expected


# ---------------------------------------------------------------------------------------------- dates and jq units

PATTERN_CASES = [
    ("iso-like", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "2024-01-31T10:05:09.123Z"),
    ("two-digit-year", "yy/M/d", "24/1/31"),
    ("12-hour", "h:mm a", "10:05 AM"),
    ("offset-Z", "Z", "+0000"),
    ("offset-x", "xxx", "+00:00"),
    ("day-of-year", "D", "31"),
    ("quoted-quote", "''yyyy''", "'2024'"),
    ("literal-text", "'Q'Q yyyy", "Q1 2024"),
    ("nanos", "SSSSSSSSS", "123456000"),
    ("zone-id", "VV", "Z"),
]


@pytest.mark.parametrize(("pattern", "expected"), [c[1:] for c in PATTERN_CASES], ids=[c[0] for c in PATTERN_CASES])
def test_java_date_patterns(pattern: str, expected: str) -> None:
    assert format_pattern(START, pattern) == expected


JQ_CASES = [
    ("identity", ".", {"a": 1}, [{"a": 1}]),
    ("path", ".a.b", {"a": {"b": 2}}, [2]),
    ("index", ".a[0]", {"a": [5, 6]}, [5]),
    ("negative-index", ".[-1]", [5, 6], [6]),
    ("iterate", ".[]", [1, 2], [1, 2]),
    ("iterate-field", ".[].k", [{"k": 1}, {"k": 2}], [1, 2]),
    ("map", "map(.x)", [{"x": 1}, {"x": 2}], [[1, 2]]),
    ("select", ".[] | select(.x > 1) | .x", [{"x": 1}, {"x": 2}], [2]),
    ("alternative", ".a // .b", {"b": 3}, [3]),
    ("sort-reverse", "sort_by(.d) | reverse | .[0].d", [{"d": "1"}, {"d": "2"}], ["2"]),
    ("construct-array", '[.[] | tostring] | join(",")', [1, 2], ["1,2"]),
    ("construct-object", "{a: .x, b}", {"x": 1, "b": 2}, [{"a": 1, "b": 2}]),
    ("slice", ".[1:]", [1, 2, 3], [[2, 3]]),
    ("string-slice", ".[-2:]", "xabcd", ["cd"]),
    ("keys-length", "keys | length", {"a": 1, "b": 2}, [2]),
    ("or", ".a == 1 or .a == 2", {"a": 2}, [True]),
    ("if", 'if .a then "y" else "n" end', {"a": None}, ["n"]),
    ("optional", ".a.b?", {"a": 5}, []),
    ("null-path", ".missing.deeper", {}, [None]),
]


@pytest.mark.parametrize(("program", "value", "expected"), [c[1:] for c in JQ_CASES], ids=[c[0] for c in JQ_CASES])
def test_jq(program: str, value: Any, expected: list[Any]) -> None:
    assert jq(value, program) == expected


# ---------------------------------------------------------------------------------------------- masking


def test_masker_masks_longest_first_and_deep() -> None:
    masker = Masker(["abc", "abcdef"])
    assert masker.mask("xx abcdef yy abc") == f"xx {MASK} yy {MASK}"
    assert masker.mask_value({"k": ["abc", 1, {"abcdef": "abcdefg"}]}) == {"k": [MASK, 1, {MASK: f"{MASK}g"}]}


def test_masker_ignores_tiny_values_and_masks_lines_of_multiline_secrets() -> None:
    masker = Masker()
    masker.add("a")
    masker.add(None)
    masker.add("-----BEGIN-----\nline-of-key-material\n-----END-----")
    assert len(masker) == 4
    assert masker.mask("a line-of-key-material") == f"a {MASK}"
    assert "line-of-key-material" not in repr(masker)


def test_masker_is_thread_safe() -> None:
    masker = Masker()

    def add(i: int) -> None:
        for j in range(25):  # each add with a mask after it recompiles the pattern: 200 secrets are plenty
            masker.add(f"secret-{i}-{j}")
            masker.mask(f"secret-{i}-{j}")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(masker) == 200
    assert masker.mask("secret-7-24") == MASK
