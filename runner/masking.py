"""Secret masking: every secret value in use is registered in a `Masker`; logs, outputs and errors pass through it.

`mask(text)` replaces each registered value with `******` (longest first, so a secret that contains another one
is masked whole). Values shorter than `MIN_LENGTH` are not registered: masking "a" or "1" everywhere would make
logs unreadable and protects nothing. A multi-line secret (a PEM key) is also registered line by line, so a log
line that shows one line of it is masked too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "******"
MIN_LENGTH = 3


class Masker:
    """A thread-safe set of secret values, and the masking of text and values with them."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
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
        """Register a secret value (and, for a multi-line one, each of its lines)."""
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
            self._values |= fresh
            self._pattern = None

    def values(self) -> list[str]:
        """The registered values (for handing to a worker's own Masker)."""
        with self._lock:
            return sorted(self._values)

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._values:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            return self._pattern

    def mask(self, text: str) -> str:
        """`text` with every registered value replaced by `******`."""
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
