"""WCAG AA, the keyboard and a phone's width, proved in Debian's Chromium (Playwright) on every page of the web UI.

- axe-core (the copy `axe-playwright-python` ships, injected by the test: nothing is fetched) runs its WCAG 2.0 and
  2.1 A and AA rules on each page at 1280x800 and 390x844, in the light and the dark colour scheme, and finds
  nothing.
- At 390 px no page scrolls sideways: only a table's (or the source's, the graph's) own scroll container does.
- The keyboard alone: Tab reaches the skip link, Enter moves focus into the main content; at 390 px the Menu button
  opens the navigation with Enter and its links are reached and followed; every element Tab reaches on a page
  shows where the focus is.

The pages are those of tests/test_web_pages.py's `site` (a daemon over a smart-HTTP source with three commits, the
last invalid, runs of a flow at two revisions, commit statuses in its outbox), plus a running execution and the Run
form showing its errors. Where Chromium is absent, every test here skips with tests/browser.py's one reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from browser import WIDTHS, Theme, new_page, sideways
from playwright.sync_api import Browser, Page, expect
from test_web_pages import AUTH, TOKEN, Site, site

__all__ = ["site"]  # the module's daemon, the fixture of tests/test_web_pages.py

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
"""axe-core's tags of the WCAG 2.0 and 2.1 success criteria at levels A and AA."""


# -- the pages ----------------------------------------------------------------------------------------------------

Opener = Callable[[Site, Page, ExitStack], None]


def at(path: str, heading: str | re.Pattern[str]) -> Opener:
    """Open `path` and wait for its h1."""

    def open_page(site: Site, page: Page, stack: ExitStack) -> None:
        page.goto(site.daemon.url + path)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()

    return open_page


def run_form_with_errors(site: Site, page: Page, stack: ExitStack) -> None:
    """The Run form sent with its required `count` left empty: it comes back with the error beside the field."""
    at("/flows/acme.demo/hello/run", "Run hello")(site, page, stack)
    main = page.get_by_role("main")
    main.get_by_label("API token").fill(TOKEN)
    main.get_by_role("button", name="Run hello").click()
    expect(page.get_by_role("alert")).to_contain_text("The flow was not run")
    expect(main.get_by_label("count")).to_have_attribute("aria-invalid", "true")


def running_execution(site: Site, page: Page, stack: ExitStack) -> None:
    """A run of `sleeper` while it sleeps, its logs live; killed when the test ends."""
    execution_id = site.run("sleeper", {})
    stack.callback(lambda: site.ended(execution_id))
    stack.callback(lambda: site.daemon.post(f"/api/v1/executions/{execution_id}/kill", headers=AUTH))
    site.daemon.wait_for(
        lambda: site.daemon.api(f"/api/v1/executions/{execution_id}")["state"] == "RUNNING", "the sleeper to run"
    )
    page.goto(f"{site.daemon.url}/executions/{execution_id}")
    expect(page.locator("#execution-state")).to_have_text("RUNNING")
    expect(page.locator("#live-status")).to_have_text(re.compile("^Live: "))


def ended_execution(site: Site, page: Page, stack: ExitStack) -> None:
    page.goto(f"{site.daemon.url}/executions/{site.second_run}")
    expect(page.locator("#execution-state")).to_have_text("SUCCESS")


def sync_with_errors(site: Site, page: Page, stack: ExitStack) -> None:
    latest = site.daemon.api("/api/v1/syncs")[0]["id"]  # the broken commit's
    at(f"/syncs/{latest}", re.compile(rf"^Sync {latest} of main$"))(site, page, stack)
    expect(page.locator("#sync-errors")).to_be_visible()


