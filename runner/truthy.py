"""The one truthiness rule of conditions: `runIf`, `If`, `Fail`'s condition and the renderer all use `truthy`.

Kestra renders a condition to text and judges the text with `TruthUtils`: `false`, `0`, `-0` and the empty
string are false, every other text is true (Kestra's If docs: "the strings 'false', '0', '-0', an empty string
and null are false; every other value is true"; KESTRA_SPEC §5 `runIf`). gitsync's expressions evaluate to
Python values rather than text, so the rule reads them as Kestra would print them:

* None (null) is false; a boolean is itself;
* a number is false when it is zero (Pebble prints an integer zero as `0`);
* a string is judged trimmed and case-insensitively (Python prints booleans as `True`/`False`), and `null` /
  `none` (how a Python None prints) count as false too;
* anything else is true, even an empty list or map: Kestra prints them `[]` / `{}`, which is not false text.
  So `no`, `off` and `[]` are true, as in Kestra.

jq has its own truthiness (only false and null are falsy); that is the jq language's and stays in `jq.py`.
"""

from __future__ import annotations

from typing import Any

FALSE_TEXTS = frozenset({"", "false", "0", "-0", "null", "none"})
"""Texts that are false (after trimming and lower-casing)."""


def truthy(value: Any) -> bool:
    """Whether a rendered condition holds (see the module docstring for the rule)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() not in FALSE_TEXTS
    return True
