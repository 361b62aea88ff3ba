"""A page as a user's browser sees it, for tests: HTML parsed into elements (the standard library's parser), found
by id, tag, class or attribute, with the text a reader sees (entities decoded, blanks collapsed)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        parts: list[str] = []
        stack: list[Element | str] = [self]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                parts.append(node)
            else:
                stack.extend(reversed(node.children))
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def raw_text(self) -> str:
        """The text as written (blanks kept): a <pre>'s content."""
        return "".join(c if isinstance(c, str) else c.raw_text() for c in self.children)

    def elements(self) -> list[Element]:
        out: list[Element] = []
        stack = [c for c in reversed(self.children) if isinstance(c, Element)]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(c for c in reversed(node.children) if isinstance(c, Element))
        return out

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        def matches(e: Element) -> bool:
            if tag is not None and e.tag != tag:
                return False
            if cls is not None and cls not in e.attrs.get("class", "").split():
                return False
            return all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())

        return [e for e in self.elements() if matches(e)]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'}> with class={cls!r} {attrs} on the page"
        return found[0]

    def by_id(self, ident: str) -> Element:
        return self.find(id=ident)

    def has_id(self, ident: str) -> bool:
        return bool(self.find_all(id=ident))

    def rows(self) -> list[list[str]]:
        """A table's body rows, each the text of its cells (th and td)."""
        body = self.find_all("tbody") or [self]
        return [[c.text() for c in row.children if isinstance(c, Element) and c.tag in ("th", "td")]
                for row in body[0].find_all("tr")]  # fmt: skip

    def links(self) -> dict[str, str]:
        """Link text -> href."""
        return {a.text(): a.attrs.get("href", "") for a in self.find_all("a")}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
