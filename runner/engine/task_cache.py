"""`taskCache`: the outputs of a runnable task run, kept on disk and reused by a later run of the same task.

An entry is keyed by the flow's namespace and id, the task id, the task run's value (inside loops) and a SHA-256 of
the task's rendered properties, rendered with `workingDir`/`outputDir` fixed (they differ on every run and are not
what the task computes on), as Kestra keys its cache. A property that renders differently (another input, a
`taskrun.id`) is another entry. Entries live under `<data_dir>/task_cache/<namespace>/<flow>/<task>/<key>.json`,
hold the outputs as they were recorded (masked), are written only for a SUCCESS or WARNING run, and are used while
younger than the task's `ttl` (always, without one). An unreadable entry is a miss: the task runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from runner.durations import format_duration
from runner.engine.records import utcnow

CACHE_FOLDER = "task_cache"
FIXED_WORKDIR = "workingDir"
"""What `workingDir` and `outputDir` render to when the key is computed."""


@dataclass(frozen=True)
class CacheEntry:
    """Where one task run's cache entry is (it may not exist yet), and how long an entry is used."""

    path: Path
    ttl: timedelta | None

    def load(self, now: datetime | None = None) -> dict[str, Any] | None:
        """The cached outputs, or None when there is no entry younger than the ttl (or it cannot be read)."""
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            created = datetime.fromisoformat(stored["created_at"])
            outputs = stored["outputs"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(outputs, dict):
            return None
        if self.ttl is not None and (now or utcnow()) - created >= self.ttl:
            return None
        return outputs

    def save(self, outputs: dict[str, Any]) -> None:
        """Write the entry (atomically: a concurrent reader sees the old entry or the new one, never half)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"created_at": utcnow().isoformat(), "outputs": outputs}, default=str)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".entry-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def describe(self) -> str:
        return f"ttl {format_duration(self.ttl)}" if self.ttl is not None else "no ttl"


def cache_entry(
    data_dir: Path, namespace: str, flow_id: str, task_id: str, value: Any, properties: dict[str, Any], ttl: Any
) -> CacheEntry:
    """The entry of a task run whose properties rendered to `properties` (with the working directory fixed)."""
    material = json.dumps({"value": value, "properties": properties}, sort_keys=True, default=str)
    key = hashlib.sha256(material.encode("utf-8")).hexdigest()
    folder = Path(data_dir) / CACHE_FOLDER / Path(*namespace.split(".")) / flow_id / task_id
    return CacheEntry(folder / f"{key}.json", ttl if isinstance(ttl, timedelta) else None)


def key_variables(variables: dict[str, Any]) -> dict[str, Any]:
    """The task run's variables with the working directory fixed, to render the key's properties."""
    return {**variables, "workingDir": FIXED_WORKDIR, "outputDir": FIXED_WORKDIR}
