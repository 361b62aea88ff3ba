"""Optional libraries: a family whose client library is heavy ships it as a pip extra (`gitsync[serdes]`, ...).

Its types are always registered, so `validate` and `schema` know them without the library; a task imports the
library when it runs, through `require`, and a run without it fails at once (permanently: another attempt fails the
same way) with the `pip install` that brings it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from runner.api import TaskFailed

EXTRA_OF_MODULE = {
    "plugins.serdes.avro": "serdes",
    "plugins.serdes.parquet": "serdes",
    "plugins.serdes.excel": "serdes",
    "plugins.dbt.cli": "dbt",
    "plugins.aws.cli": "aws",
    "plugins.aws.s3.listing": "aws",
    "plugins.aws.s3.objects": "aws",
    "plugins.aws.s3.trigger": "aws",
    "plugins.redis.string": "redis",
    "plugins.redis.list": "redis",
    "plugins.ansible.cli": "ansible",
    "plugins.jdbc.mysql": "mysql",
    "plugins.jdbc.postgres_copy": "postgres",
    "plugins.jdbc.postgresql": "postgres",
    "plugins.fs.ssh": "ssh",
    "plugins.fs.sftp.tasks": "ssh",
    "plugins.fs.sftp.trigger": "ssh",
}
"""The pip extra each plugin module needs to run (the README's table of types is checked against it)."""


class MissingExtra(TaskFailed):
    """A task needs a library of a gitsync extra that is not installed where it runs."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def install_hint(extra: str) -> str:
    """The commands that install `gitsync[extra]`: for an installed gitsync, and in a checkout."""
    return f"pip install 'gitsync[{extra}]' (in a checkout: .venv/bin/pip install -e '.[{extra}]')"


def require(module: str, extra: str, task_type: str, package: str | None = None) -> ModuleType:
    """The module `module`, imported; MissingExtra naming the extra to install when it cannot be imported.

    `package` is the distribution's name on PyPI when it differs from the module's (`amazon-ion` for
    `amazon.ion`); `task_type` is the type that needs it, as the flow names it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        short = task_type.rsplit(".", 2)
        shown = ".".join(short[-2:]) if len(short) >= 2 else task_type
        raise MissingExtra(
            f"{shown} needs the Python package {package or module.split('.')[0]}, which is not installed where "
            f"gitsync runs tasks ({exc}). Install the {extra!r} extra with {install_hint(extra)}, then run the flow "
            "again"
        ) from None
