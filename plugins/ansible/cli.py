"""`AnsibleCLI`: ansible and ansible-playbook commands, run through the script machinery as Kestra's task runs them.

Before the commands, the working directory gets what Kestra's task puts there: `ansible.cfg` (the task's
`ansibleConfig`, or a default one; an `ansible.cfg` given in inputFiles wins), the output callback
(`callback_plugins/`, see plugins/ansible/callback.py) and the `kestra` module that declares outputs
(`library/kestra.py`). Each ansible-playbook run appends what it produced to a results file, and the outputs are
merged over every command: `vars.outputs` (per-host results, or with `outputsMode: EXPLICIT` the values the
playbooks declared) and `vars.playbooks`.

As a local process (gitsync's task runner), `ansible-playbook` is the one of gitsync's own environment (the
`gitsync[ansible]` extra), first on PATH. ANSIBLE_HOME is inside the working directory, so collections that
`requirements.yml` installs, and Ansible's temporary files, belong to the run. A `requirements.txt` is installed
into a folder of the run (`pip --target`, put on PYTHONPATH), never into gitsync's environment. With the Docker
task runner the image (cytopia/ansible:latest-tools by default) brings Ansible and the commands run there as in
Kestra.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

from plugins.extras import install_hint
from plugins.scripts.common import ScriptTask
from plugins.scripts.execution import CONTAINER_WORKDIR, ScriptSpec, execute, str_list
from plugins.scripts.files import as_bool, as_map
from plugins.values import StrList
from runner.api import RunContext, TaskFailed
from runner.types import Dyn

HERE = Path(__file__).resolve().parent
RESULTS = ".gitsync-ansible-results.jsonl"
PACKAGES = ".gitsync-ansible-python"
CALLBACK = "callback_plugins/gitsync_outputs.py"
DEFAULT_CONFIG = """[defaults]
log_path          = {log}
callback_plugins  = ./callback_plugins
stdout_callback   = gitsync_outputs
library           = ./library
"""
NO_ANSIBLE = (
    "ansible-playbook is not installed where gitsync runs tasks: AnsibleCLI runs as a local process with the "
    "Ansible of gitsync's own environment. Install the 'ansible' extra with {hint}, or run the task in a container "
    "with taskRunner type io.kestra.plugin.scripts.runner.docker.Docker"
)


class AnsibleCLI(ScriptTask):
    """Run ansible / ansible-playbook commands."""

    type_name: ClassVar[str] = "io.kestra.plugin.ansible.cli.AnsibleCLI"
    default_image: ClassVar[str] = "cytopia/ansible:latest-tools"

    commands: StrList
    """The commands, run in order (e.g. ansible-playbook -i inventory.ini playbook.yml)."""
    ansibleConfig: str | None = None
    """Content of ansible.cfg (a default one enabling gitsync's output callback when unset)."""
    outputsMode: Dyn[Literal["ALL", "EXPLICIT"]] = "ALL"
    """ALL: every per-host result is an output; EXPLICIT: only what the `kestra` module declares."""
    outputLogFile: Dyn[bool] = False
    """Store Ansible's log file as the output file `log`."""
    autoInstallPythonRequirements: Dyn[bool] = True
    """Install requirements.txt (when present) before the commands."""
    autoInstallGalaxyRequirements: Dyn[bool] = True
    """Install requirements.yml's collections and roles (when present) before the commands."""
    warningOnStdErr: Dyn[bool] = False
    """End in WARNING when anything is written to stderr (Kestra: false for Ansible)."""

    def main_commands(self) -> list[str]:
        return str_list(self.commands)

    def render_variables(self, workdir: str) -> dict[str, Any]:
        return {"workingDir": workdir}  # Kestra renders ansibleConfig (and the commands) with it

    def run(self, ctx: RunContext) -> dict[str, Any]:
        spec = self.script_spec(ctx)
        local = spec.docker_image is None
        if local and _ansible_missing(ctx):
            raise TaskFailed(NO_ANSIBLE.format(hint=install_hint("ansible")), permanent=True)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        results = ctx.workdir / RESULTS
        results.unlink(missing_ok=True)
        self._stage(ctx, spec, seen=lambda p: _seen(ctx, spec, p))
        try:
            outputs = execute(ctx, spec)
        except TaskFailed as exc:
            exc.outputs.setdefault("vars", {}).update(_merged(results, self._explicit()))
            raise
        finally:
            shutil.rmtree(ctx.workdir / PACKAGES, ignore_errors=True)
        outputs["vars"] = {**(outputs.get("vars") or {}), **_merged(results, self._explicit())}
        results.unlink(missing_ok=True)
        return outputs

    def _explicit(self) -> bool:
        return str(self.outputsMode).upper() == "EXPLICIT"

    def _stage(self, ctx: RunContext, spec: ScriptSpec, seen: Any) -> None:
        """ansible.cfg, the callback and the module in the working directory; environment and install commands."""
        given = as_map(spec.input_files, "inputFiles") if spec.input_files else {}
        config = ctx.workdir / "ansible.cfg"
        if "ansible.cfg" in given:
            ctx.logger.warn("an ansible.cfg is given in inputFiles: it is used instead of ansibleConfig")
        else:
            text = self.ansibleConfig if self.ansibleConfig else DEFAULT_CONFIG.format(log=seen(ctx.workdir / "log"))
            config.write_text(text.replace("{{ workingDir }}", seen(ctx.workdir)), encoding="utf-8")
        for source, target in (("callback.py", CALLBACK), ("declare.py", "library/kestra.py")):
            path = ctx.workdir / target
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / source, path)
        spec.python = spec.docker_image is None  # gitsync's environment (its ansible) first on PATH
        spec.env = {
            "ANSIBLE_CONFIG": seen(config),
            "ANSIBLE_HOME": seen(ctx.workdir / ".ansible"),
            "ANSIBLE_FORCE_COLOR": "false",
            "KESTRA_OUTPUTS_MODE": "explicit" if self._explicit() else "all",
            "GITSYNC_ANSIBLE_RESULTS": seen(ctx.workdir / RESULTS),
            **_utf8_locale(ctx),
            **spec.env,
        }
        installs: list[str] = []
        if as_bool(self.autoInstallPythonRequirements, True):
            if spec.docker_image is None:
                target = seen(ctx.workdir / PACKAGES)
                installs.append(
                    f"[ ! -f requirements.txt ] || python -m pip install --quiet --disable-pip-version-check "
                    f"--target {target} -r requirements.txt"
                )
                spec.env["PYTHONPATH"] = os.pathsep.join(filter(None, [target, spec.env.get("PYTHONPATH")]))
            else:
                installs.append("[ ! -f requirements.txt ] || pip install --no-cache-dir -r requirements.txt")
        if as_bool(self.autoInstallGalaxyRequirements, True):
            installs.append("[ ! -f requirements.yml ] || ansible-galaxy install -r requirements.yml")
        spec.before = spec.before + installs
        if as_bool(self.outputLogFile, False):
            spec.output_files = [*str_list(spec.output_files), "log"]


