"""The plugin registry: entry points (built-ins and third-party alike), aliases, conflicts, suggestions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import installed
import pytest

from runner.plugin import Task
from runner.registry import Registry, RegistryError, load_entry_points
from runner.validate.validator import validate_flow


class Shout(Task):
    type_name: ClassVar[str] = "com.example.Shout"
    aliases: ClassVar[tuple[str, ...]] = ("com.example.legacy.Yell",)
    text: str


class Whisper(Task):
    type_name: ClassVar[str] = "com.example.Whisper"
    aliases: ClassVar[tuple[str, ...]] = ("com.example.legacy.Yell",)


def _install_distribution(root: Path, name: str, entry_points: str, module: str, source: str) -> None:
    """A minimal installed distribution on sys.path: what `pip install` of a plugin package leaves behind."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[gitsync.plugins]\n{entry_points}\n")


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("thirdparty_")]:
        del sys.modules[name]


PLUGIN_SOURCE = """
from typing import ClassVar
from runner.plugin import Task
import installed

class Greet(Task):
    type_name: ClassVar[str] = "com.acme.Greet"
    who: str
"""


def test_builtins_are_found_through_entry_points() -> None:
    registry = load_entry_points()
    log = registry.lookup("io.kestra.plugin.core.log.Log")
    assert log is not None and log.__module__.startswith("plugins.")
    assert registry.lookup("io.kestra.core.tasks.log.Log") is log  # legacy alias
    assert registry.lookup("IO.KESTRA.PLUGIN.CORE.LOG.LOG") is log  # case-insensitive, like Kestra


def test_a_third_party_distribution_adds_a_type_by_being_installed(site: Path) -> None:
    _install_distribution(
        site, "acme-plugins", "com.acme.Greet = thirdparty_greet:Greet", "thirdparty_greet", PLUGIN_SOURCE
    )
    registry = load_entry_points()
    greet = registry.lookup("com.acme.Greet")
    assert greet is not None
    assert greet.model_validate({"id": "g", "type": "com.acme.Greet", "who": "you"}).who == "you"


def test_entry_point_name_must_be_the_canonical_type(site: Path) -> None:
    _install_distribution(
        site, "acme-wrong", "com.acme.Other = thirdparty_wrong:Greet", "thirdparty_wrong", PLUGIN_SOURCE
    )
    with pytest.raises(RegistryError, match=r"'com.acme.Other' \(acme-wrong: thirdparty_wrong:Greet\) declares"):
        load_entry_points()


def _install_broken(site: Path) -> None:
    """A distribution whose plugin module fails to import."""
    _install_distribution(
        site,
        "acme-broken",
        "com.acme.Broken = thirdparty_broken:Nope",
        "thirdparty_broken",
        "raise ImportError('no module named secret_sdk')\n",
    )


def test_a_broken_plugin_names_itself(site: Path) -> None:
    _install_broken(site)
    with pytest.raises(RegistryError, match=r"plugin 'com.acme.Broken' \(acme-broken: .*\) failed to load: no mod"):
        load_entry_points()


def test_two_classes_may_not_claim_one_alias() -> None:
    registry = Registry()
    registry.register(Shout, "pkg-a")
    with pytest.raises(RegistryError, match=r"claimed by both com.example.Shout .pkg-a. and com.example.Whisper"):
        registry.register(Whisper, "pkg-b")


def test_unregister_removes_every_name() -> None:
    registry = Registry()
    registry.register(Shout)
    registry.unregister(Shout)
    assert registry.lookup("com.example.Shout") is None
    assert registry.lookup("com.example.legacy.yell") is None


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        pytest.param("io.kestra.plugin.scripts.shell.Comands", "io.kestra.plugin.scripts.shell.Commands", id="typo"),
        pytest.param("io.kestra.plugin.core.log.log", "io.kestra.plugin.core.log.Log", id="case"),
        pytest.param("io.kestra.plugin.core.Log", "io.kestra.plugin.core.log.Log", id="missing-package"),
    ],
)
def test_suggestions_name_the_closest_type(typo: str, expected: str) -> None:
    assert expected in installed.registry().suggest(typo, "task")


def test_no_suggestion_for_a_type_from_another_world() -> None:
    assert installed.registry().suggest("io.kestra.plugin.aws.dynamodb.PutItem", "task") == []


# -- lazy: types known by their entry-point names, a plugin imported when its type is resolved ---------------------


def test_lazily_a_type_is_listed_before_its_module_is_imported(site: Path) -> None:
    _install_distribution(
        site, "acme-plugins", "com.acme.Greet = thirdparty_greet:Greet", "thirdparty_greet", PLUGIN_SOURCE
    )
    registry = load_entry_points(lazy=True)
    assert "com.acme.Greet" in registry.names()
    assert "thirdparty_greet" not in sys.modules
    greet = registry.lookup("COM.ACME.GREET")
    assert greet is not None and greet.type_name == "com.acme.Greet"
    assert "thirdparty_greet" in sys.modules


def test_lazily_a_broken_plugin_fails_where_its_type_is_used(site: Path) -> None:
    _install_broken(site)
    registry = load_entry_points(lazy=True)  # the other types still work
    assert registry.lookup("io.kestra.plugin.core.log.Log") is not None
    assert registry.lookup("io.kestra.core.tasks.log.Log") is registry.lookup("io.kestra.plugin.core.log.Log")
    flow = {"id": "f", "namespace": "acme", "tasks": [{"id": "t", "type": "com.acme.Broken"}]}
    issues = validate_flow(flow, registry).issues
    assert [(i.loc, i.message) for i in issues] == [
        (
            ("tasks", 0, "type"),
            "plugin 'com.acme.Broken' (acme-broken: thirdparty_broken:Nope) failed to load: no module named secret_sdk",
        )
    ]
    with pytest.raises(RegistryError, match="failed to load"):
        registry.classes()  # the schema needs every plugin: a broken one stops it, naming itself


def test_lazily_the_entry_point_name_must_still_be_the_canonical_type(site: Path) -> None:
    _install_distribution(
        site, "acme-wrong", "com.acme.Other = thirdparty_wrong:Greet", "thirdparty_wrong", PLUGIN_SOURCE
    )
    registry = load_entry_points(lazy=True)
    with pytest.raises(RegistryError, match=r"'com.acme.Other' \(acme-wrong: thirdparty_wrong:Greet\) declares"):
        registry.lookup("com.acme.Other")
