"""Shared fixtures: real files in tmp_path, the registry of installed plugins, files no one can write, and the
session's one headless Chromium (tests/browser.py) and Redis server (tests/redis_server.py)."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import installed
import pytest

from runner.registry import Registry

if TYPE_CHECKING:
    from mariadb_server import MariaDbServer
    from playwright.sync_api import Browser
    from postgres_server import PostgresServer
    from redis_server import RedisServer
    from s3_server import S3Server
    from sshd_server import SshServer

WriteFlow = Callable[..., Path]


@pytest.fixture
def write_flow(tmp_path: Path) -> WriteFlow:
    """`write_flow(content, name="flow.yaml")` writes a file under tmp_path and returns its path.

    Text is dedented (so tests can indent YAML inline) and written as UTF-8; bytes are written as they are.
    `name` may hold folders (`"team/etl.yaml"`); they are created.
    """

    def write(content: str | bytes, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(textwrap.dedent(content), encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return write


@pytest.fixture
def registry() -> Registry:
    """The installed plugins, loaded through their entry points (the registry the CLI uses)."""
    return installed.registry()


SetImmutable = Callable[[Sequence[Path], bool], None]


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[SetImmutable]:
    """`immutable(paths, on)`: `chattr +i` (on) or `-i` (off) on real files or folders.

    `chmod` does not stop root, and tests may run as root: with the immutable attribute the kernel refuses every
    write to a file, even through a descriptor opened earlier and even for root, and nothing can be created in
    such a folder. Skipped where the attribute is not available (not root, or a filesystem without it). Whatever
    the test leaves immutable is released at the end, so tmp_path can be removed.
    """
    held: set[Path] = set()

    def chattr(paths: Sequence[Path], on: bool) -> None:
        subprocess.run(["chattr", "+i" if on else "-i", *map(str, paths)], check=True, capture_output=True)
        held.update(paths) if on else held.difference_update(paths)

    probe = tmp_path / "immutable-probe"
    probe.write_text("x")
    try:
        chattr([probe], True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("chattr +i is not available here (not root, or the filesystem has no immutable attribute)")
    try:
        with pytest.raises(PermissionError):
            probe.write_text("y")
    finally:
        chattr([probe], False)
        probe.unlink()
    try:
        yield chattr
    finally:
        if held:
            chattr(sorted(held), False)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched once for the whole session (tests/browser.py says how). Where it is
    absent, every test that asks for it skips, saying how to get it (`apt-get install chromium`, or
    GITSYNC_CHROMIUM)."""
    import browser as chromium  # tests/browser.py; imported here so a run without browser tests never loads it

    if chromium.chromium_path() is None:
        pytest.skip(chromium.missing_reason())
    with chromium.launched() as launched:
        yield launched


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Debian's redis-server on a free port, once per session (tests/redis_server.py); skips where it is not
    installed, fails in CI."""
    from redis_server import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL on a free port, once per session (tests/postgres_server.py); skips where it is not
    installed, fails in CI."""
    from postgres_server import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDbServer]:
    """Debian's MariaDB on a free port, once per session (tests/mariadb_server.py); skips where it is not
    installed, fails in CI."""
    from mariadb_server import mariadb_server

    with mariadb_server() as server:
        yield server


# --- notification providers' API servers (tests/saas/<provider>_api.py), one of each per session -------------

SENDGRID_KEY = "SG.test-key.sendgrid-secret-0123456789"
DISCORD_TOKEN = "discord-webhook-token-secret"
TEAMS_PATH = "/webhookb2/6f1e-group@7a2b-tenant/IncomingWebhook/c0ffee-connector/0wner-secret"
TELEGRAM_TOKEN = "123456:telegram-bot-secret-token"
GOOGLE_TOKEN = "google-chat-token-secret"


@pytest.fixture(scope="session")
def sendgrid_api() -> Iterator[object]:
    from saas.notify_base import running
    from saas.sendgrid_api import SendGridApi

    with running(SendGridApi(SENDGRID_KEY)) as server:
        yield server


@pytest.fixture(scope="session")
def discord_api() -> Iterator[object]:
    from saas.discord_api import DiscordApi
    from saas.notify_base import running

    with running(DiscordApi("112233445566", DISCORD_TOKEN)) as server:
        yield server


@pytest.fixture(scope="session")
def teams_api() -> Iterator[object]:
    from saas.notify_base import running
    from saas.teams_api import TeamsApi

    with running(TeamsApi(TEAMS_PATH)) as server:
        yield server


@pytest.fixture(scope="session")
def telegram_api() -> Iterator[object]:
    from saas.notify_base import running
    from saas.telegram_api import TelegramApi

    with running(TelegramApi(TELEGRAM_TOKEN, {"-1001234": -1001234, "@ops_alerts": -1005678})) as server:
        yield server


@pytest.fixture(scope="session")
def googlechat_api() -> Iterator[object]:
    from saas.googlechat_api import GoogleChatApi
    from saas.notify_base import running

    with running(GoogleChatApi("AAAA-space", "chat-key", GOOGLE_TOKEN)) as server:
        yield server


SLACK_PATH = "/services/T0ACME/B0ALERTS/slack-webhook-secret"


@pytest.fixture(scope="session")
def slack_api() -> Iterator[object]:
    from saas.notify_base import running
    from saas.notify_slack_api import SlackWebhookApi

    with running(SlackWebhookApi(SLACK_PATH)) as server:
        yield server


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """Debian's OpenSSH server on a free port with a test user (password and keys), once per session
    (tests/sshd_server.py); skips where it is not installed, fails in CI."""
    from sshd_server import sshd_server

    with sshd_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's server mode as S3 (with IAM checking signatures) on a free port, once per session (tests/s3_server.py)."""
    from s3_server import s3_server

    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server
