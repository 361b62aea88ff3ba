"""Every error a user can see is a GitSyncError, and gitsync/errors.py draws the tree as the code has it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

from gitsync import errors

SIGNALS = {
    "runner.signals.ExitExecution": "the Exit task ends the execution; caught by the engine, not an error",
    "runner.engine.runnables.ExitSignal": "carries the Exit task's state through the tree; caught by the engine",
    "runner.expressions.sandbox.PebbleUndefinedError": "Jinja's UndefinedError, turned into a RenderError",
    "runner.expressions.direct.NotDirect": "a template only Jinja compiles: the renderer compiles it instead",
}
"""Exceptions that never reach a user as such, each with the reason."""


def project_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in ("gitsync", "runner", "plugins"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if info.name.endswith("__main__"):
                continue
            loaded = importlib.import_module(info.name)
            for name, obj in vars(loaded).items():
                if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                    found[f"{info.name}.{name}"] = obj
    return found


def test_every_exception_a_user_can_see_is_a_gitsync_error() -> None:
    exceptions = project_exceptions()
    assert len(exceptions) > 15  # the walk found the tree, not nothing
    outside = sorted(
        name for name, cls in exceptions.items() if not issubclass(cls, errors.GitSyncError) and name not in SIGNALS
    )
    assert outside == [], f"not under GitSyncError (and not a documented signal): {outside}"


def test_the_documented_tree_names_every_error_class() -> None:
    doc = errors.__doc__ or ""
    drawn = set(re.findall(r"[├└]── (\w+)", doc)) | {"GitSyncError"}
    public = {
        cls.__name__
        for name, cls in project_exceptions().items()
        if name not in SIGNALS and issubclass(cls, errors.GitSyncError)
    }
    # a class is drawn itself, or its documented parent is (KeyExists is a TaskFailed the kv task raises, …)
    undrawn = sorted(n for n in public if n not in drawn and not any(b.__name__ in drawn for b in _bases(public, n)))
    assert undrawn == [], f"add to the tree in {Path(errors.__file__).name}: {undrawn}"
    assert sorted(drawn - public - {"GitSyncError"}) == [], "the tree names a class that does not exist"


def _bases(public: set[str], name: str) -> list[type]:
    cls = next(c for n, c in project_exceptions().items() if c.__name__ == name)
    return [b for b in cls.__mro__[1:] if b.__name__ in public or b.__name__ == "GitSyncError"]