PAGES: dict[str, Opener] = {
    "dashboard": at("/", "Dashboard"),
    "namespace": at("/namespaces/acme.demo", "Namespace acme.demo"),
    "flow": at("/flows/acme.demo/hello", "hello in acme.demo"),
    "flow-graph": at("/flows/acme.demo/demo", "demo in acme.demo"),  # every flowable drawn
    "flow-old-revision": at("/flows/acme.demo/hello?revision=1", "hello in acme.demo"),
    "diff": at("/flows/acme.demo/hello/diff?from=1&to=2", "acme.demo.hello: revision 1 → 2"),
    "diff-choice": at("/flows/acme.demo/hello/diff", "Compare revisions of acme.demo.hello"),
    "run-form": at("/flows/acme.demo/hello/run", "Run hello"),
    "run-form-errors": run_form_with_errors,
    "run-form-file": at("/flows/acme.demo/intake/run", "Run intake"),
    "executions": at("/executions", "Executions"),
    "execution-running": running_execution,
    "execution-ended": ended_execution,
    "syncs": at("/syncs", "Syncs"),
    "sync": at("/syncs/1", "Sync 1 of main"),
    "sync-errors": sync_with_errors,
    "triggers": at("/triggers", "Triggers"),
    "statuses": at("/statuses", "Statuses"),
    "login": at("/login", "Sign in"),
    "not-found": at("/flows/acme.demo/nope", re.compile(".")),
}


@pytest.fixture
def opened(browser: Browser, site: Site) -> Iterator[Callable[[str, str, Theme], Page]]:
    """`opened(name, width, theme)`: PAGES[name] in a new tab at that width and colour scheme; closed at the end
    (and what the page started, such as a run, ended)."""
    with ExitStack() as stack:

        def open_one(name: str, width: str, theme: Theme) -> Page:
            page = new_page(browser, width, theme)
            stack.callback(page.context.close)
            PAGES[name](site, page, stack)
            return page

        yield open_one


# -- axe-core -----------------------------------------------------------------------------------------------------


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
    results = Axe().run(page, options=options)
    return list(results.response["violations"])


def described(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}  [{v['helpUrl']}]")
        for node in v["nodes"]:
            lines.append(f"    at {' > '.join(map(str, node['target']))}: {node['failureSummary']}".replace("\n", " "))
    return "\n".join(lines)


def test_axe_runs_on_our_pages_and_finds_what_breaks_wcag(opened: Callable[[str, str, Theme], Page]) -> None:
    """The audit below can fail: on a page of ours (its Content-Security-Policy on), a field without a label and
    grey on white are found."""
    page = opened("dashboard", "1280", "light")
    page.evaluate("""() => {
      const main = document.getElementById('main');
      const field = document.createElement('input');
      field.type = 'text';
      const faint = document.createElement('p');
      faint.textContent = 'hard to read';
      faint.style.color = '#bbbbbb';
      main.append(field, faint);
    }""")
    found = {v["id"] for v in axe_violations(page)}
    assert {"label", "color-contrast"} <= found, found


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", list(PAGES))
def test_axe_finds_no_wcag_aa_violation(opened: Callable[[str, str, Theme], Page], name: str, width: str,
                                        theme: Theme) -> None:  # fmt: skip
    page = opened(name, width, theme)
    violations = axe_violations(page)
    assert not violations, f"{name} at {width} px, {theme}: axe-core found\n{described(violations)}"


SVG_TEXT_CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const linear = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => c.map(linear).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  return [...document.querySelectorAll('svg.graph text')].map((text) => {
    const box = text.closest('a.node');
    const behind = box ? getComputedStyle(box.querySelector('rect')).fill
      : getComputedStyle(text.closest('.graph-wrap')).backgroundColor;
    const fill = getComputedStyle(text).fill;
    return { text: text.textContent, fill, behind, ratio: ratio(rgb(fill), rgb(behind)) };
  });
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", ["flow-graph", "execution-running", "execution-ended"])
def test_the_graphs_text_has_aa_contrast(opened: Callable[[str, str, Theme], Page], name: str, theme: Theme) -> None:
    """axe-core leaves an SVG's text unjudged (it reads no SVG fill): measured here, each text's fill against the
    fill of its task's box, or the graph's background."""
    texts = opened(name, "1280", theme).evaluate(SVG_TEXT_CONTRAST)
    assert texts, f"{name}: no text in the graph"
    low = [t for t in texts if t["ratio"] < 4.5]
    assert not low, f"{name}, {theme}: text below 4.5:1 in the task graph: {low}"


