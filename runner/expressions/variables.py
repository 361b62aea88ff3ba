"""What expressions read from outside the flow: `{{ envs.x }}` from `ENV_…` variables, `secret()` values from a
secrets file. Plain reads (no Jinja), so the composition root loads the secrets and the engine's services take the
`envs` without importing what renders."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

ENV_PREFIX = "ENV_"


def env_variables(environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX) -> dict[str, str]:
    """`envs`: environment variables named `ENV_…`, prefix stripped and lower-cased (`ENV_MY_VAR` -> `my_var`)."""
    source = os.environ if environ is None else environ
    return {key[len(prefix) :].lower(): value for key, value in source.items() if key.startswith(prefix)}


def load_secrets(path: str | Path) -> dict[str, str]:
    """Secrets from a YAML mapping file or a `.env` file (`NAME=value` lines; `#` comments)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        data = yaml.safe_load(text) or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: a secrets file holds a mapping of names to values")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    secrets: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        name, _, value = stripped.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        secrets[name.strip()] = value
    return secrets
