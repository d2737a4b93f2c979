"""Database tables of mailflow as typed SQLAlchemy 2 models (the schema Alembic migrates)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy import event as orm_event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from mailflow.vocabulary import InboxStatus

INBOX_SOURCES = ("imap", "smtp", "lmtp", "file")
INBOX_STATUSES = tuple(s.value for s in InboxStatus)  # plain strings: the CHECK constraint
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")
DIRECTIONS = ("in", "out")
ROLES = ("staff", "manager", "admin")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def json_dict() -> TypeEngine[Any]:
    """A JSON object column (JSONB on PostgreSQL); in-place changes are saved too."""
    return MutableDict.as_mutable(JSON().with_variant(JSONB(), "postgresql"))


def json_list() -> TypeEngine[Any]:
    """A JSON array column (JSONB on PostgreSQL); in-place changes are saved too."""
    return MutableList.as_mutable(JSON().with_variant(JSONB(), "postgresql"))


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware UTC (used only for column defaults at the edge)."""
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware instant stored as UTC; SQLite (which drops offsets) reads back as UTC too.

    Naive datetimes are refused: the caller must say which zone it means.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """The value to store: None, or the aware datetime in UTC (naive UTC on SQLite, which has no
        time zones). Raises ValueError for a naive datetime.
        """
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        """The stored value as an aware UTC datetime (SQLite's naive values are UTC), or None."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, one function from the aware datetime to the stored text, the same text
        SQLAlchemy's SQLite DATETIME writes ("2026-01-02 03:04:05.000006", UTC) in one C call
        instead of two Python steps (every statement binds several instants). Elsewhere, the
        usual `process_bind_param` chain. The returned function raises ValueError for a naive
        datetime."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: dt.datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
            return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """On SQLite, the stored text read with `datetime.fromisoformat` (C) as an aware UTC
        datetime (text it cannot read goes through SQLAlchemy's own parser, which raises as
        before). Elsewhere, the usual chain ending in `process_result_value`."""
        usual = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or usual is None:
            return usual

        def process(value: str | None) -> dt.datetime | None:
            if value is None:
                return None
            try:
                parsed = dt.datetime.fromisoformat(value)
            except (TypeError, ValueError):
                return usual(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC)

        return process


def _check_in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base of every table: constraint naming convention (Alembic-friendly) and aware
    UTC datetimes (UtcDateTime) for `dt.datetime` columns.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UtcDateTime(),
    }


class Case(Base):
    """An expediente: one request of one applicant, driven by a state machine."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    tramite: Mapped[str] = mapped_column(String(80), index=True)
    machine: Mapped[str] = mapped_column(String(80))
    machine_version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(80), index=True)
    applicant_email: Mapped[str | None] = mapped_column(String, index=True)
    applicant_name: Mapped[str | None] = mapped_column(String)
    applicant_document: Mapped[str | None] = mapped_column(String)
    mailbox: Mapped[str | None] = mapped_column(String)
    office: Mapped[str | None] = mapped_column(String(40))  # receiving unit; None: default office
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    received_at: Mapped[dt.datetime] = mapped_column(index=True)
    legal_receipt_day: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    closed_at: Mapped[dt.datetime | None]
    sla: Mapped[dict[str, Any]] = mapped_column(json_dict(), default=dict)
    fields: Mapped[dict[str, Any]] = mapped_column(json_dict(), default=dict)
    flags: Mapped[list[str]] = mapped_column(json_list(), default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    lock_version: Mapped[int] = mapped_column(Integer)
    search_text: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index(
            "ix_cases_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),  # SQLite: a covering index the LIKE scan reads instead of the wide table rows
    )
    __mapper_args__: Any = {"version_id_col": lock_version}  # noqa: RUF012 (SQLAlchemy API)


class InboxMessage(Base):
    """A raw message stored durably, once, before the server copy is acknowledged."""

    __tablename__ = "inbox_messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid"),
        Index("ix_inbox_messages_status_arrived_at", "status", "arrived_at"),
        # the duplicate check's look-up (Message-ID, done): see migration 0008
        Index("ix_inbox_messages_message_id_status", "message_id", "status"),
        CheckConstraint(_check_in("status", INBOX_STATUSES), name="status"),
        CheckConstraint(_check_in("source", INBOX_SOURCES), name="source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(10))
    arrived_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(20), default="new")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String)
    claimed_until: Mapped[dt.datetime | None]
    claimed_alone: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The current claim holds this row alone (a retry after its run died): a death now counts."""
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[dt.datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(20))
    tramite: Mapped[str | None] = mapped_column(String(80))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)


class CaseEvent(Base):
    """One line of a case's audit trail. Append-only: never update or delete rows.

    The migration installs database triggers (PostgreSQL and SQLite) that reject UPDATE and
    DELETE on this table, so a correction is a new event, never an edit.
    """

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_id_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    inbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbox_messages.id"), index=True
    )
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String(40))
    event: Mapped[str | None] = mapped_column(String(80))
    from_state: Mapped[str | None] = mapped_column(String(80))
    to_state: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(json_dict(), default=dict)


class OutboxMessage(Base):
    """A reply written in the same transaction as the state change, drained by the sender."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        CheckConstraint(_check_in("status", OUTBOX_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    inbox_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbox_messages.id"))
    kind: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String, unique=True)
    message_id: Mapped[str] = mapped_column(String, unique=True)
    from_addr: Mapped[str] = mapped_column(String)
    to_addr: Mapped[str] = mapped_column(String)
    subject: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    # the answered message came from an authenticated sender (own daily reply cap)
    sender_authenticated: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class DeliveryAttempt(Base):
    """One try to hand an outbox message to the SMTP server, and what the server said."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id"), index=True)
    at: Mapped[dt.datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    smtp_response: Mapped[str | None] = mapped_column(Text)


class CaseMessage(Base):
    """A message that belongs to a case's thread (used to attach replies to our messages)."""

    __tablename__ = "case_messages"
    __table_args__ = (CheckConstraint(_check_in("direction", DIRECTIONS), name="direction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    inbox_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbox_messages.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id"))
    message_id: Mapped[str] = mapped_column(String, index=True)
    at: Mapped[dt.datetime]


