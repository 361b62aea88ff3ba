"""`AwsCLI`: shell commands with the `aws` command, given the task's credentials, region and endpoint as the AWS_*
variables it reads (Kestra passes them the same way, `AWS_ENDPOINT_URL` for `endpointOverride`).

It is a script task (plugins/scripts: env, inputFiles, outputFiles, beforeCommands, the Process and Docker
runners). With the Process runner the `aws` of gitsync's environment (PyPI's awscli, in the `aws` extra) comes first
on PATH; `containerImage` (amazon/aws-cli) is used by the Docker runner only.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

from plugins.aws.connection import EXTRA, AwsConnection
from plugins.extras import MissingExtra, install_hint
from plugins.scripts.common import ScriptTask
from plugins.scripts.execution import execute, str_list
from plugins.values import StrList
from runner.api import RunContext

IMAGE = "amazon/aws-cli"
CREDENTIAL_SOURCES = {"ENVIRONMENT": "Environment", "EC2_INSTANCE_METADATA": "Ec2InstanceMetadata",
                      "ECS_CONTAINER": "EcsContainer"}  # fmt: skip


class AwsCLI(AwsConnection, ScriptTask):
    """Run `aws ...` commands (and any shell around them) with the task's AWS connection."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.cli.AwsCLI"
    default_image: ClassVar[str] = IMAGE
    inert: ClassVar[dict[str, str]] = {
        **ScriptTask.inert,
        "compatibilityMode": "the aws command needs no compatibility mode",
        "forcePathStyle": "set it in the commands: aws configure set default.s3.addressing_style path",
    }

    commands: StrList
    """The commands, run in order by /bin/sh -c."""
    outputFormat: Literal["JSON", "TEXT", "TABLE", "YAML"] = "JSON"
    """AWS_DEFAULT_OUTPUT: how `aws` prints its answers (a --output flag still wins)."""
    stsCredentialSource: Literal["ENVIRONMENT", "EC2_INSTANCE_METADATA", "ECS_CONTAINER"] | None = None
    """Where the assumed role's source credentials come from (aws configure set credential_source)."""

    def main_commands(self) -> list[str]:
        return self._role_commands() + str_list(self.commands)

    def _role_commands(self) -> list[str]:
        """What Kestra runs first when a role is assumed: the CLI reads these from its config, not from env."""
        settings = {
            "role_arn": self.stsRoleArn,
            "role_session_name": self.stsRoleSessionName,
            "external_id": self.stsRoleExternalId,
            "credential_source": CREDENTIAL_SOURCES.get(self.stsCredentialSource or ""),
        }
        if self.stsRoleArn:
            from plugins.aws.connection import _seconds

            settings["duration_seconds"] = str(int(_seconds(self.stsRoleSessionDuration)))
        return [f"aws configure set {k} {shlex.quote(str(v))}" for k, v in settings.items() if v]

    def run(self, ctx: RunContext) -> dict[str, Any]:
        spec = self.script_spec(ctx)
        spec.env = {**self.aws_env(), "AWS_DEFAULT_OUTPUT": self.outputFormat.lower(), **spec.env}
        if self.stsRoleArn:  # `aws configure set` writes here, never to the service's ~/.aws
            spec.env.setdefault("AWS_CONFIG_FILE", str(ctx.workdir / ".aws-config"))
        if spec.docker_image is None:
            spec.python = True  # gitsync's environment (with its `aws`) first on PATH
            _require_aws(ctx, Path(spec.python_executable).parent)
        return execute(ctx, spec)


def _require_aws(ctx: RunContext, beside: Path) -> None:
    path = os.pathsep.join([str(beside), ctx.env.get("PATH") or os.defpath])
    if shutil.which("aws", path=path) is None:
        raise MissingExtra(
            f"AwsCLI runs the aws command, which is neither in gitsync's environment ({beside}) nor on the task's "
            f"PATH. Install the {EXTRA!r} extra with {install_hint(EXTRA)} (it brings PyPI's awscli), then run the "
            "flow again"
        )
