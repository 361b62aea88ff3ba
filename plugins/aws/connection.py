"""What every AWS type shares (Kestra's `AbstractConnection`): credentials, region, endpoint, STS role, and the
boto3 client built from them.

Without `accessKeyId`/`secretKeyId` boto3's default chain is used (environment, ~/.aws, instance role), as Kestra
uses the SDK's default provider chain. botocore's errors become `TaskFailed` messages that say which operation on
which bucket or endpoint failed and why, in words, without the credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import PrivateAttr

from plugins.extras import require
from plugins.scripts.files import as_bool
from runner.api import TaskFailed
from runner.plugin import Plugin
from runner.types import Duration, Dyn

EXTRA = "aws"
T = TypeVar("T")

PERMANENT_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "NoSuchKey", "InvalidBucketName",
    "BucketAlreadyExists", "BucketAlreadyOwnedByYou", "AllAccessDisabled", "InvalidRequest", "InvalidArgument",
    "InvalidClientTokenId", "ExpiredToken", "MalformedXML", "404", "403", "400",
})  # fmt: skip
"""Error codes another attempt cannot change: the task's retry does not run it again for them."""

HINTS = {
    "InvalidAccessKeyId": "check accessKeyId (or the credentials gitsync's environment gives)",
    "SignatureDoesNotMatch": "check secretKeyId: it does not belong to this accessKeyId",
    "InvalidClientTokenId": "check accessKeyId and sessionToken",
    "ExpiredToken": "the sessionToken has expired",
    "NoSuchBucket": "check the bucket name (and region / endpointOverride)",
    "NoSuchKey": "no object has this key in the bucket",
    "AccessDenied": "these credentials are not allowed to do this",
    "BucketAlreadyOwnedByYou": "the bucket exists already",
    "BucketAlreadyExists": "bucket names are global: pick another one",
}


