"""The inbox: raw messages stored durably once, then claimed, processed, finished or set aside.

This module stores raw mail (store_raw, store_many); claiming and writing claimed rows live in
`mailflow.runners.inbox_claims`, whose public names stay importable from here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow.runners.inbox_claims import (
    DEFAULT_LEASE,
    ERROR_CHARS,
    MAX_ATTEMPTS,
    Handling,
    Processor,
    Read,
    ReadStep,
    WriteStep,
    claim,
    claim_batch,
    custom_handling,
    process_claimed,
    read_claimed,
    release_all_claims,
    waiting_count,
    write_batch,
    write_one,
)
from mailflow.store.models import INBOX_SOURCES, InboxMessage

__all__ = [
    "DEFAULT_LEASE",
    "ERROR_CHARS",
    "MAX_ATTEMPTS",
    "Handling",
    "Processor",
    "Read",
    "ReadStep",
    "WriteStep",
    "claim",
    "claim_batch",
    "custom_handling",
    "known_uids",
    "message_id_of",
    "process_claimed",
    "read_claimed",
    "release_all_claims",
    "store_many",
    "store_raw",
    "waiting_count",
    "write_batch",
    "write_one",
]


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID header of a raw message (angle brackets kept), or None."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:262144])
        value = headers.get("Message-ID")
    except Exception:  # hostile headers must never stop storage
        return None
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:998] or None


def store_raw(
    session: Session,
    raw: bytes,
    *,
    mailbox: str,
    source: str,
    uidvalidity: int | None = None,
    uid: int | None = None,
    now: dt.datetime,
) -> InboxMessage | None:
    """Add one raw message to the inbox in the caller's transaction (the caller commits).

    Returns None when this exact server copy (mailbox, UIDVALIDITY, UID) is already stored.
    A copy seen again under another UID (UIDVALIDITY change, SMTP retry, second mailbox) with
    the same Message-ID and content hash is stored with status "duplicate": it keeps the sync
    state of its folder but is never processed. An unknown `source` is a programming error and
    raises ValueError (it must not look like an already-stored copy).
    """
    if source not in INBOX_SOURCES:
        raise ValueError(f"origen de correo desconocido {source!r}; use {', '.join(INBOX_SOURCES)}")
    if uid is not None:
        known = session.scalar(
            select(InboxMessage.id).where(
                InboxMessage.mailbox == mailbox,
                InboxMessage.uidvalidity == uidvalidity,
                InboxMessage.uid == uid,
            )
        )
        if known is not None:
            return None
    digest = hashlib.sha256(raw).hexdigest()
    message_id = message_id_of(raw)
    same = select(InboxMessage.id).where(
        InboxMessage.sha256 == digest, InboxMessage.status != "duplicate"
    )
    if message_id is not None:
        same = same.where(InboxMessage.message_id == message_id)
    original = session.scalar(same.limit(1))
    row = _new_row(raw, digest, message_id, mailbox, source, uidvalidity, uid, now)
    if original is not None:
        row.status = "duplicate"
        row.last_error = _duplicate_of(original)
        row.processed_at = now
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None  # a concurrent poller stored the same server copy first
    return row


def store_many(
    session: Session,
    items: Sequence[tuple[int | None, bytes]],
    *,
    mailbox: str,
    source: str,
    uidvalidity: int | None = None,
    now: dt.datetime,
) -> list[InboxMessage | None]:
    """Add many raw messages, given as (uid or None, raw), in the caller's transaction, with
    the semantics of `store_raw` for each one in order; return one entry per item: the stored
    row (flushed: it has its id), or None for a server copy already stored.

    Look-ups are made once for the whole chunk (known UIDs, earlier copies by content hash)
    and the rows are inserted in one flush. When a concurrent poller stored some of these
    copies first (IntegrityError), the chunk is stored again message by message.
    """
    if source not in INBOX_SOURCES:
        raise ValueError(f"origen de correo desconocido {source!r}; use {', '.join(INBOX_SOURCES)}")
    uids = [uid for uid, _ in items if uid is not None]
    known = known_uids(session, mailbox, uidvalidity, uids) if uids else set()
    digests = [hashlib.sha256(raw).hexdigest() for _, raw in items]
    earlier: dict[str, list[tuple[int, str | None]]] = {}
    unique = sorted(set(digests))
    for start in range(0, len(unique), 500):
        found = session.execute(
            select(InboxMessage.id, InboxMessage.sha256, InboxMessage.message_id)
            .where(
                InboxMessage.sha256.in_(unique[start : start + 500]),
                InboxMessage.status != "duplicate",
            )
            .order_by(InboxMessage.id)
        )
        for row_id, digest, message_id in found:
            earlier.setdefault(digest, []).append((row_id, message_id))
    rows: list[InboxMessage | None] = []
    originals: list[tuple[InboxMessage, InboxMessage]] = []  # (duplicate, original in chunk)
    chunk: dict[str, list[InboxMessage]] = {}
    seen_uids: set[int] = set()
    for (uid, raw), digest in zip(items, digests, strict=True):
        if uid is not None and (uid in known or uid in seen_uids):
            rows.append(None)
            continue
        if uid is not None:
            seen_uids.add(uid)
        message_id = message_id_of(raw)
        row = _new_row(raw, digest, message_id, mailbox, source, uidvalidity, uid, now)
        stored = next(
            (i for i, m in earlier.get(digest, []) if message_id is None or m == message_id), None
        )
        in_chunk = next(
            (r for r in chunk.get(digest, []) if message_id is None or r.message_id == message_id),
            None,
        )
        if stored is not None or in_chunk is not None:
            row.status = "duplicate"
            row.processed_at = now
            if stored is not None:
                row.last_error = _duplicate_of(stored)
            else:
                assert in_chunk is not None
                originals.append((row, in_chunk))
        else:
            chunk.setdefault(digest, []).append(row)
        rows.append(row)
    fresh = [row for row in rows if row is not None]
    try:
        with session.begin_nested():
            session.add_all(fresh)
            session.flush()
            for row, original in originals:
                row.last_error = _duplicate_of(original.id)
            session.flush()
    except IntegrityError:  # a concurrent poller stored some of these copies first
        return [
            store_raw(
                session,
                raw,
                mailbox=mailbox,
                source=source,
                uidvalidity=uidvalidity,
                uid=uid,
                now=now,
            )
            for uid, raw in items
        ]
    return rows


def _duplicate_of(original: int) -> str:
    return f"duplicado del mensaje {original} (mismo Message-ID y contenido)"


def known_uids(
    session: Session, mailbox: str, uidvalidity: int | None, uids: list[int]
) -> set[int]:
    """Which of these UIDs of (mailbox, UIDVALIDITY) are already in the inbox."""
    found: set[int] = set()
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        found.update(
            int(u)
            for u in session.scalars(
                select(InboxMessage.uid).where(
                    InboxMessage.mailbox == mailbox,
                    InboxMessage.uidvalidity == uidvalidity,
                    InboxMessage.uid.in_(chunk),
                )
            )
            if u is not None
        )
    return found


def _new_row(
    raw: bytes,
    digest: str,
    message_id: str | None,
    mailbox: str,
    source: str,
    uidvalidity: int | None,
    uid: int | None,
    now: dt.datetime,
) -> InboxMessage:
    """A new inbox row ("new", no attempts) for `raw` as received at `now`."""
    return InboxMessage(
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=message_id,
        sha256=digest,
        raw=raw,
        size=len(raw),
        source=source,
        arrived_at=now,
        status="new",
        attempts=0,
    )
