"""The inbox: raw messages stored durably once, then claimed, processed, finished or set aside."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow.audit import record
from mailflow.db import Database, claim_rows
from mailflow.models import INBOX_SOURCES, InboxMessage

if TYPE_CHECKING:
    from mailflow.app import App

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
DEFAULT_LEASE = dt.timedelta(minutes=5)
ERROR_CHARS = 2000

Processor = Callable[["App", Session, InboxMessage, dt.datetime], None]


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
    row = InboxMessage(
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=message_id,
        sha256=digest,
        raw=raw,
        size=len(raw),
        source=source,
        arrived_at=now,
        status="new" if original is None else "duplicate",
        attempts=0,
    )
    if original is not None:
        row.last_error = f"duplicado del mensaje {original} (mismo Message-ID y contenido)"
        row.processed_at = now
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None  # a concurrent poller stored the same server copy first
    return row


def known_uids(session: Session, mailbox: str, uidvalidity: int, uids: list[int]) -> set[int]:
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


def claim_batch(
    db: Database, worker_id: str, n: int, now: dt.datetime, lease: dt.timedelta = DEFAULT_LEASE
) -> list[int]:
    """Claim up to n waiting rows (new, or processing with an expired lease) for this worker."""
    with db.session() as session:
        stmt = (
            select(InboxMessage)
            .where(
                or_(
                    InboxMessage.status == "new",
                    and_(
                        InboxMessage.status == "processing",
                        InboxMessage.claimed_until < now,
                    ),
                )
            )
            .order_by(InboxMessage.id)
            .limit(n)
        )
        ids = []
        for row in claim_rows(session, stmt):
            if row.status == "processing":  # its worker died mid-message: that try counts
                row.attempts += 1
                if row.attempts >= MAX_ATTEMPTS:
                    _set_aside(session, row, now, row.last_error or "el proceso se interrumpió")
                    continue
            row.status = "processing"
            row.claimed_by = worker_id
            row.claimed_until = now + lease
            ids.append(row.id)
        return ids


def process_claimed(
    app: App,
    row_id: int,
    worker_id: str,
    now: dt.datetime,
    *,
    process: Processor | None = None,
) -> str:
    """Process one claimed row; return its resulting status.

    With the default processor the message is first read (parsed and decided, under the
    per-message CPU budget) with no write transaction open, then its effects are written in
    one short transaction. A custom `process` runs whole inside that transaction.
    On an exception the transaction is rolled back and, in a new one, the attempt is counted
    and the error kept; after MAX_ATTEMPTS the row is set aside with an exception event for
    the staff queue. A row no longer claimed by this worker is left alone ("lost").
    """
    db = app.database
    try:
        if process is None:
            from mailflow.pipeline import process_inbox_message, read_inbox_message

            with db.session(readonly=True) as session:
                row = session.get(InboxMessage, row_id)
                if row is None or row.status != "processing" or row.claimed_by != worker_id:
                    return "lost"
            reading = read_inbox_message(app, row, now)  # no transaction open while parsing

            def process(app: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
                process_inbox_message(app, session, row, now, reading)

        with db.session() as session:
            row = session.get(InboxMessage, row_id)
            if row is None or row.status != "processing" or row.claimed_by != worker_id:
                return "lost"
            process(app, session, row, now)
            if row.status == "processing":
                row.status = "done"
            row.claimed_by = None
            row.claimed_until = None
            if row.processed_at is None:
                row.processed_at = now
            return row.status
    except Exception as exc:  # any failure is recorded, never propagated
        log.exception("inbox message %s failed", row_id)
        return _record_failure(db, row_id, worker_id, now, exc)


def _record_failure(
    db: Database, row_id: int, worker_id: str, now: dt.datetime, exc: Exception
) -> str:
    error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
    with db.session() as session:
        row = session.get(InboxMessage, row_id)
        if row is None or row.claimed_by != worker_id:
            return "lost"
        row.attempts += 1
        row.last_error = error
        row.claimed_by = None
        row.claimed_until = None
        if row.attempts >= MAX_ATTEMPTS:
            _set_aside(session, row, now, error)
        else:
            row.status = "new"
        return row.status


def _set_aside(session: Session, row: InboxMessage, now: dt.datetime, error: str) -> None:
    row.status = "set_aside"
    row.disposition = "review"
    row.claimed_by = None
    row.claimed_until = None
    row.processed_at = now
    record(
        session,
        "exception",
        f"Error al procesar: {error} (tras {row.attempts} intentos)",
        at=now,
        case_id=row.case_id,
        inbox_message_id=row.id,
        data={"attempts": row.attempts, "error": error},
    )


def release_all_claims(db: Database, now: dt.datetime) -> int:
    """Return every row claimed by a dead run to the queue (only when no other worker runs).

    The try that died counts as an attempt; rows that reach MAX_ATTEMPTS are set aside.
    """
    with db.session() as session:
        result = session.execute(
            update(InboxMessage)
            .where(InboxMessage.status == "processing")
            .values(claimed_until=now - dt.timedelta(seconds=1))
        )
        return int(getattr(result, "rowcount", 0) or 0)


def waiting_count(db: Database) -> int:
    """How many rows wait to be processed (new or processing)."""
    with db.session(readonly=True) as session:
        value = session.scalar(
            select(func.count(InboxMessage.id)).where(
                InboxMessage.status.in_(("new", "processing"))
            )
        )
        return int(value or 0)
