"""Plugin registry: task, trigger, condition and task-runner types, found through entry points.

Type names match case-insensitively, like Kestra's (`ClassTypeIdentifier` lower-cases them), and a
legacy alias resolves to its current class. YAML never names a Python import path: only installed
plugins can be reached, so a commit cannot make the daemon import arbitrary code.

An entry point's name is its canonical type name, so the registry knows every type without importing a
plugin: `load_entry_points(lazy=True)` (what the command line and the daemon use) imports a plugin's module
the first time its type is resolved. Legacy aliases are declared by the classes themselves, so a name that is
no entry point (an alias, or a typo to suggest for) imports every plugin once, then is answered as before. A
plugin that fails to load is reported where its type is used (the validator turns it into that task's error).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runner.errors import GitSyncError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from runner.plugin import Kind, Plugin

ENTRY_POINT_GROUP = "gitsync.plugins"


class RegistryError(GitSyncError):
    """A plugin is broken or two plugins claim the same type name."""


@dataclass
class Registry:
    """Every known plugin type, keyed by lower-cased canonical name and alias; entry points not imported yet wait
    in `_pending`, keyed by their lower-cased name."""

    _by_name: dict[str, type[Plugin]] = field(default_factory=dict)
    _origin: dict[str, str] = field(default_factory=dict)
    _pending: dict[str, EntryPoint] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def register(self, cls: type[Plugin], origin: str = "in-process") -> None:
        if not cls.type_name:
            raise RegistryError(f"{cls.__module__}.{cls.__qualname__} ({origin}) has no type_name")
        with self._lock:
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
        with self._lock:
            for name in (cls.type_name, *cls.aliases):
                if self._by_name.get(name.lower()) is cls:
                    del self._by_name[name.lower()]
                    del self._origin[name.lower()]

    def add_entry_point(self, ep: EntryPoint) -> None:
        """Know `ep`'s type by its name; its module is imported when the type is first resolved."""
        key = ep.name.lower()
        with self._lock:
            known = self._pending.get(key)
            if known is not None and known.value != ep.value:
                raise RegistryError(
                    f"type {ep.name!r} is claimed by both {_origin(known)} and {_origin(ep)}; uninstall one of them"
                )
            self._pending[key] = ep

    def names(self) -> list[str]:
        """The canonical name of every known type, sorted, without importing a plugin."""
        with self._lock:
            loaded = {cls.type_name for cls in self._by_name.values()}
            return sorted(loaded | {ep.name for ep in self._pending.values()})

    def lookup(self, type_name: str) -> type[Plugin] | None:
        key = type_name.lower()
        cls = self._by_name.get(key)
        if cls is not None or not self._pending:
            return cls
        with self._lock:
            ep = self._pending.get(key)
            if ep is not None:
                self._load(key, ep)
            else:  # an alias (declared by its class) or an unknown name: every plugin must be known to tell
                self.load_all(strict=False)
            return self._by_name.get(key)

    def load_all(self, strict: bool = True) -> None:
        """Import every plugin not imported yet (aliases, suggestions, the schema need them all). `strict`: the
        first that fails to load raises; otherwise a broken one stays pending, to fail where its type is used."""
        with self._lock:
            for key in sorted(self._pending):
                ep = self._pending.get(key)
                if ep is None:
                    continue
                try:
                    self._load(key, ep)
                except RegistryError:
                    if strict:
                        raise

    def _load(self, key: str, ep: EntryPoint) -> None:
        self.register(_load_class(ep), _origin(ep))
        del self._pending[key]

    def classes(self, kind: Kind | None = None, strict: bool = True) -> list[type[Plugin]]:
        """Each registered class once, sorted by canonical name (every plugin is imported; `load_all`)."""
        self.load_all(strict)
        unique = {cls.type_name: cls for cls in self._by_name.values() if kind is None or cls.kind == kind}
        return [unique[name] for name in sorted(unique)]

    def canonical(self, type_name: str) -> str | None:
        cls = self.lookup(type_name)
        return cls.type_name if cls else None

    def suggest(self, type_name: str, kind: Kind, limit: int = 3) -> list[str]:
        """The closest known names of this kind, for 'did you mean …'."""
        import difflib

        names = {cls.type_name: cls.type_name.lower() for cls in self.classes(kind, strict=False)}
        for key, cls in self._by_name.items():
            if cls.kind == kind and key not in names.values():
                names.setdefault(_display(cls, key), key)
        lowered = type_name.lower()
        family = _family(lowered)

        def kin(key: str) -> bool:
            """Of the same plugin family, or of one whose name is a typo of it (`scrpts`, `scripts`)."""
            other = _family(key)
            return family is None or other is None or difflib.SequenceMatcher(None, family, other).ratio() >= 0.8

        close = [
            key for key in difflib.get_close_matches(lowered, list(names.values()), n=limit, cutoff=0.8) if kin(key)
        ]
        last = lowered.rsplit(".", 1)[-1]
        same_leaf = [key for key in names.values() if key.rsplit(".", 1)[-1] == last and key not in close and kin(key)]
        display = {key: name for name, key in names.items()}
        return [display[key] for key in (close + same_leaf)[:limit]]


def _family(name: str) -> str | None:
    """The plugin family of a lower-cased `io.kestra.plugin.<family>.…` name (None for other names): a type of
    another family that merely looks alike (`aws.s3.Upload`, `fs.sftp.Upload`) is not suggested."""
    parts = name.split(".")
    return parts[3] if len(parts) > 4 and parts[:3] == ["io", "kestra", "plugin"] else None


def _display(cls: type[Plugin], key: str) -> str:
    for name in (cls.type_name, *cls.aliases):
        if name.lower() == key:
            return name
    return key


def _origin(ep: EntryPoint) -> str:
    return f"{ep.dist.name if ep.dist else 'unknown distribution'}: {ep.value}"


def _load_class(ep: EntryPoint) -> type[Plugin]:
    """The class `ep` names, checked: a Plugin subclass whose type_name is the entry point's name."""
    from runner.plugin import Plugin

    origin = _origin(ep)
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
    return cls


def load_entry_points(registry: Registry | None = None, *, lazy: bool = False) -> Registry:
    """Every plugin class that an installed distribution declares. Eager (the default): each is imported now and
    a bad one fails loudly here. `lazy`: the types are known by their entry-point names, and a plugin is imported
    (and a bad one reported) when its type is first resolved."""
    from importlib.metadata import entry_points

    registry = registry or Registry()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        registry.add_entry_point(ep)
    if not lazy:
        registry.load_all()
    return registry
