"""Plugin registry: task, trigger, condition and task-runner types, found through entry points.

Type names match case-insensitively, like Kestra's (`ClassTypeIdentifier` lower-cases them), and a
legacy alias resolves to its current class. YAML never names a Python import path: only installed
plugins can be reached, so a commit cannot make the daemon import arbitrary code.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from runner.errors import GitSyncError
from runner.plugin import Kind, Plugin

ENTRY_POINT_GROUP = "gitsync.plugins"


class RegistryError(GitSyncError):
    """A plugin is broken or two plugins claim the same type name."""


@dataclass
class Registry:
    """Every known plugin type, keyed by lower-cased canonical name and alias."""

    _by_name: dict[str, type[Plugin]] = field(default_factory=dict)
    _origin: dict[str, str] = field(default_factory=dict)

    def register(self, cls: type[Plugin], origin: str = "in-process") -> None:
        if not cls.type_name:
            raise RegistryError(f"{cls.__module__}.{cls.__qualname__} ({origin}) has no type_name")
        for name in (cls.type_name, *cls.aliases):
            key = name.lower()
            existing = self._by_name.get(key)
            if existing is not None and existing is not cls:
                raise RegistryError(
                    f"type {name!r} is claimed by both {existing.type_name} ({self._origin[key]}) "
                    f"and {cls.type_name} ({origin})"
                )
            self._by_name[key] = cls
            self._origin[key] = origin

    def unregister(self, cls: type[Plugin]) -> None:
        for name in (cls.type_name, *cls.aliases):
            if self._by_name.get(name.lower()) is cls:
                del self._by_name[name.lower()]
                del self._origin[name.lower()]

    def lookup(self, type_name: str) -> type[Plugin] | None:
        return self._by_name.get(type_name.lower())

    def classes(self, kind: Kind | None = None) -> list[type[Plugin]]:
        """Each registered class once, sorted by canonical name."""
        unique = {cls.type_name: cls for cls in self._by_name.values() if kind is None or cls.kind == kind}
        return [unique[name] for name in sorted(unique)]

    def canonical(self, type_name: str) -> str | None:
        cls = self.lookup(type_name)
        return cls.type_name if cls else None

    def suggest(self, type_name: str, kind: Kind, limit: int = 3) -> list[str]:
        """The closest known names of this kind, for 'did you mean …'."""
        names = {cls.type_name: cls.type_name.lower() for cls in self.classes(kind)}
        for key, cls in self._by_name.items():
            if cls.kind == kind and key not in names.values():
                names.setdefault(_display(cls, key), key)
        lowered = type_name.lower()
        close = difflib.get_close_matches(lowered, list(names.values()), n=limit, cutoff=0.8)
        last = lowered.rsplit(".", 1)[-1]
        same_leaf = [key for key in names.values() if key.rsplit(".", 1)[-1] == last and key not in close]
        display = {key: name for name, key in names.items()}
        return [display[key] for key in (close + same_leaf)[:limit]]


def _display(cls: type[Plugin], key: str) -> str:
    for name in (cls.type_name, *cls.aliases):
        if name.lower() == key:
            return name
    return key


def load_entry_points(registry: Registry | None = None) -> Registry:
    """Register every plugin class that an installed distribution declares; fail loudly on a bad one."""
    registry = registry or Registry()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = f"{ep.dist.name if ep.dist else 'unknown distribution'}: {ep.value}"
        try:
            cls = ep.load()
        except Exception as exc:  # a broken third-party plugin must name itself
            raise RegistryError(f"plugin {ep.name!r} ({origin}) failed to load: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise RegistryError(f"plugin {ep.name!r} ({origin}) is not a runner.plugin.Plugin subclass")
        if cls.type_name != ep.name:
            raise RegistryError(
                f"plugin {ep.name!r} ({origin}) declares type_name {cls.type_name!r}; "
                "the entry-point name must be the canonical type"
            )
        registry.register(cls, origin)
    return registry
