"""Settings: the config file, flags and GITSYNC_* overrides, and the checks made before anything starts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gitsync.config import load_settings
from gitsync.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_example_loads() -> None:
    settings = load_settings(str(ROOT / "examples" / "gitsync.yaml"), environ={})
    (source,) = settings.sources
    assert (source.name, source.path, source.namespace_prefix, source.poll) == (
        "examples",
        "examples/flows",
        "acme",
        timedelta(seconds=60),
    )
    assert settings.http.listen == "127.0.0.1:8080"


def test_environment_overrides_file_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "gitsync.yaml"
    config.write_text("db: from-file.db\nhttp:\n  listen: 127.0.0.1:9000\n")
    settings = load_settings(
        str(config),
        overrides={"db": "from-flag.db"},
        environ={"GITSYNC_DB": "from-env.db", "GITSYNC_HTTP_LISTEN": "127.0.0.1:9100"},
    )
    assert (settings.db, settings.http.port) == ("from-env.db", 9100)


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        pytest.param(
            [
                {"name": "a", "repo": ".", "namespace_prefix": "acme"},
                {"name": "b", "repo": ".", "namespace_prefix": "acme.x"},
            ],
            "own overlapping namespaces",
            id="overlapping-prefixes",
        ),
        pytest.param(
            [{"name": "a", "repo": "."}, {"name": "b", "repo": ".", "namespace_prefix": "other"}],
            "every namespace",
            id="one-source-owns-everything",
        ),
        pytest.param(
            [{"name": "a", "repo": ".", "namespace_prefix": "x"}, {"name": "a", "repo": ".", "namespace_prefix": "y"}],
            "two sources are named 'a'",
            id="duplicate-names",
        ),
        pytest.param([{"name": "a", "repo": ".", "path": "../etc"}], "path must stay inside", id="path-escape"),
        pytest.param([{"name": "a", "repo": ".", "poll": "soon"}], "poll", id="bad-poll"),
        pytest.param([{"name": "a", "repo": ".", "token": "literal"}], "token", id="secret-in-file"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(tmp_path: Path, sources: list[dict], message: str) -> None:
    import yaml

    config = tmp_path / "gitsync.yaml"
    config.write_text(yaml.safe_dump({"sources": sources}))
    with pytest.raises(ConfigError, match=message):
        load_settings(str(config), environ={})


def test_bad_listen_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="listen must be HOST:PORT"):
        load_settings(None, overrides={"http.listen": "8080"}, environ={})


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings("/nonexistent/gitsync.yaml", environ={})
