"""Helpers for the case-engine tests: an App on a test database, messages, inbox rows."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.store.db import Database
from mailflow.store.models import Case, InboxMessage, OutboxMessage

ROOT = Path(__file__).resolve().parents[2]
LIMA = dt.timezone(dt.timedelta(hours=-5))
MONDAY = dt.datetime(2026, 11, 23, 10, 0, tzinfo=LIMA)  # 15 días hábiles → 2026-12-16
APPLICANT = "juan.perez@example.org"
DATOS = (
    "Nombres y apellidos: Juan Pérez Quispe\n"
    "Nacionalidad: venezolana\n"
    "Pasaporte: 123456789\n"
    "Teléfono: 987654321\n"
)


def make_app(tmp_path: Path, db: Database, **updates: object) -> App:
    settings = load_settings(ROOT / "config.yaml", env={})
    settings = settings.model_copy(
        update={
            "data_dir": tmp_path,
            "database_url": str(db.url.render_as_string(False)),
            **updates,
        }
    )
    app = App(settings)
    app.__dict__["database"] = db  # share the fixture's engine
    return app


def mail(
    subject: str,
    body: str,
    *,
    sender: str = APPLICANT,
    name: str = "Juan Pérez",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    to: str = "solicitantesrefugio@cepr.mailflow.localhost",
    headers: dict[str, str] | None = None,
    attachments: tuple[tuple[str, bytes], ...] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = email.utils.formataddr((name, sender))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(MONDAY)
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain="example.org")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    for filename, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return bytes(msg)


def store(session: Session, raw: bytes, arrived: dt.datetime = MONDAY) -> InboxMessage:
    parsed_id = email.message_from_bytes(raw)["Message-ID"] or ""
    row = InboxMessage(
        mailbox="INBOX",
        message_id=parsed_id.strip("<>") or None,
        sha256=hashlib.sha256(raw).hexdigest(),
        raw=raw,
        size=len(raw),
        source="file",
        arrived_at=arrived,
        status="processing",
    )
    session.add(row)
    session.flush()
    return row


def outbox(session: Session) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def parse_out(row: OutboxMessage) -> EmailMessage:
    import email.policy

    parsed = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def process(app: App, raw: bytes, now: dt.datetime = MONDAY) -> InboxMessage:
    """Store `raw` and run it through the pipeline at `now`, in one committed transaction."""
    from mailflow.pipeline.route import process_inbox_message

    with app.database.session() as s:
        row = store(s, raw, now)
        process_inbox_message(app, s, row, now)
    return row


def load_case(app: App, case_id: int | None) -> Case:
    """The case `case_id` as committed (fails the test when there is none)."""
    assert case_id is not None
    with app.database.session(readonly=True) as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case
