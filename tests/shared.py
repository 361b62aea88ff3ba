"""`../shared`: files that others wrote (Kestra's flow corpus, the git hosts' published schemas and real webhook
payloads). The project never copies them in. Tests that measure conformance against them skip, with the one
reason below, on a clone that has no `../shared` beside it (a new user's); CI lays `../shared` beside the
checkout, so there they run (`pytest -rs` lists every skip with this reason).
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
    """`path` when it exists; otherwise the calling test (or module) is skipped with REASON."""
    if not path.exists():
        pytest.skip(REASON, allow_module_level=True)
    return path
