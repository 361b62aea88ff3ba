"""405 Method Not Allowed as problem details, with an `Allow` header naming every method the path answers.

Starlette answers a method that a path does not take with the methods of the first route whose path matches; where
two routes share a path shape (`/api/v1/executions/{execution_id}/logs` beside `/api/v1/executions/{namespace}/
{flow_id}`), that names the wrong ones. This looks at every route first.
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
            allowed: set[str] = set()
            for route in self.routes:
                if route.path_regex.match(path):
                    allowed |= route.methods or set()
            if allowed and method not in allowed:
                names = ", ".join(sorted(allowed))
                response = problem(405, f"{path} answers {names}, not {method}", {"Allow": names})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
