"""What one render may cost: the limits on expressions, and the budget every render spends.

A template comes from a flow's YAML but its data can come from anyone (inputs, webhook bodies, outputs), and a
single call such as `10 ** 6000000` or `' ' * 1500000000` holds the interpreter (and its GIL: the scheduler and
the HTTP server stop) long before any timeout could fire. So the cost of every render is bounded up front:

- each filter, function or operator that can amplify its input checks its arguments against a limit below
  before it does the work, and refuses with a message naming itself and the limit
  ("round: precision 6000000 is over the limit of 100");
- one `Budget` per top-level render counts the items loops and jq walk and carries a deadline; nested
  `render()` calls spend the same budget;
- regular expressions run on the `regex` engine with a timeout (the rest of the render's deadline, at most
  `MAX_REGEX_SECONDS`);
- parsed data (`fromJson`, `fromYaml`, YAML/JSON inputs) is measured with aliases expanded, so a YAML alias
  bomb is refused instead of expanded.

Each limit is a module constant; SECURITY.md lists them.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from runner.errors import ExpressionError

MAX_OUTPUT = 10 * 1024 * 1024
"""The longest text (characters) one render, or one value built inside it, may produce."""
MAX_ITEMS = 100_000
"""The longest list a range, a repetition or a jq stream may produce."""
MAX_LOOP_ITEMS = 1_000_000
"""The items all loops (and jq steps) of one render may walk together, nested `render()` calls included."""
MAX_RENDER_SECONDS = 5.0
"""The wall-clock time one render may take (checked as loops, jq and regexes run)."""
MAX_PRECISION = 100
"""The largest precision of `round` and the most decimals of `numberFormat`."""
MAX_WIDTH = 10_000
"""The widest padding: `indent`/`nindent` amounts, `%` format widths and precisions."""
MAX_REGEX_SECONDS = 1.0
"""The longest one regular expression match or substitution may run."""
MAX_DATA_NODES = 1_000_000
"""The most values (aliases counted each time they are used) parsed data may hold."""
MAX_DATA_DEPTH = 200
"""The deepest nesting parsed data may have."""


class LimitError(ExpressionError):
    """An expression would go over one of the limits above; the message names what and the limit."""


def refuse(what: str, message: str) -> LimitError:
    return LimitError(f"{what}: {message}")


# ---------------------------------------------------------------------------------------------- budget


class Budget:
    """The items and time left to one top-level render."""

    __slots__ = ("deadline", "items")

    def __init__(self, items: int = MAX_LOOP_ITEMS, seconds: float = MAX_RENDER_SECONDS) -> None:
        self.items = items
        self.deadline = time.monotonic() + seconds

    def spend(self, count: int, what: str = "loops") -> None:
        self.items -= count
        if self.items < 0:
            raise refuse(what, f"this render walks more than {MAX_LOOP_ITEMS} items")
        self.check_time(what)

    def check_time(self, what: str = "render") -> None:
        if time.monotonic() > self.deadline:
            raise refuse(what, f"the render takes longer than {MAX_RENDER_SECONDS:g}s")

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("render_budget", default=None)


class _BudgetScope:
    """`with budget() as b:` — a plain class rather than a generator: it is entered by every render."""

    __slots__ = ("_token",)

    def __enter__(self) -> Budget:
        active = _current.get()
        if active is not None:
            self._token: contextvars.Token[Budget | None] | None = None
            return active
        fresh = Budget()
        self._token = _current.set(fresh)
        return fresh

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)


def budget() -> _BudgetScope:
    """The budget of the render now running, or a new one for a top-level render (nested renders share it)."""
    return _BudgetScope()


def spend(count: int, what: str = "loops") -> None:
    """Spend `count` items of the current render's budget (no-op outside a render)."""
    active = _current.get()
    if active is not None:
        active.spend(count, what)


def check_time(what: str = "render") -> None:
    active = _current.get()
    if active is not None:
        active.check_time(what)


class TimedList(list[Any]):
    """A loop's items that check the render's deadline as they are walked."""

    def __iter__(self) -> Iterator[Any]:
        for index, item in enumerate(super().__iter__()):
            if index % 256 == 0:
                check_time("for")
            yield item


# ---------------------------------------------------------------------------------------------- arguments


def check_count(what: str, name: str, value: int, limit: int) -> int:
    if value > limit:
        raise refuse(what, f"{name} {value} is over the limit of {limit}")
    return value


def check_text(what: str, size: int) -> None:
    """Refuse to build a text of `size` characters when it is over MAX_OUTPUT."""
    if size > MAX_OUTPUT:
        raise refuse(what, f"the result would be {size} characters, over the limit of {MAX_OUTPUT}")