class Document(Base):
    """An issued document (cargo, oficio ...): the PDF lives content-addressed in the data dir."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("case_id", "event_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(40))
    number: Mapped[str | None] = mapped_column(String, index=True)
    verification_code: Mapped[str] = mapped_column(String(32), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String)
    size: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    event_key: Mapped[str] = mapped_column(String)
    data: Mapped[dict[str, Any]] = mapped_column(json_dict(), default=dict)


class Timer(Base):
    """A deadline to act on (reminder, escalation, end of subsanación); fired at most once."""

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "due_at"),
        Index("ix_timers_fired_at_due_at", "fired_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[dt.datetime]
    fired_at: Mapped[dt.datetime | None]
    fired_by: Mapped[str | None] = mapped_column(String)
    cancelled_at: Mapped[dt.datetime | None]


class Counter(Base):
    """A yearly gap-free sequence (expediente, oficio ...); see mailflow.store.numbering."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class Applicant(Base):
    """A person of the commission's registry, imported from spreadsheets."""

    __tablename__ = "applicants"

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(String)
    document_number: Mapped[str | None] = mapped_column(String, index=True)
    carne_extranjeria: Mapped[str | None] = mapped_column(String, index=True)
    email: Mapped[str | None] = mapped_column(String, index=True)
    status: Mapped[str | None] = mapped_column(String(40))
    nationality: Mapped[str | None] = mapped_column(String)
    phone: Mapped[str | None] = mapped_column(String)
    data: Mapped[dict[str, Any]] = mapped_column(json_dict(), default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(Base):
    """A staff account of the web desk."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_check_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String)
    email: Mapped[str | None] = mapped_column(String)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    # raised by logout and password changes: a cookie with an older version is refused
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


@orm_event.listens_for(Case, "before_insert")
@orm_event.listens_for(Case, "before_update")
def _fold_search_text(_mapper: Any, _connection: Any, case: Case) -> None:
    """Keep `cases.search_text` (mailflow.store.search) in step with the applicant's data."""
    from mailflow.store.search import search_text

    case.search_text = search_text(
        case.number, case.applicant_name, case.applicant_document, case.applicant_email,
        case.fields,
    )  # fmt: skip


SIGNAL_STATUSES = ("sugerida", "confirmada", "descartada")


class CaseSignal(Base):
    """A vulnerability signal of a case (sensitive data, Ley 29733): a suggestion until confirmed.

    `source` is "correo" (words in the applicant's mail) or "registro" (the registry record).
    """

    __tablename__ = "case_signals"
    __table_args__ = (
        UniqueConstraint("case_id", "category", "source"),
        CheckConstraint(_check_in("status", SIGNAL_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    category: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="sugerida")
    decided_by: Mapped[str | None] = mapped_column(String)
    decided_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
