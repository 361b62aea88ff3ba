"""Secret masking: every secret value in use is registered in a `Masker`; whatever is stored or shown passes
through it (logs, outputs, errors, task-run values, labels, inputs, commit status descriptions).

`mask(text)` replaces each registered form with `******` (longest first, so a secret that contains another one
is masked whole). A secret is registered with the forms a task or an expression commonly turns it into, as
Kestra's masker and GitHub Actions do:

- the value, stripped, and each line of a multi-line value (a PEM key);
- upper and lower case, and reversed;
- URL-encoded (`quote` with and without `/` kept, `quote_plus`) and JSON-escaped (with and without
  `ensure_ascii`);
- base64, standard and URL-safe, with and without padding, and the part of base64 that encodes the secret when
  it sits inside a longer text at each of the three byte offsets (`echo "x$SECRET" | base64`).

Values shorter than `MIN_LENGTH` are not registered: masking "a" or "1" everywhere would make logs unreadable and
protects nothing; a derived form (an encoding) is registered only when it is at least `MIN_DERIVED` long.

A secret a task prints split over two log lines (the first ends with the start of the secret, the next starts
with the rest, e.g. a wrapped base64) is masked by `LineMasker`, which holds a line that ends with the start of a
registered form until the next line (or the end of the task) shows whether the secret goes on.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "******"
MIN_LENGTH = 3
MIN_DERIVED = 4


def _b64_cores(data: bytes) -> set[str]:
    """The base64 characters that encode `data` whatever surrounds it, for each of the three offsets at which it
    can start inside a longer text (characters that also encode a neighbour's bits are left out)."""
    cores: set[str] = set()
    for offset in range(3):
        low = base64.b64encode(b"\x00" * offset + data + b"\x00\x00").rstrip(b"=")
        high = base64.b64encode(b"\xff" * offset + data + b"\xff\xff").rstrip(b"=")
        same = [a == b for a, b in zip(low, high, strict=True)]
        if True not in same:
            continue
        start = end = same.index(True)
        while end < len(same) and same[end]:
            end += 1
        cores.add(low[start:end].decode("ascii"))
    return cores


def encodings(value: str) -> set[str]:
    """The forms of `value` that are masked with it (the value itself included)."""
    forms = {value, value.upper(), value.lower(), value[::-1]}
    forms.update({quote(value, safe=""), quote(value), quote_plus(value)})
    forms.update({json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]})
    raw = value.encode("utf-8")
    b64 = {base64.b64encode(raw).decode("ascii"), *_b64_cores(raw)}
    for text in list(b64):
        b64.add(text.rstrip("="))
    b64.update({text.replace("+", "-").replace("/", "_") for text in list(b64)})
    forms.update(b64)
    return {form for form in forms if form == value or len(form) >= MIN_DERIVED}