def check_repeat(what: str, sequence: Any, count: Any) -> None:
    """`sequence * count`: a text up to MAX_OUTPUT characters, a list up to MAX_ITEMS items."""
    if isinstance(count, bool) or not isinstance(count, int) or not isinstance(sequence, str | list | tuple):
        return
    if isinstance(sequence, str):
        check_text(what, len(sequence) * count)
    elif len(sequence) * count > MAX_ITEMS:
        raise refuse(what, f"the list would have {len(sequence) * count} items, over the limit of {MAX_ITEMS}")
    else:
        check_text(what, text_size(sequence) * max(count, 0))


def check_join(what: str, left: Any, right: Any) -> None:
    """`left + right` for texts and lists."""
    if isinstance(left, str) and isinstance(right, str):
        check_text(what, len(left) + len(right))
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple) and len(left) + len(right) > MAX_ITEMS:
        raise refuse(what, f"the list would have {len(left) + len(right)} items, over the limit of {MAX_ITEMS}")


_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_format(what: str, template: str) -> None:
    """A `%` format text: no `*` widths, widths and precisions up to MAX_WIDTH."""
    for match in _FORMAT_SPEC.finditer(template):
        for part in match.groups():
            if part == "*":
                raise refuse(what, "a '*' width is not allowed")
            if part is not None:
                check_count(what, "width", int(part), MAX_WIDTH)


def text_size(value: Any, limit: int = MAX_OUTPUT) -> int:
    """About how many characters `value` takes as JSON (shared values counted each time); stops past `limit`."""
    total = 0
    stack = [value]
    nodes = 0
    while stack and total <= limit:
        item = stack.pop()
        nodes += 1
        if nodes > MAX_DATA_NODES:
            return limit + 1
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2
            for key, child in item.items():
                total += len(str(key)) + 4
                stack.append(child)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 8
    return total


def check_size(what: str, value: Any) -> None:
    """Refuse to turn `value` into text when that text would be over MAX_OUTPUT."""
    size = text_size(value)
    if size > MAX_OUTPUT:
        raise refuse(what, f"the value is larger than the limit of {MAX_OUTPUT} characters")


# ---------------------------------------------------------------------------------------------- data


def check_data(what: str, value: Any) -> Any:
    """Refuse parsed data holding more than MAX_DATA_NODES values (aliases expanded) or deeper than
    MAX_DATA_DEPTH; returns the value."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_DATA_NODES:
            raise refuse(what, f"the data holds more than {MAX_DATA_NODES} values (aliases counted each time)")
        if depth > MAX_DATA_DEPTH:
            raise refuse(what, f"the data is nested deeper than {MAX_DATA_DEPTH}")
        if isinstance(item, Mapping):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return value


def load_yaml(what: str, text: str) -> Any:
    """`yaml.safe_load` whose result is bounded by `check_data` (a YAML alias bomb is refused)."""
    try:
        value = yaml.safe_load(text)
    except RecursionError:
        raise refuse(what, f"the data is nested deeper than {MAX_DATA_DEPTH}") from None
    return check_data(what, value)


# ---------------------------------------------------------------------------------------------- regexes


def _regex_timeout() -> float:
    active = _current.get()
    left = active.seconds_left() if active is not None else MAX_REGEX_SECONDS
    return max(0.001, min(MAX_REGEX_SECONDS, left))


def _compile(what: str, pattern: str) -> Any:
    import regex  # the first regular expression imports it: parsed data and inputs need no regex

    try:
        return regex.compile(pattern, regex.VERSION0)
    except regex.error as exc:
        raise refuse(what, f"invalid regular expression {pattern!r}: {exc}") from None


def regex_search(what: str, pattern: str, text: str) -> Any:
    """`re.search` with a timeout."""
    try:
        return _compile(what, pattern).search(text, concurrent=True, timeout=_regex_timeout())
    except TimeoutError:
        raise refuse(what, f"the regular expression ran longer than {MAX_REGEX_SECONDS:g}s") from None


def regex_fullmatch(what: str, pattern: str, text: str) -> Any:
    """`re.fullmatch` with a timeout."""
    try:
        return _compile(what, pattern).fullmatch(text, concurrent=True, timeout=_regex_timeout())
    except TimeoutError:
        raise refuse(what, f"the regular expression ran longer than {MAX_REGEX_SECONDS:g}s") from None


def regex_sub(what: str, pattern: str, replacement: str, text: str) -> str:
    """`re.sub` with a timeout and a bounded result."""
    import regex

    compiled = _compile(what, pattern)
    try:
        count = sum(1 for _ in compiled.finditer(text, concurrent=True, timeout=_regex_timeout()))
        check_text(what, len(text) + count * len(replacement) * 2)
        result: str = compiled.sub(replacement, text, concurrent=True, timeout=_regex_timeout())
    except TimeoutError:
        raise refuse(what, f"the regular expression ran longer than {MAX_REGEX_SECONDS:g}s") from None
    except regex.error as exc:
        raise refuse(what, f"invalid replacement {replacement!r}: {exc}") from None
    return result
