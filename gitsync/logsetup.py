"""Logging for the service: one line per record, and every secret the settings name masked before it is written."""

from __future__ import annotations

import logging
import os
import sys

from gitsync.config import Settings
from gitsync.redact import redact


class SecretMask(logging.Filter):
    """Masks the values of the secret environment variables (tokens, webhook secrets) and URL credentials."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        return True


def secret_values(settings: Settings) -> list[str]:
    names: set[str | None] = {settings.http.token_env}
    for source in settings.sources:
        names |= {source.token_env, source.webhook_secret_env}
        if source.status is not None:
            names.add(source.status.token_env)
    names |= {name for name in os.environ if name.startswith("SECRET_")}
    return [os.environ[name] for name in names if name and os.environ.get(name)]


def configure(settings: Settings, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMask(secret_values(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "watchfiles"):  # one line per job change or file event is noise at INFO
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
