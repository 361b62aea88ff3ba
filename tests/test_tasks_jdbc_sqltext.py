"""How a server database's SQL is split into statements and how `:name` parameters become placeholders: a `;` or
`:word` inside strings, quoted names, comments or dollar quotes stays where it is."""

from __future__ import annotations

import pytest

from plugins.jdbc.sqltext import pyformat, split_statements
from plugins.jdbc.urls import parse_jdbc_url
from runner.api import TaskFailed


def test_postgres_statements_split_outside_quotes_comments_and_dollar_quotes() -> None:
    sql = """insert into t values ('a;b', "c;d");
    -- a comment; with a semicolon
    create function f() returns int as $body$ begin return 1; end; $body$ language plpgsql;
    /* block; comment */ select $$x;y$$, e'it\\'s;';
    ;;
    select 1"""
    assert split_statements(sql, "postgres") == [
        "insert into t values ('a;b', \"c;d\")",
        "-- a comment; with a semicolon\n    create function f() returns int as $body$ begin return 1; end; $body$ "
        "language plpgsql",
        "/* block; comment */ select $$x;y$$, e'it\\'s;'",
        "select 1",
    ]


def test_a_trailing_comment_is_no_statement() -> None:
    assert split_statements("select 1; -- done", "postgres") == ["select 1"]
    assert split_statements("-- only a comment", "postgres") == []


def test_mysql_strings_take_backslash_escapes_and_backticks() -> None:
    sql = "insert into `a;b` values ('it\\'s; fine'); # note; here\nselect 2"
    assert split_statements(sql, "mysql") == ["insert into `a;b` values ('it\\'s; fine')", "# note; here\nselect 2"]


def test_parameters_become_placeholders_only_in_code() -> None:
    sql = "select :id, ':id', x::int, 5 % 2, '%' from t where a = :name and b = :unknown -- :id"
    text, used = pyformat(sql, {"id", "name"}, "postgres")
    assert text == "select %(id)s, ':id', x::int, 5 %% 2, '%%' from t where a = %(name)s and b = :unknown -- :id"
    assert used == ["id", "name"]


@pytest.mark.parametrize(
    ("url", "host", "port", "database", "options"),
    [
        (
            "jdbc:postgresql://db.example:6543/sales?sslmode=require",
            "db.example",
            6543,
            "sales",
            {"sslmode": "require"},
        ),
        ("jdbc:postgresql://localhost/", "localhost", 5432, None, {}),
        ("jdbc:postgresql://[::1]:5433/x", "::1", 5433, "x", {}),
    ],
)
def test_jdbc_urls(url: str, host: str, port: int, database: str | None, options: dict[str, str]) -> None:
    parsed = parse_jdbc_url(url, "postgresql", 5432)
    assert (parsed.host, parsed.port, parsed.database, parsed.options) == (host, port, database, options)


def test_a_url_with_a_password_is_not_shown_in_its_error() -> None:
    with pytest.raises(TaskFailed) as failed:
        parse_jdbc_url("jdbc:postgresql://h:notaport/db?password=hunter2-Secret", "postgresql", 5432)
    assert "port that is not a number" in str(failed.value)
    assert "hunter2-Secret" not in str(failed.value)
