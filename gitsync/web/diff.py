"""The rows of a unified diff (pure): hunk headers, context, added and removed lines, each with its line numbers
in the old and the new text. From two texts (difflib), or from a unified diff's text (what the API answers)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from html import escape
from typing import Literal

RowKind = Literal["hunk", "ctx", "add", "del"]


@dataclass(frozen=True)
class DiffRow:
    kind: RowKind
    old: int | None
    """The line's number in the old text (None for an added line and a hunk header)."""
    new: int | None
    text: str
    """As it is in the text (the hunk header for a hunk): escape it to show it (`html`)."""

    @property
    def html(self) -> str:
        return escape(self.text, quote=True)


def diff_rows(old: str, new: str, context: int = 3) -> list[DiffRow]:
    """The unified diff of `old` to `new` as rows; none when the texts have the same lines."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[DiffRow] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        rows.append(DiffRow("hunk", None, None, _header(first[1], last[2], first[3], last[4])))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [DiffRow("ctx", i + 1, j + 1, a[i]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
                continue
            rows += [DiffRow("del", i + 1, None, a[i]) for i in range(i1, i2)]
            rows += [DiffRow("add", None, j + 1, b[j]) for j in range(j1, j2)]
    return rows


def _header(i1: int, i2: int, j1: int, j2: int) -> str:
    def side(start: int, end: int) -> str:
        length = end - start
        if length == 1:
            return str(start + 1)
        return f"{start + 1 if length else start},{length}"

    return f"@@ -{side(i1, i2)} +{side(j1, j2)} @@"


def counts(rows: list[DiffRow]) -> tuple[int, int]:
    """(lines added, lines removed)."""
    return sum(r.kind == "add" for r in rows), sum(r.kind == "del" for r in rows)


HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_unified(text: str) -> list[DiffRow]:
    """The rows of a unified diff's text (the file headers `---`/`+++` before the first hunk are left out)."""
    rows: list[DiffRow] = []
    old = new = 0
    for line in text.splitlines():
        match = HUNK.match(line)
        if match:
            old, new = int(match.group(1)), int(match.group(3))
            # a side of length 0 names the line before the change
            old += 1 if match.group(2) == "0" else 0
            new += 1 if match.group(4) == "0" else 0
            rows.append(DiffRow("hunk", None, None, line))
        elif not rows:
            continue  # --- / +++ headers
        elif line.startswith("+"):
            rows.append(DiffRow("add", None, new, line[1:]))
            new += 1
        elif line.startswith("-"):
            rows.append(DiffRow("del", old, None, line[1:]))
            old += 1
        elif line.startswith(" ") or line == "":
            rows.append(DiffRow("ctx", old, new, line[1:]))
            old, new = old + 1, new + 1
    return rows
