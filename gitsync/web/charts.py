"""Executions over time as stacked bars (inline SVG, pure): one bar per day, one segment per state's colour family.
The page shows the same numbers as a table beside it; the drawing is an image with a summary for screen readers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from gitsync.web.states import FAMILY_NAMES, family

BAR_W, GAP, HEIGHT = 16, 6, 100


def day_families(states: Mapping[str, int]) -> dict[str, int]:
    """A day's counts by state, summed by colour family, in FAMILY_NAMES order (zeros left out)."""
    sums = dict.fromkeys(FAMILY_NAMES, 0)
    for state, n in states.items():
        sums[family(state)] += int(n)
    return {name: n for name, n in sums.items() if n}


def histogram(days: Sequence[tuple[str, Mapping[str, int]]], dom_id: str = "executions-chart") -> str:
    """`days`: (ISO day, state -> count), oldest first."""
    totals = [sum(states.values()) for _, states in days]
    peak = max(totals, default=0) or 1
    width = max(len(days) * (BAR_W + GAP) - GAP, 1)
    total = sum(totals)
    summary = f"{total} execution{'s' if total != 1 else ''} in the last {len(days)} days"
    if days:
        summary += f", from {days[0][0]} to {days[-1][0]}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{dom_id}" class="histogram" role="img" '
        f'aria-labelledby="{dom_id}-title" viewBox="0 0 {width} {HEIGHT}" preserveAspectRatio="none">',
        f'<title id="{dom_id}-title">{escape(summary)}</title>',
    ]
    for i, (day, states) in enumerate(days):
        x = i * (BAR_W + GAP)
        y = float(HEIGHT)
        for name, n in day_families(states).items():
            h = HEIGHT * n / peak
            y -= h
            parts.append(
                f'<rect class="state-{name}" x="{x}" y="{y:.2f}" width="{BAR_W}" height="{h:.2f}">'
                f"<title>{escape(day)}: {n} {escape(name)}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)
