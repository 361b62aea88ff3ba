"""`../shared`: files that others wrote (Kestra's flow corpus, the git hosts' published schemas and real webhook
payloads). The project never copies them in. Tests that measure conformance against them skip, with the one
reason below, on a clone that has no `../shared` beside it (a new user's); in CI, where `../shared` is laid beside
the checkout, a missing file fails instead, so those tests can never vanish unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GITSYNC_SHARED") or ROOT.parent / "shared")
REASON = (
    f"needs ../shared beside the checkout ({SHARED}: Kestra's flow corpus, the git hosts' published schemas and "
    "payloads); CI lays it there"
)


def require(path: Path) -> Path:
    """`path` when it exists; otherwise skip (a clone without ../shared) or fail (CI, which must have it)."""
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: CI lays ../shared beside the checkout")
    pytest.skip(REASON, allow_module_level=True)
