"""moto's server mode playing S3 (and IAM, STS) on a free port of 127.0.0.1, started once per session.

It checks each request's signature: the server starts with IAM authentication on, lets its first three requests
through unsigned to create a user, its policy and its access key (`USER_KEY`, `USER_SECRET`), and from then on
refuses a request signed with any other key (InvalidAccessKeyId) or secret (SignatureDoesNotMatch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services import free_port, start, stop

REGION = "us-east-1"
SETUP_REQUESTS = 3
"""create_user, put_user_policy, create_access_key: the unauthenticated requests moto lets through."""


class S3Server:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.key = ""
        self.secret = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        moto = Path(sys.executable).with_name("moto_server")
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS), "MOTO_ALLOW_NONEXISTENT_REGION": "1"}
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(name, None)
        argv = [str(moto), "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = start(argv, self.folder / "moto.log", self.port, env=env)
        self._make_user()

    def _make_user(self) -> None:
        iam = self.client("iam", key="setup", secret="setup")
        iam.create_user(UserName="gitsync-tests")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="gitsync-tests", PolicyName="all", PolicyDocument=json.dumps(policy))
        created = iam.create_access_key(UserName="gitsync-tests")["AccessKey"]
        self.key, self.secret = created["AccessKeyId"], created["SecretAccessKey"]

    def client(self, service: str = "s3", key: str | None = None, secret: str | None = None) -> Any:
        import boto3

        return boto3.session.Session().client(
            service, region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id=key or self.key, aws_secret_access_key=secret or self.secret,
        )  # fmt: skip

    def bucket(self, name: str) -> Any:
        """A new, empty bucket `name` (the test's own)."""
        s3 = self.client()
        s3.create_bucket(Bucket=name)
        return s3

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


@contextmanager
def s3_server(folder: Path) -> Iterator[S3Server]:
    server = S3Server(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
