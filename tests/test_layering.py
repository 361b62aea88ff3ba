"""The import rules of ARCHITECTURE.md, checked on the source with `ast` (no module is imported).

- `runner` never imports `gitsync` or `plugins`; `plugins` never imports `gitsync`.
- Only the state package (`gitsync/state/`) holds SQL or opens SQLite. The exception is `plugins/jdbc/`, whose
  tasks run the flow author's own SQL on the author's own database (never gitsync's state).
- The pure cores import no I/O: the plan (`gitsync.sync.plan`, `gitsync.sync.diff`), the fire decisions
  (`gitsync.schedule.firing`), webhook parsing (`gitsync.hosts.webhooks`) and the flow model/validation
  (`runner.flow`, `runner.validate`).
- Nothing below the command line imports it, and only the composition root builds the daemon.
- No class is over 250 lines; a module over 500 lines says in its docstring that it is so on purpose, and why.
- There are no import cycles among the project's modules (imports inside functions count; `TYPE_CHECKING`
  blocks do not, since they never run).

Each test fails with the file, the line and the rule broken, so a wrong-way edge names itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gitsync", "runner", "plugins")
SQL = re.compile(
    r"\b(SELECT\b[^;]*?\bFROM\b|INSERT\s+(OR\s+[A-Z]+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
    r"|CREATE\s+(TABLE|INDEX|UNIQUE\s+INDEX|TRIGGER|VIEW)\b|ALTER\s+TABLE\b|DROP\s+TABLE\b|PRAGMA\s+\w+|BEGIN\s+IMMEDIATE)"
)
STATE = "gitsync.state"
JDBC = "plugins.jdbc"
IO_MODULES = ("sqlite3", "sqlite_utils", "httpx", "dulwich", "subprocess", "socket", "gitsync.state", "gitsync.git")
PURE = (
    "gitsync.sync.plan",
    "gitsync.sync.diff",
    "gitsync.schedule.firing",
    "gitsync.hosts.webhooks",
    "gitsync.review.report",
    "runner.flow",
    "runner.validate",
    "gitsync.web.graph",
    "gitsync.web.svg",
    "gitsync.web.timeline",
    "gitsync.web.highlight",
    "gitsync.web.diff",
    "gitsync.web.charts",
)


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = modules()


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield Import(name, submodule if submodule in MODULES else base, path, node.lineno)


ALL_IMPORTS = [edge for name, path in MODULES.items() for edge in imports_of(name, path)]


def _inside(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def broken(rule: str, edges: list[Import]) -> str:
    return f"{rule}:\n" + "\n".join(f"  {e.where()}: {e.source} imports {e.target}" for e in edges)


def test_runner_imports_neither_gitsync_nor_plugins() -> None:
    bad = [
        e
        for e in ALL_IMPORTS
        if _inside(e.source, "runner") and (_inside(e.target, "gitsync") or _inside(e.target, "plugins"))
    ]
    assert not bad, broken("runner is the innermost package", bad)


def test_plugins_never_import_gitsync() -> None:
    bad = [e for e in ALL_IMPORTS if _inside(e.source, "plugins") and _inside(e.target, "gitsync")]
    assert not bad, broken("plugins see only runner's contract", bad)


def test_only_the_state_package_opens_sqlite() -> None:
    bad = [
        e
        for e in ALL_IMPORTS
        if _inside(e.target, "sqlite3") or _inside(e.target, "sqlite_utils")
        if not (_inside(e.source, STATE) or _inside(e.source, JDBC))
    ]
    assert not bad, broken("only gitsync.state talks to SQLite", bad)


def sql_literals(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL.search(node.value)
            if match:
                yield node.lineno, match.group(0)


def test_only_the_state_package_holds_sql() -> None:
    found = [
        f"  {path.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for name, path in MODULES.items()
        if not (_inside(name, STATE) or _inside(name, JDBC))
        for line, text in sql_literals(path)
    ]
    assert not found, "SQL outside gitsync/state (call a named function of the state package):\n" + "\n".join(found)


def test_the_sql_detector_finds_sql() -> None:
    """The rule above cannot pass by finding nothing: the state package's own SQL is seen."""
    hits = [hit for name, path in MODULES.items() if _inside(name, STATE) for hit in sql_literals(path)]
    assert len(hits) > 20
    assert SQL.search("UPDATE executions SET state = ?") and not SQL.search("SELECT one of the values")


@pytest.mark.parametrize("pure", PURE)
def test_pure_cores_do_no_io(pure: str) -> None:
    bad = [e for e in ALL_IMPORTS if _inside(e.source, pure) and any(_inside(e.target, io) for io in IO_MODULES)]
    assert not bad, broken(f"{pure} is pure: values in, values out", bad)


def test_only_the_command_line_and_the_composition_root_sit_on_top() -> None:
    top = ("gitsync.cli", "gitsync.__main__")
    builders = (*top, "gitsync.compose", "gitsync.daemon")
    bad = [
        e
        for e in ALL_IMPORTS
        if (_inside(e.target, "gitsync.cli") and not any(_inside(e.source, t) for t in top))
        or (_inside(e.target, "gitsync.daemon") and not any(_inside(e.source, b) for b in builders))
    ]
    assert not bad, broken("the CLI calls the core, never the reverse; the composition root builds the daemon", bad)


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for e in edges:
        if e.target in MODULES and e.target != e.source:
            graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return found


def test_there_are_no_import_cycles() -> None:
    found = cycles(ALL_IMPORTS)
    assert not found, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    a, b = next(iter(MODULES)), list(MODULES)[1]
    loop = [Import(a, b, MODULES[a], 1), Import(b, a, MODULES[b], 1)]
    assert cycles(loop) == [sorted([a, b])]


MAX_CLASS_LINES = 250
MAX_MODULE_LINES = 500
ON_PURPOSE = "over 500 lines on purpose"


def test_no_class_is_over_250_lines() -> None:
    big = [
        f"  {path.relative_to(ROOT)}:{node.lineno}: class {node.name} is {size} lines"
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        for size in [(node.end_lineno or node.lineno) - node.lineno + 1]
        if size > MAX_CLASS_LINES
    ]
    assert not big, f"split by responsibility (at most {MAX_CLASS_LINES} lines a class):\n" + "\n".join(big)


def test_a_long_module_says_why() -> None:
    unexplained = [
        f"  {path.relative_to(ROOT)}: {lines} lines"
        for path in MODULES.values()
        for lines in [len(path.read_text().splitlines())]
        if lines > MAX_MODULE_LINES and ON_PURPOSE not in (ast.get_docstring(ast.parse(path.read_text())) or "")
    ]
    assert not unexplained, (
        f"a module over {MAX_MODULE_LINES} lines holds one cohesive thing and its docstring says so "
        f"({ON_PURPOSE!r}, and why), or it is split:\n" + "\n".join(unexplained)
    )
