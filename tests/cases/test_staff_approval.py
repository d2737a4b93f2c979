"""Autorización de viaje: staff approval with alerts, then delivery with no further click."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from mailflow.app import App
from mailflow.cases.core import apply_event, staff_actor
from mailflow.cases.delivery_events import on_accepted
from mailflow.config import MigracionesSettings
from mailflow.ops.keys import keys_demo
from mailflow.pipeline.route import process_inbox_message
from mailflow.runners.sweep import run_sweep
from mailflow.store.db import Database
from mailflow.store.models import Applicant, Case, CaseEvent, Document, OutboxMessage
from tests.support.cases_support import MONDAY, mail, make_app, outbox, parse_out, store
from tests.support.fixtures_pki import PkiSet

MIGRACIONES = "oficios@migraciones.example.org"
VIAJE = (
    "Motivo: visita familiar\nDestino: Caracas, Venezuela\nFecha de salida: {salida}\n"
    "Fecha de retorno: 20/12/2026\nNombres y apellidos: Juan Pérez Quispe\n"
    "Carné de extranjería: 000123456\nTeléfono: 987654321\n"
)


def _pdfs(row: OutboxMessage) -> list[bytes]:
    return [
        part.get_content()
        for part in parse_out(row).iter_attachments()
        if part.get_content_type() == "application/pdf"
    ]


def _accept(app: App, row_id: int, at: dt.datetime) -> None:
    with app.database.session() as s:
        row = s.get(OutboxMessage, row_id)
        assert row is not None
        row.status, row.sent_at = "sent", at
        on_accepted(s, app.settings, row, at)
    assert run_sweep(app, at, "prueba") >= 1


def test_travel_goes_to_staff_flagged_then_one_approval_delivers_everything(
    tmp_path: Path, sqlite_db: Database, test_pki: PkiSet, signed_pdf_factory: object
) -> None:
    base = make_app(tmp_path, sqlite_db)
    signatures = base.settings.signatures.model_copy(
        update={"trust_roots": tuple(test_pki.trust_root_paths)}
    )
    app = make_app(
        tmp_path,
        sqlite_db,
        signatures=signatures,
        migraciones=MigracionesSettings(address=MIGRACIONES),
    )
    keys_demo(app.settings)
    with app.database.session() as s:  # the registry knows the nationality; the request does not
        s.add(Applicant(full_name="Juan Pérez Quispe", carne_extranjeria="000123456",
                        nationality="venezolana", status="Refugiado reconocido"))  # fmt: skip
    pdf = signed_pdf_factory(["Solicitud de autorización de viaje"])  # type: ignore[operator]
    body = VIAJE.format(salida="25/11/2026")  # Wednesday after a Monday filing: too early
    raw = mail("Autorización de Viaje", body, attachments=(("solicitud.pdf", pdf),))
    with app.database.session() as s:
        row = store(s, raw)
        process_inbox_message(app, s, row, MONDAY)
        case_id = row.case_id
    with app.database.session(readonly=True) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.state == "validado", case.state if case else None
        assert "alerta_viaje" in case.flags
        policy = s.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "policy")
        ).one()
        alerts = " ".join(policy.data["alerts"])
        assert "anterior al plazo de 5 días hábiles" in alerts and "riesgo de cesación" in alerts
        assert [o.kind for o in outbox(s)] == ["acuse_recibo"]  # nothing to Migraciones yet
        assert "validado" in app.machines["oficio"].queue_states

    later = MONDAY + dt.timedelta(hours=2)
    with app.database.session() as s:
        live = s.get(Case, case_id)
        assert live is not None
        apply_event(s, app, live, "emitir_oficio", actor=staff_actor("jefa"), now=later)
    with app.database.session(readonly=True) as s:
        docs = s.scalars(select(Document).where(Document.case_id == case_id)).all()
        assert sorted(d.kind for d in docs) == ["autorizacion_viaje", "oficio"]
        to_migraciones = outbox(s)[-1]
    assert (to_migraciones.kind, to_migraciones.to_addr) == ("oficio_migraciones", MIGRACIONES)
    sent_pdfs = _pdfs(to_migraciones)
    assert len(sent_pdfs) == 2

    _accept(app, to_migraciones.id, later + dt.timedelta(minutes=1))
    with app.database.session(readonly=True) as s:
        assert s.get(Case, case_id).state == "enviado_migraciones"  # type: ignore[union-attr]
        copy = outbox(s)[-1]
    assert copy.kind == "oficio_enviado" and copy.to_addr == "juan.perez@example.org"
    assert _pdfs(copy) == sent_pdfs  # the same bytes, oficio and autorización
    assert parse_out(copy)["In-Reply-To"]

    _accept(app, copy.id, later + dt.timedelta(minutes=2))
    with app.database.session(readonly=True) as s:
        done = s.get(Case, case_id)
        assert done is not None and done.state == "copia_enviada"
        assert done.sla["entregado_at"] == (later + dt.timedelta(minutes=2)).isoformat()
