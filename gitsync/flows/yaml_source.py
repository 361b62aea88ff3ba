"""Flow files from bytes to Python data: size, encoding and YAML checks, duplicate keys, positions.

PyYAML keeps the last of two equal keys silently; Kestra's strict parser rejects them, and so do we.
The C loader is used when PyYAML was built with libyaml (the fast path for large repositories).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gitsync.errors import GitSyncError

MAX_FILE_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"

if TYPE_CHECKING:  # CSafeLoader (libyaml's parser) has SafeLoader's constructor and resolver API
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# An alias needs an anchor, so a text with no `&name` (or no `*name`) token cannot hold an alias bomb. The tokens
# start a node: after a line start, a space, a flow indicator or ':'. Cron strings (`* * *`) do not match.
_ANCHOR = re.compile(r"(?:^|[\s\[{,:])&[^\s\[\]{},]", re.MULTILINE)
_ALIAS = re.compile(r"(?:^|[\s\[{,:])\*[^\s\[\]{},]", re.MULTILINE)


class SourceError(GitSyncError):
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


class _StrictLoader(_BaseLoader):
    """Safe loader that records duplicate keys and, like Jackson, reads every mapping key as the text written.

    Timestamps stay text too (`2024-01-01` is the string Jackson would give a String property);
    date-typed inputs parse it themselves.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[DuplicateKey] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        pairs = node.value
        if all(k.tag == _STR_TAG for k, _ in pairs):  # the common case: every key is plain text
            if len(pairs) > 1 and len({k.value for k, _ in pairs}) != len(pairs):
                self._record_duplicates(node)
            return super().construct_mapping(node, deep=deep)
        return self._construct_text_keys(node, deep)

    def _construct_text_keys(self, node: MappingNode, deep: bool) -> dict[str, Any]:
        """Keys as the text written (`true:` is "true", `1:` is "1", `~:` is "~"), merge keys expanded.

        Building the dict from the nodes keeps `true:` and `1:` apart (as Python values, True == 1).
        """
        self._record_duplicates(node)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
                )
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
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


# types-PyYAML binds the method's self to SafeConstructor, which its loader-bound type variable does not accept.
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _BaseLoader.construct_yaml_str)  # type: ignore[type-var]


def decode(data: bytes) -> str:
    """Bytes of a flow file as text; refuse what is too big, binary or not UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        raise SourceError(
            f"file is larger than 1 MiB ({len(data):,} bytes read); flow files are limited to 1 MiB "
            "(move large data into namespace files)"
        )
    if b"\x00" in data:
        offset = data.index(b"\x00")
        raise SourceError("binary file (NUL byte); a flow file must be UTF-8 text", *_position(data, offset))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} (save the file as UTF-8)",
            *_position(data, exc.start),
        ) from None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of a byte offset."""
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def parse(text: str) -> Parsed:
    """One YAML document as data, with its node tree kept for locating errors."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None and "&" in text and _ANCHOR.search(text) and _ALIAS.search(text):
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
    mark = exc.problem_mark or exc.context_mark
    if exc.problem == "but found another document" or (exc.context or "").startswith("expected a single document"):
        line = mark.line + 1 if mark else None
        return SourceError("a flow file holds one YAML document, but a second one starts here (---)", line, 1)
    message = f"invalid YAML: {_explain(exc, text)}"
    if (exc.context or "").startswith(("while scanning an alias", "while scanning an anchor")):
        mark = exc.context_mark or mark  # where the value starts, not the character after the '*'
    if mark is None:
        return SourceError(message)
    column = mark.column + 1
    if "{{" in message and mark.index > 0 and text[mark.index - 1] == "{":
        column -= 1  # point at the first brace of an unquoted `{{ ... }}`
    return SourceError(message, mark.line + 1, column)


_OPENERS = {"flow sequence": ("[", "]", "list"), "flow mapping": ("{", "}", "mapping")}


def _explain(exc: yaml.MarkedYAMLError, text: str) -> str:
    """PyYAML's reason in the words of someone writing a flow, with the likely fix."""
    context, problem = exc.context or "", exc.problem or ""
    start = exc.context_mark
    at = exc.problem_mark
    for name, (opener, closer, word) in _OPENERS.items():
        if context == f"while parsing a {name}" and problem.startswith("did not find expected") and start:
            return (
                f"expected ',' or '{closer}' in the {word} opened with '{opener}' at line {start.line + 1}, "
                f"column {start.column + 1} (is the '{opener}' not closed, or a ',' missing?)"
            )
    if problem in ("did not find expected key", "did not find expected '-' indicator") and start:
        word = "mapping" if "key" in problem else "list"
        return (
            f"this line does not fit the {word} that starts at line {start.line + 1} "
            "(check the indentation: keys of one mapping, and items of one list, must line up)"
        )
    if (at is not None and text[at.index : at.index + 1] == "\t") or "tab character" in problem:
        return "a tab character where YAML expects indentation (indent with spaces, never tabs)"
    if "unhashable key" in problem:
        if at is not None and "{{" in text[max(at.index - 1, 0) : at.index + 2]:
            return 'a value that starts with {{ must be quoted: "{{ ... }}"'
        return "a mapping key must be a plain value, not a list or a mapping"
    if context in ("while scanning an alias", "while scanning an anchor"):
        sign = "*" if "alias" in context else "&"
        return f"a value that starts with '{sign}' must be quoted (YAML reads {sign}name as an alias or anchor)"
    if problem == "found undefined alias" and at is not None:
        name = text[at.index :].split(None, 1)[0]
        return f"undefined alias {name} (no anchor &{name[1:]} before it; quote the value if it is not an alias)"
    if problem.startswith("could not determine a constructor for the tag"):
        tag = problem.rsplit(" ", 1)[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
        return f"unsupported YAML tag {tag} (a flow holds plain values: strings, numbers, lists and mappings)"
    if problem == "mapping values are not allowed here" or problem.startswith("mapping values are not allowed"):
        return "unexpected ':' (check the indentation, or quote a value that contains ': ')"
    return _join(context, problem)


def _join(context: str, problem: str) -> str:
    return " ".join(part for part in (context, problem) if part)


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases expand to a huge tree (a 'billion laughs' alias bomb) or into itself.

    Iterative, so deep nesting costs no Python recursion; each node is sized once (aliases share nodes).
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > MAX_EXPANDED_NODES:
                raise SourceError(
                    f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?); "
                    "a flow should not repeat an anchor that often",
                    *_mark(node),
                )
            open_nodes.discard(key)
            sizes[key] = total
        elif key in open_nodes:
            raise SourceError(
                "a YAML alias refers to a node that contains it (a recursive structure); flows cannot be recursive",
                *_mark(node),
            )
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


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
    """A key as the loader reads it: the text written, for a scalar."""
    return node.value if isinstance(node, ScalarNode) else None
