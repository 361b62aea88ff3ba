"""The README's table of shipped types lists every registered entry point once, with its family and the pip extra
its run needs (plugins/extras.py's EXTRA_OF_MODULE), so it cannot drift from pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from plugins.extras import EXTRA_OF_MODULE
from runner.registry import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| `([\w.]+)` \| ([\w.]+) \| (.+?) \|$")


def family(type_name: str) -> str:
    """The family of a type: the package after io.kestra.plugin (legacy io.kestra.core.tasks.X: X)."""
    parts = type_name.split(".")
    return parts[3]


def expected_rows() -> list[tuple[str, str, str]]:
    rows = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        extra = EXTRA_OF_MODULE.get(point.value.split(":")[0])
        rows.append((point.name, family(point.name), f"`gitsync[{extra}]`" if extra else "—"))
    return rows


def readme_rows() -> list[tuple[str, str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("<!-- shipped types: checked by tests/test_readme_types.py -->", 1)[1].split("\n\n", 2)[1]
    found = []
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            found.append((match.group(1), match.group(2), match.group(3)))
    return found


def test_the_readme_table_lists_every_shipped_type_with_its_family_and_extra() -> None:
    assert readme_rows() == expected_rows()


def test_every_extra_named_is_a_pip_extra_of_the_project() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert set(EXTRA_OF_MODULE.values()) <= set(project["optional-dependencies"])
    modules = {point.value.split(":")[0] for point in entry_points(group=ENTRY_POINT_GROUP)}
    assert set(EXTRA_OF_MODULE) <= modules
