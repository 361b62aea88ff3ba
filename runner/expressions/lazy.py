"""The process's one renderer, built when it first renders.

A `Renderer` imports Jinja's sandbox, the expression filters and functions and the regex library, and builds its
environment when it is constructed. A daemon that syncs, schedules and serves HTTP renders nothing until a flow
runs (or a Webhook key, a trigger's inputs or a Schedule condition is rendered), so the composition root
(`gitsync.compose`) builds a `LazyRenderer`: the masker and the secrets now, the `Renderer` on its first use. The
control plane and the engine take either through `Rendering`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from runner.masking import Masker

if TYPE_CHECKING:
    from runner.expressions.renderer import Renderer


class Rendering(Protocol):
    """What the control plane and the engine use of a renderer."""

    @property
    def masker(self) -> Masker: ...

    def render(self, text: str, variables: Mapping[str, Any]) -> str: ...

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any: ...

    def evaluate(self, expression: Any, variables: Mapping[str, Any]) -> Any: ...


class LazyRenderer:
    """A `Renderer(masker=…, secrets=…)` built on the first render, evaluation or `get()`, once (thread-safe)."""

    def __init__(self, masker: Masker, secrets: Mapping[str, str] | None = None) -> None:
        self._masker = masker
        self._secrets = dict(secrets or {})
        self._renderer: Renderer | None = None
        self._lock = threading.Lock()

    @property
    def masker(self) -> Masker:
        return self._masker

    def get(self) -> Renderer:
        """The `Renderer`, built now if nothing rendered before."""
        renderer = self._renderer
        if renderer is None:
            with self._lock:
                if self._renderer is None:
                    from runner.expressions.renderer import Renderer

                    self._renderer = Renderer(masker=self._masker, secrets=self._secrets)
                renderer = self._renderer
        return renderer

    def render(self, text: str, variables: Mapping[str, Any]) -> str:
        return self.get().render(text, variables)

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        return self.get().render_value(value, variables)

    def evaluate(self, expression: Any, variables: Mapping[str, Any]) -> Any:
        return self.get().evaluate(expression, variables)

    def __repr__(self) -> str:
        return f"LazyRenderer({self._renderer!r})" if self._renderer is not None else "LazyRenderer(not built)"
