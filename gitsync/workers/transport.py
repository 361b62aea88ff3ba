"""kombu's Redis transport, with the one fix a broker restart needs: when the connection drops while messages
are unacknowledged, kombu 5.x closes the channel, and restoring them asks for a pool of a connection already
released (`AttributeError` on `None.hostname`), which Celery takes as an unrecoverable error: the worker dies.
Here that case is a connection error, which Celery handles by reconnecting; the messages come back by the
visibility timeout (and the claims decide what was run)."""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

SCHEME = "gitsync-redis"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed; it is opened again")
        return super()._connparams(asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


def register() -> None:
    TRANSPORT_ALIASES.setdefault(SCHEME, f"{__name__}:Transport")


def broker_url(url: str) -> str:
    """The broker URL on this transport (`redis://` only; `rediss://` keeps kombu's own)."""
    register()
    return SCHEME + url[len("redis") :] if url.startswith("redis://") else url
