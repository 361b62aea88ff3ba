"""Shared fixtures: real files in tmp_path and the registry of installed plugins."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import installed
import pytest

from runner.registry import Registry

WriteFlow = Callable[..., Path]


@pytest.fixture
def write_flow(tmp_path: Path) -> WriteFlow:
    """`write_flow(content, name="flow.yaml")` writes a file under tmp_path and returns its path.

    Text is dedented (so tests can indent YAML inline) and written as UTF-8; bytes are written as they are.
    `name` may hold folders (`"team/etl.yaml"`); they are created.
    """

    def write(content: str | bytes, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(textwrap.dedent(content), encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return write


@pytest.fixture
def registry() -> Registry:
    """The installed plugins, loaded through their entry points (the registry the CLI uses)."""
    return installed.registry()
