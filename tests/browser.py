"""Debian's Chromium driven by Playwright (Python) for the browser tests, and their screenshots.

Playwright's own browser builds are never downloaded: the tests launch the system's Chromium by its path
(`GITSYNC_CHROMIUM`, else /usr/bin/chromium; `.ci/run` installs Debian's `chromium` package), headless, with
a fresh user-data dir that Playwright makes for each launch and removes when the browser closes. One browser
serves the whole test session (the `browser` fixture in conftest.py); each test opens contexts of its own.
Where Chromium is absent, every browser test skips with `MISSING` as its one reason.

    def test_dashboard(browser, daemon):
        page = new_page(browser)
        page.goto(daemon.url + "/")
        shoot_everywhere(browser, daemon.url + "/", "dashboard")   # 4 PNGs: 2 widths x 2 themes
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ENV = "GITSYNC_CHROMIUM"
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
"""Where every screenshot goes (gitignored): CI keeps the folder as the run's artifacts."""

ARGS = [
    "--no-sandbox",  # the tests run as root in CI, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no requests of Chromium's own: the machine has no network
    "--disable-component-update",
    "--disable-sync",
]

Theme = Literal["light", "dark"]
WIDTHS: dict[str, tuple[int, int]] = {"1280": (1280, 800), "390": (390, 844)}
"""A desktop's window and a phone's, the two sizes the UI must be usable at."""
THEMES: tuple[Theme, ...] = ("light", "dark")
TIMEOUT_MS = 30_000
"""Playwright's wait for each action and each `expect` (a loaded 2-core machine runs the daemon beside the browser)."""


def chromium_path() -> Path | None:
    """The Chromium to launch: `GITSYNC_CHROMIUM` when set (it must exist), else /usr/bin/chromium; None if absent."""
    named = os.environ.get(CHROMIUM_ENV)
    path = Path(named) if named else DEFAULT_CHROMIUM
    return path if path.is_file() and os.access(path, os.X_OK) else None


def missing_reason() -> str:
    """The one skip reason of every browser test where no Chromium is found: what was looked for, how to get it."""
    named = os.environ.get(CHROMIUM_ENV)
    looked = f"{CHROMIUM_ENV}={named} is not an executable file" if named else f"no {DEFAULT_CHROMIUM}"
    return (
        f"the browser tests need Chromium ({looked}): install Debian's package with `apt-get install chromium` "
        f"(.ci/run does), or set {CHROMIUM_ENV} to a Chromium executable"
    )


@contextmanager
def launched() -> Iterator[Browser]:
    """Playwright started and Chromium launched headless (the session's one browser); both closed at the end.

    The caller checks `chromium_path()` first (the fixture skips when it is None)."""
    from playwright.sync_api import expect, sync_playwright

    path = chromium_path()
    expect.set_options(timeout=TIMEOUT_MS)
    if path is None:
        raise FileNotFoundError(missing_reason())
    with sync_playwright() as playwright:
        browser = _launch(playwright, path)
        try:
            yield browser
        finally:
            browser.close()


def _launch(playwright: Playwright, path: Path) -> Browser:
    return playwright.chromium.launch(executable_path=str(path), headless=True, args=ARGS, timeout=60_000)


def new_context(browser: Browser, width: str = "1280", theme: Theme = "light") -> BrowserContext:
    """A fresh context (own cookies and storage) at one of WIDTHS, in a colour scheme; actions wait TIMEOUT_MS."""
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=theme)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def new_page(browser: Browser, width: str = "1280", theme: Theme = "light") -> Page:
    """A page in a new context (`page.context.close()` ends both)."""
    return new_context(browser, width, theme).new_page()


def screenshot_path(name: str, width: str, theme: Theme) -> Path:
    """test-artifacts/screenshots/<name>-<width>-<theme>.png (the name made safe for a file name)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "page"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{safe}-{width}-{theme}.png"


def shoot_everywhere(
    browser: Browser, url: str, name: str, ready: Callable[[Page], object] | None = None
) -> list[Path]:
    """Open `url` at both widths in both themes and save a full-page screenshot of each; returns the files.

    `ready(page)` waits for what the page must show before the picture (a heading, a graph); by default the
    page's load. Each picture is taken in a context of its own, so a theme is the browser's preference, as a
    user's system sets it."""
    files = []
    for width in WIDTHS:
        for theme in THEMES:
            context = new_context(browser, width, theme)
            try:
                page = context.new_page()
                page.goto(url)
                if ready is not None:
                    ready(page)
                path = screenshot_path(name, width, theme)
                page.screenshot(path=str(path), full_page=True)
                files.append(path)
            finally:
                context.close()
    return files


_STICKING_OUT = """() => {
  const width = window.innerWidth;
  const out = (e) => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().right > width + 1;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
    + (typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/ +/).join(".") : "");
  const scroll = document.documentElement.scrollWidth;
  const deepest = [...document.querySelectorAll("body *")].filter((e) => out(e) && ![...e.children].some(out));
  // what makes the page that wide first: an edge at its width (most else is clipped by a scrolling box)
  const widening = deepest.filter((e) => Math.abs(e.getBoundingClientRect().right - scroll) <= 1);
  const shown = (widening.length ? widening : deepest).slice(0, 5);
  return {scroll: scroll, width: width,
          out: shown.map((e) => name(e) + " to " + Math.round(e.getBoundingClientRect().right) + " px")};
}"""
"""The page's width, and the innermost elements that reach past the window's right edge: those that end where the
page ends when there are any (what widens it), else the first five."""


def sideways(page: Page) -> str:
    """'' when the page fits its window's width (WCAG 1.4.10, reflow: nothing scrolls sideways but what is inside a
    scrolling box, such as a wide table in its wrapper); else how wide it is and what reaches past the window."""
    found = page.evaluate(_STICKING_OUT)
    if found["scroll"] <= found["width"]:
        return ""
    reaching = ", ".join(found["out"])
    return f"the page is {found['scroll']} px wide in a {found['width']} px window; reaching past it: {reaching}"
