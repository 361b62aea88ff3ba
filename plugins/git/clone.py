"""`Clone`: clone a git repository into the working directory (dulwich; no git binary).

The clone goes to `ctx.workdir / directory` (the working directory itself when unset; Kestra's meaning, so that
the next tasks of a WorkingDirectory see the files). https username/password are sent as basic auth; an ssh
`privateKey` is written to a private temporary file given to ssh. `depth` makes a shallow clone, except when a
`commit` is asked for (the commit may be anywhere in the history). Submodules only with `cloneSubmodules`.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, ClassVar

from dulwich import porcelain
from dulwich.objectspec import parse_commit
from pydantic import Field

from plugins.scripts.files import as_bool, as_int, inside
from runner.api import RunContext, TaskFailed
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

    def run(self, ctx: RunContext) -> dict[str, Any]:
        target = inside(ctx.workdir, self.directory, "directory") if self.directory else ctx.workdir
        if target.exists() and any(target.iterdir()):
            raise TaskFailed(f"cannot clone into {target}: the directory is not empty")
        target.mkdir(parents=True, exist_ok=True)
        errors = io.BytesIO()
        with tempfile.TemporaryDirectory(prefix="gitsync-clone-") as keys:
            try:
                repo = porcelain.clone(
                    self.url,
                    str(target),
                    checkout=True,
                    depth=None if self.commit else as_int(self.depth, 1),
                    branch=self.tag or self.branch,
                    errstream=errors,
                    **self._auth(Path(keys)),
                )
            except Exception as exc:  # dulwich raises many kinds (protocol, HTTP, OS, missing refs)
                raise TaskFailed(f"clone of {self.url} failed: {_clean(exc, self.password)}") from exc
        with repo:
            if self.commit:
                _checkout_commit(repo, self.commit)
            if as_bool(self.cloneSubmodules):
                porcelain.submodule_init(repo)
                porcelain.submodule_update(repo, init=True)
            head = repo.head().decode("ascii")
        ctx.logger.info(f"cloned {self.url} at {head[:12]} into {target}")
        return {"directory": str(target)}

    def _auth(self, keys: Path) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.username or self.password:
            options["username"] = self.username or "git"
            options["password"] = self.password or ""
        if self.privateKey:
            key = keys / "id_key"
            key.write_text(self.privateKey.strip() + "\n", encoding="utf-8")
            os.chmod(key, 0o600)
            options["key_filename"] = str(key)
        return options


def _checkout_commit(repo: Any, commit: str) -> None:
    try:
        sha = parse_commit(repo, commit.encode("ascii")).id
    except (KeyError, ValueError) as exc:
        raise TaskFailed(f"commit {commit} is not in the cloned history") from exc
    porcelain.reset(repo, "hard", sha)


def _clean(exc: BaseException, password: str | None) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace(password, "****") if password else text
