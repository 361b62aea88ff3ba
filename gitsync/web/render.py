"""The pages' Jinja2 environment and their responses.

The environment is built by the first page rendered (an idle daemon never imports Jinja2). Every template is
autoescaped, whatever its name: user text (task ids, descriptions, logs, commit messages, errors) is always
escaped; only the HTML this package builds and escapes itself (the graph's SVG, the highlighted source) is marked
safe, by the page that made it. Every page is answered with a strict Content-Security-Policy: no inline script,
no inline style, nothing from another origin.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.responses import HTMLResponse

from gitsync import __version__
from gitsync.web.states import state_class
from gitsync.web.timeline import format_duration, parse_time

if TYPE_CHECKING:
    import jinja2

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
SHORT_SHA = 12


@dataclass(frozen=True)
class View:
    """A page to render: its template, what it shows, its status."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200


def short(sha: str | None) -> str:
    return (sha or "")[:SHORT_SHA]


def seg(value: Any) -> str:
    """One path segment, quoted (a namespace, a flow id, an execution id)."""
    return quote(str(value), safe="")


def when(value: Any) -> str:
    """A stored ISO-8601 time as people read it, in UTC: `2024-05-01 10:00:06 UTC`."""
    moment = parse_time(value)
    if moment is None:
        return "" if value is None else str(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: Any) -> str:
    return format_duration(float(value)) if isinstance(value, int | float) else ""


def pretty(value: Any) -> str:
    """Data (inputs, outputs, labels) as indented JSON; escaped where it is shown."""
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def safe_url(value: Any) -> str | None:
    """A link target from data (a status's target URL): only http(s), else no link."""
    text = str(value or "")
    return text if text.lower().startswith(("https://", "http://")) else None


def query(**params: Any) -> str:
    """`?a=1&b=2` of the parameters that are set (empty string when none is)."""
    pairs = [(k, v) for k, v in params.items() if v not in (None, "", [])]
    flat = [(k, item) for k, v in pairs for item in (v if isinstance(v, list | tuple) else [v])]
    return "?" + urlencode(flat) if flat else ""


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gitsync.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        state_class=state_class, short=short, seg=seg, when=when, seconds=seconds, pretty=pretty, safe_url=safe_url
    )
    env.globals.update(version=__version__, query=query)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context, now=datetime.now(UTC))


def page(view: View, headers: dict[str, str] | None = None) -> HTMLResponse:
    body = render(view.template, **view.context)
    return HTMLResponse(body, status_code=view.status, headers={**HEADERS, **(headers or {})})


def markup(html: str) -> Any:
    """HTML this package built and escaped itself (the SVG graph, the highlighted source), marked safe."""
    from markupsafe import Markup

    return Markup(html)  # built from escaped parts only (gitsync.web.svg, gitsync.web.highlight, gitsync.web.charts)