class Masker:
    """A thread-safe set of secret values (and their encodings), and the masking of text and values with them."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._prefixes: frozenset[str] = frozenset()
        self._longest = 0
        for value in values:
            self.add(value)

    def __repr__(self) -> str:
        return f"Masker({len(self)} values)"

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __contains__(self, value: object) -> bool:
        with self._lock:
            return value in self._values

    def add(self, value: Any) -> None:
        """Register a secret value (and, for a multi-line one, each of its lines) with its encodings."""
        if value is None:
            return
        text = value if isinstance(value, str) else str(value)
        candidates = {text, text.strip()}
        if "\n" in text:
            candidates.update(line.strip() for line in text.splitlines())
        fresh = {c for c in candidates if len(c) >= MIN_LENGTH}
        with self._lock:
            if fresh <= self._values:
                return
        forms: set[str] = set()
        for candidate in fresh:
            forms |= encodings(candidate)
        with self._lock:
            self._values |= fresh
            self._forms |= {f for f in forms if len(f) >= MIN_LENGTH}
            self._pattern = None

    def values(self) -> list[str]:
        """The registered values (for handing to a worker's own Masker, which derives the encodings itself)."""
        with self._lock:
            return sorted(self._values)

    def _compiled(self) -> re.Pattern[str] | None:
        pattern = self._pattern  # the hot path takes no lock: an `add` that races it only resets the pattern
        if pattern is not None or not self._forms:
            return pattern
        with self._lock:
            if self._pattern is None and self._forms:
                ordered = sorted(self._forms, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
                self._prefixes = frozenset(form[:n] for form in self._forms for n in range(1, len(form)))
                self._longest = len(ordered[0])
            return self._pattern

    @property
    def active(self) -> bool:
        """Whether any value is registered (masking would change something)."""
        return bool(self._forms)

    def mask(self, text: str) -> str:
        """`text` with every registered form replaced by `******`."""
        pattern = self._compiled()
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def mask_value(self, value: Any) -> Any:
        """A copy of `value` with every string masked (dict keys too), deep through dicts, lists and tuples."""
        if self._compiled() is None:
            return value
        return self._mask_deep(value)

    def _mask_deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {self._mask_deep(k): self._mask_deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask_deep(v) for v in value]
        return value

    def changes(self, value: Any) -> bool:
        """Whether masking changes `value` (it holds a registered form)."""
        return self._compiled() is not None and self._mask_deep(value) != value

    def ends_with_start(self, text: str) -> bool:
        """Whether `text` ends with the beginning (not the whole) of a registered form."""
        if self._compiled() is None or not text:
            return False
        prefixes = self._prefixes
        return any(text[-size:] in prefixes for size in range(1, min(self._longest, len(text) + 1)))

    def mask_pair(self, first: str, second: str, lead: int = 0) -> tuple[str, str, int]:
        """Two consecutive lines masked as one text (a form may start at the end of `first` and go on at the start
        of `second`): (first masked, second masked, how many leading characters of `second` a form spanning the
        boundary covered). The first `lead` characters of `first` were covered by a form from the line before."""
        pattern = self._compiled()
        if pattern is None:
            return first, second, 0
        joined = first + second
        boundary = len(first)
        head: list[str] = [MASK] if lead else []
        tail: list[str] = []
        spill = 0
        position = min(lead, boundary)
        for match in pattern.finditer(joined, position):
            start, end = match.span()
            _split(joined[position:start], position, boundary, head, tail)
            if end <= boundary:
                head.append(MASK)
            elif start >= boundary:
                tail.append(MASK)
            else:
                head.append(MASK)
                tail.append(MASK)
                spill = end - boundary
            position = end
        _split(joined[position:], position, boundary, head, tail)
        return "".join(head), "".join(tail), spill


def _split(segment: str, at: int, boundary: int, head: list[str], tail: list[str]) -> None:
    """Append the unmasked `segment` (starting at `at` of the joined text) to the line(s) it belongs to."""
    if not segment:
        return
    cut = boundary - at
    if cut <= 0:
        tail.append(segment)
    elif cut >= len(segment):
        head.append(segment)
    else:
        head.append(segment[:cut])
        tail.append(segment[cut:])


class LineMasker:
    """Masks a task's stream of log lines, including a secret split over two consecutive lines.

    `feed(level, line)` passes masked lines to `emit(level, line)`; a line that ends with the beginning of a
    registered form is held until the next line arrives (or `flush()`, at the end of the task), so that the two
    are masked together. Thread-safe: a task's stdout and stderr readers may feed it at once.
    """

    def __init__(self, masker: Masker, emit: Callable[[str, str], None]) -> None:
        self.masker = masker
        self.emit = emit
        self._held: tuple[str, str, int] | None = None
        self._closed = False
        self._lock = threading.Lock()

    def feed(self, level: str, line: str) -> None:
        if self._held is None and not self.masker.active:  # no secret registered: nothing to hold or mask
            self.emit(level, line)
            return
        with self._lock:
            out: list[tuple[str, str]] = []
            if self._held is not None:
                held_level, held, held_lead = self._held
                self._held = None
                first, line_rest, lead = self.masker.mask_pair(held, line, held_lead)
                out.append((held_level, first))
                if not self._closed and self.masker.ends_with_start(line):
                    self._held = (level, line, lead)
                else:
                    out.append((level, line_rest))
            elif not self._closed and self.masker.ends_with_start(line):
                self._held = (level, line, 0)
            else:
                out.append((level, self.masker.mask(line)))
            for item in out:
                self.emit(*item)

    def flush(self) -> None:
        """Emit the held line; later lines (a task that overstays its kill) are masked one by one."""
        with self._lock:
            self._closed = True
            held, self._held = self._held, None
            if held is not None:
                level, line, lead = held
                text = (MASK + self.masker.mask(line[lead:])) if lead else self.masker.mask(line)
                self.emit(level, text)
