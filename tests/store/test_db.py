"""Storage layer: migrations, models, constraints, SQLite locking, row claims, advisory locks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from mailflow.errors import ConfigError
from mailflow.store.db import Database, alembic_config, parse_url
from mailflow.store.models import (
    Applicant,
    Base,
    Case,
    CaseEvent,
    CaseMessage,
    Counter,
    DeliveryAttempt,
    Document,
    InboxMessage,
    OutboxMessage,
    Timer,
    User,
)

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
LIMA = ZoneInfo("America/Lima")


def make_case(session: Session, seq: int = 1, **overrides: object) -> Case:
    values: dict[str, object] = {
        "number": f"EXP-2026-{seq:06d}",
        "year": 2026,
        "seq": seq,
        "tramite": "prorroga_residencia",
        "machine": "oficio",
        "state": "recibido",
        "applicant_email": "ana@example.org",
        "mailbox": "refugiados",
        "received_at": NOW,
        "legal_receipt_day": dt.date(2026, 11, 23),
        "due_date": dt.date(2026, 12, 16),
    }
    values.update(overrides)
    case = Case(**values)
    session.add(case)
    session.flush()
    return case


def make_inbox(uid: int | None, mailbox: str = "refugiados", **overrides: object) -> InboxMessage:
    values: dict[str, object] = {
        "mailbox": mailbox,
        "uidvalidity": 7 if uid is not None else None,
        "uid": uid,
        "message_id": f"<m{uid}@example.org>",
        "sha256": "a" * 64,
        "raw": b"Subject: Prorroga\r\n\r\nhola\r\n",
        "size": 27,
        "source": "imap" if uid is not None else "smtp",
        "arrived_at": NOW,
    }
    values.update(overrides)
    return InboxMessage(**values)


def make_outbox(dedupe_key: str, message_id: str, case_id: int | None = None) -> OutboxMessage:
    return OutboxMessage(
        case_id=case_id,
        kind="acuse",
        dedupe_key=dedupe_key,
        message_id=message_id,
        from_addr="refugiados@mailflow.localhost",
        to_addr="ana@example.org",
        subject="Acuse de recibo",
        raw=b"From: refugiados@mailflow.localhost\r\n\r\nRecibido\r\n",
    )


def test_migrate_creates_schema_at_head_and_is_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'new.db'}")
    assert db.current_revision() is None
    assert not db.is_current()
    db.migrate()
    db.migrate()
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1  # one linear chain of migrations
    assert db.current_revision() == heads[0]
    assert db.is_current()
    with db.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0
    db.dispose()


def test_postgres_database_is_migrated(pg_db: Database) -> None:
    assert pg_db.dialect == "postgresql"
    assert pg_db.is_current()


def test_models_match_migrations(any_db: Database) -> None:
    with any_db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []


def test_each_model_round_trips(any_db: Database) -> None:
    with any_db.session() as s:
        case = make_case(s, fields={"nombres_apellidos": "Ana Pérez"}, flags=["extemporaneo"])
        inbox = make_inbox(101, case_id=case.id, status="done", tramite="prorroga_residencia")
        outbox = make_outbox(f"case:{case.id}:acuse", "<acuse.1@mailflow.localhost>", case.id)
        s.add_all([inbox, outbox])
        s.flush()
        s.add_all(
            [
                CaseEvent(
                    case_id=case.id,
                    inbox_message_id=inbox.id,
                    at=NOW,
                    actor="sistema",
                    kind="transition",
                    event="recibir",
                    from_state=None,
                    to_state="recibido",
                    reason="Solicitud recibida",
                    data={"regla": "asunto"},
                ),
                CaseMessage(
                    case_id=case.id,
                    direction="in",
                    inbox_message_id=inbox.id,
                    message_id="<m101@example.org>",
                    at=NOW,
                ),
                CaseMessage(
                    case_id=case.id,
                    direction="out",
                    outbox_id=outbox.id,
                    message_id=outbox.message_id,
                    at=NOW,
                ),
                DeliveryAttempt(outbox_id=outbox.id, at=NOW, ok=True, smtp_response="250 OK"),
                Document(
                    case_id=case.id,
                    kind="oficio",
                    number="OFICIO N° 000001-2026",
                    verification_code="K7Q2-9XWD",
                    sha256="b" * 64,
                    path="ab/abcd.pdf",
                    size=1234,
                    issued_at=NOW,
                    event_key="emitir_oficio",
                    data={"nombre": "Ana Pérez"},
                ),
                Timer(case_id=case.id, kind="reminder", due_at=NOW + dt.timedelta(days=3)),
                Counter(name="expediente", year=2026, value=1),
                Applicant(
                    full_name="Ana Pérez",
                    document_number="X123",
                    email="ana@example.org",
                    status="refugiado",
                    data={"fila": 4},
                ),
                User(username="maria", full_name="María Q.", role="staff", password_hash="h"),
            ]
        )
        case_id = case.id
    with any_db.session(readonly=True) as s:
        case = s.get_one(Case, case_id)
        assert (case.number, case.lock_version, case.machine_version) == ("EXP-2026-000001", 1, 1)
        assert case.fields == {"nombres_apellidos": "Ana Pérez"}
        assert case.flags == ["extemporaneo"] and case.sla == {}
        assert case.received_at == NOW and case.received_at.tzinfo is not None
        assert case.legal_receipt_day == dt.date(2026, 11, 23)
        inbox = s.scalars(select(InboxMessage).where(InboxMessage.case_id == case_id)).one()
        assert inbox.raw.startswith(b"Subject: Prorroga") and inbox.attempts == 0
        event = s.scalars(select(CaseEvent)).one()
        assert (event.to_state, event.reason, event.data) == (
            "recibido",
            "Solicitud recibida",
            {"regla": "asunto"},
        )
        thread = s.scalars(select(CaseMessage).order_by(CaseMessage.id)).all()
        assert [m.direction for m in thread] == ["in", "out"]
        outbox = s.scalars(select(OutboxMessage)).one()
        assert outbox.status == "pending" and outbox.next_attempt_at.tzinfo is not None
        assert s.scalars(select(DeliveryAttempt.smtp_response)).one() == "250 OK"
        doc = s.scalars(select(Document)).one()
        assert doc.number == "OFICIO N° 000001-2026" and doc.data == {"nombre": "Ana Pérez"}
        timer = s.scalars(select(Timer)).one()
        assert timer.due_at == NOW + dt.timedelta(days=3) and timer.fired_at is None
        assert s.get_one(Counter, ("expediente", 2026)).value == 1
        assert (
            s.scalars(select(Applicant.status).where(Applicant.email == "ana@example.org")).one()
            == "refugiado"
        )
        user = s.scalars(select(User)).one()
        assert user.active and user.failed_logins == 0 and user.created_at.tzinfo is not None


def test_datetimes_are_stored_as_utc_instants(any_db: Database) -> None:
    lima_evening = dt.datetime(2026, 11, 23, 18, 30, tzinfo=LIMA)
    with any_db.session() as s:
        case_id = make_case(s, received_at=lima_evening).id
    with any_db.session(readonly=True) as s:
        got = s.get_one(Case, case_id).received_at
        assert got == lima_evening and got.utcoffset() == dt.timedelta(0)
        assert got.hour == 23
        later = select(Case.id).where(
            Case.received_at > dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC)
        )
        assert s.scalars(later).all() == [case_id]


def test_naive_datetimes_are_refused(any_db: Database) -> None:
    with pytest.raises(StatementError, match="timezone-aware"), any_db.session() as s:
        make_case(s, received_at=dt.datetime(2026, 11, 23, 10, 0))


def test_inbox_dedupes_on_mailbox_uidvalidity_uid(any_db: Database) -> None:
    with any_db.session() as s:
        s.add_all([make_inbox(1), make_inbox(2), make_inbox(1, mailbox="mesadepartes")])
        s.add_all([make_inbox(None), make_inbox(None)])  # SMTP arrivals have no UID
    with pytest.raises(IntegrityError), any_db.session() as s:
        s.add(make_inbox(1))
    with any_db.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 5


def test_inbox_status_is_a_closed_vocabulary(any_db: Database) -> None:
    with pytest.raises(IntegrityError), any_db.session() as s:
        s.add(make_inbox(1, status="bogus"))


def test_outbox_dedupe_key_and_message_id_are_unique(any_db: Database) -> None:
    with any_db.session() as s:
        s.add(make_outbox("case:1:acuse", "<a@x>"))
    with pytest.raises(IntegrityError), any_db.session() as s:
        s.add(make_outbox("case:1:acuse", "<b@x>"))
    with pytest.raises(IntegrityError), any_db.session() as s:
        s.add(make_outbox("case:1:cargo", "<a@x>"))


def test_a_document_is_issued_once_per_case_event(any_db: Database) -> None:
    def doc(case_id: int, code: str) -> Document:
        return Document(
            case_id=case_id,
            kind="cargo",
            verification_code=code,
            sha256="c" * 64,
            path="p",
            size=1,
            issued_at=NOW,
            event_key="presentar",
        )

    with any_db.session() as s:
        one, two = make_case(s, 1), make_case(s, 2)
        s.add_all([doc(one.id, "A1"), doc(two.id, "B2")])
        ids = one.id
    with pytest.raises(IntegrityError), any_db.session() as s:
        s.add(doc(ids, "C3"))


def test_foreign_keys_are_enforced(any_db: Database) -> None:
    with pytest.raises(IntegrityError), any_db.session() as s:
        s.add(Timer(case_id=999, kind="reminder", due_at=NOW))


def test_case_events_are_append_only(any_db: Database) -> None:
    with any_db.session() as s:
        s.add(CaseEvent(at=NOW, actor="sistema", kind="rule", reason="Asunto reconocido"))
    with pytest.raises(DBAPIError, match="append-only"), any_db.session() as s:
        s.execute(update(CaseEvent).values(reason="editado"))
    with pytest.raises(DBAPIError, match="append-only"), any_db.session() as s:
        s.execute(text("DELETE FROM case_events"))
    with any_db.session(readonly=True) as s:
        assert s.scalars(select(CaseEvent.reason)).all() == ["Asunto reconocido"]


def test_concurrent_case_edits_are_detected(any_db: Database) -> None:
    with any_db.session() as s:
        stale = make_case(s)
    case_id = stale.id
    with any_db.session() as s:
        s.get_one(Case, case_id).state = "observado"
    with pytest.raises(StaleDataError), any_db.session() as s:
        s.add(stale)
        stale.state = "aprobado"
    with any_db.session(readonly=True) as s:
        fresh = s.get_one(Case, case_id)
        assert (fresh.state, fresh.lock_version) == ("observado", 2)


def test_in_place_json_changes_are_saved(any_db: Database) -> None:
    with any_db.session() as s:
        case_id = make_case(s).id
    with any_db.session() as s:
        case = s.get_one(Case, case_id)
        case.flags.append("extemporaneo")
        case.fields["telefono"] = "+51987654321"
    with any_db.session(readonly=True) as s:
        case = s.get_one(Case, case_id)
        assert case.flags == ["extemporaneo"] and case.fields == {"telefono": "+51987654321"}


def test_session_rolls_back_on_error(any_db: Database) -> None:
    with pytest.raises(RuntimeError), any_db.session() as s:
        make_case(s)
        raise RuntimeError("fallo a mitad de camino")
    with any_db.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0


def test_database_urls() -> None:
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:///data/mailflow.db").database == "data/mailflow.db"
    with pytest.raises(ConfigError, match="no está soportado"):
        parse_url("mysql://u@h/db")
    with pytest.raises(ConfigError, match="no es válida"):
        parse_url("no es una url")


def test_in_memory_sqlite_keeps_one_database(tmp_path: Path) -> None:
    db = Database("sqlite://")
    db.migrate()
    with db.session() as s:
        make_case(s)
    with db.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1
    db.dispose()
