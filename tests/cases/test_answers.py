"""Every message from a person gets one answer: other channels, open cases, resends, status,
messages naming a case from another address, and the cap that never eats a filing's answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.cases.delivery_events import on_accepted
from mailflow.clock.deadlines import SUBSANACION
from mailflow.ops.keys import keys_demo
from mailflow.runners.sweep import run_sweep
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, InboxMessage, OutboxMessage, Timer
from mailflow.web.actions import ignore
from mailflow.web.queue import load_rows
from tests.support.cases_support import APPLICANT, DATOS, MONDAY, mail, make_app, outbox, parse_out
from tests.support.cases_support import load_case as _case
from tests.support.cases_support import process as _process
from tests.support.fixtures_pki import PkiSet

SIN_TELEFONO = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
TUESDAY = MONDAY + dt.timedelta(days=1)
THURSDAY = dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC)  # 01:00 in Lima: window ended
RECURSO = (
    "Motivo: no estoy de acuerdo con la resolución\n"
    "Nombres y apellidos: Juan Pérez Quispe\n"
    "Pasaporte: 123456789\n"
    "Teléfono: 987654321\n"
    "Correo: juan.perez@example.org\n"
)


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    return make_app(tmp_path, sqlite_db)


def _text(row: OutboxMessage) -> str:
    body = parse_out(row).get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _outs(app: App) -> list[OutboxMessage]:
    with app.database.session(readonly=True) as s:
        return outbox(s)


def _accept_all(app: App, at: dt.datetime) -> None:
    """What the sender does when the SMTP server answers 250 for every queued reply."""
    with app.database.session() as s:
        for row in outbox(s):
            if row.status == "pending":
                row.status, row.sent_at = "sent", at
                on_accepted(s, app.settings, row, at)


def test_off_catalogue_request_is_told_its_channel(app: App) -> None:
    row = _process(app, mail("Solicitud de refugio", "Quiero pedir refugio para mi familia."))
    assert (row.disposition, row.tramite, row.case_id) == ("inform", None, None)
    [out] = _outs(app)
    assert out.kind == "otro_canal" and out.to_addr == APPLICANT
    text = _text(out)
    assert "Solicitud de refugio (otro canal)" in text
    assert "canal de solicitud de refugio" in text and "REG-2026-000001" in text
    with app.database.session(readonly=True) as s:
        assert s.scalar(select(func.count(Case.id))) == 0


def test_message_on_open_case_is_added_and_says_what_follows(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    case = _case(app, first.case_id)
    row = _process(app, mail(f"RE: [{case.number}] Acuse", "Les envío también mi dirección."))
    assert (row.disposition, row.case_id) == ("review", case.id)
    outs = _outs(app)
    assert [o.kind for o in outs] == ["acuse_recibo", "mensaje_agregado"]
    text = _text(outs[1])
    assert f"lo hemos añadido a su expediente {case.number}" in text
    assert "Le responderemos a más tardar el 16 de diciembre de 2026." in text
    assert parse_out(outs[1])["Subject"].startswith(f"[{case.number}]")
    assert "mensaje_nuevo" in _case(app, case.id).flags


def test_status_question_gets_state_due_date_and_last_step(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    case = _case(app, first.case_id)
    by_number = _process(app, mail(f"Estado de mi expediente {case.number}", "¿Cómo va?"))
    no_number = _process(app, mail("Consulta", "Buenas, ¿cómo va mi trámite?"), TUESDAY)
    assert by_number.case_id == no_number.case_id == case.id
    outs = _outs(app)
    assert [o.kind for o in outs] == ["acuse_recibo", "estado_expediente", "estado_expediente"]
    text = _text(outs[2])
    assert f"Este es el estado de su expediente {case.number} (Actualización de datos)" in text
    assert "Estado actual: Admitido (en trámite)." in text
    assert "Fecha límite de respuesta: 16 de diciembre de 2026." in text
    assert "Último paso: Pasó a «Admitido (en trámite)» el 23/11/2026." in text
    assert "coincidencia" not in text  # no internal reasons


def test_status_question_from_another_address_gives_no_case_data(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    case = _case(app, first.case_id)
    row = _process(
        app, mail(f"Estado del expediente {case.number}", "¿Cómo va?", sender="otro@example.net")
    )
    assert (row.disposition, row.case_id) == ("review", None)
    ack = _outs(app)[-1]
    assert ack.kind == "acuse_registro" and ack.to_addr == "otro@example.net"
    assert "16 de diciembre" not in _text(ack) and case.number not in _text(ack)
    assert "no podemos darle información sobre ese expediente" in _text(ack)


def test_resend_joins_the_open_case_and_keeps_the_filing_date(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    case = _case(app, first.case_id)
    resend = _process(
        app, mail("RV: Actualización de datos", "Reenvío, aún no tengo respuesta.\n" + DATOS),
        MONDAY + dt.timedelta(days=3),
    )  # fmt: skip
    assert (resend.disposition, resend.case_id) == ("review", case.id)
    after = _case(app, case.id)
    assert (after.received_at, after.legal_receipt_day, after.due_date) == (
        case.received_at, case.legal_receipt_day, case.due_date,
    )  # fmt: skip
    with app.database.session(readonly=True) as s:
        assert s.scalar(select(func.count(Case.id))) == 1
    outs = _outs(app)
    assert [o.kind for o in outs] == ["acuse_recibo", "reenvio_recibido"]
    text = _text(outs[1])
    assert (
        f"ya está registrada en el expediente {case.number}, presentada el 23 de noviembre" in text
    )
    assert "Estado actual: Admitido (en trámite)." in text


def test_resend_with_the_missing_data_of_an_observed_case_is_its_subsanacion(app: App) -> None:
    first = _process(app, mail("Actualización de datos", SIN_TELEFONO))
    resend = _process(app, mail("Actualización de datos", DATOS), TUESDAY)
    assert (resend.disposition, resend.case_id) == ("accept", first.case_id)
    assert _case(app, first.case_id).state == "en_tramite"
    assert [o.kind for o in _outs(app)] == ["observacion", "subsanacion_recibida"]


def test_message_naming_a_case_from_another_address_holds_the_subsanacion(app: App) -> None:
    first = _process(app, mail("Actualización de datos", SIN_TELEFONO))
    _accept_all(app, MONDAY)
    case = _case(app, first.case_id)
    lawyer = _process(
        app,
        mail(f"Expediente {case.number}", "Soy su abogada. Teléfono: 987654321",
             sender="abogada@estudio.pe", name="Dra. Ruiz"),
        TUESDAY,
    )  # fmt: skip
    assert (lawyer.disposition, lawyer.case_id) == ("review", None)
    assert _case(app, case.id).fields == case.fields  # nothing joined the case
    # the window ended Wednesday, but the message waits for staff: the case does not expire
    run_sweep(app, THURSDAY, "w1")
    assert _case(app, case.id).state == "observado"
    with app.database.session() as s:
        assert [i.id for i in load_rows(s) if i.kind == "mensaje"] == [lawyer.id]
        message = s.get(InboxMessage, lawyer.id)
        assert message is not None
        ignore(s, message, actor="usuario:ana", now=THURSDAY, reason="No es del solicitante")
    later = THURSDAY + dt.timedelta(days=1)
    run_sweep(app, later, "w1")
    assert _case(app, case.id).state == "no_presentado"


def test_daily_cap_never_eats_a_cargo(
    tmp_path: Path, sqlite_db: Database, test_pki: PkiSet, signed_pdf_factory: object
) -> None:
    base = make_app(tmp_path, sqlite_db)
    app = make_app(
        tmp_path,
        sqlite_db,
        signatures=base.settings.signatures.model_copy(
            update={"trust_roots": tuple(test_pki.trust_root_paths)}
        ),
        replies=base.settings.replies.model_copy(update={"daily_cap_per_address": 1}),
    )
    keys_demo(app.settings)
    _process(app, mail("Actualización de datos", DATOS))  # uses up the cap of 1
    pdf = signed_pdf_factory()  # type: ignore[operator]
    raw = mail(
        "Recurso de Reconsideración", RECURSO,
        to="mesadepartes@cepr.mailflow.localhost", attachments=(("recurso.pdf", pdf),),
    )  # fmt: skip
    row = _process(app, raw)
    assert (row.disposition, row.tramite) == ("accept", "reconsideracion")
    outs = _outs(app)
    assert [o.kind for o in outs] == ["acuse_recibo", "cargo_enviado"]
    assert outs[1].to_addr == APPLICANT
    with app.database.session(readonly=True) as s:
        assert (
            s.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.kind == "reply_suppressed"))
            == 0
        )


def test_reply_to_an_acknowledgment_without_case_is_acknowledged_again(app: App) -> None:
    first = _process(app, mail("Hola", "Necesito ayuda con un documento."))
    [ack] = _outs(app)
    again = _process(
        app,
        mail("RE: Acuse", "Es sobre mi partida de nacimiento.", in_reply_to=f"<{ack.message_id}>"),
    )
    assert first.disposition == again.disposition == "review"
    assert [o.kind for o in _outs(app)] == ["acuse_registro", "acuse_registro"]


def test_observation_window_runs_from_smtp_acceptance(app: App) -> None:
    first = _process(app, mail("Actualización de datos", SIN_TELEFONO))
    case = _case(app, first.case_id)
    assert case.sla["subsanacion_deadline"] == "2026-11-25"
    # SMTP was down: the window has not started, so it cannot end
    run_sweep(app, THURSDAY, "w1")
    assert _case(app, case.id).state == "observado"
    wednesday = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
    _accept_all(app, wednesday)
    after = _case(app, case.id)
    assert after.sla["subsanacion_deadline"] == "2026-11-27"  # two días hábiles from delivery
    with app.database.session(readonly=True) as s:
        due = s.scalars(
            select(Timer.due_at).where(
                Timer.case_id == case.id, Timer.kind == SUBSANACION, Timer.cancelled_at.is_(None)
            )
        ).all()
    assert max(due) == dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC)
    run_sweep(app, dt.datetime(2026, 11, 27, 20, 0, tzinfo=dt.UTC), "w1")
    assert _case(app, case.id).state == "observado"
    run_sweep(app, dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC), "w1")
    assert _case(app, case.id).state == "no_presentado"


@pytest.mark.parametrize(
    ("subject", "body", "status"),
    [
        ("Consulta", "¿Cómo va mi trámite?", True),
        ("Estado de mi expediente EXP-2026-000001", "", True),
        ("Seguimiento", "Quisiera saber el estado de mi solicitud de prórroga.", True),
        ("Question", "How is my application going?", True),
        ("Adjunto", "Adjunto el estado de mi cuenta bancaria.", False),
        ("Actualización de datos", "Nombres y apellidos: Ana", False),
    ],
)
def test_status_question_recognition(subject: str, body: str, status: bool) -> None:
    from mailflow.cases.followup import is_status_question
    from mailflow.mail.parse import parse_message

    assert is_status_question(parse_message(mail(subject, body))) is status


@pytest.mark.parametrize(
    ("arrived", "state"),
    [(TUESDAY, "en_tramite"), (THURSDAY, "en_revision")],
    ids=["in-time", "after-the-window"],
)
def test_linked_third_party_message_counts_from_its_own_receipt(
    app: App, arrived: dt.datetime, state: str
) -> None:
    from mailflow.pipeline.desk import link_to_case

    first = _process(app, mail("Actualización de datos", SIN_TELEFONO))
    _accept_all(app, MONDAY)
    case = _case(app, first.case_id)
    lawyer = _process(
        app,
        mail(f"Expediente {case.number}", "Teléfono: 987654321", sender="abogada@estudio.pe"),
        arrived,
    )
    friday = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)  # staff link it days later
    run_sweep(app, friday, "w1")
    assert _case(app, case.id).state == "observado"  # held while it waited
    with app.database.session() as s:
        row = s.get(InboxMessage, lawyer.id)
        stored = s.get(Case, case.id)
        assert row is not None and stored is not None
        link_to_case(app, s, row, stored, actor="usuario:ana", now=friday)
    after = _case(app, case.id)
    assert after.state == state
    assert after.fields.get("telefono") == "+51987654321"
    if state == "en_revision":
        assert "subsanacion_fuera_de_plazo" in after.flags
    with app.database.session(readonly=True) as s:
        assert [i.id for i in load_rows(s) if i.kind == "mensaje"] == []
