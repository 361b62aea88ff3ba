"""One-object S3 tasks: Upload, Download (one key, or the keys a listing keeps), Delete, Copy, CreateBucket."""

from __future__ import annotations

import json
import posixpath
from typing import Any, ClassVar
from urllib.parse import urlencode

from pydantic import Field

from plugins.aws.connection import AwsConnection, aws_errors, call
from plugins.aws.s3.common import ListOptions, MoveTo, S3Task, fetch, list_objects
from plugins.scripts.files import as_bool, as_int, as_map
from plugins.values import Options
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

PUT_OPTIONS = {
    "cacheControl": "CacheControl", "contentType": "ContentType", "contentEncoding": "ContentEncoding",
    "contentDisposition": "ContentDisposition", "contentLanguage": "ContentLanguage", "acl": "ACL",
    "storageClass": "StorageClass", "serverSideEncryption": "ServerSideEncryption",
    "expectedBucketOwner": "ExpectedBucketOwner", "requestPayer": "RequestPayer", "objectLockMode": "ObjectLockMode",
    "objectLockLegalHoldStatus": "ObjectLockLegalHoldStatus", "objectLockRetainUntilDate": "ObjectLockRetainUntilDate",
    "checksumAlgorithm": "ChecksumAlgorithm", "expires": "Expires",
}  # fmt: skip
"""Upload's properties -> PutObject's parameters (passed when set)."""


