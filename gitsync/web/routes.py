"""The web UI's routes, served by the daemon's Starlette app beside the API (`web_routes`).

    GET  /                                   dashboard
    GET  /namespaces/{namespace}             a namespace's flows
    GET  /flows/{namespace}/{id}             a flow: source at its commit, task graph, revisions, last runs
    GET  /flows/{namespace}/{id}/diff        ?from=R1&to=R2: the diff between two revisions
    GET  /flows/{namespace}/{id}/run         the Run form; POST runs it (the API token in the form)
    GET  /executions                         the list, with filters
    GET  /executions/{id}                    an execution: Gantt, task runs, graph, logs (live)
    GET  /executions/{id}/live               the part of it that changes (re-fetched on each state change)
    GET  /syncs , /syncs/{id}                the sync history; a sync with its plan and errors
    GET  /triggers                           triggers with pause/resume
    GET  /statuses                           commit statuses and their outbox state
    GET  /login ; POST /login, /logout       the session a browser needs to read the pages off loopback
    GET  /static/{path}                      the stylesheet, the script, the icon

Each page is built on a worker thread from `gitsync.views` (what the API answers) and rendered there; a query is
validated by the API's query model. Nothing here imports Jinja2 or Pygments: the first page does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from gitsync.config import Settings
from gitsync.executions.errors import RunError
from gitsync.http import queries
from gitsync.http.guard import BodyError, read_body
from gitsync.views import flows
from gitsync.views.context import ViewContext
from gitsync.views.errors import NotFound
from gitsync.web import flow_pages, ops_pages, run_form, run_pages
from gitsync.web.access import COOKIE, Access, local_path, session_value
from gitsync.web.render import View

log = logging.getLogger("gitsync.web")

MAX_LOGIN_BODY = 16 * 1024
Build = Callable[[], View]


def _error(status: int, heading: str, message: str) -> View:
    return View("error.html", {"nav": "", "heading": heading, "message": message}, status)


def _query(model: type[queries.Query], request: Request, only: tuple[str, ...] | None = None) -> Any:
    params = {k: v for k, v in request.query_params.items() if v != "" and (only is None or k in only)}
    multi = {k: request.query_params.getlist(k) for k in params}
    return queries.parse(model, params, multi)


class WebUI:
    def __init__(self, settings: Settings, ctx: ViewContext, runs: Any) -> None:
        self.settings = settings
        self.ctx = ctx
        self.runs = runs
        self.access = Access(settings)

    # -- showing a page -----------------------------------------------------------------------------------------

    def _login_redirect(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def show(self, request: Request, build: Callable[[Request], View]) -> Response:
        if not self.access.may_read(request):
            return self._login_redirect(request)
        return await run_in_threadpool(self._render, lambda: build(request))

    @staticmethod
    def _render(build: Build) -> Response:
        from gitsync.web.render import page

        try:
            view = build()
        except NotFound as exc:
            view = _error(404, "Not found", str(exc))
        except queries.QueryError as exc:
            view = _error(400, "This address cannot be read", str(exc))
        return page(view)

    async def _page(self, view: View) -> Response:
        return await run_in_threadpool(self._render, lambda: view)

    def route(self, build: Callable[[Request], View]) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            return await self.show(request, build)

        return handle

    # -- the pages ----------------------------------------------------------------------------------------------

    def dashboard(self, request: Request) -> View:
        return flow_pages.dashboard(self.ctx)

    def namespace(self, request: Request) -> View:
        query = _query(queries.FlowQuery, request, ("q", "cursor"))
        return flow_pages.namespace(self.ctx, request.path_params["namespace"], query.q, query.cursor)

    def flow(self, request: Request) -> View:
        query = _query(queries.SourceQuery, request)
        p = request.path_params
        return flow_pages.flow(self.ctx, p["namespace"], p["flow_id"], query.revision)

    def diff(self, request: Request) -> View:
        p = request.path_params
        if not request.query_params.get("from"):
            return flow_pages.diff(self.ctx, p["namespace"], p["flow_id"], None, None)
        query = _query(queries.DiffQuery, request)
        return flow_pages.diff(self.ctx, p["namespace"], p["flow_id"], query.from_, query.to)

    def executions(self, request: Request) -> View:
        params = {k: v for k, v in request.query_params.items() if v != ""}
        multi = {k: [v for v in request.query_params.getlist(k) if v] for k in params}
        return run_pages.executions_list(self.ctx, params, multi)

    def execution(self, request: Request) -> View:
        query = _query(queries.LogQuery, request, ("level", "q", "cursor"))
        return run_pages.execution(self.ctx, request.path_params["execution_id"], query.level, query.q, query.cursor)

    def live(self, request: Request) -> View:
        return run_pages.live(self.ctx, request.path_params["execution_id"])

    def syncs(self, request: Request) -> View:
        return ops_pages.sync_list(self.ctx, _query(queries.SyncQuery, request))

    def sync(self, request: Request) -> View:
        text = request.path_params["sync_id"]
        if not text.isdigit() or len(text) > 18:
            raise NotFound(f"no sync {text!r}: syncs are numbered 1, 2, 3…")
        return ops_pages.sync(self.ctx, int(text))

    def triggers(self, request: Request) -> View:
        return ops_pages.trigger_list(self.ctx, _query(queries.TriggerQuery, request))

    def statuses(self, request: Request) -> View:
        return ops_pages.status_list(self.ctx, _query(queries.StatusQuery, request))

    # -- the Run form -------------------------------------------------------------------------------------------

    def run_form(self, request: Request) -> View:
        p = request.path_params
        return run_form.form_view(flows.flow(self.ctx, p["namespace"], p["flow_id"]))

    async def run(self, request: Request) -> Response:
        if not self.access.may_read(request):
            return self._login_redirect(request)
        p = request.path_params
        try:
            flow = await run_in_threadpool(flows.flow, self.ctx, p["namespace"], p["flow_id"])
        except NotFound as exc:
            return await self._page(_error(404, "Not found", str(exc)))
        try:
            items = await run_form.read_form(request, self.settings.http.body_timeout)
        except BodyError as exc:
            return await self._page(_error(exc.status, "The form was refused", str(exc)))
        token = next((v for k, v in items if k == run_form.TOKEN_FIELD and isinstance(v, str)), "")
        given = run_form.given_inputs(flow.inputs, items)
        refusal = self.access.refusal(token)
        if refusal is not None:
            return await self._page(run_form.form_view(flow, given, token_error=refusal, status=403))
        return await run_in_threadpool(self._start, flow, given)

    def _start(self, flow: Any, given: dict[str, Any]) -> Response:
        if self.runs is None:
            return self._render(lambda: _error(503, "Runs are off", "this server does not run flows"))
        try:
            declared = self.runs.flow(flow.uid, flow.revision).inputs
            by_field, general = run_form.check(declared, given)
            if by_field or general:
                view = run_form.form_view(flow, given, by_field, general, status=422)
                return self._render(lambda: view)
            execution_id = self.runs.create(flow.uid, given, kind="api")
        except RunError as exc:
            refused = run_form.form_view(flow, given, general=[str(exc)], status=422)
            return self._render(lambda: refused)
        self.runs.start(execution_id)
        log.info("web UI: %s started as execution %s", flow.uid, execution_id)
        return RedirectResponse(f"/executions/{quote(execution_id, safe='')}", status_code=303)

    # -- the session (reads off loopback) -----------------------------------------------------------------------

    def login_form(self, request: Request) -> View:
        target = local_path(request.query_params.get("next"))
        return View("login.html", {"nav": "", "next": target, "error": None, "open": self.access.open_reads})

    async def login_page(self, request: Request) -> Response:
        return await self._page(self.login_form(request))

    async def login(self, request: Request) -> Response:
        try:
            body = await read_body(request, MAX_LOGIN_BODY, self.settings.http.body_timeout)
        except BodyError as exc:
            return exc.response()
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        given = (form.get("token") or [""])[-1]
        target = local_path((form.get("next") or ["/"])[-1])
        refusal = self.access.refusal(given)
        if refusal is not None:
            view = View(
                "login.html", {"nav": "", "next": target, "error": refusal, "open": self.access.open_reads}, 403
            )
            return await run_in_threadpool(self._render, lambda: view)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE, session_value(given.strip()), httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return response


def static_route() -> Route:
    """The package's `static/` folder (installed with it: no network, no build)."""
    files = StaticFiles(packages=[("gitsync.web", "static")])

    async def serve(request: Request) -> Response:
        response = await files.get_response(request.path_params["path"], request.scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return Route("/static/{path:path}", serve, methods=["GET"])


def web_routes(settings: Settings, ctx: ViewContext, runs: Any = None) -> list[Route]:
    """The UI's routes over the same views as the API; `runs` (the RunManager) starts what the Run form submits."""
    ui = WebUI(settings, ctx, runs)
    pages: list[tuple[str, Callable[[Request], View]]] = [
        ("/", ui.dashboard),
        ("/namespaces/{namespace}", ui.namespace),
        ("/flows/{namespace}/{flow_id}", ui.flow),
        ("/flows/{namespace}/{flow_id}/diff", ui.diff),
        ("/executions", ui.executions),
        ("/executions/{execution_id}", ui.execution),
        ("/executions/{execution_id}/live", ui.live),
        ("/syncs", ui.syncs),
        ("/syncs/{sync_id}", ui.sync),
        ("/triggers", ui.triggers),
        ("/statuses", ui.statuses),
    ]
    routes = [Route(path, ui.route(build), methods=["GET"]) for path, build in pages]
    routes += [
        Route("/flows/{namespace}/{flow_id}/run", ui.route(ui.run_form), methods=["GET"]),
        Route("/flows/{namespace}/{flow_id}/run", ui.run, methods=["POST"]),
        Route("/login", ui.login_page, methods=["GET"]),
        Route("/login", ui.login, methods=["POST"]),
        Route("/logout", ui.logout, methods=["POST"]),
        static_route(),
    ]
    return routes
