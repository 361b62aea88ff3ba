"""The text of a server database's SQL: its statements split on `;`, and Kestra's `:name` parameters as the
drivers' `%(name)s` placeholders. Strings, quoted names, comments and PostgreSQL's dollar quotes are skipped, so a
`;` or a `:word` inside them stays what it is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

Dialect = Literal["postgres", "mysql"]

_DOLLAR = re.compile(r"\$([A-Za-z_]\w*)?\$")
_NAME = re.compile(r"[A-Za-z_]\w*")


def _pieces(sql: str, dialect: Dialect) -> Iterator[tuple[bool, str]]:
    """(is code, text) runs: code outside quotes and comments, and the quoted or commented runs whole."""
    i, start, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        end = -1
        if c in "'\"" or (c == "`" and dialect == "mysql"):
            escaped = dialect == "mysql" or (c == "'" and i > 0 and sql[i - 1] in "eE")
            end = _quote_end(sql, i, c, escaped)
        elif (c == "-" and sql.startswith("--", i)) or (c == "#" and dialect == "mysql"):
            newline = sql.find("\n", i)
            end = n if newline < 0 else newline
        elif c == "/" and sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            end = n if close < 0 else close + 2
        elif c == "$" and dialect == "postgres" and not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            match = _DOLLAR.match(sql, i)
            if match:
                close = sql.find(match.group(0), match.end())
                end = n if close < 0 else close + len(match.group(0))
        if end < 0:
            i += 1
            continue
        if start < i:
            yield True, sql[start:i]
        yield False, sql[i:end]
        i = start = end
    if start < n:
        yield True, sql[start:]


def _quote_end(sql: str, i: int, quote: str, backslash: bool) -> int:
    j = i + 1
    while j < len(sql):
        if backslash and sql[j] == "\\":
            j += 2
            continue
        if sql[j] == quote:
            if sql.startswith(quote * 2, j):
                j += 2
                continue
            return j + 1
        j += 1
    return len(sql)


def split_statements(sql: str, dialect: Dialect) -> list[str]:
    """The statements of `sql`, each stripped, empty ones left out."""
    found: list[str] = []
    buffer = ""
    for code, text in _pieces(sql, dialect):
        if not code:
            buffer += text
            continue
        parts = text.split(";")
        for part in parts[:-1]:
            buffer += part
            if _has_code(buffer, dialect):
                found.append(buffer.strip())
            buffer = ""
        buffer += parts[-1]
    if _has_code(buffer, dialect):
        found.append(buffer.strip())
    return found


def _has_code(text: str, dialect: Dialect) -> bool:
    return any(code and piece.strip() for code, piece in _pieces(text, dialect))


def pyformat(sql: str, names: set[str], dialect: Dialect) -> tuple[str, list[str]]:
    """`sql` with `:name` (a name in `names`) as `%(name)s` and every other `%` doubled, as psycopg and PyMySQL
    read a query with parameters; and the names used. `::type` casts and unknown names are left alone."""
    out: list[str] = []
    used: list[str] = []
    for code, text in _pieces(sql, dialect):
        if not code:
            out.append(text.replace("%", "%%"))
            continue
        text = text.replace("%", "%%")
        pieces: list[str] = []
        i = 0
        while i < len(text):
            if text[i] == ":" and not text.startswith("::", i) and (i == 0 or text[i - 1] != ":"):
                match = _NAME.match(text, i + 1)
                if match and match.group(0) in names:
                    pieces.append(f"%({match.group(0)})s")
                    used.append(match.group(0))
                    i = match.end()
                    continue
            pieces.append(text[i])
            i += 1
        out.append("".join(pieces))
    return "".join(out), used
