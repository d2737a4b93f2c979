"""Every row of every table of a database, for tests that run the engine twice (with and
without a change) and compare what each run wrote."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mailflow.mail.parse import parse_message
from mailflow.store.db import Database
from mailflow.store.models import Base, OutboxMessage

# columns (and keys of JSON columns) drawn at random, from the clock or from a signed PDF
VOLATILE = frozenset({
    "message_id", "raw", "dedupe_key", "created_at", "updated_at", "next_attempt_at",
    "verification_code", "sha256", "path", "size", "password_hash",
})  # fmt: skip


def table_rows(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Table name → its rows in primary-key order (column → value), without the VOLATILE
    columns and JSON keys; each reply carries its text as read ("text") instead of its bytes."""
    out: dict[str, list[dict[str, Any]]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in VOLATILE]
            query = select(*columns).order_by(*table.primary_key.columns)
            out[table.name] = [
                {k: scrub(v) for k, v in r._mapping.items()} for r in conn.execute(query)
            ]
        for reply in out["outbox_messages"]:  # the reply as read: its text, not its bytes
            raw = conn.scalar(select(OutboxMessage.raw).where(OutboxMessage.id == reply["id"]))
            reply["text"] = parse_message(raw or b"").text
    return out


def scrub(value: Any) -> Any:
    """A JSON column's value without its VOLATILE keys (other values as they are)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    return value


def differences(
    ours: dict[str, list[dict[str, Any]]], theirs: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """Each differing value, as "table id column: ours != theirs" (at most five per table),
    and each table whose row counts differ; [] when both runs wrote the same."""
    out = []
    for name, rows in ours.items():
        other = theirs[name]
        if len(rows) != len(other):
            out.append(f"{name}: {len(rows)} rows != {len(other)} rows")
        found = [
            f"{name} {a.get('id')} {key}: {a[key]!r} != {b[key]!r}"
            for a, b in zip(rows, other, strict=False)
            for key in a
            if a[key] != b[key]
        ]
        out += found[:5]
    return out
