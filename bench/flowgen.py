"""Generated flows of about 400 bytes, varied like a real repository (used by the benchmarks)."""

from __future__ import annotations

from pathlib import Path

_TEMPLATES = [
    """\
id: {id}
namespace: {ns}
description: Generated flow number {n} for the benchmark.
labels:
  team: data
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "Hello from {{{{ flow.id }}}} number {n}"
  - id: value
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.hello ?? 'x' }}}}-{n}"
""",
    """\
id: {id}
namespace: {ns}
inputs:
  - id: day
    type: STRING
    defaults: monday
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - echo {n} {{{{ inputs.day }}}}
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "{minute} 2 * * *"
""",
    """\
id: {id}
namespace: {ns}
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: a
        type: io.kestra.plugin.core.debug.Return
        format: "{n}"
      - id: b
        type: io.kestra.plugin.core.log.Log
        message: "{{{{ outputs.a.value }}}}"
    errors:
      - id: oops
        type: io.kestra.plugin.core.log.Log
        message: failed
""",
]


def flow_text(n: int) -> str:
    template = _TEMPLATES[n % len(_TEMPLATES)]
    return template.format(id=f"flow_{n:05d}", ns=f"bench.team{n % 20}", n=n, minute=n % 60)


def write_flows(root: Path, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        folder = root / f"team{n % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"flow_{n:05d}.yaml"
        path.write_text(flow_text(n))
        paths.append(path)
    return paths