def _seen(ctx: RunContext, spec: ScriptSpec, path: Path) -> str:
    """`path` (in the working directory) as the commands see it: itself, or its place in the container."""
    if spec.docker_image is None:
        return str(path)
    return str(CONTAINER_WORKDIR / PurePosixPath(path.relative_to(ctx.workdir).as_posix()))


def _ansible_missing(ctx: RunContext) -> bool:
    import sys

    beside = str(Path(sys.executable).parent)
    return shutil.which("ansible-playbook", path=os.pathsep.join([beside, ctx.env.get("PATH") or os.defpath])) is None


def _utf8_locale(ctx: RunContext) -> dict[str, str]:
    """Ansible refuses to start without a UTF-8 locale: C.UTF-8 when the task's environment names none."""
    current = ctx.env.get("LC_ALL") or ctx.env.get("LC_CTYPE") or ctx.env.get("LANG") or ""
    return {} if "utf" in current.lower() else {"LC_ALL": "C.UTF-8"}


def _merged(results: Path, explicit: bool) -> dict[str, Any]:
    """The outputs of every ansible-playbook run of the task, merged as Kestra merges them."""
    merged: dict[str, Any] = {"outputs": {} if explicit else [], "playbooks": []}
    if not results.is_file():
        return merged
    for line in results.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        outputs = record.get("outputs")
        if explicit and isinstance(outputs, dict):
            merged["outputs"].update(outputs)
        elif not explicit and isinstance(outputs, list):
            merged["outputs"].extend(outputs)
        merged["playbooks"].extend(record.get("playbooks") or [])
    return merged
