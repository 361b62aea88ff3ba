"""A minimal real RunContext for task tests: a directory-backed Storage, an in-memory KV, a recording logger.

Stands in until tests/taskctx.py (the runtime's own helper) is used everywhere; only what the script, jdbc, dbt and
git tasks touch is here.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.api import MISSING, RunContext, TaskFailed

SCHEME = "kestra:///"


@dataclass
class RecordingLogger:
    lines: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, level: str, message: str) -> None:
        with self.lock:
            self.lines.append((level.upper(), message))

    def trace(self, message: str) -> None:
        self.log("TRACE", message)

    def debug(self, message: str) -> None:
        self.log("DEBUG", message)

    def info(self, message: str) -> None:
        self.log("INFO", message)

    def warn(self, message: str) -> None:
        self.log("WARN", message)

    def error(self, message: str) -> None:
        self.log("ERROR", message)

    def messages(self, level: str | None = None) -> list[str]:
        with self.lock:
            return [text for lvl, text in self.lines if level is None or lvl == level]


class DirStorage:
    """kestra:///<execution>/<name> URIs over files in `root`."""

    def __init__(self, root: Path, execution_id: str) -> None:
        self.root = root
        self.execution_id = execution_id
        root.mkdir(parents=True, exist_ok=True)

    def put(self, source: Path | bytes, name: str) -> str:
        target = self.root / self.execution_id / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        return f"{SCHEME}{self.execution_id}/{name}"

    def path(self, uri: str) -> Path:
        if not uri.startswith(SCHEME):
            raise TaskFailed(f"not a storage URI: {uri}")
        path = self.root / uri[len(SCHEME) :]
        if not path.is_file():
            raise TaskFailed(f"no such stored file: {uri}")
        return path

    def delete_all(self) -> int:
        files = [p for p in (self.root / self.execution_id).rglob("*") if p.is_file()]
        shutil.rmtree(self.root / self.execution_id, ignore_errors=True)
        return len(files)


class MemoryKV:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Any] = {}

    def get(self, namespace: str, key: str) -> Any:
        return self.data.get((namespace, key), MISSING)

    def set(
        self, namespace: str, key: str, value: Any, ttl_seconds: float | None = None, overwrite: bool = True
    ) -> None:
        self.data[(namespace, key)] = value

    def delete(self, namespace: str, key: str) -> bool:
        return self.data.pop((namespace, key), MISSING) is not MISSING

    def keys(self, namespace: str, prefix: str | None = None) -> list[str]:
        return [k for ns, k in self.data if ns == namespace and k.startswith(prefix or "")]


def make_ctx(tmp_path: Path, task_id: str = "task", **overrides: Any) -> RunContext:
    """A RunContext with its own working directory under tmp_path and the test process's environment."""
    workdir = tmp_path / "work" / task_id
    workdir.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "execution_id": "exec1",
        "namespace": "acme.test",
        "flow_id": "flow",
        "flow_revision": 1,
        "task_id": task_id,
        "task_run_id": f"run-{task_id}",
        "attempt": 1,
        "workdir": workdir,
        "logger": RecordingLogger(),
        "storage": DirStorage(tmp_path / "storage", "exec1"),
        "kv": MemoryKV(),
        "env": dict(os.environ),
    }
    values.update(overrides)
    return RunContext(**values)
