"""Owner rows: the processes (a daemon, a `gitsync run`) that run executions, each renewing a lease.

An execution's `owner` names one of these rows. A row whose lease ran out, or whose process is known to be gone,
is removed by whoever resolves what that process left (`gitsync.state.executions.resolve_lost`); until then the
owner's executions are left alone. At most one row is a daemon (`claim_daemon`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitsync.state.database import Store, execute_in, now_iso

_COLUMNS = ("id", "kind", "host", "machine", "pid", "label", "started_at", "renewed_at", "lease")


def describe(row: Mapping[str, Any]) -> str:
    """An owner row in words: "gitsync run acme.etl (pid 4242 on build-1)"."""
    return f"{row['label']} (pid {row['pid']} on {row['host']})"


def register(store: Store, owner: Mapping[str, Any], now: float) -> None:
    """Write (or write again, after another process removed it) this process's row, renewed now."""
    with store.atomic() as conn:
        _insert(conn, owner, now)


def renew(store: Store, owner: Mapping[str, Any], now: float) -> bool:
    """The heartbeat: renew the row; False when it was gone (another process thought this one dead) and is
    written again."""
    with store.atomic() as conn:
        changed = conn.execute("UPDATE owners SET renewed_at = ? WHERE id = ?", (now, owner["id"])).rowcount
        if not changed:
            _insert(conn, owner, now)
    return bool(changed)


def release(store: Store, owner_id: str) -> None:
    """A clean stop: the row goes, and executions it created but never started are left to whoever starts
    CREATED executions (a daemon)."""
    with store.atomic() as conn:
        conn.execute(
            "UPDATE executions SET owner = NULL WHERE owner = ? AND state IN ('CREATED', 'QUEUED')", (owner_id,)
        )
        conn.execute("DELETE FROM owners WHERE id = ?", (owner_id,))


def all_owners(store: Store) -> list[dict[str, Any]]:
    return store.query(f"SELECT {', '.join(_COLUMNS)} FROM owners ORDER BY started_at")


def claim_daemon(store: Store, owner: Mapping[str, Any], gone: Sequence[str], now: float) -> dict[str, Any] | None:
    """Register `owner` as the database's one daemon, in one transaction: the rows of `gone` owners are removed
    first; when another daemon's row remains, nothing is written and that row is returned."""
    with store.atomic() as conn:
        other = conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM owners WHERE kind = 'daemon' AND id != ?", (owner["id"],)
        ).fetchall()
        alive = [dict(row) for row in other if row["id"] not in set(gone)]
        if alive:
            return alive[0]
        execute_in(conn, "DELETE FROM owners WHERE id IN ({ids})", [row["id"] for row in other])
        _insert(conn, owner, now)
    return None


def _insert(conn: Any, owner: Mapping[str, Any], now: float) -> None:
    values = {**owner, "renewed_at": now, "started_at": owner.get("started_at") or now_iso()}
    conn.execute(
        f"INSERT OR REPLACE INTO owners ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
        tuple(values[column] for column in _COLUMNS),
    )
