"""Cases: the one entry point for staff and mail events, audit, optimistic lock, documents."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from mailflow.app import App
from mailflow.cases.core import apply_event, staff_actor
from mailflow.cases.machines import IllegalTransition
from mailflow.errors import MailflowError
from mailflow.ops.keys import keys_demo
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import Applicant, Case, CaseEvent, Document, OutboxMessage
from tests.support.cases_support import DATOS, MONDAY, mail, make_app, outbox, parse_out, store
from tests.support.fixtures_pki import PkiSet

LATER = MONDAY + dt.timedelta(days=2)
RECURSO = (
    "Interpongo recurso de reconsideración.\n"
    "Motivo: no estoy de acuerdo con la denegatoria de mi solicitud\n"
    "Nombres y apellidos: Juan Pérez Quispe\n"
    "Pasaporte: 123456789\n"
    "Teléfono: 987654321\n"
)


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    return make_app(tmp_path, sqlite_db)


def _accepted_case(app: App) -> Case:
    with app.database.session() as s:
        row = store(s, mail("Actualización de datos", DATOS))
        process_inbox_message(app, s, row, MONDAY)
        case = s.get(Case, row.case_id)
        assert case is not None and case.state == "en_tramite"
        return case


def _counts(app: App) -> tuple[int, int]:
    with app.database.session(readonly=True) as s:
        events = s.scalar(select(func.count(CaseEvent.id)))
        out = s.scalar(select(func.count(OutboxMessage.id)))
    return int(events or 0), int(out or 0)


def test_staff_action_is_recorded_with_the_user(app: App) -> None:
    case = _accepted_case(app)
    with app.database.session() as s:  # staff registered the person before confirming
        s.add(Applicant(full_name="Juan Pérez Quispe", document_number="123456789"))
    with app.database.session() as s:
        case = s.get(Case, case.id)  # type: ignore[assignment]
        result = apply_event(
            s,
            app,
            case,
            "resolver",
            actor=staff_actor("ana"),
            now=LATER,
            reason="Datos actualizados",
        )
    assert (result.source, result.dest) == ("en_tramite", "resuelto")
    with app.database.session(readonly=True) as s:
        [event] = s.scalars(
            select(CaseEvent).where(CaseEvent.kind == "transition", CaseEvent.event == "resolver")
        ).all()
        stored = s.get(Case, case.id)
        outs = outbox(s)
    assert (event.actor, event.from_state, event.to_state) == (
        "usuario:ana",
        "en_tramite",
        "resuelto",
    )
    assert event.reason == "Datos actualizados"
    assert stored is not None and stored.state == "resuelto" and stored.sla["stopped_on"]
    assert [o.kind for o in outs] == ["acuse_recibo", "resuelto"]
    # the staff reply is threaded to the applicant's request like every other reply
    assert parse_out(outs[1])["In-Reply-To"] == parse_out(outs[0])["In-Reply-To"]


def test_illegal_staff_event_is_refused_and_writes_nothing(app: App) -> None:
    case = _accepted_case(app)
    before = _counts(app)
    with pytest.raises(IllegalTransition) as refused, app.database.session() as s:
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "archivar", actor=staff_actor("ana"), now=LATER)
    assert "en_tramite" in str(refused.value)
    # a system event is not the staff's to fire
    with pytest.raises(IllegalTransition), app.database.session() as s:
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "vencer_subsanacion", actor=staff_actor("ana"), now=LATER)
    assert _counts(app) == before
    assert _counts(app)[0] > 0
    with app.database.session(readonly=True) as s:
        stored = s.get(Case, case.id)
        assert stored is not None and stored.state == "en_tramite"


def test_concurrent_change_of_the_same_case_is_refused(app: App) -> None:
    case = _accepted_case(app)
    with app.database.session() as s:
        stale = s.get(Case, case.id)
        assert stale is not None
    with app.database.session() as s:  # someone else acts first
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "observar", actor=staff_actor("luis"), now=LATER, reason="x")
    with pytest.raises(StaleDataError), app.database.session() as s:
        s.add(stale)
        apply_event(s, app, stale, "resolver", actor=staff_actor("ana"), now=LATER)
    with app.database.session(readonly=True) as s:
        stored = s.get(Case, case.id)
        assert stored is not None and stored.state == "observado"


def test_recurso_accept_issues_cargo_and_mails_it(
    tmp_path: Path, sqlite_db: Database, test_pki: PkiSet, signed_pdf_factory: object
) -> None:
    base = make_app(tmp_path, sqlite_db)
    signatures = base.settings.signatures.model_copy(
        update={"trust_roots": tuple(test_pki.trust_root_paths)}
    )
    app = make_app(tmp_path, sqlite_db, signatures=signatures)
    keys_demo(app.settings)
    pdf = signed_pdf_factory()  # type: ignore[operator]
    raw = mail(
        "Recurso de Reconsideración", RECURSO,
        to="mesadepartes@cepr.mailflow.localhost", attachments=(("recurso.pdf", pdf),),
    )  # fmt: skip
    with app.database.session() as s:
        row = store(s, raw)
        process_inbox_message(app, s, row, MONDAY)
    assert (row.disposition, row.tramite) == ("accept", "reconsideracion")
    with app.database.session(readonly=True) as s:
        case = s.get(Case, row.case_id)
        [doc] = s.scalars(select(Document)).all()
        [out] = outbox(s)
    assert case is not None and case.state == "cargo_emitido"
    assert doc.kind == "cargo" and doc.case_id == case.id
    assert out.kind == "cargo_enviado"
    msg = parse_out(out)
    assert msg["From"].addresses[0].addr_spec == "mesadepartes@cepr.mailflow.localhost"
    [attached] = list(msg.iter_attachments())
    assert attached.get_filename() == f"cargo_{case.number}.pdf"
    data = attached.get_content()
    assert data == (tmp_path / doc.path).read_bytes() and data.startswith(b"%PDF")


def test_deadline_is_explained_from_the_audit_trail(app: App) -> None:
    from mailflow.clock.explain import explain_deadline

    with app.database.session() as s:
        row = store(s, mail("Actualización de datos", DATOS.replace("Teléfono: 987654321\n", "")))
        process_inbox_message(app, s, row, MONDAY)
        [our] = [o.message_id for o in outbox(s)]
        reply = store(s, mail("RE: obs", "Teléfono: 987654321", in_reply_to=f"<{our}>"))
        process_inbox_message(app, s, reply, MONDAY + dt.timedelta(days=1))
        case = s.get(Case, row.case_id)
        assert case is not None
        lines = explain_deadline(s, case, app.calendario)
    text = "\n".join(lines)
    assert lines[0] == f"Expediente {case.number}."
    assert "Recibido el 2026-11-23 (lunes) a las 10:00" in text
    assert "No se cuenta el 2026-12-08 (martes): feriado" in text
    assert "Plazo suspendido el 2026-11-23 con 15 días hábiles restantes." in text
    assert "subsanación" in text and "2026-11-25" in text
    assert "Plazo reanudado el 2026-11-24" in text
    assert lines[-1] == "Fecha límite actual: 2026-12-17 (incluye 1 día hábil de suspensión)."


def test_transition_declaring_reason_required_refuses_a_blank_reason(app: App) -> None:
    case = _accepted_case(app)
    before = _counts(app)
    with pytest.raises(MailflowError, match="exige indicar el motivo"), app.database.session() as s:
        live = s.get(Case, case.id)
        assert live is not None
        apply_event(s, app, live, "rechazar", actor=staff_actor("ana"), now=LATER, reason="  ")
    assert _counts(app) == before