class Upload(S3Task):
    """Upload execution files to S3: one file to `key`, or several (a list, or a map of name -> file) under the
    folder `key`."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.Upload"
    inert: ClassVar[dict[str, str]] = {
        **Task.inert,
        "concurrentUploads": "files are uploaded one after the other",
        "compatibilityMode": "boto3 talks to S3-compatible services without a special mode",
    }

    from_: Any = Field(alias="from")
    """The file to upload (a kestra:/// URI), a list of them, or a map of file name -> URI (or JSON text of one)."""
    key: Dyn[str]
    """The object's key; with several files, the folder their names are put under."""
    metadata: Dyn[dict[str, str]] | None = None
    """User metadata stored with the object (x-amz-meta-*)."""
    cacheControl: Dyn[str] | None = None
    """The object's Cache-Control header."""
    contentType: Dyn[str] | None = None
    """The object's Content-Type."""
    contentEncoding: Dyn[str] | None = None
    """The object's Content-Encoding header."""
    contentDisposition: Dyn[str] | None = None
    """The object's Content-Disposition header."""
    contentLanguage: Dyn[str] | None = None
    """The object's Content-Language header."""
    contentLength: Dyn[int] | None = None
    """Checked against the file's size."""
    expires: Dyn[str] | None = None
    """The object's Expires header (the time it may no longer be cached)."""
    acl: Dyn[str] | None = None
    """A canned ACL (private, public-read...)."""
    storageClass: Dyn[str] | None = None
    """The object's storage class: STANDARD, STANDARD_IA, GLACIER…"""
    serverSideEncryption: Dyn[str] | None = None
    """How S3 encrypts the object at rest: AES256, aws:kms or aws:kms:dsse."""
    bucketKeyEnabled: Dyn[bool] | None = None
    """Use an S3 Bucket Key for SSE-KMS encryption of the object."""
    checksumAlgorithm: Dyn[str] | None = None
    """CRC32, CRC32C, SHA1 or SHA256: S3 checks the upload with it."""
    checksum: Dyn[str] | None = None
    """The object's checksum, sent for S3 to verify (with `checksumAlgorithm`)."""
    expectedBucketOwner: Dyn[str] | None = None
    """The account id that must own the bucket; another owner fails the request."""
    objectLockMode: Dyn[str] | None = None
    """GOVERNANCE or COMPLIANCE: the Object Lock mode of the uploaded object."""
    objectLockLegalHoldStatus: Dyn[str] | None = None
    """ON or OFF: a legal hold on the uploaded object."""
    objectLockRetainUntilDate: Dyn[str] | None = None
    """When the uploaded object's Object Lock retention ends (ISO-8601)."""
    tagging: Dyn[dict[str, str]] | None = None
    """Tags of the object."""
    concurrentUploads: Dyn[int] = 50
    """Accepted for Kestra's flows: gitsync uploads the files one at a time."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        files = self._files()
        if not files:
            raise TaskFailed("nothing to upload: `from` is an empty list or map", permanent=True)
        client = self.s3()
        if len(files) == 1 and not self._many():
            (uri,) = files.values()
            response = self._put(ctx, client, uri, self.key)
            return {"bucket": self.bucket, "key": self.key, "eTag": response.get("ETag"),
                    "versionId": response.get("VersionId")}  # fmt: skip
        infos: dict[str, Any] = {}
        for name, uri in files.items():
            key = posixpath.join(self.key, name)
            response = self._put(ctx, client, uri, key)
            infos[name] = {"eTag": response.get("ETag"), "versionId": response.get("VersionId"),
                           "contentLength": ctx.storage.path(uri).stat().st_size}  # fmt: skip
        return {"bucket": self.bucket, "key": self.key, "files": infos}

    def _many(self) -> bool:
        return isinstance(_parsed(self.from_), list | dict)

    def _files(self) -> dict[str, str]:
        value = _parsed(self.from_)
        if isinstance(value, dict):
            return {str(name): str(uri) for name, uri in value.items()}
        items = value if isinstance(value, list) else [value]
        return {posixpath.basename(str(uri)): str(uri) for uri in items if uri not in (None, "")}

    def _put(self, ctx: RunContext, client: Any, uri: str, key: str) -> dict[str, Any]:
        path = ctx.storage.path(uri)
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        for field, name in PUT_OPTIONS.items():
            value = getattr(self, field)
            if value not in (None, ""):
                request[name] = value
        if self.metadata:
            request["Metadata"] = {str(k): str(v) for k, v in as_map(self.metadata, "metadata").items()}
        if self.tagging:
            request["Tagging"] = urlencode({str(k): str(v) for k, v in as_map(self.tagging, "tagging").items()})
        if self.bucketKeyEnabled is not None:
            request["BucketKeyEnabled"] = as_bool(self.bucketKeyEnabled)
        if self.checksum and self.checksumAlgorithm:
            request[f"Checksum{str(self.checksumAlgorithm).replace('_', '').upper()}"] = self.checksum
        if self.contentLength is not None and as_int(self.contentLength, 0) != path.stat().st_size:
            raise TaskFailed(f"contentLength {self.contentLength} is not the size of {uri} ({path.stat().st_size} "
                             "bytes)", permanent=True)  # fmt: skip
        ctx.logger.debug(f"uploading {uri} to s3://{self.bucket}/{key}")
        with aws_errors(self.doing(f"upload '{key}'"), self.endpointOverride), path.open("rb") as body:
            response: dict[str, Any] = client.put_object(Body=body, **request)
        return response


def _parsed(value: Any) -> Any:
    """`from` as given, or the list / map a rendered expression wrote as JSON text."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class Download(ListOptions, Task):
    """Download one object (`key`) into the execution's storage, or each object a listing keeps (prefix, regexp,
    delimiter) into `files`."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.Download"

    key: Dyn[str] | None = None
    """The object's key (one object)."""
    versionId: Dyn[str] | None = None
    """A version of the object other than the latest."""
    maxFiles: Dyn[int] = 25
    """The most objects to download; past it the task fails saying so."""
    validateChecksum: Dyn[bool] = False
    """Have S3 send the stored checksum, and check it."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        client = self.client("s3", self.type_name)
        extra = {"VersionId": self.versionId, "RequestPayer": self.requestPayer,
                 "ExpectedBucketOwner": self.expectedBucketOwner,
                 "ChecksumMode": "ENABLED" if as_bool(self.validateChecksum) else None}  # fmt: skip
        if self.key and not (self.prefix or self.delimiter or self.regexp):
            uri, response = fetch(ctx, client, self, self.bucket, self.key, **extra)
            return {"uri": uri, **_fetched(response)}
        if not (self.prefix or self.delimiter or self.regexp):
            raise TaskFailed("Download needs `key` (one object) or prefix, delimiter or regexp (several)",
                             permanent=True)  # fmt: skip
        objects = list_objects(self, client, "FILES")[: as_int(self.maxFiles, 25)]
        if not objects:
            ctx.logger.warn(f"no object of bucket '{self.bucket}' matches prefix/regexp")
        files = {}
        for found in objects:
            uri, response = fetch(ctx, client, self, self.bucket, found["key"], **{**extra, "VersionId": None})
            files[found["key"]] = {"uri": uri, **_fetched(response)}
        return {"files": files}


def _fetched(response: dict[str, Any]) -> dict[str, Any]:
    algorithm, value = next(((a, response[f"Checksum{a}"]) for a in ("SHA256", "SHA1", "CRC32", "CRC32C")
                             if response.get(f"Checksum{a}")), (None, None))  # fmt: skip
    return {
        "eTag": response.get("ETag"),
        "versionId": response.get("VersionId"),
        "contentLength": response.get("ContentLength"),
        "contentType": response.get("ContentType"),
        "metadata": response.get("Metadata") or {},
        "checksumAlgorithm": algorithm,
        "checksumValue": value,
    }


class Delete(S3Task):
    """Delete one object."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.Delete"

    key: Dyn[str]
    """The object's key."""
    bypassGovernanceRetention: Dyn[bool] | None = None
    """Delete an object locked in governance mode (needs s3:BypassGovernanceRetention)."""
    mfa: Dyn[str] | None = None
    """The MFA device's serial and code, for a bucket with MFA delete."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if self.bypassGovernanceRetention is not None:
            request["BypassGovernanceRetention"] = as_bool(self.bypassGovernanceRetention)
        for field, name in (("mfa", "MFA"), ("requestPayer", "RequestPayer")):
            if getattr(self, field):
                request[name] = getattr(self, field)
        response = call(self.doing(f"delete '{self.key}'"), self.endpointOverride, self.s3().delete_object, **request)
        return {"versionId": response.get("VersionId"), "deleteMarker": response.get("DeleteMarker"),
                "requestCharged": response.get("RequestCharged")}  # fmt: skip


class CopyFrom(Options):
    """The object copied."""

    bucket: str
    key: str
    versionId: str | None = None


class Copy(AwsConnection, Task):
    """Copy an object (to another key or bucket); `delete: true` removes the source afterwards (a move)."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.Copy"

    from_: CopyFrom = Field(alias="from")
    """The object copied (bucket, key, versionId)."""
    to: MoveTo | None = None
    """Where the copy goes (bucket and key; the source's when unset)."""
    delete: Dyn[bool] = False
    """Delete the source object once copied."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        client = self.client("s3", self.type_name)
        source: dict[str, Any] = {"Bucket": self.from_.bucket, "Key": self.from_.key}
        if self.from_.versionId:
            source["VersionId"] = self.from_.versionId
        bucket = (self.to.bucket if self.to else None) or self.from_.bucket
        key = (self.to.key if self.to else None) or self.from_.key
        request: dict[str, Any] = {"Bucket": bucket, "Key": key, "CopySource": source}
        encryption = self.to.serverSideEncryption if self.to else None
        if self.to and encryption and encryption != "NONE":
            request["ServerSideEncryption"] = encryption.replace("AWS_KMS", "aws:kms")
            if self.to.kmsKeyId:
                request["SSEKMSKeyId"] = self.to.kmsKeyId
        doing = f"copy '{self.from_.bucket}/{self.from_.key}' to '{bucket}/{key}'"
        response = call(doing, self.endpointOverride, client.copy_object, **request)
        if as_bool(self.delete):
            call(f"delete '{self.from_.key}' from bucket '{self.from_.bucket}'", self.endpointOverride,
                 client.delete_object, Bucket=self.from_.bucket, Key=self.from_.key)  # fmt: skip
        return {"bucket": bucket, "key": key, "eTag": response.get("CopyObjectResult", {}).get("ETag"),
                "versionId": response.get("VersionId")}  # fmt: skip


class CreateBucket(AwsConnection, Task):
    """Create a bucket."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.CreateBucket"

    bucket: Dyn[str]
    """The new bucket's name."""
    grantFullControl: Dyn[str] | None = None
    """Grantees given READ, WRITE, READ_ACP and WRITE_ACP on the bucket (`id=…`, `uri=…`)."""
    grantRead: Dyn[str] | None = None
    """Grantees allowed to list the bucket's objects."""
    grantReadACP: Dyn[str] | None = None
    """Grantees allowed to read the bucket's ACL."""
    grantWrite: Dyn[str] | None = None
    """Grantees allowed to create, overwrite and delete objects in the bucket."""
    grantWriteACP: Dyn[str] | None = None
    """Grantees allowed to write the bucket's ACL."""
    acl: Dyn[str] | None = None
    """A canned ACL (private, public-read...)."""
    objectLockEnabledForBucket: Dyn[bool] | None = None
    """Create the bucket with S3 Object Lock enabled."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        request: dict[str, Any] = {"Bucket": self.bucket}
        for field in ("grantFullControl", "grantRead", "grantReadACP", "grantWrite", "grantWriteACP"):
            if getattr(self, field):
                request[field[0].upper() + field[1:]] = getattr(self, field)
        if self.acl:
            request["ACL"] = self.acl
        if self.objectLockEnabledForBucket is not None:
            request["ObjectLockEnabledForBucket"] = as_bool(self.objectLockEnabledForBucket)
        if self.region and self.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        response = call(f"create bucket '{self.bucket}'", self.endpointOverride, self.client("s3", self.type_name)
                        .create_bucket, **request)  # fmt: skip
        return {"bucket": self.bucket, "region": response.get("Location")}
