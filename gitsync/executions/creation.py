"""Creating executions: the flow revision they pin, their inputs checked, and flows run from a file (unsynced).

Nothing secret is written in clear: an input of `type: SECRET` is stored as `******` whatever its value, and
inputs, labels and trigger variables are stored masked (every registered secret and its encodings). When masking
changed what was stored, the clear values are kept in this process's memory only (`live`), for the run of the
execution (and a flow-level retry of it). A process that did not create the execution (a restart) has no clear
copy: an execution whose SECRET input is needed then fails with a message that says so (`missing_secrets`).
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import os
import re
import shutil
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitsync.executions.errors import RunError, UnknownFlow
from gitsync.flows.loader import load_flow_source
from gitsync.state import executions as execution_rows
from gitsync.state.database import Store
from gitsync.state.executions import TriggerKind
from runner.api import TaskFailed
from runner.engine.data import CORRELATION_ID, USERNAME
from runner.expressions.variables import env_variables
from runner.flow import Flow
from runner.inputs import InputError, UploadedFile, resolve_inputs, store_uploads
from runner.masking import MASK
from runner.registry import Registry
from runner.storage import LocalStorage

if TYPE_CHECKING:
    from runner.expressions.lazy import Rendering

SECRET_TYPE = "SECRET"
FLOWS_CACHED = 256
"""Parsed flow revisions kept in memory (each execution runs its revision's; a daemon keeps the latest used)."""


class ExecutionFactory:
    """Writes new CREATED executions and knows the flow each one runs (parsed once per revision)."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        renderer: Rendering,
        owner: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        """`data_dir`: where the files given for FILE inputs are stored (the execution's storage)."""
        self.store = store
        self.data_dir = data_dir
        self.owner = owner
        """The owner id new executions are written with: this process starts them (or hands them over)."""
        self.registry = registry
        self.renderer = renderer
        self.masker = renderer.masker
        self._flows: OrderedDict[tuple[str, int], Flow] = OrderedDict()
        """(flow uid, revision) -> the flow parsed from that revision's YAML: the latest `FLOWS_CACHED` used."""
        self._unsynced: dict[str, Flow] = {}
        self._live: dict[str, dict[str, Any]] = {}
        """Execution id -> the clear inputs, labels and trigger variables, when what was stored is masked."""

    def create(
        self,
        flow_uid: str,
        inputs: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        trigger: dict[str, Any] | None = None,
        trigger_uid: str | None = None,
        parent: str | None = None,
        revision: int | None = None,
        kind: TriggerKind = "manual",
    ) -> str:
        """A new execution of the flow's active revision (or `revision`); inputs are checked now. `kind` says how
        it was started (`gitsync executions` shows it)."""
        row = execution_rows.active_flow(self.store, flow_uid)
        if row is None:
            raise UnknownFlow(f"no active flow '{flow_uid}' (see `gitsync flows`)")
        if row["disabled"] and parent is None:
            raise RunError(f"flow '{flow_uid}' is disabled")
        wanted = revision or row["revision"]
        flow = self.flow(flow_uid, wanted)
        if wanted == row["revision"]:
            commit = row["commit_sha"]
        else:
            commit = execution_rows.revision_commit(self.store, flow_uid, wanted)
        execution_id = execution_rows.new_execution_id()
        with self._uploads_removed_on_failure(execution_id):
            given = self._uploads(flow, execution_id, inputs or {})
            clear = {
                "inputs": self._inputs(flow, given),
                "labels": system_labels(execution_id, labels or {}, kind),
                "trigger": trigger or {},
            }
            stored = self._stored(flow, clear)
            execution_rows.create_execution(
                self.store,
                execution_id=execution_id,
                flow_uid=flow.uid,
                revision=wanted,
                commit=commit,
                inputs=stored["inputs"],
                labels=stored["labels"],
                trigger=stored["trigger"],
                trigger_uid=trigger_uid,
                parent=parent,
                source=row["source"],
                owner=self.owner,
                kind=kind,
            )
        self._keep(execution_id, clear, stored)
        return execution_id

    def create_unsynced(self, flow: Flow, inputs: dict[str, Any] | None = None) -> str:
        """An execution of a flow read from a file, not from git (`gitsync run --file`): revision 0, no commit."""
        execution_id = execution_rows.new_execution_id()
        with self._uploads_removed_on_failure(execution_id):
            given = self._uploads(flow, execution_id, inputs or {})
            clear = {"inputs": self._inputs(flow, given), "labels": system_labels(execution_id), "trigger": {}}
            stored = self._stored(flow, clear)
            execution_rows.create_execution(
                self.store,
                execution_id=execution_id,
                flow_uid=flow.uid,
                revision=0,
                commit="",
                inputs=stored["inputs"],
                labels=stored["labels"],
                owner=self.owner,
            )
        self._unsynced[execution_id] = flow
        self._keep(execution_id, clear, stored)
        return execution_id

    # -- FILE inputs: stored in the execution's storage before it is written -----------------------------------

    def _uploads(self, flow: Flow, execution_id: str, given: dict[str, Any]) -> dict[str, Any]:
        """`given` with each file for a FILE input stored under the new execution and replaced by its URI."""

        def put(name: str, upload: UploadedFile) -> str:
            if self.data_dir is None:
                raise RunError(f"flow '{flow.uid}': input '{name}': files cannot be stored here (no data folder)")
            storage = LocalStorage(self.data_dir, flow.namespace, flow.id, execution_id).for_task("inputs")
            try:
                return storage.put(upload.path if upload.path is not None else upload.data, upload_name(name, upload))
            except (TaskFailed, OSError) as exc:
                reason = exc.message if isinstance(exc, TaskFailed) else (exc.strerror or str(exc))
                raise RunError(f"flow '{flow.uid}': input '{name}': the file could not be stored: {reason}") from None

        try:
            return store_uploads(flow.inputs, given, put)
        except InputError as exc:
            raise RunError(self.masker.mask(f"flow '{flow.uid}': " + "; ".join(exc.problems))) from None

    @contextlib.contextmanager
    def _uploads_removed_on_failure(self, execution_id: str) -> Iterator[None]:
        """Remove what was stored for an execution that is not created after all (its inputs were refused)."""
        try:
            yield
        except BaseException:
            if self.data_dir is not None:  # nothing else is there yet: the execution was never written
                shutil.rmtree(Path(self.data_dir) / "executions" / execution_id, ignore_errors=True)
            raise

    # -- secrets: stored masked, kept clear in memory ---------------------------------------------------------

    def _stored(self, flow: Flow, clear: dict[str, Any]) -> dict[str, Any]:
        """What is written: SECRET inputs as `******`, everything else masked."""
        stored: dict[str, Any] = {key: self.masker.mask_value(value) for key, value in clear.items()}
        stored["inputs"] = dict(stored["inputs"])  # never the clear dict itself (mask_value may return it)
        for name in secret_inputs(flow):
            if stored["inputs"].get(name) is not None:
                stored["inputs"][name] = MASK
        return stored

    def _keep(self, execution_id: str, clear: dict[str, Any], stored: dict[str, Any]) -> None:
        if stored != clear:
            self._live[execution_id] = clear

    def live(self, execution_id: str) -> dict[str, Any] | None:
        """The clear inputs, labels and trigger variables of an execution this process created (None when what
        was stored is all there is)."""
        return self._live.get(execution_id)

    def forget(self, execution_id: str) -> None:
        """The execution ended: its clear values are no longer needed."""
        self._live.pop(execution_id, None)

    def missing_secrets(self, flow: Flow, execution_id: str, stored_inputs: dict[str, Any]) -> str | None:
        """Why the execution cannot run here (its SECRET inputs were stored masked and this process has no clear
        copy), or None."""
        if execution_id in self._live:
            return None
        missing = [name for name in secret_inputs(flow) if stored_inputs.get(name) == MASK]
        if not missing:
            return None
        return (
            f"SECRET input{'s' if len(missing) > 1 else ''} {', '.join(repr(n) for n in missing)} "
            "is never stored in clear and only the process that created the execution holds it; "
            "this process does not (it restarted, or another process created the execution): start a new execution"
        )

    def flow(self, flow_uid: str, revision: int) -> Flow:
        """The flow as that revision defined it (parsed from the revision's YAML, cached)."""
        key = (flow_uid, revision)
        cached = self._flows.get(key)
        if cached is not None:
            with contextlib.suppress(KeyError):  # another thread may have dropped it meanwhile
                self._flows.move_to_end(key)
            return cached
        row = execution_rows.revision_source(self.store, flow_uid, revision)
        if row is None or row["text"] is None:
            raise RunError(f"flow '{flow_uid}' has no revision {revision}")
        loaded = load_flow_source(row["path"], row["text"].encode(), self.registry)
        if loaded.flow is None:
            raise RunError(f"revision {revision} of '{flow_uid}' no longer loads: {loaded.errors[0].format()}")
        self._flows[key] = loaded.flow
        while len(self._flows) > FLOWS_CACHED:
            with contextlib.suppress(KeyError):
                self._flows.popitem(last=False)
        return loaded.flow

    def flow_of(self, execution: dict[str, Any]) -> Flow:
        """The flow an execution row runs: its unsynced flow, else its revision's."""
        unsynced = self._unsynced.get(execution["id"])
        return unsynced or self.flow(execution["flow_uid"], execution["revision"])

    def carry_over(self, execution_id: str, new_id: str) -> None:
        """A retry of an execution runs the same flow (an unsynced one) with the same clear values."""
        if execution_id in self._unsynced:
            self._unsynced[new_id] = self._unsynced[execution_id]
        if execution_id in self._live:
            self._live[new_id] = self._live[execution_id]

    def _inputs(self, flow: Flow, given: dict[str, Any]) -> dict[str, Any]:
        secrets = secret_inputs(flow)
        for name in secrets:
            self.masker.add(given.get(name))
        variables: dict[str, Any] = {}  # built when an input's default is first rendered (most flows render none)

        def render(text: str, inputs: Mapping[str, Any]) -> Any:
            if not variables:
                variables.update(flow={"id": flow.id, "namespace": flow.namespace}, envs=env_variables(os.environ))
            return self.renderer.render_value(text, {**variables, "inputs": inputs})

        try:
            resolved = resolve_inputs(flow.inputs, given, render)
        except InputError as exc:
            raise RunError(self.masker.mask(f"flow '{flow.uid}': " + "; ".join(exc.problems))) from None
        for name in secrets:
            self.masker.add(resolved.get(name))  # a default, rendered (e.g. from secret())
        return resolved


def system_labels(
    execution_id: str, labels: dict[str, str] | None = None, kind: TriggerKind = "manual"
) -> dict[str, str]:
    """The execution's labels with the system labels Kestra sets: `system.correlationId` (the execution's own id,
    unless it came with its parent's) and, for a run started by hand (`gitsync run`), `system.username` (the
    operating-system user)."""
    out = dict(labels or {})
    out.setdefault(CORRELATION_ID, execution_id)
    if kind == "manual" and USERNAME not in out:
        user = _username()
        if user:
            out[USERNAME] = user
    return out


@functools.cache
def _username() -> str | None:
    """The operating-system user this process runs as (looked up once)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment and none for this uid
        return None


def upload_name(input_id: str, upload: UploadedFile) -> str:
    """`<input id>/<file name>`: the base name of the given file, with anything but letters, digits, `.`, `_` and
    `-` as `_` (a name from a form cannot climb out of the folder, nor split the URI in a command)."""
    base = re.split(r"[/\\]", upload.filename or "")[-1]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return f"{input_id}/{safe or 'upload'}"


def secret_inputs(flow: Flow) -> list[str]:
    """The ids of the flow's inputs of `type: SECRET`."""
    return [item.id for item in flow.inputs or [] if str(getattr(item, "type", "")).upper() == SECRET_TYPE]
