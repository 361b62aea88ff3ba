"""405 Method Not Allowed as problem details, with an `Allow` header naming every method the path answers.

Starlette answers a method that a path does not take with the methods of the first route whose path matches; where
two routes share a path shape (`/api/v1/executions/{execution_id}/logs` beside `/api/v1/executions/{namespace}/
{flow_id}`), that names the wrong ones. This looks at every route first, and a path with more fixed words wins
(`/api/v1/executions/{execution_id}/logs` answers GET, though a POST there would match the run route).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gitsync.http.problems import problem


class MethodCheck:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = [r for r in routes if isinstance(r, Route)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            matching = [route for route in self.routes if route.path_regex.match(path)]
            # the most specific paths win: `/executions/{id}/logs` over `/executions/{namespace}/{flow_id}`
            best = max((_literal(route) for route in matching), default=0)
            allowed: set[str] = set()
            for route in matching:
                if _literal(route) == best:
                    allowed |= route.methods or set()
            if allowed and method not in allowed:
                names = ", ".join(sorted(allowed))
                response = problem(405, f"{path} answers {names}, not {method}", {"Allow": names})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _literal(route: Route) -> int:
    """How many path segments of the route are fixed words, not parameters."""
    return sum(1 for part in route.path.split("/") if part and not part.startswith("{"))
