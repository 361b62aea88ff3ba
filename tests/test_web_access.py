"""Who may see the web UI and act from it, when the daemon listens off loopback: the app under a real uvicorn,
its settings saying 0.0.0.0. The pages need the API token once (a login that sets a session cookie); a run needs the
token itself, whatever the cookie. And what an install ships: the templates and assets are package data."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from htmlpage import parse
from test_http import TOKEN, TOKEN_ENV, Seams, make_settings, seed, serve

from gitsync.http.app import build_app
from gitsync.http.metrics import Metrics
from gitsync.state.database import Store
from gitsync.web.access import COOKIE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = Store(tmp_path_factory.mktemp("web-access") / "state.db")
    seed(store)
    base = make_settings()
    settings = base.model_copy(update={"http": base.http.model_copy(update={"listen": "0.0.0.0:8080"})})
    seams = Seams()
    app = build_app(settings, store, request_sync=seams.request_sync, health=seams.health, metrics=Metrics())
    with pytest.MonkeyPatch.context() as env, serve(app) as url:
        env.setenv(TOKEN_ENV, TOKEN)
        yield url


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10, follow_redirects=False, trust_env=False)


def test_off_loopback_a_page_asks_for_the_token_first(remote: str) -> None:
    with client(remote) as http:
        response = http.get("/flows/hello/etl?revision=1")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Fflows%2Fhello%2Fetl%3Frevision%3D1"
        page = parse(http.get("/login").text)
        assert "reached over the network" in page.find("main").text()
        assert page.find("label", **{"for": "login-token"}).text() == "API token"
        assert http.get("/static/app.css").status_code == 200  # the assets are no secret


def test_the_login_sets_a_session_cookie_that_is_not_the_token(remote: str) -> None:
    with client(remote) as http:
        refused = http.post("/login", data={"token": "wrong", "next": "/"})
        assert refused.status_code == 403 and parse(refused.text).by_id("login-error").text() == "wrong API token"
        assert COOKIE not in refused.cookies
        signed = http.post("/login", data={"token": TOKEN, "next": "/syncs"})
        assert signed.status_code == 303 and signed.headers["location"] == "/syncs"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert TOKEN not in cookie
        page = http.get("/")
        assert page.status_code == 200
        on_host = "https://github.com/Codertocat/Hello-World/commit/" + "c" * 40  # the configured repo's page
        applied = parse(page.text).by_id("sources").find("a", href=on_host)
        assert applied.text() == "c" * 12
        assert http.post("/logout").status_code == 303
        http.cookies.clear()
        assert http.get("/").status_code == 303


def test_the_bearer_token_opens_the_pages_too(remote: str) -> None:
    with client(remote) as http:
        assert http.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert http.get("/", headers={"Authorization": "Bearer nope"}).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "syncs"])
def test_the_login_only_goes_back_to_this_site(remote: str, target: str) -> None:
    with client(remote) as http:
        response = http.post("/login", data={"token": TOKEN, "next": target})
        assert response.status_code == 303 and response.headers["location"] == "/"


def test_a_session_cookie_alone_never_runs_a_flow(remote: str) -> None:
    with client(remote) as http:
        assert http.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 303
        form = parse(http.get("/flows/hello/etl/run").text).by_id("run-form")
        assert form.find("input", name="_token").attrs["type"] == "password"
        refused = http.post("/flows/hello/etl/run", data={})
        assert refused.status_code == 403
        assert parse(refused.text).by_id("err-token").text().startswith("give the API token")


def test_the_templates_and_assets_are_package_data() -> None:
    """A non-editable install ships every file under gitsync/web/templates and static (pyproject's package data)."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gitsync.web"]
    web = ROOT / "gitsync" / "web"
    files = [p.relative_to(web).as_posix() for d in ("templates", "static") for p in (web / d).rglob("*")]
    files = [f for f in files if (web / f).is_file()]
    assert len(files) > 10

    def shipped(name: str, pattern: str) -> bool:  # a glob as setuptools reads it: `*` stays inside one folder
        parts, wanted = name.split("/"), pattern.split("/")
        return len(parts) == len(wanted) and all(map(fnmatch.fnmatchcase, parts, wanted))

    missed = [f for f in files if not any(shipped(f, pattern) for pattern in patterns)]
    assert missed == []
