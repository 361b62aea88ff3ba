"""What a Celery worker answers a task that reads namespace files: they are read from git at the execution's
commit, in the control plane's cache, which a worker on another machine does not have. The task fails saying so
and what to do, instead of with the message of a flow run from a file."""

from __future__ import annotations

from dataclasses import dataclass

from runner.api import TaskFailed

ON_A_WORKER = (
    "namespace files (_files/{namespace}/ at commit {commit}) are read from the git cache of the gitsync daemon, "
    "and this task ran on a Celery worker, which has none: run the tasks that read namespace files in the daemon "
    "(executor: local), or pass the files as inputFiles from an earlier task's outputs"
)


@dataclass(frozen=True)
class WorkerNamespaceFiles:
    commit: str

    def _refuse(self, namespace: str) -> TaskFailed:
        return TaskFailed(ON_A_WORKER.format(namespace=namespace, commit=self.commit[:12]), permanent=True)

    def paths(self, namespace: str) -> list[str]:
        raise self._refuse(namespace)

    def read(self, namespace: str, path: str) -> bytes:
        raise self._refuse(namespace)

    def describe(self, namespace: str) -> str:
        return f"_files/{namespace}/ at commit {self.commit[:12]} (not on this worker)"
