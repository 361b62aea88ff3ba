"""Opaque page cursors: the key of the last row of a page, so the next page starts after it."""

from __future__ import annotations

import base64
import json
from typing import Any

from gitsync.views.errors import CursorError


def encode(kind: str, key: Any) -> str:
    raw = json.dumps([kind, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str | None, key_type: type) -> Any:
    """The key in `cursor`, None when there is none; CursorError when it is not one of ours for `kind`."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found, key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, UnicodeError):
        raise CursorError("the cursor is not one this API gave: pass next_cursor from the previous page") from None
    if found != kind or not isinstance(key, key_type) or isinstance(key, bool):
        raise CursorError(f"the cursor belongs to another list, not to {kind}")
    return key
