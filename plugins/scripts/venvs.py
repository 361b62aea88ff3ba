"""The Python environment of a Python script task: never gitsync's own.

A Python task runs with the interpreter `tasks.python` names (`python3` on the task's PATH by default; the task's
PATH never holds gitsync's virtual environment) or, for `pythonVersion`, `python<version>` on that PATH. It runs in
a virtual environment made from that interpreter (`--system-site-packages`: the interpreter's own packages are
seen), which is where a flow's packages go: `beforeCommands: pip install …` (its `bin/` comes first on PATH, with
`pip` and `pip3` running that environment's `python -m pip`) and the `dependencies` not yet installed. One
environment per namespace (`RunContext.python_envs`, under `data_dir/python/<namespace>/`), made once and reused
by the namespace's flows; without it (`tasks.python_env: task`), one per task run, beside its working directory
(`<working directory>.venv`, in the execution's folder).

An environment is made under a lock (a file lock: other processes sharing the data folder wait too) and marked
ready last, so a half-made one (a crash, a kill) is made again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.api import RunContext, TaskFailed

READY = ".gitsync-ready"
CREATE_TIMEOUT = 300.0
PROBE_TIMEOUT = 30.0
TASK_VENV_SUFFIX = ".venv"


@dataclass(frozen=True)
class Interpreter:
    executable: str
    """The real interpreter (links and pyenv-style shims resolved)."""
    version: str
    """major.minor"""


_probed: dict[str, Interpreter] = {}
_probe_lock = threading.Lock()


def _probe(path: str, env: dict[str, str]) -> Interpreter:
    with _probe_lock:
        known = _probed.get(path)
    if known is not None:
        return known
    code = "import json, sys; print(json.dumps([sys.executable, '%d.%d' % sys.version_info[:2]]))"
    try:
        done = subprocess.run(
            [path, "-c", code], capture_output=True, text=True, timeout=PROBE_TIMEOUT, env=env, check=False
        )
        executable, version = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        raise TaskFailed(f"the Python interpreter {path} does not run: {exc}") from None
    found = Interpreter(str(executable), str(version))
    with _probe_lock:
        _probed[path] = found
    return found


def interpreter(ctx: RunContext, version: str | None) -> Interpreter:
    """The interpreter of the task: `tasks.python`, or `python<version>` when `pythonVersion` asks for another."""
    path = ctx.env.get("PATH", os.defpath)
    configured = ctx.python
    found = configured if os.path.isabs(configured) else shutil.which(configured, path=path)
    if found is None or not os.access(found, os.X_OK):
        raise TaskFailed(
            f"no Python interpreter {configured!r} on the task's PATH: install Python 3, or set tasks.python in "
            "gitsync's configuration to the interpreter Python tasks should use"
        )
    base = _probe(found, ctx.env)
    wanted = str(version).strip() if version else ""
    if not wanted or wanted in (base.version, base.version.split(".")[0]):
        return base
    other = shutil.which(f"python{wanted}", path=path)
    if other is None:
        raise TaskFailed(
            f"pythonVersion {wanted} is not available: no python{wanted} on the task's PATH "
            f"(tasks.python is Python {base.version})"
        )
    return _probe(other, ctx.env)


def environment(ctx: RunContext, base: Interpreter) -> Path:
    """The virtual environment the task runs in, made when missing; its folder."""
    if ctx.python_envs is None:  # beside the working directory, so that no outputFiles glob reaches into it
        root = ctx.workdir.parent / f"{ctx.workdir.name}{TASK_VENV_SUFFIX}"
    else:
        digest = hashlib.sha256(os.path.realpath(base.executable).encode()).hexdigest()[:12]
        root = ctx.python_envs / _safe(ctx.namespace) / f"python{base.version}-{digest}"
    if (root / READY).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f"{root.name}.lock"):
        if not (root / READY).is_file():
            _create(ctx, base, root)
    return root


def _safe(namespace: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", namespace) or "_"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _create(ctx: RunContext, base: Interpreter, root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    argv = [base.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(root)]
    done = _run(argv, ctx.env, ctx.workdir)
    if done.returncode != 0:
        raise TaskFailed(
            f"could not make the Python environment {root} with {base.executable}: {_tail(done)}; install the "
            "interpreter's venv module (on Debian/Ubuntu: python3-venv) or set tasks.python to another interpreter"
        )
    python = root / "bin" / "python"
    if _run([str(python), "-c", "import pip"], ctx.env, ctx.workdir).returncode != 0:
        # no pip among the interpreter's packages: give the environment its own (a failure leaves `pip` saying so)
        _run([str(python), "-m", "ensurepip", "--default-pip"], ctx.env, ctx.workdir)
    for name in ("pip", "pip3"):
        shim = root / "bin" / name
        if not shim.exists():
            shim.write_text(f'#!/bin/sh\nexec {shlex.quote(str(python))} -m pip "$@"\n', encoding="utf-8")
            shim.chmod(0o755)
    (root / READY).write_text(base.executable + "\n", encoding="utf-8")


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=CREATE_TIMEOUT, env=env, cwd=cwd, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    text = (done.stderr or done.stdout or "").strip()
    return text[-500:] or f"exit code {done.returncode}"