# -- a phone's width ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_scrolls_sideways_at_a_phones_width(opened: Callable[[str, str, Theme], Page], name: str) -> None:
    page = opened(name, "390", "light")
    for menu in (False, True):
        if menu:  # the navigation open too
            page.get_by_role("button", name="Menu").click()
            expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        assert sideways(page) == "", f"{name} at 390 px{' (menu open)' if menu else ''}: {sideways(page)}"


# -- the keyboard -------------------------------------------------------------------------------------------------

FOCUS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  const rect = e.querySelector && e.namespaceURI === 'http://www.w3.org/2000/svg' ? e.querySelector('rect') : null;
  const stroke = rect ? parseFloat(getComputedStyle(rect).strokeWidth) : 0;
  const box = e.getBoundingClientRect();
  return {
    what: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' "' + (e.getAttribute('aria-label')
      || e.textContent || '').trim().slice(0, 40) + '"',
    id: e.id, visible: ring || stroke >= 3,
    inside: box.width > 0 && box.height > 0,
    nav: !!e.closest('nav[aria-label="Main"]'), text: (e.textContent || '').trim(),
  };
}"""


def focused(page: Page) -> dict[str, Any] | None:
    result: dict[str, Any] | None = page.evaluate(FOCUS)
    return result


def tab(page: Page) -> dict[str, Any]:
    page.keyboard.press("Tab")
    now = focused(page)
    assert now is not None, "Tab left the page's elements (the focus is on the body)"
    return now


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_skip_link_is_the_first_stop_and_moves_the_focus_to_the_main_content(
    opened: Callable[[str, str, Theme], Page], width: str
) -> None:
    page = opened("dashboard", width, "light")
    first = tab(page)
    assert first["what"].startswith('a "Skip to content'), first
    assert first["visible"] and first["inside"], f"the skip link is focused but not shown: {first}"
    expect(page.get_by_role("link", name="Skip to content")).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert (focused(page) or {}).get("id") == "main", f"Enter on the skip link focused {focused(page)}"
    after = tab(page)
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)"), (
        f"after the skip link, Tab went to {after}, outside the main content"
    )


def test_at_a_phones_width_the_menu_opens_with_enter_and_its_links_are_followed(
    opened: Callable[[str, str, Theme], Page],
) -> None:
    page = opened("dashboard", "390", "light")
    nav = page.get_by_role("navigation", name="Main")
    menu = page.get_by_role("button", name="Menu")
    expect(nav).to_be_hidden()
    for _ in range(5):
        stop = tab(page)
        if stop["id"] == "menu-toggle":
            break
        assert not stop["nav"], f"Tab reached {stop} in the folded navigation"
    else:
        raise AssertionError("Tab never reached the Menu button")
    assert stop["visible"], f"the Menu button has the focus but shows no ring: {stop}"
    expect(menu).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    reached = []
    for _ in range(8):
        stop = tab(page)
        if not stop["nav"]:
            break
        assert stop["visible"], f"a link of the navigation has the focus but shows no ring: {stop}"
        reached.append(stop["text"])
        if stop["text"] == "Syncs":
            break
    assert reached == ["Dashboard", "Executions", "Syncs"], f"Tab after the Menu button reached {reached}"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/syncs$"))
    expect(page.get_by_role("heading", name="Syncs", level=1)).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")


@pytest.mark.parametrize(("width", "theme"), [("1280", "light"), ("390", "dark")])
@pytest.mark.parametrize("name", list(PAGES))
def test_every_element_tab_reaches_shows_the_focus(opened: Callable[[str, str, Theme], Page], name: str, width: str,
                                                   theme: Theme) -> None:  # fmt: skip
    page = opened(name, width, theme)
    seen: list[str] = []
    unseen: list[dict[str, Any]] = []
    for _ in range(300):
        page.keyboard.press("Tab")
        now = focused(page)
        if now is None or (seen and now["what"] == seen[0] and len(seen) > 1):
            break  # past the last element, or round again
        seen.append(now["what"])
        if not now["visible"]:
            unseen.append(now)
    assert seen, f"{name}: Tab reached nothing"
    assert not unseen, f"{name} at {width} px, {theme}: these take the focus without showing it: {unseen}"
