"""`Clone`: clone a git repository into the working directory."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from runner.plugin import Task
from runner.types import Dyn


class Clone(Task):
    """Clone a repository (a branch, tag or commit) into `directory`."""

    type_name: ClassVar[str] = "io.kestra.plugin.git.Clone"

    url: str
    """Repository URL (https:// or ssh)."""
    branch: str | None = None
    """Branch to check out (the default branch when unset)."""
    tag: str | None = None
    """Tag to check out."""
    commit: str | None = None
    """Commit to check out."""
    directory: str | None = None
    """Target directory, relative to the working directory."""
    username: str | None = None
    """User for https authentication."""
    password: str | None = None
    """Password or personal access token."""
    privateKey: str | None = None
    """PEM private key for ssh URLs."""
    passphrase: str | None = None
    """Passphrase of privateKey."""
    depth: Dyn[Annotated[int, Field(ge=1)]] = 1
    """History depth of a shallow clone."""
    cloneSubmodules: Dyn[bool] = False
    """Also clone submodules."""
    trustedCaPemPath: str | None = None
    """CA certificate file for https."""
