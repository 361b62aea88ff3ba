"""`OutputValues`: expose rendered values as task outputs."""

from __future__ import annotations

from typing import Any, ClassVar

from runner.plugin import Task


class OutputValues(Task):
    """Render each value of the map and expose it as `outputs.<id>.values.<key>`."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.output.OutputValues"

    values: dict[str, Any] | None = None
    """Key -> value (rendered)."""
