"""The bundled examples are fixtures: all valid, inside the `acme` prefix, and covering what users need."""

from __future__ import annotations

from pathlib import Path

import installed

from gitsync.flows.loader import load_paths

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "flows"


def test_every_example_flow_is_valid() -> None:
    result = load_paths([EXAMPLES], installed.registry(), namespace_prefix="acme")
    assert [p.format() for p in result.errors] == []
    assert 8 <= len(result.files) <= 12
    assert len({f.flow.namespace for f in result.files if f.flow}) == 3


def test_examples_cover_the_features_users_ask_for() -> None:
    result = load_paths([EXAMPLES], installed.registry())
    texts = "\n".join(f.text or "" for f in result.files)
    for needle in (
        "io.kestra.plugin.dbt.cli.DbtCLI",
        "io.kestra.plugin.core.http.Download",
        "io.kestra.plugin.jdbc.duckdb.Query",
        "io.kestra.plugin.scripts.shell.Commands",
        "io.kestra.plugin.core.flow.ForEach",
        "io.kestra.plugin.core.flow.Subflow",
        "io.kestra.plugin.core.trigger.Flow",
        "io.kestra.plugin.core.trigger.Webhook",
        "io.kestra.plugin.core.trigger.Schedule",
        "\nerrors:",
        "\nfinally:",
    ):
        assert needle in texts, needle
