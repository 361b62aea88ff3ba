"""Two ways to evaluate a template, one result: the direct path (a template without tags evaluated from its parsed
tree, `runner.expressions.direct`) and the Jinja path (the translated template compiled by Jinja).

Every template the expression suites hold, every template of the bundled examples and of Kestra's flow corpus is
rendered and evaluated both ways over the same variables: the text, the typed value, or the error's message must be
the same. The suites themselves also run whole on the Jinja path (`GITSYNC_EXPRESSIONS=jinja`); the normal run
covers the direct one.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared import SHARED, require
from test_render import context

from runner.expressions.renderer import Renderer, RenderError

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("test_render.py", "test_kestra_expressions.py", "test_security_expressions.py", "test_security_rendering.py")
TIME_DEPENDENT = ("now(", "uuid(", "id(", "randomInt(", "random(", "nanoId(")
"""Functions whose value changes between two calls, whichever path calls them: their templates cannot be compared."""


def _pair() -> tuple[Renderer, Renderer]:
    secrets = {"PLAIN": "plain-secret-value"}
    return Renderer(secrets=secrets, direct=True), Renderer(secrets=secrets, direct=False)


def _outcome(renderer: Renderer, text: str, variables: dict[str, Any]) -> tuple[Any, ...]:
    try:
        rendered: tuple[Any, ...] = ("text", renderer.render(text, variables))
    except RenderError as exc:
        rendered = ("error", str(exc))
    try:
        value = renderer.evaluate(text, variables)
        evaluated: tuple[Any, ...] = ("value", type(value).__name__, repr(value))
    except RenderError as exc:
        evaluated = ("error", str(exc))
    return rendered + evaluated


def _disagreements(templates: Iterable[str]) -> tuple[int, list[str]]:
    direct, jinja = _pair()
    variables = context()
    compared, differing = 0, []
    for text in sorted(set(templates)):
        if any(call in text for call in TIME_DEPENDENT):
            continue
        compared += 1
        got, expected = _outcome(direct, text, variables), _outcome(jinja, text, variables)
        if got != expected:
            differing.append(f"{text!r}\n  direct: {got}\n  jinja:  {expected}")
    return compared, differing


def _python_templates(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ("{{" in node.value or "{%" in node.value)
    }


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _yaml_templates(root: Path) -> set[str]:
    found: set[str] = set()
    for path in sorted([*root.rglob("*.yml"), *root.rglob("*.yaml")]):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        for document in documents:
            found.update(text for text in _strings(document) if "{{" in text or "{%" in text)
    return found


def test_every_template_of_the_expression_suites_gives_the_same_result_both_ways() -> None:
    templates = set().union(*(_python_templates(Path(__file__).parent / name) for name in SUITES))
    compared, differing = _disagreements(templates)
    assert compared > 300
    assert not differing, f"{len(differing)} of {compared} templates differ:\n" + "\n".join(differing[:20])


def test_every_template_of_the_examples_gives_the_same_result_both_ways() -> None:
    compared, differing = _disagreements(_yaml_templates(ROOT / "examples"))
    assert compared > 20
    assert not differing, f"{len(differing)} of {compared} templates differ:\n" + "\n".join(differing[:20])


def test_every_template_of_kestras_corpus_gives_the_same_result_both_ways() -> None:
    corpus = require(SHARED / "compat" / "kestra")
    compared, differing = _disagreements(_yaml_templates(corpus))
    assert compared > 1000
    assert not differing, f"{len(differing)} of {compared} templates differ:\n" + "\n".join(differing[:20])


def test_the_expression_suites_pass_on_the_jinja_path() -> None:
    env = {**os.environ, "GITSYNC_EXPRESSIONS": "jinja"}
    suites = [str(Path(__file__).parent / name) for name in SUITES]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *suites],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_a_template_without_tags_is_never_compiled_by_jinja(monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = Renderer()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled by Jinja")

    monkeypatch.setattr(renderer._env, "from_string", refuse)
    monkeypatch.setattr(renderer._env, "compile_expression", refuse)
    variables = context()
    assert renderer.render("{{ inputs.name | upper }}-{{ inputs.n + 1 }}", variables) == "WORLD-4"
    assert renderer.evaluate("{{ outputs.return.items }}", variables) == [1, 2]
    with pytest.raises(RenderError, match="compiled by Jinja"):
        renderer.render("{% if inputs.n > 1 %}big{% endif %}", variables)


def test_jinja_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITSYNC_EXPRESSIONS", "jinja")
    renderer = Renderer()
    compiled: list[str] = []
    original = renderer._env.from_string
    monkeypatch.setattr(renderer._env, "from_string", lambda source: compiled.append(source) or original(source))
    assert renderer.render("{{ inputs.name }}!", context()) == "world!"
    assert len(compiled) == 1


# ---------------------------------------------------------------------------------------------- generated


_ATOMS = (
    "inputs.n",
    "inputs.name",
    "inputs.values",
    "inputs.nothing",
    "inputs.empty",
    "inputs.nope",
    "outputs['task-id'].value",
    "outputs.return.items",
    "outputs.return.values",
    "outputs.query.rows[1].total",
    "taskrun.value",
    "flow.revision",
    "labels.team",
    "missing",
    "0",
    "3",
    "2.5",
    "'a'",
    "'b c'",
    "true",
    "false",
    "null",
    "[1, 'x']",
    "{'k': 1}",
)
_BINARY = ("+", "-", "*", "/", "%", "~", "==", "!=", "<", ">=", "and", "or", "??", "???", "contains", "..")
_FILTERS = ("upper", "length", "default('d')", "first", "join(',')", "trim", "abs", "keys", "toJson", "number")
_TESTS = ("defined", "null", "empty", "not defined")


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(_ATOMS))
    kind = draw(st.sampled_from(("binary", "filter", "test", "not", "ternary", "item", "list", "call")))
    inner = _expressions(depth + 1)
    if kind == "binary":
        return f"({draw(inner)} {draw(st.sampled_from(_BINARY))} {draw(inner)})"
    if kind == "filter":
        return f"({draw(inner)} | {draw(st.sampled_from(_FILTERS))})"
    if kind == "test":
        return f"({draw(inner)} is {draw(st.sampled_from(_TESTS))})"
    if kind == "not":
        return f"(not {draw(inner)})"
    if kind == "ternary":
        return f"({draw(inner)} ? {draw(inner)} : {draw(inner)})"
    if kind == "item":
        return f"({draw(inner)})[{draw(inner)}]"
    if kind == "list":
        return f"[{draw(inner)}, {draw(inner)}]"
    return f"max({draw(inner)}, {draw(inner)})"


@st.composite
def _templates(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(_expressions().map(lambda e: "{{ " + e + " }}"), st.sampled_from(("-", " x ", "\r\n"))),
            min_size=1,
            max_size=4,
        )
    )
    return "".join(parts) if any(p.startswith("{{") for p in parts) else "{{ " + draw(_expressions()) + " }}"


_GENERATED = _pair()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_templates())
def test_generated_templates_give_the_same_result_both_ways(text: str) -> None:
    direct, jinja = _GENERATED
    variables = context()
    assert _outcome(direct, text, variables) == _outcome(jinja, text, variables)
