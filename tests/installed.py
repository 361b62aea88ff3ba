"""The installed plugins, loaded once for the whole test session (the product itself has no global registry:
`gitsync.compose.load_registry()` is called once per process and passed down)."""

from __future__ import annotations

from functools import cache

from gitsync.compose import load_registry
from runner.registry import Registry


@cache
def registry() -> Registry:
    return load_registry()
