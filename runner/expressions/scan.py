"""One regex scanner for the two expression languages' tokenizers (Pebble's and jq's)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

_REST_IS_BLANK = re.compile(r"\s*\Z")


def scan(source: str, pattern: re.Pattern[str], refuse: Callable[[str], Exception]) -> Iterator[tuple[str, str]]:
    """(group name, text) of each token `pattern` matches, left to right; trailing white space ends the scan.

    `pattern` is an alternation of named groups (its leading white space is its own to skip). Where nothing
    matches, `refuse(rest of the source)` is raised.
    """
    pos = 0
    while pos < len(source) and not _REST_IS_BLANK.match(source, pos):
        match = pattern.match(source, pos)
        if not match:
            raise refuse(source[pos:])
        pos = match.end()
        kind = match.lastgroup or ""
        yield kind, match.group(kind)
