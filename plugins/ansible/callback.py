"""The Ansible stdout callback gitsync writes into an AnsibleCLI task's `callback_plugins/` folder.

It is Ansible's code, loaded by ansible-playbook from that folder (never imported by gitsync). It prints one line
per task and host (`ok: [localhost] Print hello`), with a failure's message, and appends what the run produced to
the JSON-lines file `GITSYNC_ANSIBLE_RESULTS` names, which the task reads back as Kestra's outputs:
`outputs` (every per-host result, or with `KESTRA_OUTPUTS_MODE=explicit` only what the `kestra` module declared)
and `playbooks` (plays, tasks, and each host's status and result). In explicit mode results are redacted to
`{"changed": …}` in both the log and the outputs.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from ansible.plugins.callback import CallbackBase

DECLARING = frozenset({"kestra", "ansible.legacy.kestra"})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "gitsync_outputs"

    def __init__(self) -> None:
        super().__init__()
        self.explicit = os.environ.get("KESTRA_OUTPUTS_MODE", "all").strip().lower() == "explicit"
        self.results: list[dict[str, Any]] = []
        self.declared: dict[str, Any] = {}
        self.plays: list[dict[str, Any]] = []
        self.task: dict[str, Any] | None = None

    def v2_playbook_on_play_start(self, play: Any) -> None:
        name = play.get_name().strip()
        self._display.display(f"PLAY [{name}]")
        self.plays.append({"name": name, "tasks": []})

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._start(task)

    def _start(self, task: Any) -> None:
        if not self.plays:
            self.plays.append({"name": "", "tasks": []})
        self.task = {"uid": task._uuid, "name": task.get_name().strip(), "startedAt": _now(), "hosts": []}
        self.plays[-1]["tasks"].append(self.task)

    def _record(self, result: Any, status: str) -> None:
        payload = dict(result._result)
        payload.pop("_ansible_verbose_always", None)
        host = result._host.get_name()
        declaring = getattr(result._task, "action", None) in DECLARING
        if declaring and isinstance(payload.get("outputs"), dict):
            self.declared.update(payload["outputs"])
        shown = {"changed": bool(payload.get("changed"))} if self.explicit else payload
        if not self.explicit:
            self.results.append(payload)
        if self.task is not None:
            self.task["endedAt"] = _now()
            self.task["hosts"].append({"host": host, "status": status, "result": shown})
        line = f"{status}: [{host}] {result._task.get_name().strip()}"
        if not self.explicit:
            message = payload.get("msg")
            if status in ("failed", "unreachable") and message:
                line += f": {message}"
            elif result._task.action in ("debug", "ansible.builtin.debug"):
                line += ": " + json.dumps(
                    payload.get("msg", {k: v for k, v in payload.items() if k != "changed"}), default=str
                )
        self._display.display(line, stderr=status in ("failed", "unreachable"))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        for host in sorted(stats.processed):
            s = stats.summarize(host)
            self._display.display(
                f"{host}: ok={s['ok']} changed={s['changed']} unreachable={s['unreachable']} failed={s['failures']} "
                f"skipped={s['skipped']}"
            )
        where = os.environ.get("GITSYNC_ANSIBLE_RESULTS")
        if not where:
            return
        record = {"outputs": self.declared if self.explicit else self.results, "playbooks": [{"plays": self.plays}]}
        with open(where, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
