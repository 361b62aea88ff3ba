"""Flow files from bytes to Python data: size, encoding and YAML checks, duplicate keys, positions.

PyYAML keeps the last of two equal keys silently; Kestra's strict parser rejects them, and so do we.
The C loader is used when PyYAML was built with libyaml (the fast path for large repositories).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SourceError(Exception):
    """A file that cannot be read as one YAML document; `line`/`column` are 1-based when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class DuplicateKey:
    key: str
    line: int
    column: int
    first_line: int


@dataclass
class Parsed:
    data: Any
    root: Node | None
    duplicates: list[DuplicateKey] = field(default_factory=list)


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that records duplicate keys and, like Jackson, reads every mapping key as text."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[DuplicateKey] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        pairs = node.value
        own = [k.value for k, _ in pairs if isinstance(k, ScalarNode) and k.tag != _MERGE_TAG]
        if len(set(own)) != len(own):
            self._record_duplicates(node)
        mapping = super().construct_mapping(node, deep=deep)
        if not all(type(k) is str for k in mapping):
            mapping = {_key_text(k): v for k, v in mapping.items()}
        return mapping

    def _record_duplicates(self, node: MappingNode) -> None:
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first:
                self.duplicates.append(
                    DuplicateKey(key_node.value, line, key_node.start_mark.column + 1, first[key_node.value])
                )
            else:
                first[key_node.value] = line


def _key_text(key: Any) -> Any:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return str(key)
    return key


def decode(data: bytes) -> str:
    """Bytes of a flow file as text; refuse what is too big, binary or not UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        raise SourceError(f"file is {len(data) / 1024 / 1024:.1f} MiB; flow files are limited to 1 MiB")
    if b"\x00" in data:
        offset = data.index(b"\x00")
        raise SourceError("binary file (NUL byte); a flow file must be UTF-8 text", data.count(b"\n", 0, offset) + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SourceError(f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x}", line, column) from None


def parse(text: str) -> Parsed:
    """One YAML document as data, with its node tree kept for locating errors."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None and "*" in text:
            _check_expansion(root)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, text) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SourceError("YAML nesting is too deep") from None
    finally:
        loader.dispose()
    return Parsed(data, root, loader.duplicates)


def _yaml_error(exc: yaml.MarkedYAMLError, text: str) -> SourceError:
    if exc.problem == "but found another document" or (exc.context or "").startswith("expected a single document"):
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        return SourceError("a flow file holds one YAML document, but a second one starts here (---)", line, 1)
    mark = exc.problem_mark or exc.context_mark
    reason = " ".join(part for part in (exc.context, exc.problem) if part)
    hint = ""
    if mark is not None and "unhashable key" in (exc.problem or ""):
        hint = ' (a value that starts with {{ must be quoted: "{{ ... }}")'
    elif mark is not None and text[mark.index : mark.index + 1] == "\t":
        hint = " (YAML cannot be indented with tabs)"
    message = f"invalid YAML: {reason}{hint}"
    if mark is None:
        return SourceError(message)
    return SourceError(message, mark.line + 1, mark.column + 1)


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases expand to a huge tree (a 'billion laughs' alias bomb)."""
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias counts once
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_EXPANDED_NODES:
            raise SourceError(
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES} nodes (an alias bomb?)",
                node.start_mark.line + 1,
                node.start_mark.column + 1,
            )
        sizes[id(node)] = total
        return total

    size(root)


def locate(root: Node | None, loc: tuple[str | int, ...], at_key: bool = True) -> tuple[int, int] | None:
    """1-based (line, column) of the key or item that `loc` names, or of the nearest part that exists."""
    if root is None:
        return None
    node: Node = root
    mark = root.start_mark
    for part in loc:
        if isinstance(node, MappingNode):
            pair = next((p for p in node.value if _key_text_of(p[0]) == str(part)), None)
            if pair is None:
                break
            mark = pair[0].start_mark if at_key else pair[1].start_mark
            node = pair[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    else:
        if not at_key:
            mark = node.start_mark
    return mark.line + 1, mark.column + 1


def _key_text_of(node: Node) -> str | None:
    if not isinstance(node, ScalarNode):
        return None
    value = node.value
    lowered = value.lower()
    if node.tag == "tag:yaml.org,2002:bool":
        return "true" if lowered in ("true", "yes", "on", "y") else "false"
    if node.tag == "tag:yaml.org,2002:null":
        return "null"
    return value
