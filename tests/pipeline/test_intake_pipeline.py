"""Production follows the decision table: every escrito of a recurso gets its cargo at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.cases.core import apply_event, staff_actor
from mailflow.documents.pki import issue_person_certificate
from mailflow.ops.checking import check_bytes
from mailflow.ops.keys import keys_demo
from mailflow.store.db import Database
from mailflow.store.models import Case, Document
from tests.support.cases_support import MONDAY, mail, make_app, outbox
from tests.support.cases_support import process as _process
from tests.support.fixtures_pki import PkiSet, SignedPdfFactory
from tests.support.pdfs import make_pdf

RECURSO = (
    "Interpongo recurso de reconsideración.\n"
    "Motivo: no estoy de acuerdo con la denegatoria de mi solicitud\n"
    "Nombres y apellidos: Juan Pérez Quispe\n"
    "Pasaporte: 123456789\n"
    "Teléfono: 987654321\n"
)
ESCRITO = ["Recurso de Reconsideración", "Nombre: Juan Pérez Quispe", "Interpongo recurso"]
TO = "mesadepartes@cepr.mailflow.localhost"


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database, test_pki: PkiSet) -> App:
    base = make_app(tmp_path, sqlite_db)
    signatures = base.settings.signatures.model_copy(
        update={"trust_roots": tuple(test_pki.trust_root_paths)}
    )
    built = make_app(tmp_path, sqlite_db, signatures=signatures)
    keys_demo(built.settings)
    return built


def _case_docs_replies(app: App, case_id: int | None) -> tuple[Case, list[str], list[str]]:
    assert case_id is not None
    with app.database.session(readonly=True) as s:
        case = s.get(Case, case_id)
        assert case is not None
        docs = list(s.scalars(select(Document.kind).where(Document.case_id == case_id)))
        replies = [o.kind for o in outbox(s) if o.case_id == case_id]
    return case, docs, replies


@pytest.mark.parametrize(
    ("signer", "disposition", "state", "flags"),
    [
        ("applicant", "accept", "cargo_emitido", set()),
        (None, "accept", "cargo_emitido", {"firma_manuscrita_por_confirmar"}),
        ("stranger", "review", "en_revision", {"firma_no_valida", "cargo_emitido"}),
        ("other", "review", "en_revision", {"firmante_distinto", "cargo_emitido"}),
    ],
)
def test_recurso_with_any_escrito_gets_its_cargo_at_once(
    app: App,
    test_pki: PkiSet,
    signed_pdf_factory: SignedPdfFactory,
    signer: str | None,
    disposition: str,
    state: str,
    flags: set[str],
) -> None:
    if signer is None:
        pdf = make_pdf(ESCRITO)
    else:
        identity = {
            "applicant": test_pki.applicant,
            "stranger": test_pki.stranger,
            "other": issue_person_certificate(
                test_pki.applicant_ca, "Rosa Mendoza Huamán", test_pki.directory / "otros"
            ),
        }[signer]
        pdf = signed_pdf_factory(ESCRITO, signer=identity)
    raw = mail("Recurso de Reconsideración", RECURSO, to=TO, attachments=(("recurso.pdf", pdf),))
    assert check_bytes(app, raw).disposition == disposition  # `check` says what production does
    row = _process(app, raw)
    assert (row.disposition, row.tramite) == (disposition, "reconsideracion")
    case, docs, replies = _case_docs_replies(app, row.case_id)
    assert case.state == state
    assert docs == ["cargo"]
    assert replies == ["cargo_enviado"]
    assert flags <= set(case.flags or []), case.flags


def test_staff_confirm_a_reviewed_escrito_without_a_second_cargo(
    app: App, test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    pdf = signed_pdf_factory(ESCRITO, signer=test_pki.stranger)
    raw = mail("Recurso de Reconsideración", RECURSO, to=TO, attachments=(("recurso.pdf", pdf),))
    row = _process(app, raw)
    later = MONDAY + dt.timedelta(hours=2)
    with app.database.session() as s:
        case = s.get(Case, row.case_id)
        assert case is not None and case.state == "en_revision"
        apply_event(s, app, case, "confirmar_escrito", actor=staff_actor("luis"), now=later)
    case, docs, _ = _case_docs_replies(app, row.case_id)
    assert case.state == "cargo_emitido"
    assert docs == ["cargo"]


def test_recurso_without_escrito_is_observed_and_the_reply_completes_it(app: App) -> None:
    raw = mail("Recurso de Reconsideración", RECURSO, to=TO, message_id="<rec-1@example.org>")
    row = _process(app, raw)
    assert row.disposition == "observe"
    with app.database.session(readonly=True) as s:
        [our] = [o.message_id for o in outbox(s)]
    reply = mail(
        "RE: Observación",
        "Adjunto el escrito firmado a mano.",
        to=TO,
        in_reply_to=f"<{our}>",
        attachments=(("recurso_firmado.pdf", make_pdf(ESCRITO)),),
    )
    answered = _process(app, reply, MONDAY + dt.timedelta(days=1))
    assert answered.disposition == "accept"
    case, docs, replies = _case_docs_replies(app, row.case_id)
    assert case.state == "cargo_emitido"
    assert docs == ["cargo"]
    assert "firma_manuscrita_por_confirmar" in (case.flags or [])
    assert replies == ["observacion", "cargo_enviado"]
