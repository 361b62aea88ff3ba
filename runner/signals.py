"""Signals a task sends to the engine besides its outputs.

`ExitExecution` — raised by the `Exit` task (io.kestra.plugin.core.execution.Exit). It is NOT a
`TaskFailed`: the executor recognises it (`isinstance`) before its generic failure handling and carries its
state in `TaskResult.exit_state`; the engine then

* ends the task run that raised it in `state` (with `outputs`),
* ends the execution in `state`: no further task of the flow is started; task runs still running are
  left to finish, except when `state` is KILLED, which kills them (sets their `ctx.cancelled`);
  `errors` handlers do not run for an Exit, `finally` blocks do (Kestra's ExecutionTerminator).

`state` is one of SUCCESS, WARNING, KILLED, FAILED, CANCELLED (Kestra's `State.Type` names).

Labels (the `Labels` task) and warnings need no signal: a task puts labels in `ctx.new_labels`, which the
engine merges into the execution's labels after the task run ends (also when it fails), and `ctx.warn(reason)`
records a warning in `ctx.warnings`, which turns a successful task run into WARNING.
"""

from __future__ import annotations

from typing import Any

EXIT_STATES = ("SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELLED")


class ExitExecution(Exception):
    """End the whole execution now in `state` (see the module docstring for what the engine does)."""

    def __init__(self, state: str, outputs: dict[str, Any] | None = None) -> None:
        if state not in EXIT_STATES:
            raise ValueError(f"exit state must be one of {', '.join(EXIT_STATES)}, got {state!r}")
        super().__init__(f"execution exits in state {state}")
        self.state = state
        self.outputs = outputs or {}