class AwsConnection(Plugin):
    """The connection properties of every AWS task and trigger (their values are rendered)."""

    region: Dyn[str] | None = None
    """AWS region the client talks to (e.g. eu-central-1); boto3's default when unset."""
    endpointOverride: Dyn[str] | None = None
    """Another endpoint, for S3-compatible storage (MinIO, moto, LocalStack...): e.g. http://127.0.0.1:9000."""
    compatibilityMode: Dyn[bool] = False
    """Kestra's switch for S3-compatible services (its non-CRT client); boto3 speaks to them as to AWS."""
    forcePathStyle: Dyn[bool] = False
    """Address buckets as endpoint/bucket/key instead of bucket.endpoint/key (MinIO and most compatible stores)."""
    accessKeyId: Dyn[str] | None = None
    """Access key id (a secret: use `{{ secret('...') }}`); the default credentials chain when unset."""
    secretKeyId: Dyn[str] | None = None
    """Secret access key (a secret)."""
    sessionToken: Dyn[str] | None = None
    """Session token of temporary credentials (a secret)."""
    stsRoleArn: Dyn[str] | None = None
    """Assume this IAM role (STS AssumeRole) with the credentials above, and act as it."""
    stsRoleExternalId: Dyn[str] | None = None
    """External id the role's trust policy may require."""
    stsRoleSessionName: Dyn[str] | None = None
    """Session name of the assumed role (gitsync by default)."""
    stsEndpointOverride: Dyn[str] | None = None
    """Another STS endpoint."""
    stsRoleSessionDuration: Duration | Dyn[str] = timedelta(seconds=900)
    """How long the assumed role's credentials last (PT15M by default)."""

    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)

    def client(self, service: str, task_type: str) -> Any:
        """A boto3 client of `service` with this connection's settings (MissingExtra without boto3); one per
        service for this task or poll (a role is assumed once)."""
        if service not in self._clients:
            self._clients[service] = self._new_client(service, task_type)
        return self._clients[service]

    def _new_client(self, service: str, task_type: str) -> Any:
        boto3 = require("boto3", EXTRA, task_type)
        config = require("botocore.config", EXTRA, task_type, package="boto3")
        style = "path" if as_bool(self.forcePathStyle) else "auto"
        kwargs: dict[str, Any] = {
            "region_name": self.region or None,
            "endpoint_url": self.endpointOverride or None,
            "config": config.Config(s3={"addressing_style": style}, retries={"max_attempts": 3, "mode": "standard"}),
        }
        kwargs.update(self._credentials(boto3, task_type))
        with aws_errors(f"connect to {service}", self.endpointOverride):
            return boto3.session.Session().client(service, **kwargs)

    def _credentials(self, boto3: Any, task_type: str) -> dict[str, str]:
        given = {
            "aws_access_key_id": self.accessKeyId or None,
            "aws_secret_access_key": self.secretKeyId or None,
            "aws_session_token": self.sessionToken or None,
        }
        static = {key: value for key, value in given.items() if value}
        if not self.stsRoleArn:
            return static
        sts = boto3.session.Session().client(
            "sts", region_name=self.region or None, endpoint_url=self.stsEndpointOverride or None, **static
        )
        role: dict[str, Any] = {
            "RoleArn": self.stsRoleArn,
            "RoleSessionName": self.stsRoleSessionName or "gitsync",
            "DurationSeconds": int(_seconds(self.stsRoleSessionDuration)),
        }
        if self.stsRoleExternalId:
            role["ExternalId"] = self.stsRoleExternalId
        with aws_errors(f"assume the role {self.stsRoleArn}", self.stsEndpointOverride):
            found = sts.assume_role(**role)["Credentials"]
        return {
            "aws_access_key_id": found["AccessKeyId"],
            "aws_secret_access_key": found["SecretAccessKey"],
            "aws_session_token": found["SessionToken"],
        }

    def aws_env(self) -> dict[str, str]:
        """The connection as the AWS_* variables the `aws` command and the SDKs read."""
        pairs = {
            "AWS_ACCESS_KEY_ID": self.accessKeyId,
            "AWS_SECRET_ACCESS_KEY": self.secretKeyId,
            "AWS_SESSION_TOKEN": self.sessionToken,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpointOverride,
        }
        return {key: str(value) for key, value in pairs.items() if value}


def _seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    from runner.durations import parse_duration

    return parse_duration(str(value)).total_seconds()


@contextmanager
def aws_errors(doing: str, endpoint: str | None = None) -> Iterator[None]:
    """botocore's exceptions inside as TaskFailed: `doing` says what was tried ("list bucket 'x'")."""
    try:
        import botocore.exceptions as bx
    except ImportError:  # the client import said so already
        yield
        return
    try:
        yield
    except bx.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")
        message = error.get("Message") or ""
        hint = HINTS.get(code)
        raise TaskFailed(
            f"AWS refused to {doing}: {code}{': ' + message if message else ''}" + (f" ({hint})" if hint else ""),
            permanent=code in PERMANENT_CODES,
        ) from None
    except bx.NoCredentialsError:
        raise TaskFailed(
            f"cannot {doing}: no AWS credentials. Set accessKeyId and secretKeyId (with secret('...')), or give "
            "gitsync's environment AWS credentials",
            permanent=True,
        ) from None
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        where = endpoint or "AWS"
        raise TaskFailed(f"cannot {doing}: {where} does not answer ({type(exc).__name__})") from None
    except (bx.ParamValidationError, bx.InvalidRegionError, ValueError) as exc:
        raise TaskFailed(f"cannot {doing}: {exc}", permanent=True) from None
    except bx.BotoCoreError as exc:
        raise TaskFailed(f"cannot {doing}: {exc}") from None


def call(doing: str, endpoint: str | None, fn: Callable[..., T], **kwargs: Any) -> T:
    """`fn(**kwargs)` with its botocore errors as TaskFailed (see `aws_errors`)."""
    with aws_errors(doing, endpoint):
        return fn(**kwargs)
