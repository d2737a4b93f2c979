"""Products that tell the truth: the registry is changed before "cambio efectuado" is said,
staff results reach the reply with the clerk's note, and the delivery time is recorded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.cases.core import apply_event, staff_actor
from mailflow.cases.delivery_events import on_accepted
from mailflow.errors import MailflowError
from mailflow.pipeline.route import process_inbox_message
from mailflow.runners.sweep import run_sweep
from mailflow.store.db import Database
from mailflow.store.models import Applicant, Case, CaseEvent, OutboxMessage
from tests.support.cases_support import MONDAY, mail, make_app, outbox, parse_out, store

LATER = MONDAY + dt.timedelta(days=1)
REGISTERED = "juan.perez@example.org"
NEW_PHONE = (
    "Nombres y apellidos: Juan Pérez Quispe\nNacionalidad: venezolana\n"
    "Pasaporte: 123456789\nTeléfono: 912345678\n"
)
CLAVE = (
    "Nombre completo: Juan Pérez Quispe\nDocumento de identidad: 123456789\n"
    "Celular: 987654321\nCorreo: juan.perez@example.org\n"
)


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    return make_app(tmp_path, sqlite_db)


def _register(app: App) -> None:
    with app.database.session() as s:
        s.add(Applicant(full_name="Juan Pérez Quispe", document_number="123456789",
                        email=REGISTERED, phone="+51987654321", nationality="venezolana"))  # fmt: skip


def _request(app: App, subject: str, body: str, sender: str) -> Case:
    with app.database.session() as s:
        row = store(s, mail(subject, body, sender=sender))
        process_inbox_message(app, s, row, MONDAY)
        case = s.get(Case, row.case_id)
        assert case is not None
        s.expunge(case)
        return case


def _text(row: OutboxMessage) -> str:
    body = parse_out(row).get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _phone(app: App) -> str | None:
    with app.database.session(readonly=True) as s:
        return s.scalars(select(Applicant.phone)).one()


def test_registered_sender_gets_the_change_applied_then_confirmed(app: App) -> None:
    _register(app)
    case = _request(app, "Actualización de datos", NEW_PHONE, REGISTERED)
    assert case.state == "resuelto"
    assert _phone(app) == "+51912345678"
    with app.database.session(readonly=True) as s:
        (update,) = s.scalars(select(CaseEvent).where(CaseEvent.kind == "data_update")).all()
        assert update.data["before"] == {"phone": "+51987654321"}
        assert update.data["after"] == {"phone": "+51912345678"}
        (reply,) = outbox(s)
    text = _text(reply)
    assert reply.kind == "resuelto" and "Cambio efectuado en nuestro registro" in text
    assert "Teléfono: +51912345678" in text


def test_same_data_is_not_called_a_change(app: App) -> None:
    _register(app)
    same = NEW_PHONE.replace("912345678", "987654321")
    _request(app, "Actualización de datos", same, REGISTERED)
    with app.database.session(readonly=True) as s:
        (reply,) = outbox(s)
    assert "ya figuraban así" in _text(reply) and "Cambio efectuado" not in _text(reply)


def test_other_sender_waits_for_staff_and_nothing_changes_until_then(app: App) -> None:
    _register(app)
    case = _request(app, "Actualización de datos", NEW_PHONE, "otra@example.net")
    assert case.state == "en_revision"
    assert _phone(app) == "+51987654321"
    with app.database.session(readonly=True) as s:
        assert [o.kind for o in outbox(s)] == ["acuse_recibo"]
    staff = staff_actor("ana")
    with app.database.session() as s:
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "admitir", actor=staff, now=LATER, reason="Identidad verificada")
        apply_event(s, app, live, "resolver", actor=staff, now=LATER, reason="Llamamos al titular")
    assert _phone(app) == "+51912345678"
    with app.database.session(readonly=True) as s:
        rows = outbox(s)
    assert [o.kind for o in rows] == ["acuse_recibo", "admitido", "resuelto"]
    assert "Nota del personal: Identidad verificada" in _text(rows[1])
    final = _text(rows[2])
    assert "Teléfono: +51912345678" in final and "Nota del personal: Llamamos al titular" in final


def test_without_the_person_in_the_registry_staff_confirmation_registers_them(app: App) -> None:
    case = _request(app, "Actualización de datos", NEW_PHONE, REGISTERED)
    assert case.state == "en_tramite"  # empty registry: nobody can be matched, nothing written
    with app.database.session(readonly=True) as s:
        assert s.scalars(select(Applicant)).all() == []
    with app.database.session() as s:
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "resolver", actor=staff_actor("ana"), now=LATER)
    with app.database.session(readonly=True) as s:
        (person,) = s.scalars(select(Applicant)).all()
        assert (person.full_name, person.document_number, person.phone) == (
            "Juan Pérez Quispe",
            "123456789",
            "+51912345678",
        )
        reply = outbox(s)[-1]
        reasons = s.scalars(select(CaseEvent.reason).where(CaseEvent.kind == "data_update")).all()
    assert any("agregada al registro" in r for r in reasons)
    assert "Teléfono: +51912345678" in _text(reply)


def test_a_request_without_identity_cannot_be_confirmed(app: App) -> None:
    case = _request(app, "Actualización de datos", NEW_PHONE, REGISTERED)
    with app.database.session() as s:
        live = s.get(Case, case.id)
        assert live is not None
        live.fields = {k: v for k, v in live.fields.items() if k != "documento_identidad"}
    with (
        pytest.raises(MailflowError, match="no figura en el registro"),
        app.database.session() as s,
    ):
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "resolver", actor=staff_actor("ana"), now=LATER)
    with app.database.session(readonly=True) as s:
        assert [o.kind for o in outbox(s)] == ["acuse_recibo"]
        assert s.scalars(select(Applicant)).all() == []


def test_cambio_de_clave_is_confirmed_only_when_staff_record_it(app: App) -> None:
    case = _request(app, "Cambio de clave y contraseña", CLAVE, REGISTERED)
    assert case.state == "en_tramite"
    with app.database.session(readonly=True) as s:
        assert [o.kind for o in outbox(s)] == ["acuse_recibo"]
        assert "se realizó el cambio" not in _text(outbox(s)[0])
    with app.database.session() as s:
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "resolver", actor=staff_actor("ana"), now=LATER,
                    reason="Su nueva clave temporal llegará por SMS")  # fmt: skip
    with app.database.session(readonly=True) as s:
        reply = outbox(s)[-1]
    text = _text(reply)
    assert "se realizó el cambio de su clave" in text
    assert "Nota del personal: Su nueva clave temporal llegará por SMS" in text


def test_clerk_note_is_in_a_staff_observation_but_intake_reasons_never_are(app: App) -> None:
    case = _request(app, "Cambio de clave y contraseña", CLAVE, REGISTERED)
    with app.database.session() as s:
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "observar", actor=staff_actor("ana"), now=LATER,
                    reason="Adjunte una foto de su documento")  # fmt: skip
    with app.database.session(readonly=True) as s:
        first, observation = outbox(s)[0], outbox(s)[-1]
    assert "1. Adjunte una foto de su documento" in _text(observation)
    assert "Nota del personal" not in _text(first) and "Trámite identificado" not in _text(first)


def test_time_the_product_reached_the_applicant_is_recorded(app: App) -> None:
    _register(app)
    case = _request(app, "Actualización de datos", NEW_PHONE, REGISTERED)
    accepted = MONDAY + dt.timedelta(minutes=3)
    with app.database.session() as s:
        (reply,) = outbox(s)
        reply.status, reply.sent_at = "sent", accepted
        on_accepted(s, app.settings, reply, accepted)
    assert run_sweep(app, accepted, "prueba") == 1
    with app.database.session(readonly=True) as s:
        stored = s.get(Case, case.id)
        assert stored is not None and stored.state == "resuelto"
        assert stored.sla["entregado_at"] == accepted.isoformat()
        kinds = s.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)).all()
    assert "delivery_accepted" in kinds and "delivered" in kinds


def test_a_failing_follow_up_never_blocks_recording_the_send(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailflow.cases import delivery_events

    _register(app)
    _request(app, "Actualización de datos", NEW_PHONE, REGISTERED)

    def broken(*_args: object) -> None:
        raise RuntimeError("fallo simulado")

    monkeypatch.setattr(delivery_events, "ACCEPTED", (broken,))
    with app.database.session() as s:
        (reply,) = outbox(s)
        reply.status = "sent"
        on_accepted(s, app.settings, reply, LATER)
    with app.database.session(readonly=True) as s:
        assert outbox(s)[0].status == "sent"
